// Backup Steward: everything the app needs in Azure, in one subscription-scope deployment.
//
//   az deployment sub create --location <region> --template-file infra/main.bicep \
//     --parameters infra/main.parameters.example.json
//
// Run it twice: first with deployEventSubscriptions=false (infrastructure, identity, roles, topics),
// then publish the app (the event subscriptions point at its Event Grid trigger function, which must
// exist), then again with deployEventSubscriptions=true. infra/README.md has the full procedure.
targetScope = 'subscription'

// ---- where and what --------------------------------------------------------------------------------

@description('Region of the app and its resources (a region that offers Flex Consumption).')
param location string = deployment().location

@description('Short lower-case name of this deployment: resource names and role names derive from it.')
@minLength(3)
@maxLength(10)
param namePrefix string = 'steward'

@description('Resource group of the app (created in this subscription).')
param resourceGroupName string = 'rg-${namePrefix}'

@description('Subscriptions Backup Steward watches and acts on (STEWARD_SUBSCRIPTIONS). Each gets a system topic, an event subscription and the role assignments of the app identity.')
@minLength(1)
param targetSubscriptionIds array

@description('Resource group created in each target subscription for its Event Grid system topic.')
param eventsResourceGroupName string = 'rg-${namePrefix}-events'

@description('Target subscriptions that already have their Microsoft.Resources.Subscriptions system topic (Azure allows one per subscription): { \'<subscription id>\': { resourceGroup: \'<group>\', name: \'<topic>\' } }. That topic is used as it is and must have its system-assigned identity on; the others get one in eventsResourceGroupName.')
param existingSystemTopics object = {}

@description('Create the event subscriptions (second deployment, once the app code is published).')
param deployEventSubscriptions bool = false

// ---- app settings ------------------------------------------------------------------------------------

@description('Protection rules, inline YAML or JSON (STEWARD_RULES); empty: the rules packaged with the app.')
param rules string = ''

@description('Tag that opts a resource out when \'true\' (STEWARD_OPT_OUT_TAG); empty: the rules\' own or the default.')
param optOutTag string = ''

@description('Tag a vault needs before a failed delete may start its teardown (STEWARD_TEARDOWN_OPT_IN_TAG).')
param teardownOptInTag string = 'backup-steward:teardown'

@description('Entra object ids allowed to request teardowns (STEWARD_TEARDOWN_ALLOWED_PRINCIPALS); they also become the only senders on the requests topic.')
param teardownAllowedPrincipalIds array = []

@description('Entra object ids allowed to start audits and read the reports over HTTP (STEWARD_AUDIT_ALLOWED_PRINCIPALS); empty: the teardown principals and roles. A valid token is always needed (authTenantIds and authAudiences).')
param auditAllowedPrincipalIds array = []

@description('App roles (from the caller\'s token) allowed to request teardowns over HTTP (STEWARD_TEARDOWN_ALLOWED_ROLES).')
param teardownAllowedRoles array = []

@description('Four eyes: a teardown\'s approver must be another principal than its requester (STEWARD_TEARDOWN_FOUR_EYES). Keep it on in production.')
param teardownFourEyes bool = true

@description('NCRONTAB schedule of the estate audit, six fields, seconds first (STEWARD_AUDIT_SCHEDULE).')
param auditSchedule string = '0 0 6 * * *'

@description('NCRONTAB schedule of the restore drill timer, six fields, seconds first (STEWARD_DRILL_SCHEDULE); drills start only when the rules have a drills section.')
param drillSchedule string = '0 0 3 * * *'

@description('Resources an audit run starts protection for when the rules require it and nothing protects them, at most, 0-1000; 0: the audit only reports (STEWARD_AUDIT_REMEDIATE_LIMIT).')
@minValue(0)
@maxValue(1000)
param auditRemediateLimit int = 0

@description('Audit starts (POST /api/audits) one caller may make per minute, 1-600; callers without a verified identity share one bucket (STEWARD_AUDIT_RATE_PER_MINUTE).')
@minValue(1)
@maxValue(600)
param auditRatePerMinute int = 10

@description('ARM writes in flight per orchestration, 1-50 (STEWARD_MAX_PARALLEL_WRITES).')
@minValue(1)
@maxValue(50)
param maxParallelWrites int = 8

@description('Create the regional vault when none exists (STEWARD_AUTO_CREATE_VAULTS); also grants the vault creator role.')
param autoCreateVaults bool = false

// ---- least privilege ----------------------------------------------------------------------------------

@description('Let the app tear vaults down: defines and assigns the Backup Steward Teardown role (deletes items, containers and vaults; turns soft delete and enhanced security off). false: the app protects and audits only and cannot delete or weaken backup data; a teardown can still be planned (reads), and a run is refused by Azure (AuthorizationFailed) at its first delete or settings change, so nothing is deleted or weakened.')
param enableTeardown bool = false

@description('Let the app run restore drills: defines and assigns the Backup Steward Drill role (restore out of place into the drill resource groups, cancel restore jobs, tag and delete what a drill restored). false: a drill is refused by Azure (AuthorizationFailed) at its first write (the drill group), before anything is restored.')
param enableDrills bool = false

@description('Narrower scope for the Teardown role: { \'<subscription id>\': [\'<resource group>\', ...] } names the groups whose vaults the app may tear down; a target subscription not named gets the role subscription-wide (with enableTeardown).')
param teardownResourceGroups object = {}

@description('Principal ids of the Backup vault identities the app may give workload roles to (pins the grantor\'s condition to them). Empty: any service principal but the app itself; a vault created later (or by autoCreateVaults) needs its identity added here and a re-deployment.')
param vaultIdentityPrincipalIds array = []

// ---- platform ----------------------------------------------------------------------------------------

@description('Entra tenant ids whose access tokens the HTTP routes accept (STEWARD_AUTH_TENANTS), usually [tenant().tenantId] of the app registration. Set it with authAudiences in production: empty, no caller can authenticate (teardown routes answer 401).')
param authTenantIds array = []

@description('Audiences the callers\' access tokens must name (STEWARD_AUTH_AUDIENCES): the app registration\'s client id and its application id URI, e.g. ["api://backup-steward", "<client id>"]. See README, "Registering the app in Entra ID".')
param authAudiences array = []

@description('Optional: client id for App Service authentication (Easy Auth) in front of the app. Not needed and not relied on: the app validates the bearer token itself and ignores the platform\'s x-ms-client-principal headers; Easy Auth is not supported on the Flex Consumption plan (README, "Caller identity").')
param authClientId string = ''

@description('Replication of the storage accounts.')
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_GZRS'
])
param storageSku string = 'Standard_ZRS'

@description('Most Flex Consumption instances.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Always-ready instances of the Durable Functions group: 0 scales to zero (cheapest); 1 is Microsoft\'s recommendation for Durable Functions on Flex Consumption (no cold start before a timer or an activity), billed while idle.')
@minValue(0)
@maxValue(20)
param durableAlwaysReadyInstances int = 0

@description('Event Grid delivery attempts before an event is dead-lettered (1-30).')
@minValue(1)
@maxValue(30)
param maxDeliveryAttempts int = 30

@description('Minutes Event Grid retries an event before it is dead-lettered (1-1440).')
@minValue(1)
@maxValue(1440)
param eventTimeToLiveInMinutes int = 1440

@description('Tags for every resource.')
param tags object = {
  application: 'backup-steward'
}

// ---- names ---------------------------------------------------------------------------------------------

var suffix = take(uniqueString(subscription().id, namePrefix, resourceGroupName), 8)
var baseName = '${namePrefix}-${suffix}'
var systemTopicName = 'evgst-${namePrefix}-subscription'
// Where each target subscription's system topic lives: an existing one, or one this template creates.
var topicPlacements = [for subscriptionId in targetSubscriptionIds: {
  subscriptionId: subscriptionId
  reuse: contains(existingSystemTopics, subscriptionId)
  resourceGroupName: contains(existingSystemTopics, subscriptionId) ? existingSystemTopics[subscriptionId].resourceGroup : eventsResourceGroupName
  topicName: contains(existingSystemTopics, subscriptionId) ? existingSystemTopics[subscriptionId].name : systemTopicName
}]
var eventSubscriptionPlacements = deployEventSubscriptions ? topicPlacements : []

// ---- the app -------------------------------------------------------------------------------------------

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: 'steward-identity'
  scope: group
  params: {
    name: 'id-${baseName}'
    location: location
    tags: tags
  }
}

module monitoring 'modules/monitoring.bicep' = {
  name: 'steward-monitoring'
  scope: group
  params: {
    baseName: baseName
    location: location
    appPrincipalId: identity.outputs.principalId
    tags: tags
  }
}

module storage 'modules/storage.bicep' = {
  name: 'steward-storage'
  scope: group
  params: {
    hostAccountName: 'st${namePrefix}${suffix}'
    dataAccountName: 'sd${namePrefix}${suffix}'
    location: location
    appPrincipalId: identity.outputs.principalId
    skuName: storageSku
    tags: tags
  }
}

module topics 'modules/topics.bicep' = {
  name: 'steward-topics'
  scope: group
  params: {
    baseName: baseName
    location: location
    appPrincipalId: identity.outputs.principalId
    teardownPrincipalIds: teardownAllowedPrincipalIds
    dataAccountName: storage.outputs.dataAccountName
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    tags: tags
  }
}

module app 'modules/function-app.bicep' = {
  name: 'steward-function-app'
  scope: group
  params: {
    name: 'func-${baseName}'
    location: location
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    hostStorageAccountName: storage.outputs.hostAccountName
    hostBlobEndpoint: storage.outputs.hostBlobEndpoint
    deploymentContainerName: storage.outputs.deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.connectionString
    subscriptionIds: targetSubscriptionIds
    rules: rules
    optOutTag: optOutTag
    teardownOptInTag: teardownOptInTag
    teardownPrincipalIds: teardownAllowedPrincipalIds
    auditPrincipalIds: auditAllowedPrincipalIds
    teardownRoles: teardownAllowedRoles
    teardownFourEyes: teardownFourEyes
    teardownRequestsTopicId: topics.outputs.requestsTopicId
    auditSchedule: auditSchedule
    drillSchedule: drillSchedule
    auditRemediateLimit: auditRemediateLimit
    auditRatePerMinute: auditRatePerMinute
    maxParallelWrites: maxParallelWrites
    autoCreateVaults: autoCreateVaults
    eventsTopicEndpoint: topics.outputs.outcomesTopicEndpoint
    reportsAccountUrl: storage.outputs.reportsAccountUrl
    reportsContainerName: storage.outputs.reportsContainerName
    maximumInstanceCount: maximumInstanceCount
    durableAlwaysReadyInstances: durableAlwaysReadyInstances
    authClientId: authClientId
    authTenantIds: authTenantIds
    authAudiences: authAudiences
    // azd (azure.yaml, service 'api') finds the Function App to publish to by this tag
    tags: union(tags, { 'azd-service-name': 'api' })
  }
}

// ---- least privilege in every target subscription -------------------------------------------------------

module roles 'modules/role-definitions.bicep' = {
  name: 'steward-role-definitions'
  params: {
    namePrefix: namePrefix
    assignableSubscriptionIds: targetSubscriptionIds
    autoCreateVaults: autoCreateVaults
    enableTeardown: enableTeardown
    enableDrills: enableDrills
  }
}

module access 'modules/target-access.bicep' = [for subscriptionId in targetSubscriptionIds: {
  name: 'steward-access-${subscriptionId}'
  scope: subscription(subscriptionId)
  params: {
    principalId: identity.outputs.principalId
    operatorRoleGuid: roles.outputs.operatorRoleGuid
    grantorRoleGuid: roles.outputs.grantorRoleGuid
    creatorRoleGuid: roles.outputs.creatorRoleGuid
    teardownRoleGuid: roles.outputs.teardownRoleGuid
    drillRoleGuid: roles.outputs.drillRoleGuid
    teardownResourceGroups: contains(teardownResourceGroups, subscriptionId) ? teardownResourceGroups[subscriptionId] : []
    vaultIdentityPrincipalIds: vaultIdentityPrincipalIds
  }
}]

// ---- events: one system topic per target subscription, delivered to the app -----------------------------

module subscriptionTopics 'modules/subscription-topic.bicep' = [for placement in topicPlacements: {
  name: 'steward-topic-${placement.subscriptionId}'
  scope: subscription(placement.subscriptionId)
  params: {
    resourceGroupName: placement.resourceGroupName
    reuseExistingTopic: placement.reuse
    location: location
    topicName: placement.topicName
    tags: tags
  }
}]

module deadLetterAccess 'modules/dead-letter-access.bicep' = [for (subscriptionId, i) in targetSubscriptionIds: {
  name: 'steward-deadletter-${subscriptionId}'
  scope: group
  params: {
    dataAccountName: storage.outputs.dataAccountName
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    topicPrincipalId: subscriptionTopics[i].outputs.principalId
  }
}]

module subscriptionEvents 'modules/subscription-events.bicep' = [for placement in eventSubscriptionPlacements: {
  name: 'steward-events-${placement.subscriptionId}'
  scope: resourceGroup(placement.subscriptionId, placement.resourceGroupName)
  dependsOn: [
    subscriptionTopics
    deadLetterAccess
  ]
  params: {
    systemTopicName: placement.topicName
    functionAppId: app.outputs.id
    deadLetterAccountId: storage.outputs.dataAccountId
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    maxDeliveryAttempts: maxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
  }
}]

module requestEvents 'modules/request-events.bicep' = if (deployEventSubscriptions) {
  name: 'steward-request-events'
  scope: group
  params: {
    requestsTopicName: topics.outputs.requestsTopicName
    functionAppId: app.outputs.id
    deadLetterAccountId: storage.outputs.dataAccountId
    deadLetterContainerName: storage.outputs.deadLetterContainerName
    maxDeliveryAttempts: maxDeliveryAttempts
    eventTimeToLiveInMinutes: eventTimeToLiveInMinutes
  }
}

// ---- what the next steps need --------------------------------------------------------------------------

output resourceGroupName string = group.name
output functionAppName string = app.outputs.name
output functionAppHostName string = app.outputs.defaultHostName
output identityPrincipalId string = identity.outputs.principalId
output identityClientId string = identity.outputs.clientId
output outcomesTopicEndpoint string = topics.outputs.outcomesTopicEndpoint
output requestsTopicEndpoint string = topics.outputs.requestsTopicEndpoint
output reportsAccountUrl string = storage.outputs.reportsAccountUrl
output eventSubscriptionsDeployed bool = deployEventSubscriptions
