// The app's two custom Event Grid topics (Entra-only: local/key auth disabled, so no topic key exists to
// leak and STEWARD_EVENTS_TOPIC_KEY stays unset):
//  * outcomes: what the app publishes (BackupSteward.Protection.*, BackupSteward.Teardown.*,
//              BackupSteward.Audit.*, BackupSteward.Event.Rejected). The app identity is its only sender.
//  * requests: BackupSteward.Teardown.Requested events sent by people or pipelines. Only the allowed
//              teardown principals may send (EventGrid Data Sender); the event subscription that delivers
//              them to the app is created with the subscription topics' ones (event-subscriptions step).

@description('Name stem of the topics.')
param baseName string

@description('Region (the app region).')
param location string

@description('Principal id of the app identity (sender on the outcomes topic).')
param appPrincipalId string

@description('Object ids allowed to request teardowns (senders on the requests topic).')
param teardownPrincipalIds array = []

@description('Name of the data storage account holding the dead-letter container.')
param dataAccountName string

@description('Dead-letter container in the data account.')
param deadLetterContainerName string

@description('Tags for every resource.')
param tags object = {}

// EventGrid Data Sender: publish events to a topic, nothing else.
var eventGridDataSender = 'd5a91429-5739-47e2-a06b-3470a27159e7'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'

// The outcomes topic's identity is for subscribers that deliver or dead-letter with it; it holds no role here.
resource outcomes 'Microsoft.EventGrid/topics@2022-06-15' = {
  #checkov:skip=CKV_AZURE_193: subscribers of the outcome events sit outside any VNet this template knows; publishing needs Entra ID (disableLocalAuth).
  name: 'evgt-${baseName}-outcomes'
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    inputSchema: 'EventGridSchema'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

resource requests 'Microsoft.EventGrid/topics@2022-06-15' = {
  #checkov:skip=CKV_AZURE_193: requesters publish from their own machines and pipelines; publishing needs Entra ID (disableLocalAuth) and EventGrid Data Sender.
  name: 'evgt-${baseName}-requests'
  location: location
  tags: tags
  identity: {
    type: 'SystemAssigned'
  }
  properties: {
    inputSchema: 'EventGridSchema'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

// Scope: the outcomes topic only. The app publishes its outcome events (STEWARD_EVENTS_TOPIC_ENDPOINT).
resource appSendsOutcomes 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(outcomes.id, appPrincipalId, eventGridDataSender)
  scope: outcomes
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSender)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Scope: the requests topic only. Each allowed teardown principal may send a teardown request event;
// the app still checks the requester against STEWARD_TEARDOWN_ALLOWED_PRINCIPALS and the vault's opt-in tag.
resource requestersSend 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for principalId in teardownPrincipalIds: {
  name: guid(requests.id, principalId, eventGridDataSender)
  scope: requests
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSender)
    principalId: principalId
  }
}]

resource dataAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: dataAccountName
}

resource dataBlobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' existing = {
  parent: dataAccount
  name: 'default'
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' existing = {
  parent: dataBlobs
  name: deadLetterContainerName
}

// Scope: the dead-letter container only. The requests topic's own identity writes undeliverable events.
resource requestsDeadLetter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(deadLetterContainer.id, requests.id, storageBlobDataContributor)
  scope: deadLetterContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: requests.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

output outcomesTopicEndpoint string = outcomes.properties.endpoint
output outcomesTopicId string = outcomes.id
output requestsTopicName string = requests.name
output requestsTopicId string = requests.id
output requestsTopicEndpoint string = requests.properties.endpoint
