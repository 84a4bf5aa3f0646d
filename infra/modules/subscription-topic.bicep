// The Event Grid system topic of ONE target subscription (type Microsoft.Resources.Subscriptions,
// location global) in a resource group of that subscription. Azure allows one such topic per
// subscription. Its system-assigned identity writes undeliverable events to the dead-letter container.
targetScope = 'subscription'

@description('Resource group created in the target subscription for the system topic.')
param resourceGroupName string

@description('Region of that resource group (the topic itself is global).')
param location string

@description('Name of the system topic.')
param topicName string

@description('Tags for every resource.')
param tags object = {}

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
  tags: tags
}

module topic 'system-topic.bicep' = {
  name: 'steward-system-topic'
  scope: group
  params: {
    topicName: topicName
    tags: tags
  }
}

output resourceGroupName string = group.name
output topicName string = topic.outputs.name
output principalId string = topic.outputs.principalId
