"""The caller's own RBAC in the sandbox (``sandbox/arm/caller_rbac.py``): which action ARM checks for a request,
custom roles, and the drill's writes against the roles the templates give the app (issue 17: on Azure a drill got
403 because no deployed role allowed it)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from sandbox.arm.caller_rbac import RS_RESTORE, check, required_action
from sandbox.arm.errors import ArmError
from sandbox.arm.providers.authorization_model import RoleAssignments, define_custom_role, role_definition_id
from sandbox.arm.store import ResourceStore
from tests.infra.deployed_roles import deploy_app_roles

SUB = "00000000-0000-4000-8000-000000000001"
APP = "aaaaaaaa-0000-4000-8000-0000000000a1"
GROUP = f"/subscriptions/{SUB}/resourceGroups/rg-app"
DRILL_GROUP = f"/subscriptions/{SUB}/resourceGroups/backup-steward-drill-westeurope"
VM = f"{GROUP}/providers/Microsoft.Compute/virtualMachines/vm1"
ACCOUNT = f"{DRILL_GROUP}/providers/Microsoft.Storage/storageAccounts/stdrill1"
RSV = f"{GROUP}/providers/Microsoft.RecoveryServices/vaults/rsv"
ITEM = f"{RSV}/backupFabrics/Azure/protectionContainers/c1/protectedItems/i1"
BI = f"{GROUP}/providers/Microsoft.DataProtection/backupVaults/bv/backupInstances/bi1"
DISK = f"{DRILL_GROUP}/providers/Microsoft.Compute/disks/restored1"


@pytest.mark.parametrize(
    ("method", "kind", "path", "expected"),
    [
        ("PUT", "write", DRILL_GROUP, ("Microsoft.Resources/subscriptions/resourceGroups/write", DRILL_GROUP)),
        ("PUT", "write", ACCOUNT, ("Microsoft.Storage/storageAccounts/write", ACCOUNT)),
        ("DELETE", "delete", DISK, ("Microsoft.Compute/disks/delete", DISK)),
        (
            "GET",
            "read",
            f"{GROUP}/providers/Microsoft.Compute/disks",
            ("Microsoft.Compute/disks/read", f"{GROUP}/providers/Microsoft.Compute/disks"),
        ),
        (
            "POST",
            "action",
            f"{ITEM}/recoveryPoints/rp1/restore",
            (
                "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems/recoveryPoints/"
                "restore/action",
                f"{ITEM}/recoveryPoints/rp1",
            ),
        ),
        (
            "POST",
            "action",
            f"{RSV}/backupJobs/j1/cancel",
            ("Microsoft.RecoveryServices/vaults/backupJobs/cancel/action", f"{RSV}/backupJobs/j1"),
        ),
        (
            "PATCH",
            "write",
            f"{DISK}/providers/Microsoft.Resources/tags/default",
            ("Microsoft.Resources/tags/write", f"{DISK}/providers/Microsoft.Resources/tags/default"),
        ),
    ],
)
def test_the_action_arm_checks_follows_the_operation_format(
    method: str, kind: str, path: str, expected: tuple[str, str]
) -> None:
    assert required_action(method, kind, path, None) == expected


def _store(**flags: bool) -> ResourceStore:
    class _Sandbox:
        store = ResourceStore()

        class clock:
            @staticmethod
            def now() -> datetime:
                return datetime(2026, 3, 2, tzinfo=UTC)

    deploy_app_roles(_Sandbox, APP, SUB, **flags)
    return _Sandbox.store


#: (method, kind, path, operation, body) of each write a VM, a disk and a PostgreSQL drill makes
DRILL_WRITES: list[tuple[str, str, str, str | None, Any]] = [
    ("PUT", "write", DRILL_GROUP, None, None),
    ("PUT", "write", ACCOUNT, None, None),
    (
        "POST",
        "action",
        f"{ITEM}/recoveryPoints/rp1/restore",
        RS_RESTORE,
        {
            "properties": {
                "objectType": "IaasVMRestoreRequest",
                "sourceResourceId": VM,
                "storageAccountId": ACCOUNT,
                "targetResourceGroupId": DRILL_GROUP,
            }
        },
    ),
    ("POST", "action", f"{BI}/validateRestore", None, None),
    ("POST", "action", f"{BI}/restore", None, None),
    ("POST", "action", f"{RSV}/backupJobs/j1/cancel", None, None),
    ("PATCH", "write", f"{DISK}/providers/Microsoft.Resources/tags/default", "Microsoft.Resources/tags/write", None),
    ("DELETE", "delete", DISK, None, None),
    ("DELETE", "delete", ACCOUNT, None, None),
]


def _send(store: ResourceStore, write: tuple[str, str, str, str | None, Any]) -> None:
    method, kind, path, operation, body = write
    check(
        store,
        APP,
        method=method,
        kind=kind,
        path=path,
        operation=operation,
        raw_body=json.dumps(body).encode() if body is not None else None,
    )


@pytest.mark.parametrize("write", DRILL_WRITES, ids=lambda w: f"{w[0]} {w[2].rsplit('/', 2)[-2]}")
def test_todays_default_deployment_refuses_every_drill_write(write: tuple[str, str, str, str | None, Any]) -> None:
    """A deployment without enableDrills (Reader, Operator, Grantor) cannot run a drill: Azure's 403 on each write."""
    store = _store()
    with pytest.raises(ArmError) as refused:
        _send(store, write)
    assert refused.value.status == 403 and refused.value.code == "AuthorizationFailed"


@pytest.mark.parametrize("write", DRILL_WRITES, ids=lambda w: f"{w[0]} {w[2].rsplit('/', 2)[-2]}")
def test_the_drill_role_allows_every_drill_write(write: tuple[str, str, str, str | None, Any]) -> None:
    _send(_store(enableDrills=True), write)


def test_the_drill_role_deletes_no_backup_data_and_nothing_outside_drills() -> None:
    store = _store(enableDrills=True, enableTeardown=False)
    for method, kind, path in (
        ("DELETE", "delete", RSV),
        ("DELETE", "delete", ITEM),
        ("DELETE", "delete", BI),
        ("DELETE", "delete", DRILL_GROUP),
        ("DELETE", "delete", VM),
        ("PUT", "write", RSV),
        ("POST", "action", f"{ACCOUNT}/listKeys"),
    ):
        with pytest.raises(ArmError) as refused:
            check(store, APP, method=method, kind=kind, path=path, operation=None, raw_body=None)
        assert refused.value.code == "AuthorizationFailed", path


def test_a_vm_restore_also_needs_the_linked_rights_on_the_staging_account_and_target_group() -> None:
    """backup-rbac-rs-vault.md, "Restore managed disks from VM backup": Backup Operator on the vault is not enough."""
    store = ResourceStore()
    now = datetime(2026, 3, 2, tzinfo=UTC)
    guid = "11111111-2222-4333-8444-555555555555"
    define_custom_role(store, SUB, guid, "restore only", actions=[RS_RESTORE])
    RoleAssignments(store).create(
        f"/subscriptions/{SUB}",
        "22222222-2222-4333-8444-555555555555",
        {"roleDefinitionId": role_definition_id(guid, SUB), "principalId": APP},
        now=now,
        created_by=None,
    )
    with pytest.raises(ArmError) as refused:
        _send(store, DRILL_WRITES[2])
    assert refused.value.code == "LinkedAuthorizationFailed"
    assert "Microsoft.Storage/storageAccounts/write" in refused.value.message
    assert "Microsoft.Resources/subscriptions/resourceGroups/write" in refused.value.message


def test_a_custom_role_is_assignable_only_within_its_assignable_scopes() -> None:
    store = ResourceStore()
    guid = "11111111-2222-4333-8444-666666666666"
    define_custom_role(store, SUB, guid, "somewhere", actions=["Microsoft.Compute/disks/delete"])
    other = "00000000-0000-4000-8000-000000000002"
    with pytest.raises(ArmError) as refused:
        RoleAssignments(store).create(
            f"/subscriptions/{other}",
            "33333333-2222-4333-8444-555555555555",
            {"roleDefinitionId": role_definition_id(guid, other), "principalId": APP},
            now=datetime(2026, 3, 2, tzinfo=UTC),
            created_by=None,
        )
    assert refused.value.code == "RoleDefinitionDoesNotExist"
