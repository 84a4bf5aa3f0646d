// A target subscription's existing Microsoft.Resources.Subscriptions system topic, read only (resource
// group scope). It must have its system-assigned identity on: that identity dead-letters the events the
// app's event subscription cannot deliver.

@description('Name of the existing system topic.')
param topicName string

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: topicName
}

output name string = topic.name
output topicType string = topic.properties.topicType
output principalId string = topic.identity.principalId
