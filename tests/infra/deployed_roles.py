"""The roles a deployment of ``infra/`` gives the app's identity, put into an ARM sandbox: the custom roles as
``infra/modules/role-definitions.bicep`` defines them (read from the template, not restated here) and the
assignments of ``infra/modules/target-access.bicep`` (Reader and the custom roles, subscription-wide). With
``ArmSandbox.enforce_caller_rbac`` a test then sees what Azure would refuse the deployed app."""

from __future__ import annotations

import uuid
from typing import Any

from sandbox.arm.providers.authorization_model import (
    RoleAssignments,
    define_custom_role,
    grant_built_in_role,
    new_assignment_name,
    role_definition_id,
)
from tests.infra.templates import MODULES, body, resources

ROLES = MODULES / "role-definitions.bicep"

#: the parameter that defines each optional custom role (its ``if (...)`` in role-definitions.bicep)
_FLAGS = {"vaultCreator": "autoCreateVaults", "teardown": "enableTeardown", "drill": "enableDrills"}


def custom_roles(**flags: bool) -> dict[str, list[str]]:
    """Symbolic name -> actions of every custom role the template defines with these parameters."""
    out: dict[str, list[str]] = {}
    for name, entry in resources(ROLES, "Microsoft.Authorization/roleDefinitions"):
        condition = entry["config"].get("condition")
        if condition is not None and not flags.get(str(condition), False):
            continue
        assert condition is None or _FLAGS.get(name) == condition, f"{name}: unexpected condition {condition!r}"
        [permission] = body(entry)["properties"]["permissions"]
        out[name] = [str(a) for a in permission["actions"]]
    return out


def deploy_app_roles(sandbox: Any, principal_id: str, subscription_id: str, **flags: bool) -> list[str]:
    """Define the custom roles in ``sandbox`` and assign them and Reader to ``principal_id`` on the subscription
    (as target-access.bicep does; the Grantor's ABAC condition is not evaluated by the sandbox). Returns the
    symbolic names of the roles assigned."""
    scope = f"/subscriptions/{subscription_id}"
    now = sandbox.clock.now()
    grant_built_in_role(sandbox.store, principal_id, "Reader", scope, now)
    assigned = ["reader"]
    for name, actions in custom_roles(**flags).items():
        guid = str(uuid.uuid5(uuid.NAMESPACE_URL, f"backup-steward/{subscription_id}/{name}"))
        define_custom_role(sandbox.store, subscription_id, guid, f"Backup Steward {name} (sandbox)", actions=actions)
        RoleAssignments(sandbox.store).create(
            scope,
            new_assignment_name(),
            {
                "roleDefinitionId": role_definition_id(guid, subscription_id),
                "principalId": principal_id,
                "principalType": "ServicePrincipal",
            },
            now=now,
            created_by=None,
        )
        assigned.append(name)
    return assigned
