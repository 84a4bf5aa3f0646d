// The event subscription from the requests topic to the app's Event Grid trigger: only the custom
// teardown request event type (steward/domain/events.py TEARDOWN_REQUESTED_EVENT_TYPE).

@description('Name of the requests custom topic.')
param requestsTopicName string

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

// the filter: ../event-filters.json (shared with the system topic's subscription and the local stack)
var eventFilters = loadJsonContent('../event-filters.json')

resource topic 'Microsoft.EventGrid/topics@2022-06-15' existing = {
  name: requestsTopicName
}

resource toSteward 'Microsoft.EventGrid/topics/eventSubscriptions@2022-06-15' = {
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
    filter: eventFilters.teardownRequests
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
