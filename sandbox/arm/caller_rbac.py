"""The caller's own Azure RBAC, checked as ARM checks it before a request reaches its resource provider.

Off by default (the sandbox serves every authenticated caller, as it always has); turned on per principal with
:meth:`sandbox.arm.server.ArmSandbox.enforce_caller_rbac`, e.g. for the app's identity after the test gave it the
roles a deployment gives it (``tests/infra/deployed_roles.py`` reads them from ``infra/``).

Rules modelled:

- every request under ``/subscriptions/...`` needs the control-plane action of its operation on its scope: reads
  ``<type>/read``, PUT/PATCH ``<type>/write``, DELETE ``<type>/delete``, a POST action ``<type>/<name>/action``
  (the "{Company}.{ProviderName}/{resourceType}/{action}" format of MicrosoftDocs/azure-docs
  ``articles/role-based-access-control/role-definitions.md``, "Actions format"; an extension resource such as
  ``{scope}/providers/Microsoft.Resources/tags/default`` is its own provider's type: ``Microsoft.Resources/tags``);
  a route that names its operation (``Route.operation``) uses that name. The caller's roles are evaluated by
  :meth:`~sandbox.arm.providers.authorization_model.RoleAssignments.allows` (actions minus notActions, union over
  the roles assigned at the scope or above it). Refused: 403 ``AuthorizationFailed`` with ARM's message ("The
  client '...' with object id '...' does not have authorization to perform action '...' over scope '...' or the
  scope is invalid.", ``articles/role-based-access-control/troubleshooting.md``, "Symptom - Authorization
  failed").
- linked checks of a Recovery Services VM restore (``.../recoveryPoints/{rp}/restore``), from the table "Restore
  managed disks from VM backup" of ``articles/backup/backup-rbac-rs-vault.md``: besides the restore action on the
  vault's item (Backup Operator), ``Microsoft.Compute/virtualMachines/write`` on the source VM (Virtual Machine
  Contributor), ``Microsoft.Storage/storageAccounts/write`` on the staging account (Storage Account Contributor)
  and ``Microsoft.Resources/subscriptions/resourceGroups/write`` on the target resource group (Contributor; the
  document's alternative custom role names that action). Refused: 403 ``LinkedAuthorizationFailed`` (ARM's code
  for a check on a linked scope; the message's wording is **inferred**).

Not modelled: conditions (ABAC) on the caller's assignments, deny assignments, data actions, the Backup vault's
own linked checks (none is documented for the caller; the vault's identity needs Disk Restore Operator / Storage
Blob Data Contributor on the target, which :mod:`dataprotection_jobs` does not check either).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from sandbox.arm.errors import ArmError
from sandbox.arm.ids import parse_id
from sandbox.arm.providers.authorization_model import RoleAssignments
from sandbox.arm.store import ResourceStore

_VERB = {"read": "read", "write": "write", "delete": "delete"}
RS_RESTORE = (
    "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems/recoveryPoints/restore/action"
)


def _typed(path: str) -> tuple[str, str]:
    """(the resource id, its full type) of a request path; an extension resource is typed by its own provider."""
    resource_id = path.rstrip("/")
    lowered = resource_id.lower()
    cut = lowered.rfind("/providers/")
    if cut > 0 and lowered[:cut].count("/providers/") >= 1:
        extension = parse_id("/subscriptions/x" + resource_id[cut:])
        return resource_id, extension.full_type
    return resource_id, parse_id(resource_id).full_type


def required_action(method: str, kind: str, path: str, operation: str | None) -> tuple[str, str]:
    """(the action, the scope it is checked on) of one request."""
    if kind == "action":
        scope, _, name = path.rstrip("/").rpartition("/")
        _, full_type = _typed(scope)
        return operation or f"{full_type}/{name}/action", scope
    scope, full_type = _typed(path)
    if kind == "read" or method in ("GET", "HEAD"):
        return f"{full_type}/read", scope
    return operation or f"{full_type}/{_VERB.get(kind, 'write')}", scope


def authorization_failed(who: str, action: str, scope: str) -> ArmError:
    return ArmError(
        403,
        "AuthorizationFailed",
        f"The client '{who}' with object id '{who}' does not have authorization to perform action '{action}' over "
        f"scope '{scope}' or the scope is invalid. If access was recently granted, please refresh your credentials.",
    )


def linked_failed(who: str, action: str, scope: str, linked: Iterable[tuple[str, str]]) -> ArmError:
    missing = "; ".join(f"'{a}' on the linked scope '{s}'" for a, s in linked)
    return ArmError(
        403,
        "LinkedAuthorizationFailed",
        f"The client '{who}' has permission to perform action '{action}' on scope '{scope}', however it does not "
        f"have permission to perform action(s) {missing} or the linked scope(s) are invalid.",
    )


def linked_checks(action: str, body: Any) -> list[tuple[str, str]]:
    """(action, scope) pairs Azure also checks on other resources named in the request body."""
    if action.lower() != RS_RESTORE.lower() or not isinstance(body, dict):
        return []
    props = body.get("properties") or {}
    pairs = []
    if props.get("sourceResourceId"):
        pairs.append(("Microsoft.Compute/virtualMachines/write", str(props["sourceResourceId"])))
    if props.get("storageAccountId"):
        pairs.append(("Microsoft.Storage/storageAccounts/write", str(props["storageAccountId"])))
    if props.get("targetResourceGroupId"):
        pairs.append(("Microsoft.Resources/subscriptions/resourceGroups/write", str(props["targetResourceGroupId"])))
    return pairs


def check(
    store: ResourceStore, who: str, *, method: str, kind: str, path: str, operation: str | None, raw_body: bytes | None
) -> None:
    """Raise ARM's 403 when ``who`` may not make this request."""
    roles = RoleAssignments(store)
    action, scope = required_action(method, kind, path, operation)
    if not roles.allows(who, action, scope):
        raise authorization_failed(who, action, scope)
    try:
        body = json.loads(raw_body) if raw_body else None
    except ValueError:
        body = None
    missing = [(a, s) for a, s in linked_checks(action, body) if not roles.allows(who, a, s)]
    if missing:
        raise linked_failed(who, action, scope, missing)
