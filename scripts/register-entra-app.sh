#!/usr/bin/env bash
# Register the Entra ID application whose access tokens the HTTP routes validate: the commands of the README's
# "Registering the app in Entra ID", as one idempotent script. Needs `az login` as someone who may register
# applications (Application Developer or equivalent) and jq.
#
#   scripts/register-entra-app.sh [DISPLAY_NAME]          default: backup-steward
#
# It creates or reuses (by display name):
#   * the app registration, single tenant (`az ad app create --sign-in-audience AzureADMyOrg`);
#   * its application ID URI api://<appId>, the audience callers request tokens for (`--identifier-uris`);
#   * app roles BackupSteward.Teardown (plan, approve, cancel teardowns: teardownAllowedRoles) and
#     BackupSteward.Audit (start audits, read reports), for users and applications (`--app-roles`, manifest JSON:
#     azure-cli src/azure-cli/azure/cli/command_modules/role/_params.py);
#   * v2.0 access tokens and a delegated scope pre-authorised for the Azure CLI, so that
#     `az account get-access-token --resource api://<appId>` needs no consent prompt (Microsoft Graph
#     PATCH /applications: the CLI has no flag for the `api` object);
#   * its service principal, with appRoleAssignmentRequired (only assigned users and apps get tokens at all).
# Then it prints what to set: STEWARD_AUTH_TENANTS / STEWARD_AUTH_AUDIENCES (Bicep authTenantIds /
# authAudiences; azd: STEWARD_AUTH_TENANT_ID / STEWARD_AUTH_CLIENT_ID, docs/deploy.md).
set -euo pipefail
name="${1:-backup-steward}"
azure_cli_app="04b07795-8ddb-461a-bbee-02f9e1bf7b46"   # the Azure CLI's well-known client id
new_id() { python3 -c 'import uuid; print(uuid.uuid4())'; }

tenant=$(az account show --query tenantId -o tsv)
app=$(az ad app list --display-name "$name" --query "[0].appId" -o tsv)
if [ -z "$app" ]; then
  app=$(az ad app create --display-name "$name" --sign-in-audience AzureADMyOrg --query appId -o tsv)
  echo "created app registration $app ($name)" >&2
else
  echo "reusing app registration $app ($name)" >&2
fi
az ad app update --id "$app" --identifier-uris "api://$app"

roles=$(az ad app show --id "$app" --query "appRoles[].value" -o tsv)
if ! printf '%s\n' "$roles" | grep -qx "BackupSteward.Teardown"; then
  az ad app update --id "$app" --app-roles "[
    {\"allowedMemberTypes\": [\"User\", \"Application\"], \"value\": \"BackupSteward.Teardown\", \"isEnabled\": true,
     \"id\": \"$(new_id)\", \"displayName\": \"Backup Steward teardown\",
     \"description\": \"Plan, approve and cancel vault teardowns\"},
    {\"allowedMemberTypes\": [\"User\", \"Application\"], \"value\": \"BackupSteward.Audit\", \"isEnabled\": true,
     \"id\": \"$(new_id)\", \"displayName\": \"Backup Steward audit\",
     \"description\": \"Start audits and read the reports\"}]"
fi

scope=$(az ad app show --id "$app" --query "api.oauth2PermissionScopes[?value=='user_impersonation'].id | [0]" -o tsv)
if [ -z "$scope" ]; then
  scope=$(new_id)
  az rest --method PATCH --uri "https://graph.microsoft.com/v1.0/applications(appId='$app')" --body "{\"api\": {
    \"requestedAccessTokenVersion\": 2,
    \"oauth2PermissionScopes\": [{\"id\": \"$scope\", \"value\": \"user_impersonation\", \"type\": \"User\",
      \"isEnabled\": true, \"adminConsentDisplayName\": \"Call Backup Steward\",
      \"adminConsentDescription\": \"Call Backup Steward as you\"}],
    \"preAuthorizedApplications\": [{\"appId\": \"$azure_cli_app\", \"delegatedPermissionIds\": [\"$scope\"]}]}}"
fi

az ad sp show --id "$app" --query id -o tsv >/dev/null 2>&1 || az ad sp create --id "$app" --query id -o tsv >/dev/null
az ad sp update --id "$app" --set appRoleAssignmentRequired=true

cat <<TEXT
Entra app registration ready: $name
  client id:                $app
  application ID URI:       api://$app
  tenant:                   $tenant
App settings:  STEWARD_AUTH_TENANTS=$tenant  STEWARD_AUTH_AUDIENCES=api://$app,$app
Bicep:         authTenantIds=["$tenant"]  authAudiences=["api://$app", "$app"]
azd:           azd env set STEWARD_AUTH_TENANT_ID $tenant && azd env set STEWARD_AUTH_CLIENT_ID $app
Then assign BackupSteward.Teardown / BackupSteward.Audit (Enterprise applications > $name > Users and groups).
A caller's token:  az account get-access-token --resource api://$app --query accessToken -o tsv
TEXT
