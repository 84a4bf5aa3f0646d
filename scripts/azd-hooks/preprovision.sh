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
if [ -z "${STEWARD_AUTH_CLIENT_ID:-}" ]; then
  echo "warning: STEWARD_AUTH_CLIENT_ID is not set: the HTTP routes will not authenticate callers." >&2
  echo "         Run scripts/register-entra-app.sh, then: azd env set STEWARD_AUTH_CLIENT_ID <appId>" >&2
fi
