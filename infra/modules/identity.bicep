// The app's user-assigned managed identity. Every Azure call the app makes (ARM, Event Grid publishing,
// report blobs, its own host storage, Application Insights ingestion) authenticates as this identity;
// no key or connection string is stored anywhere (STEWARD_CREDENTIAL=managed-identity).

@description('Name of the user-assigned managed identity.')
param name string

@description('Region of the identity (the app region).')
param location string

@description('Tags for every resource.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
