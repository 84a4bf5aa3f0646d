// The Function App on the Flex Consumption plan (Python 3.11), running as the user-assigned identity.
// App settings carry no secret: storage, Application Insights, Event Grid and ARM are all reached with
// the identity. Every STEWARD_* name below is one steward/settings.py REFERENCE documents (a test in
// tests/infra checks it).

@description('Name of the Function App (globally unique host name).')
param name string

@description('Region (the app region).')
param location string

@description('Resource id of the user-assigned identity.')
param identityId string

@description('Client id of the user-assigned identity.')
param identityClientId string

@description('Host storage account name (identity-based AzureWebJobsStorage).')
param hostStorageAccountName string

@description('Blob endpoint of the host storage account.')
param hostBlobEndpoint string

@description('Deployment package container in the host storage account.')
param deploymentContainerName string

@description('Application Insights connection string (no key: ingestion is Entra-authenticated).')
param appInsightsConnectionString string

@description('Subscription ids the app may act on (STEWARD_SUBSCRIPTIONS).')
param subscriptionIds array

@description('Protection rules as inline YAML or JSON (STEWARD_RULES); empty: the packaged default rules.')
param rules string = ''

@description('Tag that opts a resource out (STEWARD_OPT_OUT_TAG); empty: the rules\' or the default.')
param optOutTag string = ''

@description('Tag a vault needs before a failed delete may tear it down (STEWARD_TEARDOWN_OPT_IN_TAG).')
param teardownOptInTag string = 'backup-steward:teardown'

@description('Object ids allowed to request teardowns (STEWARD_TEARDOWN_ALLOWED_PRINCIPALS).')
param teardownPrincipalIds array = []

@description('Object ids allowed to start audits and read reports over HTTP; empty: the teardown principals and roles (STEWARD_AUDIT_ALLOWED_PRINCIPALS).')
param auditPrincipalIds array = []

@description('App roles allowed to request teardowns (STEWARD_TEARDOWN_ALLOWED_ROLES).')
param teardownRoles array = []

@description('Four eyes: the approver of a teardown must not be its requester (STEWARD_TEARDOWN_FOUR_EYES).')
param teardownFourEyes bool = true

@description('Resource id of the requests topic; only its BackupSteward.Teardown.Requested events are accepted, as requests (STEWARD_TEARDOWN_REQUESTS_TOPIC_ID).')
param teardownRequestsTopicId string

@description('NCRONTAB schedule of the audit timer (STEWARD_AUDIT_SCHEDULE).')
param auditSchedule string = '0 0 6 * * *'

@description('NCRONTAB schedule of the restore drill timer (STEWARD_DRILL_SCHEDULE); drills start only when the rules have a drills section.')
param drillSchedule string = '0 0 3 * * *'

@description('Resources an audit run starts protection for when the rules require it and nothing protects them, at most; 0: report only (STEWARD_AUDIT_REMEDIATE_LIMIT).')
@minValue(0)
@maxValue(1000)
param auditRemediateLimit int = 0

@description('Audit starts (POST /api/audits) one caller may make per minute, 1-600 (STEWARD_AUDIT_RATE_PER_MINUTE).')
@minValue(1)
@maxValue(600)
param auditRatePerMinute int = 10

@description('ARM writes in flight per orchestration (STEWARD_MAX_PARALLEL_WRITES).')
@minValue(1)
@maxValue(50)
param maxParallelWrites int = 8

@description('Create the regional vault when none exists (STEWARD_AUTO_CREATE_VAULTS).')
param autoCreateVaults bool = false

@description('Endpoint of the outcomes topic (STEWARD_EVENTS_TOPIC_ENDPOINT).')
param eventsTopicEndpoint string

@description('Blob account URL of the reports (STEWARD_REPORTS_ACCOUNT_URL).')
param reportsAccountUrl string

@description('Blob container of the reports (STEWARD_REPORTS_CONTAINER).')
param reportsContainerName string

@description('Most instances the app scales out to.')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 40

@description('Memory of each instance.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Always-ready instances of the Durable Functions group (`durable`): 0 lets the app scale to zero; 1 is Microsoft\'s recommendation for Durable Functions on Flex Consumption (no cold start before an orchestration, an activity or a timer runs) at the cost of one instance billed while idle. README, "Host settings for latency".')
@minValue(0)
@maxValue(20)
param durableAlwaysReadyInstances int = 0

@description('Threads of the Python worker (PYTHON_THREADPOOL_THREAD_COUNT). The activities and orchestrators are synchronous functions: each runs on one of these threads, so fewer than host.json\'s maxConcurrentActivityFunctions + maxConcurrentOrchestratorFunctions would queue work the host already handed over. README, "Host settings for latency".')
@minValue(1)
@maxValue(64)
param pythonThreadCount int = 20

@description('Client id of an Entra app registration for (optional) App Service authentication; empty: not configured.')
param authClientId string = ''

@description('Tenant ids whose access tokens the HTTP routes accept (STEWARD_AUTH_TENANTS).')
param authTenantIds array = []

@description('Audiences the callers\' access tokens must name: client id and/or application id URI (STEWARD_AUTH_AUDIENCES).')
param authAudiences array = []

@description('Tags for every resource.')
param tags object = {}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  #checkov:skip=CKV_AZURE_225: Flex Consumption zone redundancy exists only in some regions (and needs ZRS host storage); the plan stays regional so the template deploys anywhere Flex does.
  name: 'asp-${name}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  #checkov:skip=CKV_AZURE_222: Event Grid delivers to the app's public webhook and operators call its HTTP routes; every route needs a function key (and the teardown routes an authenticated Entra principal).
  #checkov:skip=CKV_AZURE_17: callers authenticate with Entra tokens and function keys; client certificates are not part of the design.
  #checkov:skip=CKV_AZURE_212: Flex Consumption scales from zero by design; Event Grid retries (up to 24 h) and Durable Functions state cover an instance loss.
  #checkov:skip=CKV_AZURE_213: the app exposes no health route to probe (every route needs a function key); the Functions host is monitored through Application Insights.
  name: name
  location: location
  tags: tags
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${hostBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
        alwaysReady: (durableAlwaysReadyInstances > 0) ? [
          {
            name: 'durable'
            instanceCount: durableAlwaysReadyInstances
          }
        ] : []
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        // Identity-based host storage: no AzureWebJobsStorage connection string, no account key.
        {
          name: 'AzureWebJobsStorage__accountName'
          value: hostStorageAccountName
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        {
          name: 'PYTHON_THREADPOOL_THREAD_COUNT'
          value: string(pythonThreadCount)
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // Backup Steward's own settings (steward/settings.py REFERENCE).
        {
          name: 'STEWARD_CREDENTIAL'
          value: 'managed-identity'
        }
        {
          name: 'STEWARD_MANAGED_IDENTITY_CLIENT_ID'
          value: identityClientId
        }
        {
          name: 'STEWARD_SUBSCRIPTIONS'
          value: join(subscriptionIds, ',')
        }
        {
          name: 'STEWARD_RULES'
          value: rules
        }
        {
          name: 'STEWARD_OPT_OUT_TAG'
          value: optOutTag
        }
        {
          name: 'STEWARD_TEARDOWN_OPT_IN_TAG'
          value: teardownOptInTag
        }
        {
          name: 'STEWARD_TEARDOWN_ALLOWED_PRINCIPALS'
          value: join(teardownPrincipalIds, ',')
        }
        {
          name: 'STEWARD_AUDIT_ALLOWED_PRINCIPALS'
          value: join(auditPrincipalIds, ',')
        }
        {
          name: 'STEWARD_TEARDOWN_ALLOWED_ROLES'
          value: join(teardownRoles, ',')
        }
        {
          name: 'STEWARD_TEARDOWN_FOUR_EYES'
          value: string(teardownFourEyes)
        }
        {
          name: 'STEWARD_TEARDOWN_REQUESTS_TOPIC_ID'
          value: teardownRequestsTopicId
        }
        {
          name: 'STEWARD_AUTH_TENANTS'
          value: join(authTenantIds, ',')
        }
        {
          name: 'STEWARD_AUTH_AUDIENCES'
          value: join(authAudiences, ',')
        }
        {
          name: 'STEWARD_EVENTS_TOPIC_ENDPOINT'
          value: eventsTopicEndpoint
        }
        {
          name: 'STEWARD_REPORTS_ACCOUNT_URL'
          value: reportsAccountUrl
        }
        {
          name: 'STEWARD_REPORTS_CONTAINER'
          value: reportsContainerName
        }
        {
          name: 'STEWARD_AUDIT_SCHEDULE'
          value: auditSchedule
        }
        {
          name: 'STEWARD_DRILL_SCHEDULE'
          value: drillSchedule
        }
        {
          name: 'STEWARD_AUDIT_REMEDIATE_LIMIT'
          value: string(auditRemediateLimit)
        }
        {
          name: 'STEWARD_AUDIT_RATE_PER_MINUTE'
          value: string(auditRatePerMinute)
        }
        {
          name: 'STEWARD_MAX_PARALLEL_WRITES'
          value: string(maxParallelWrites)
        }
        {
          name: 'STEWARD_AUTO_CREATE_VAULTS'
          value: string(autoCreateVaults)
        }
      ]
    }
  }
}

// No publishing with basic (user/password) credentials: deployment goes through Entra ID only.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

// Optional App Service authentication ("Easy Auth") with Entra ID. The app does NOT rely on it: it validates
// the caller's bearer token itself (STEWARD_AUTH_*) and ignores the x-ms-client-principal* headers, which a
// function-key holder can forge wherever Easy Auth is not in front. Easy Auth is not supported on the Flex
// Consumption plan ("EasyAuth isn't currently supported. Unauthenticated callers currently aren't blocked when
// EasyAuth is enabled", MicrosoftDocs/azure-docs articles/azure-functions/flex-consumption-plan.md,
// Considerations). When on, it passes the Authorization header through, so the token still validates.
// (checkov applies whole-site checks to this sites/config child, which holds authsettingsV2 only; they are
// evaluated on the site above instead, hence the skips.)
resource auth 'Microsoft.Web/sites/config@2024-04-01' = if (!empty(authClientId)) {
  #checkov:skip=CKV_AZURE_13: this resource IS the App Service authentication configuration.
  #checkov:skip=CKV_AZURE_63: site check (HTTP logging) misapplied to the auth settings child.
  #checkov:skip=CKV_AZURE_65: site check (detailed error messages) misapplied to the auth settings child.
  #checkov:skip=CKV_AZURE_66: site check (failed request tracing) misapplied to the auth settings child.
  #checkov:skip=CKV_AZURE_70: site check (HTTPS only) misapplied to the auth settings child; the site sets httpsOnly.
  #checkov:skip=CKV_AZURE_80: site check (.NET version) misapplied to the auth settings child; the app is Python.
  #checkov:skip=CKV_AZURE_88: site check (Azure Files) misapplied to the auth settings child; Flex Consumption uses blob deployment storage.
  #checkov:skip=CKV_AZURE_222: site check (public network access) misapplied to the auth settings child; see the site.
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: {
      enabled: true
    }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: authClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: [
            'api://${authClientId}'
            authClientId
          ]
        }
      }
    }
    login: {
      tokenStore: {
        enabled: false
      }
    }
  }
}

output id string = site.id
output name string = site.name
output defaultHostName string = site.properties.defaultHostName
