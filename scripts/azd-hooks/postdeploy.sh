#!/bin/sh
# azd postdeploy hook: the second pass of infra/main.bicep, now with deployEventSubscriptions=true.
# The event subscriptions point at the on_subscription_event function, which exists only once azd has
# published the code; infra/README.md ("Deploy", step 3) describes the same pass by hand.
# azd passes its environment (AZURE_ENV_NAME, AZURE_LOCATION, AZURE_SUBSCRIPTION_ID, ...) to hooks.
set -eu
parameters=$(mktemp)
trap 'rm -f "$parameters"' EXIT
# infra/main.parameters.json holds ${NAME} placeholders azd fills in; az does not, so fill them in here.
python3 - infra/main.parameters.json > "$parameters" <<'PY'
import os, re, sys
text = open(sys.argv[1], encoding="utf-8").read()
sys.stdout.write(re.sub(r"\$\{([A-Z0-9_]+)\}", lambda m: os.environ.get(m.group(1), ""), text))
PY
az deployment sub create \
  --name "${AZURE_ENV_NAME}-event-subscriptions" \
  --location "${AZURE_LOCATION}" \
  --subscription "${AZURE_SUBSCRIPTION_ID}" \
  --template-file infra/main.bicep \
  --parameters @"$parameters" deployEventSubscriptions=true \
  --output none
echo "event subscriptions deployed (deployEventSubscriptions=true)"
