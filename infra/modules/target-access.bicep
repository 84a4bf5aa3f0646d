// What the app's identity may do in ONE target subscription. Deployed once per target subscription.
// Each assignment is at subscription scope because the resources the app protects, the vaults it uses and
// the resource groups it reconciles after a move can be anywhere in the subscription; nothing in this
// template can name them in advance. What each role allows is kept narrow instead, and what deletes or
// weakens backup data is a separate role assigned only with enableTeardown.
targetScope = 'subscription'

@description('Principal id of the app identity.')
param principalId string

@description('GUID of the Backup Steward Operator custom role.')
param operatorRoleGuid string

@description('GUID of the Backup Steward Vault Identity Grantor custom role.')
param grantorRoleGuid string

@description('GUID of the Backup Steward Vault Creator custom role; empty: not assigned.')
param creatorRoleGuid string = ''

@description('GUID of the Backup Steward Teardown custom role; empty (enableTeardown false): not assigned, and the app cannot delete or weaken backup data.')
param teardownRoleGuid string = ''

@description('GUID of the Backup Steward Drill custom role; empty (enableDrills false): not assigned, and a restore drill is refused by Azure at its first write.')
param drillRoleGuid string = ''

@description('Resource groups of this subscription whose vaults the app may tear down; empty: the Teardown role is assigned on the whole subscription.')
param teardownResourceGroups array = []

@description('Principal ids of the Backup vault identities the app may give workload roles to; empty: any service principal but the app itself (vault identities are created with their vaults, so a deployment cannot always know them).')
param vaultIdentityPrincipalIds array = []

var reader = 'acdd72a7-3385-48ef-bd42-f606fba81ae7'

// The built-in roles grant_vault_roles gives a Backup vault's identity (steward/domain/workloads.py):
// Disk Backup Reader, Disk Snapshot Contributor, Storage Account Backup Contributor,
// PostgreSQL Flexible Server Long Term Retention Backup Role, Reader. Nothing else may be granted.
var vaultIdentityRoleIds = [
  '3e5e47e6-65f7-47ef-90b5-e5dd4d455f24'
  '7efff54f-a5b4-42b5-a1c5-5411624893ce'
  'e5e2a7ff-d759-4cd2-bb51-3152d37e2eb1'
  'c088a766-074b-43ba-90d4-1fb21feae531'
  'acdd72a7-3385-48ef-bd42-f606fba81ae7'
]

// With enableDrills (drillRoleGuid set), restore drills also give the vault identity its restore right on the
// drill's target (steward/domain/workloads.py RESTORE_ROLES): Disk Restore Operator on the drill group
// (backup/restore-managed-disks.md) and Storage Blob Data Contributor on the drill's storage account (PostgreSQL
// files; Azure/azure-powershell DataProtection manifest AzureDatabaseForPGFlexServer.json) and Storage Account Backup
// Contributor on the drill's storage account (vaulted blobs restore only to another account, the vault holding that
// role on it: backup/blob-restore.md; also granted for protection, listed here so the drill's needs are complete).
// Without drills the condition does not allow the first two.
var drillVaultIdentityRoleIds = [
  'b50d9833-a0cb-478e-945f-707fcc997c13'
  'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  'e5e2a7ff-d759-4cd2-bb51-3152d37e2eb1'
]
var grantableRoleIds = empty(drillRoleGuid) ? vaultIdentityRoleIds : concat(vaultIdentityRoleIds, drillVaultIdentityRoleIds)

// ABAC delegation condition on the grantor (Azure "Delegate Azure role assignment management to others
// with conditions"; attributes from "Authorization actions and attributes": a roleAssignments/write request
// carries RoleDefinitionId, PrincipalId and PrincipalType, learn.microsoft.com/azure/role-based-access-control/
// conditions-authorization-actions-attributes; syntax as in delegate-role-assignments-examples, "Constrain
// roles and principal types" and "Constrain roles and specific groups"). A role assignment write is allowed
// only
//   * for one of the roles above (RoleDefinitionId),
//   * to a service principal (PrincipalType: a Backup vault's system-assigned identity is one),
//   * never to the app's own identity (PrincipalId GuidNotEquals it: otherwise it could give itself Disk
//     Backup Reader and export disk contents),
//   * and, when vaultIdentityPrincipalIds names them, only to those vault identities (PrincipalId GuidEquals).
// It cannot grant Owner, User Access Administrator or itself, nor any role to a user or group.
var principalPin = empty(vaultIdentityPrincipalIds) ? '' : ' AND @Request[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAnyValues:GuidEquals {${join(vaultIdentityPrincipalIds, ', ')}}'
var grantCondition = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${join(grantableRoleIds, ', ')}} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'ServicePrincipal\'} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalId] ForAnyOfAllValues:GuidNotEquals {${principalId}}${principalPin}))'

// Scope: subscription. Inventory: describe_resource, list_resources, find_vaults, list_vaults,
// find_protections, audits (ARM reads of VMs, disks, storage accounts, PostgreSQL servers, vaults) and
// the existing role assignments grant_vault_roles compares with.
resource readerAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, reader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', reader)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Backup Steward: inventory reads'
  }
}

// Scope: subscription. The backup control plane actions of the activities (see role-definitions.bicep).
resource operatorAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, operatorRoleGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', operatorRoleGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Backup Steward: protection (nothing that deletes or weakens backup data)'
  }
}

// Scope: subscription, conditioned. The vault identity's roles go on the protected resource, its resource
// group or the snapshot resource group, which can be any group in the subscription, or (a rule's
// protect.roleScope: subscription) on the subscription itself; the condition (not the scope) is what keeps
// this narrow.
resource grantorAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, grantorRoleGuid)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', grantorRoleGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Backup Steward: give Backup vault identities their workload roles, nothing else'
    conditionVersion: '2.0'
    condition: grantCondition
  }
}

// Scope: subscription; only when vault auto-creation is on (create_vault).
resource creatorAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(creatorRoleGuid)) {
  name: guid(subscription().id, principalId, 'vault-creator')
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', creatorRoleGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Backup Steward: create missing regional vaults'
  }
}

// Scope: subscription; only with enableTeardown and no teardownResourceGroups for this subscription
// (teardown_vault's destructive steps; the vault a teardown targets is named per request).
resource teardownAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if ((!empty(teardownRoleGuid)) && empty(teardownResourceGroups)) {
  name: guid(subscription().id, principalId, 'teardown')
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', teardownRoleGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Backup Steward: tear down vaults on approved requests (deletes backup data)'
  }
}

// Scope: subscription; only with enableDrills (restore_drill). The vaults, their items and the drill groups the
// rules name (one per region and subscription) can be anywhere in the subscription; the role's deletes are of
// disks and storage accounts only, and the app deletes only what a drill recorded and tagged.
resource drillAssignment 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(drillRoleGuid)) {
  name: guid(subscription().id, principalId, 'drill')
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', drillRoleGuid)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'Backup Steward: restore drills (restore out of place, delete only what a drill restored)'
  }
}

// With teardownResourceGroups: the Teardown role on each named group instead (the narrower scope).
var teardownGroups = empty(teardownRoleGuid) ? [] : teardownResourceGroups

module teardownGroupAccess 'teardown-group-access.bicep' = [for group in teardownGroups: {
  name: 'steward-teardown-${uniqueString(subscription().id, group)}'
  scope: resourceGroup(group)
  params: {
    principalId: principalId
    teardownRoleGuid: teardownRoleGuid
  }
}]
