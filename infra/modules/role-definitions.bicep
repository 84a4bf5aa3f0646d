// Custom roles for the app's identity, defined once (role names are unique per tenant) and assignable in
// every target subscription. Every write, delete and action below is one the app's activities call
// (infra/README.md maps each activity to its permissions); reads are granted per provider with
// '<provider>/*/read' because the long-running operations the SDK polls answer on several status paths
// (operationResults, operationsStatus, backupOperations, locations/operationStatus) and reads change
// nothing. The Reader role assigned beside these grants the same reads on every other provider.
//
// Protection and teardown are separate roles (issue 14): the Operator role protects and stops protection
// keeping the data, and can neither delete nor weaken anything (no delete of vaults, items, instances,
// containers or policies; no backupconfig or vault write, which is how soft delete, enhanced security and
// immutability are switched off). Everything destructive lives in the Teardown role, which exists only when
// enableTeardown is true. Action names: "Azure permissions for Management and governance"
// (learn.microsoft.com/azure/role-based-access-control/permissions/management-and-governance), sections
// Microsoft.RecoveryServices and Microsoft.DataProtection.
targetScope = 'subscription'

@description('Short name of this deployment; part of the role names.')
param namePrefix string

@description('Subscriptions where the roles may be assigned (the target subscriptions).')
param assignableSubscriptionIds array

@description('Also define the role that lets the app create missing regional vaults.')
param autoCreateVaults bool = false

@description('Also define the role that lets the app run restore drills (restore out of place into its drill resource groups, follow and cancel the restore jobs, tag and delete what a drill restored). Without it a drill is refused by Azure (AuthorizationFailed) at its first write.')
param enableDrills bool = false

@description('Also define the role that lets the app tear vaults down (delete items, containers, vaults; turn soft delete and enhanced security off). Without it the app cannot delete any backup data.')
param enableTeardown bool = false

var assignableScopes = [for id in union([subscription().subscriptionId], assignableSubscriptionIds): '/subscriptions/${id}']

resource operator 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, namePrefix, 'backup-steward-operator')
  properties: {
    roleName: 'Backup Steward Operator (${namePrefix})'
    description: 'What Backup Steward needs to protect resources and to stop protection keeping the data. Nothing that deletes or weakens backup data (that is the separate Teardown role), no access to backup data, no restore, no policy writes.'
    type: 'CustomRole'
    assignableScopes: assignableScopes
    permissions: [
      {
        actions: [
          // Reads (vaults, items, containers, policies, jobs, operation status of every poller).
          'Microsoft.RecoveryServices/*/read'
          'Microsoft.DataProtection/*/read'
          'Microsoft.Resources/subscriptions/read'
          'Microsoft.Resources/subscriptions/resourceGroups/read'
          'Microsoft.Resources/subscriptions/resources/read'
          'Microsoft.Resources/subscriptions/resourceGroups/resources/read'
          // audit_read_subscription: the activity log, where CAP-002 counts a vault's policy changes of 24 hours.
          'Microsoft.Insights/eventtypes/values/read'
          // vm_backup_status: is a VM protected, and in which vault.
          'Microsoft.RecoveryServices/Locations/backupStatus/action'
          // refresh_vm_containers: discover a new VM before its protected-item PUT is retried (Backup Operator's
          // action of the same name; the REST guide's "Discover unprotected Azure VMs").
          'Microsoft.RecoveryServices/Vaults/backupFabrics/refreshContainers/action'
          // begin_vm_protection, stop_protection_retain (re-PUT ProtectionStopped, the data kept),
          // teardown_undelete_item (a PUT too). Stopping protection this way keeps the recovery points.
          'Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/write'
          // begin_vm_protection, stop_protection_retain: Azure checks write on the VM itself when a VM's
          // backup is configured or stopped (linked access check; Azure Backup's documented minimum is
          // Virtual Machine Contributor on the VM, or a custom role with this action).
          'Microsoft.Compute/virtualMachines/write'
          // protect_in_backup_vault: validate, then create the backup instance. (The vault identity's
          // workload roles are what the backup needs; whether Azure also checks caller rights on the disk or
          // storage account is not verified, see infra/README.md "Not yet verified against Azure".)
          'Microsoft.DataProtection/backupVaults/validateForBackup/action'
          'Microsoft.DataProtection/backupVaults/backupInstances/write'
          // protect_in_backup_vault: Azure's remedy for an instance in ProtectionError with a user error (POST
          // .../sync, "retries last failed operation on backup instance to bring it to a valid state").
          'Microsoft.DataProtection/backupVaults/backupInstances/sync/action'
          // stop_protection_retain, teardown_stop_instance: stop protection, retain data.
          'Microsoft.DataProtection/backupVaults/backupInstances/stopProtection/action'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

// Only with enableTeardown: everything that deletes backup data or turns a vault's protections off.
resource teardown 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (enableTeardown) {
  name: guid(subscription().id, namePrefix, 'backup-steward-teardown')
  properties: {
    roleName: 'Backup Steward Teardown (${namePrefix})'
    description: 'teardown_vault (enableTeardown): empty and delete vaults the app is asked to tear down, after a plan and an approval. Deletes backup data; assign it only where teardown is wanted.'
    type: 'CustomRole'
    assignableScopes: assignableScopes
    permissions: [
      {
        actions: [
          // teardown_delete_item: stop protection and delete backup data.
          'Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/delete'
          // teardown_delete_item under multi-user authorization: ask the Resource Guard proxy to unlock.
          'Microsoft.RecoveryServices/Vaults/backupResourceGuardProxies/unlockDelete/action'
          // teardown_unregister_container.
          'Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/delete'
          // teardown_disable_intent: auto-protection intents (SQL/HANA) that would re-protect items.
          'Microsoft.RecoveryServices/Vaults/backupFabrics/backupProtectionIntent/delete'
          // teardown_unregister_server: MARS agents, DPM and MABS servers.
          'Microsoft.RecoveryServices/Vaults/registeredIdentities/delete'
          // teardown_set_setting, teardown_restore_protections: soft delete and enhanced security.
          'Microsoft.RecoveryServices/Vaults/backupconfig/write'
          // teardown_set_setting (immutability PATCH); also create_vault (Vault Creator role).
          'Microsoft.RecoveryServices/Vaults/write'
          // teardown_remove_private_endpoint: the vault's side of the connection, then the endpoint itself, as
          // the official script does (Remove-AzPrivateEndpoint); without the second the endpoint is left and
          // the report says why.
          'Microsoft.RecoveryServices/Vaults/privateEndpointConnections/delete'
          'Microsoft.Network/privateEndpoints/delete'
          // teardown_remove_site_recovery: replicated items, container mappings, network mappings and fabrics,
          // in the official script's order (the fabric's purge takes its empty containers; no container remove).
          'Microsoft.RecoveryServices/vaults/replicationFabrics/replicationProtectionContainers/replicationProtectedItems/delete'
          'Microsoft.RecoveryServices/vaults/replicationFabrics/replicationProtectionContainers/replicationProtectionContainerMappings/delete'
          'Microsoft.RecoveryServices/vaults/replicationFabrics/replicationNetworks/replicationNetworkMappings/delete'
          'Microsoft.RecoveryServices/vaults/replicationFabrics/delete'
          // teardown_delete_vault (Recovery Services).
          'Microsoft.RecoveryServices/Vaults/delete'
          // teardown_delete_instance.
          'Microsoft.DataProtection/backupVaults/backupInstances/delete'
          // teardown_delete_instance under multi-user authorization: unlock the one delete at the guard proxy.
          'Microsoft.DataProtection/backupVaults/backupResourceGuardProxies/unlockDelete/action'
          // teardown_undelete_instance: bring soft-deleted instances back so they can be deleted for good.
          'Microsoft.DataProtection/backupVaults/deletedBackupInstances/undelete/action'
          // teardown_delete_policy.
          'Microsoft.DataProtection/backupVaults/backupPolicies/delete'
          // teardown_set_setting (soft delete, immutability PATCH); also create_vault (Vault Creator role).
          'Microsoft.DataProtection/backupVaults/write'
          // teardown_delete_vault (Backup vault).
          'Microsoft.DataProtection/backupVaults/delete'
          // teardown_mark_vault, teardown_unmark_vault, teardown_reconcile_vault: the teardown's marker tag on
          // the vault (Microsoft.Resources/tags/default at the vault's scope, Merge and Delete), read back first.
          'Microsoft.Resources/tags/read'
          'Microsoft.Resources/tags/write'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

// Only with enableDrills (issue 17): what restore drills write. Sources, per step (docs/azure-facts.md "Restore
// drills: the permissions"):
//   * Recovery Services VM restore (restore disks with a staging account), "Restore managed disks from VM
//     backup" in MicrosoftDocs/azure-docs articles/backup/backup-rbac-rs-vault.md: Backup Operator on the vault
//     (its restore action), Virtual Machine Contributor on the source VM (Microsoft.Compute/virtualMachines/
//     write, already in the Operator role), Storage Account Contributor on the staging account ("a custom role
//     ... Microsoft.Storage/storageAccounts/write") and Contributor on the target resource group ("a custom role
//     ... Microsoft.Resources/subscriptions/resourceGroups/write");
//   * Backup vault restores: Backup Operator's validateRestore and restore actions (built-in-roles/storage.md);
//     what writes the restored disk or files is the VAULT's identity (Disk Restore Operator on the target group,
//     backup/restore-managed-disks.md; Storage Blob Data Contributor on the target account, Azure/azure-powershell
//     DataProtection manifests AzureDatabaseForPGFlexServer.json "storageAccountPermissionsForRestore");
//   * the drill's own housekeeping: tag what a restore created, delete what the drill recorded and tagged.
// No delete of anything in Microsoft.RecoveryServices or Microsoft.DataProtection, no vault or policy write, no
// resource group delete (the drill group stays, empty and tagged drill-owned), no data actions.
resource drill 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (enableDrills) {
  name: guid(subscription().id, namePrefix, 'backup-steward-drill')
  properties: {
    roleName: 'Backup Steward Drill (${namePrefix})'
    description: 'restore_drill (enableDrills): restore backups out of place into the drill resource groups, follow and cancel the restore jobs, tag and delete only what a drill restored. No access to backup data, no vault or policy change, no delete of backups.'
    type: 'CustomRole'
    assignableScopes: assignableScopes
    permissions: [
      {
        actions: [
          // drill_prepare: the drill resource group (created once, tagged drill-owned); also the linked check of a
          // Recovery Services restore on its target resource group.
          'Microsoft.Resources/subscriptions/resourceGroups/write'
          // drill_prepare: the drill's staging account (VM disks; PostgreSQL files); also the linked check of a
          // Recovery Services restore on its staging account.
          'Microsoft.Storage/storageAccounts/write'
          // drill_start, PostgreSQL: the blob container of the drill's account the files are restored into.
          'Microsoft.Storage/storageAccounts/blobServices/containers/write'
          // drill_start, VM: restore disks from a recovery point (Backup Operator's action).
          'Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/recoveryPoints/restore/action'
          // drill_start, disk and PostgreSQL: validate, then restore (Backup Operator's actions).
          'Microsoft.DataProtection/backupVaults/backupInstances/validateRestore/action'
          'Microsoft.DataProtection/backupVaults/backupInstances/restore/action'
          // drill_cancel_job: cancel a Recovery Services restore job (in Backup Operator's backupJobs/*).
          'Microsoft.RecoveryServices/Vaults/backupJobs/cancel/action'
          // drill_restored: the drill's tag on what a restore created (Tags_UpdateAtScope, Merge).
          'Microsoft.Resources/tags/write'
          // drill_cleanup: delete the restored disks and the staging account, only ids the drill recorded and that
          // carry its tag (steward/domain/drill_flow.py deletable()).
          'Microsoft.Compute/disks/delete'
          'Microsoft.Storage/storageAccounts/delete'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

resource vaultIdentityGrantor 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, namePrefix, 'backup-steward-vault-identity-grantor')
  properties: {
    roleName: 'Backup Steward Vault Identity Grantor (${namePrefix})'
    description: 'grant_vault_roles: assign a Backup vault\'s managed identity the roles its workload needs. Always assigned with a condition that allows only those built-in roles and only service principals.'
    type: 'CustomRole'
    assignableScopes: assignableScopes
    permissions: [
      {
        actions: [
          // grant_vault_roles: create the assignment (existing ones are read with Reader's */read).
          'Microsoft.Authorization/roleAssignments/write'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

resource vaultCreator 'Microsoft.Authorization/roleDefinitions@2022-04-01' = if (autoCreateVaults) {
  name: guid(subscription().id, namePrefix, 'backup-steward-vault-creator')
  properties: {
    roleName: 'Backup Steward Vault Creator (${namePrefix})'
    description: 'create_vault (STEWARD_AUTO_CREATE_VAULTS=true): create the regional vault resource group and the Backup vault policies the rules name; copy_policy: the policy of a vault set into its new vault.'
    type: 'CustomRole'
    assignableScopes: assignableScopes
    permissions: [
      {
        actions: [
          // create_vault: the resource group of the regional vault.
          'Microsoft.Resources/subscriptions/resourceGroups/write'
          // create_vault: the vault itself. Azure RBAC has one write action for creating and updating a
          // vault, so this role could also change an existing vault's settings; it is defined only with
          // autoCreateVaults (infra/README.md, "What each role cannot do").
          'Microsoft.RecoveryServices/Vaults/write'
          'Microsoft.DataProtection/backupVaults/write'
          // create_vault_policies (create_vault when Azure answered at once): the default policies of a new Backup vault.
          'Microsoft.DataProtection/backupVaults/backupPolicies/write'
          // copy_policy: the rule's Recovery Services policy into a vault set's vault the app created (issue 19).
          'Microsoft.RecoveryServices/Vaults/backupPolicies/write'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
  }
}

output operatorRoleGuid string = operator.name
output grantorRoleGuid string = vaultIdentityGrantor.name
output creatorRoleGuid string = autoCreateVaults ? vaultCreator.name : ''
output teardownRoleGuid string = enableTeardown ? teardown.name : ''
output drillRoleGuid string = enableDrills ? drill.name : ''
