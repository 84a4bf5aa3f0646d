#!/usr/bin/env bash
# Register the Entra application the HTTP routes authenticate callers against (infra parameter authClientId,
# azd env STEWARD_AUTH_CLIENT_ID). Needs `az login` as someone who may create app registrations.
#
#   scripts/register-entra-app.sh [DISPLAY_NAME]          default: "Backup Steward API"
#
# It creates (Azure CLI, `az ad app create` / `az ad sp create`, azure-cli src/.../role/_params.py):
#   * the app registration, single tenant (AzureADMyOrg), access tokens v2;
#   * its application ID URI api://<appId> (the audience callers request a token for);
#   * two app roles, for users and applications: BackupSteward.Teardown (may request, approve and cancel
#     teardowns: give it to infra parameter teardownAllowedRoles) and BackupSteward.Audit (may start audits
#     and read reports);
#   * its service principal (the enterprise application), where roles are assigned to people and apps.
# Then it prints the client id to pass on. It is idempotent: an app with the same display name is reused.
set -euo pipefail
name="${1:-Backup Steward API}"

app_id=$(az ad app list --display-name "$name" --query "[0].appId" -o tsv)
if [ -z "$app_id" ]; then
  roles=$(mktemp)
  trap 'rm -f "$roles"' EXIT
  cat > "$roles" <<JSON
[
  {"allowedMemberTypes": ["User", "Application"], "description": "Request, approve and cancel vault teardowns",
   "displayName": "Backup Steward teardown", "isEnabled": true, "value": "BackupSteward.Teardown",
   "id": "$(python3 -c 'import uuid; print(uuid.uuid4())')"},
  {"allowedMemberTypes": ["User", "Application"], "description": "Start audits and read audit reports",
   "displayName": "Backup Steward audit", "isEnabled": true, "value": "BackupSteward.Audit",
   "id": "$(python3 -c 'import uuid; print(uuid.uuid4())')"}
]
JSON
  app_id=$(az ad app create --display-name "$name" --sign-in-audience AzureADMyOrg \
    --app-roles @"$roles" --query appId -o tsv)
  echo "created app registration $app_id" >&2
else
  echo "reusing app registration $app_id ($name)" >&2
fi
az ad app update --id "$app_id" --identifier-uris "api://$app_id" --set api.requestedAccessTokenVersion=2
az ad sp show --id "$app_id" --query id -o tsv >/dev/null 2>&1 || az ad sp create --id "$app_id" --query id -o tsv >/dev/null

tenant=$(az account show --query tenantId -o tsv)
cat <<TEXT
Entra app registration ready.
  client id (authClientId / STEWARD_AUTH_CLIENT_ID): $app_id
  application ID URI (token audience):              api://$app_id
  tenant:                                            $tenant
Next:
  azd env set STEWARD_AUTH_CLIENT_ID $app_id      (or: authClientId in your parameters file)
  assign the app roles to people or apps:  Entra admin center > Enterprise applications > $name > Users and groups
  a caller's token:  az account get-access-token --resource api://$app_id --query accessToken -o tsv
TEXT
