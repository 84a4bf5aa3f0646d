// The Event Grid system topic of ONE target subscription (type Microsoft.Resources.Subscriptions,
// location global). Azure allows one such topic per subscription. Either this template creates it, in a
// resource group of its own, or (existingSystemTopics in main.bicep) the subscription's existing topic is
// used as it is: the template does not modify a topic it does not own, so that topic must already have
// its system-assigned identity turned on (infra/README.md). That identity writes undeliverable events to
// the dead-letter container.
targetScope = 'subscription'

@description('Resource group of the system topic in the target subscription.')
param resourceGroupName string

@description('Use the subscription\'s existing system topic (true) or create group and topic (false).')
param reuseExistingTopic bool = false

@description('Region of a created resource group (the topic itself is global).')
param location string

@description('Name of the system topic (the existing one\'s name when it is reused).')
param topicName string

@description('Tags for created resources.')
param tags object = {}

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = if (!reuseExistingTopic) {
  name: resourceGroupName
  location: location
  tags: tags
}

module created 'system-topic.bicep' = if (!reuseExistingTopic) {
  name: 'steward-system-topic'
  scope: resourceGroup(resourceGroupName)
  dependsOn: [
    group
  ]
  params: {
    topicName: topicName
    tags: tags
  }
}

module reused 'existing-system-topic.bicep' = if (reuseExistingTopic) {
  name: 'steward-existing-system-topic'
  scope: resourceGroup(resourceGroupName)
  params: {
    topicName: topicName
  }
}

output resourceGroupName string = resourceGroupName
output topicName string = topicName
output principalId string = reuseExistingTopic ? reused.outputs.principalId : created.outputs.principalId
