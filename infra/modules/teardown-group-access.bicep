// The Backup Steward Teardown role for the app's identity on ONE resource group that holds vaults the app may
// tear down (main.bicep parameter teardownResourceGroups). Deployed only with enableTeardown.

@description('Principal id of the app identity.')
param principalId string

@description('GUID of the Backup Steward Teardown custom role.')
param teardownRoleGuid string

// Scope: this resource group only (teardown_vault's destructive steps on the vaults it holds). Site Recovery
// objects, containers, items and private endpoint connections are the vault's own child resources.
resource teardownAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, 'teardown')
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', teardownRoleGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Backup Steward: tear down the vaults of this group on approved requests (deletes backup data)'
  }
}
