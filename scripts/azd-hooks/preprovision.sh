#!/bin/sh
# azd preprovision hook: refuse early what infra/main.bicep would refuse late.
# AZURE_ENV_NAME becomes namePrefix (3-10 lower-case letters and digits: it is part of storage account names).
set -eu
case "${AZURE_ENV_NAME:-}" in
  *[!a-z0-9]*|'') ok=no ;;
  *) ok=yes ;;
esac
length=$(printf '%s' "${AZURE_ENV_NAME:-}" | wc -c)
if [ "$ok" != yes ] || [ "$length" -lt 3 ] || [ "$length" -gt 10 ]; then
  echo "azd environment name '${AZURE_ENV_NAME:-}' must be 3-10 lower-case letters and digits (it becomes namePrefix)" >&2
  exit 1
fi
# infra/main.parameters.json builds authTenantIds / authAudiences from these two: empty, the app would get
# STEWARD_AUTH_AUDIENCES "api://," and refuse to start. Ask for them now instead.
if [ -z "${STEWARD_AUTH_TENANT_ID:-}" ] || [ -z "${STEWARD_AUTH_CLIENT_ID:-}" ]; then
  echo "STEWARD_AUTH_TENANT_ID and STEWARD_AUTH_CLIENT_ID must be set: the HTTP routes accept only Entra ID tokens." >&2
  echo "Run scripts/register-entra-app.sh, then the two 'azd env set' lines it prints." >&2
  exit 1
fi
