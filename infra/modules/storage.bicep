// Two storage accounts, both Entra-only (shared key access off, no keys in any app setting):
//  * host:  the Functions host and Durable Functions task hub (blobs, queues, tables) and the Flex
//           Consumption deployment package container. The app identity gets the three data roles the
//           identity-based AzureWebJobsStorage connection needs, on this account only.
//  * data:  audit/teardown reports (STEWARD_REPORTS_ACCOUNT_URL / STEWARD_REPORTS_CONTAINER) and the Event
//           Grid dead-letter container. Kept apart from the host account so that the app's report access
//           can be limited to one container (Storage Blob Data Contributor on the reports container only).

@description('Name of the host storage account (3-24 lower-case letters and digits).')
@minLength(3)
@maxLength(24)
param hostAccountName string

@description('Name of the data storage account (3-24 lower-case letters and digits).')
@minLength(3)
@maxLength(24)
param dataAccountName string

@description('Region (the app region).')
param location string

@description('Principal id of the app identity.')
param appPrincipalId string

@description('Blob container of the Flex Consumption deployment package.')
param deploymentContainerName string = 'app-package'

@description('Blob container of audit and teardown reports (STEWARD_REPORTS_CONTAINER).')
param reportsContainerName string = 'steward-reports'

@description('Blob container where Event Grid dead-letters events it could not deliver.')
param deadLetterContainerName string = 'eventgrid-deadletter'

@description('Replication of both accounts. Zone-redundant where the region offers it.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param skuName string = 'Standard_ZRS'

@description('Tags for every resource.')
param tags object = {}

// Built-in role definition ids (identical in every tenant).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'

resource hostAccount 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  #checkov:skip=CKV_AZURE_59: Flex Consumption without VNet integration reaches its host storage over the public endpoint; access is Entra-only (shared keys off) and TLS 1.2.
  #checkov:skip=CKV_AZURE_35: default network rule Allow for the same reason (no VNet to allow instead); Entra-only access.
  #checkov:skip=CKV_AZURE_43: the name is computed ('st' + namePrefix + uniqueString) and bounded by the parameter's 3-24 length; checkov cannot evaluate it.
  #checkov:skip=CKV_AZURE_206: replication is the skuName parameter (ZRS by default); LRS stays allowed for regions without ZRS.
  name: hostAccountName
  location: location
  tags: tags
  sku: {
    name: skuName
  }
  kind: 'StorageV2'
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource hostBlobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: hostAccount
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: hostBlobs
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource dataAccount 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  #checkov:skip=CKV_AZURE_59: Event Grid dead-lettering and the app (no VNet integration) reach it over the public endpoint; access is Entra-only (shared keys off) and TLS 1.2.
  #checkov:skip=CKV_AZURE_35: default network rule Allow for the same reason (Event Grid delivers from its own service addresses); Entra-only access.
  #checkov:skip=CKV_AZURE_43: the name is computed ('sd' + namePrefix + uniqueString) and bounded by the parameter's 3-24 length; checkov cannot evaluate it.
  #checkov:skip=CKV_AZURE_206: replication is the skuName parameter (ZRS by default); LRS stays allowed for regions without ZRS.
  name: dataAccountName
  location: location
  tags: tags
  sku: {
    name: skuName
  }
  kind: 'StorageV2'
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      bypass: 'AzureServices'
      defaultAction: 'Allow'
    }
  }
}

resource dataBlobs 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: dataAccount
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 30
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 30
    }
  }
}

resource reportsContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: dataBlobs
  name: reportsContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: dataBlobs
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

// ---- the app identity's data roles -----------------------------------------------------------------

// Scope: host account. Identity-based AzureWebJobsStorage: the host takes blob leases (singleton,
// Durable partition ownership) and writes the deployment package container, hence Blob Data Owner.
resource hostBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostAccount.id, appPrincipalId, storageBlobDataOwner)
  scope: hostAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Scope: host account. Durable Functions' control and work-item queues.
resource hostQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostAccount.id, appPrincipalId, storageQueueDataContributor)
  scope: hostAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Scope: host account. Durable Functions' history and instances tables.
resource hostTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(hostAccount.id, appPrincipalId, storageTableDataContributor)
  scope: hostAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// Scope: the reports container only (not the account): the app reads and writes its reports and nothing
// else in the data account (in particular not the dead-letter container).
resource reportsWriter 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(reportsContainer.id, appPrincipalId, storageBlobDataContributor)
  scope: reportsContainer
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output hostAccountName string = hostAccount.name
output hostBlobEndpoint string = hostAccount.properties.primaryEndpoints.blob
output deploymentContainerName string = deploymentContainer.name
output dataAccountId string = dataAccount.id
output dataAccountName string = dataAccount.name
output reportsAccountUrl string = 'https://${dataAccount.name}.blob.${environment().suffixes.storage}'
output reportsContainerName string = reportsContainer.name
output deadLetterContainerName string = deadLetterContainer.name
