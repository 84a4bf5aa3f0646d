// The event subscription from ONE target subscription's system topic to the app's Event Grid trigger
// (resource group scope: the group holding that system topic).
//
// The filter is derived from steward/domain/events.py and must say EXACTLY what the classifier acts on
// (tests/infra/test_event_filters.py checks both ways):
//  * ResourceWriteSuccess  + '<protected type>/write'   -> ProtectResource
//  * ResourceDeleteSuccess + '<protected type>/delete'  -> ResourceGone
//  * ResourceActionSuccess + moveResources/action       -> ResourcesMoved
//  * ResourceDeleteFailure + '<vault type>/delete'      -> VaultDeleteFailed
// (protected types: PROTECTED_TYPES; vault types: VAULT_DELETE_OPERATIONS; MOVE_RESOURCES_OPERATION).
// StringIn is case-insensitive; 11 values of the 25 Event Grid allows.
// The filter itself lives in ../event-filters.json, the one source the local stack (sandbox/host/local.py)
// subscribes with too, so the sandbox delivers what Azure would.

@description('Name of the target subscription\'s system topic.')
param systemTopicName string

@description('Resource id of the Function App.')
param functionAppId string

@description('Resource id of the storage account holding the dead-letter container.')
param deadLetterAccountId string

@description('Dead-letter container name.')
param deadLetterContainerName string

@description('Delivery attempts before an event is dead-lettered (1-30).')
@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 30

@description('Minutes an event is retried before it is dead-lettered (1-1440).')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

var eventFilters = loadJsonContent('../event-filters.json')

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: systemTopicName
}

resource toSteward 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: topic
  name: 'backup-steward'
  properties: {
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/on_subscription_event'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: eventFilters.systemTopic
    retryPolicy: {
      maxDeliveryAttempts: maxDeliveryAttempts
      eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'SystemAssigned'
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterAccountId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

output id string = toSteward.id
