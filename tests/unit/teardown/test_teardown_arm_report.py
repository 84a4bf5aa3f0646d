"""ARM JSON -> inventory records (on Microsoft's published examples), the report page, the settings."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steward.cloud import teardown_arm as arm
from steward.domain.teardown import (
    ContainerKind,
    ImmutabilityState,
    ItemKind,
    ItemState,
    SoftDeleteState,
    TeardownOutcome,
)
from steward.report.store import LocalReportStore, ReportStoreError
from steward.report.teardown import build_report, render_html, save_report
from steward.settings import DEFAULT_MAX_PARALLEL_WRITES, InvalidSettings, Settings
from tests.shared_fixtures import REST_EXAMPLES, require

EXAMPLES = REST_EXAMPLES
RSB = "recoveryservicesbackup/resource-manager/Microsoft.RecoveryServices/stable/2025-02-01/examples"
RS = "recoveryservices/resource-manager/Microsoft.RecoveryServices/stable/2025-02-01/examples"
DP = "dataprotection/resource-manager/Microsoft.DataProtection/stable/2025-07-01/examples"


def example(path: str) -> Any:
    require(EXAMPLES)  # skips naming the folder when it is missing; fails under CI (tests/shared_fixtures.py)
    file = EXAMPLES / path
    return json.loads(file.read_text())["responses"]["200"]["body"]


def test_protected_items_from_the_rest_example() -> None:
    items = [arm.backup_item(v) for v in example(f"{RSB}/AzureIaasVm/BackupProtectedItems_List.json")["value"]]
    assert items and all(i.kind is ItemKind.VM for i in items)
    assert all(i.container.lower().startswith("iaasvmcontainer;") for i in items)
    assert all(i.fabric == "Azure" and i.item_type for i in items)


def test_containers_and_engines_from_the_rest_examples() -> None:
    containers = [
        arm.protection_container(v) for v in example(f"{RSB}/AzureStorage/ProtectionContainers_List.json")["value"]
    ]
    assert containers and all(c.kind is ContainerKind.STORAGE for c in containers)
    engines = [arm.backup_engine(v) for v in example(f"{RSB}/Dpm/BackupEngines_List.json")["value"]]
    assert engines and all(e.kind in (ContainerKind.DPM, ContainerKind.MABS) for e in engines)


def test_vault_settings_from_the_rest_examples() -> None:
    vault = example(f"{RS}/GETVault.json")
    config = example(f"{RSB}/Common/BackupResourceVaultConfigs_Get.json")
    settings = arm.recovery_services_settings(vault, config)
    assert settings.enhanced_security is SoftDeleteState.ENABLED
    assert settings.immutability in tuple(ImmutabilityState)


def test_deleted_backup_instances_carry_their_purge_time() -> None:
    body = example(f"{DP}/DeletedBackupInstanceOperations/ListDeletedBackupInstances.json")
    instances = [arm.backup_instance(v, deleted=True) for v in body["value"]]
    assert instances and all(i.state is ItemState.SOFT_DELETED for i in instances)
    assert all(i.purge_at is not None for i in instances)
    live = [arm.backup_instance(v) for v in example(f"{DP}/BackupInstanceOperations/ListBackupInstances.json")["value"]]
    assert live and all(i.state is not ItemState.SOFT_DELETED for i in live)


@pytest.mark.parametrize(
    ("props", "state"),
    [
        ({"protectionState": "Protected"}, ItemState.PROTECTED),
        ({"protectionState": "IRPending"}, ItemState.PROTECTED),
        ({"protectionState": "ProtectionStopped"}, ItemState.STOPPED),
        (
            {
                "protectionState": "ProtectionStopped",
                "isScheduledForDeferredDelete": True,
                "deferredDeleteTimeInUTC": "2026-12-01T10:00:00.1234567Z",
            },
            ItemState.SOFT_DELETED,
        ),
    ],
)
def test_item_states(props: dict[str, Any], state: ItemState) -> None:
    item = arm.backup_item({"id": "/x/protectionContainers/c/protectedItems/i", "name": "i", "properties": props})
    assert item.state is state
    assert (item.deferred_delete_at is not None) == (state is ItemState.SOFT_DELETED)


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("On", SoftDeleteState.ENABLED),
        ("Off", SoftDeleteState.DISABLED),
        ("AlwaysOn", SoftDeleteState.ALWAYS_ON),
        ("AlwaysON", SoftDeleteState.ALWAYS_ON),
        ("Enabled", SoftDeleteState.ENABLED),
        ("weird", SoftDeleteState.INVALID),
    ],
)
def test_soft_delete_words_of_both_providers(text: str, state: SoftDeleteState) -> None:
    assert arm.soft_delete_state(text) is state


def _report(**overrides: Any) -> dict[str, Any]:
    base = {
        "instance_id": "teardown-x",
        "request": {
            "vaultId": "/subscriptions/s/resourceGroups/r/providers/Microsoft.RecoveryServices/vaults/v",
            "requestedBy": "alice",
            "source": "http",
        },
        "outcome": TeardownOutcome.DELETED,
        "reason": "done",
        "started_at": "2026-11-25T09:00:00Z",
        "finished_at": "2026-11-25T09:05:00Z",
        "plan": {
            "fingerprint": "sha256:ab",
            "steps": [{"kind": "delete-vault", "count": 1, "destructive": True}],
            "blockers": [],
        },
        "progress": {"steps": [], "deleted": [{"type": "vault", "name": "v", "effect": "deleted", "id": "x"}]},
    }
    base.update(overrides)
    return build_report(**base).to_record()


@given(st.text(max_size=80))
def test_the_report_page_escapes_everything(hostile: str) -> None:
    page = render_html(_report(reason=hostile + "<script>alert(1)</script>"))
    assert "<script>" not in page
    assert "default-src 'none'" in page and "http://" not in page and "https://" not in page


def test_the_report_says_who_what_when_and_what_remains(tmp_path: Path) -> None:
    report = _report(
        outcome=TeardownOutcome.CANCELLED,
        remaining=[{"type": "backupItem", "name": "vm-1", "reason": "soft-deleted", "id": "i"}],
    )
    page = render_html(report)
    for text in ("alice", "cancelled", "vm-1", "soft-deleted", "2026-11-25T09:05:00Z", "sha256:ab"):
        assert text in page
    stored = save_report(LocalReportStore(tmp_path), "teardown-x", report)
    assert json.loads(Path(stored.json_url.removeprefix("file://")).read_text())["outcome"] == "cancelled"
    assert Path(stored.html_url.removeprefix("file://")).read_text() == page
    with pytest.raises(ReportStoreError, match="report name"):
        save_report(LocalReportStore(tmp_path), "../..", report)


def test_settings_are_validated_with_the_setting_named() -> None:
    """The teardown reads the app's one ``Settings``; a bad value is the app's ``InvalidSettings``."""
    settings = Settings.from_env(
        {
            "STEWARD_SUBSCRIPTIONS": "00000000-0000-4000-8000-000000000001, 00000000-0000-4000-8000-000000000002",
            "STEWARD_TEARDOWN_ALLOWED_PRINCIPALS": (
                "AAAAAAAA-0000-4000-8000-000000000001;bbbbbbbb-0000-4000-8000-000000000002"
            ),
            "STEWARD_MAX_PARALLEL_WRITES": "7",
        }
    )
    assert tuple(sorted(settings.teardown_allowed_principals)) == (
        "aaaaaaaa-0000-4000-8000-000000000001",
        "bbbbbbbb-0000-4000-8000-000000000002",
    ) and settings.max_parallel_writes == 7
    assert len(settings.subscriptions) == 2
    for env, name in (
        ({"STEWARD_SUBSCRIPTIONS": "nope"}, "STEWARD_SUBSCRIPTIONS"),
        ({"STEWARD_MAX_PARALLEL_WRITES": "0"}, "STEWARD_MAX_PARALLEL_WRITES"),
        ({"STEWARD_MAX_PARALLEL_WRITES": "ten"}, "STEWARD_MAX_PARALLEL_WRITES"),
        ({"STEWARD_REPORTS_CONTAINER": "Bad_Name"}, "STEWARD_REPORTS_CONTAINER"),
        ({"STEWARD_TEARDOWN_ALLOWED_PRINCIPALS": "not-a-guid"}, "STEWARD_TEARDOWN_ALLOWED_PRINCIPALS"),
        ({"STEWARD_TEARDOWN_WAIT_CHUNK_HOURS": "0"}, "STEWARD_TEARDOWN_WAIT_CHUNK_HOURS"),
    ):
        with pytest.raises(InvalidSettings, match=name):
            Settings.from_env(env)


def test_the_saga_limits_come_from_the_app_settings_and_their_defaults() -> None:
    """The old teardown view had drifted (10 parallel writes where the app's default is 8): one class now."""
    from activities.teardown import limits_record

    assert limits_record(Settings.from_env({})) == {
        "maxParallelWrites": DEFAULT_MAX_PARALLEL_WRITES,
        "approvalTimeoutHours": 72,
        "waitChunkHours": 24,
        "fourEyes": 1,
        "allowedPrincipals": [],
    }
    configured = Settings.from_env(
        {
            "STEWARD_TEARDOWN_ALLOWED_PRINCIPALS": (
                "BBBBBBBB-0000-4000-8000-000000000002,aaaaaaaa-0000-4000-8000-000000000001"
            ),
            "STEWARD_TEARDOWN_FOUR_EYES": "false",
            "STEWARD_MAX_PARALLEL_WRITES": "3",
        }
    )
    assert limits_record(configured)["allowedPrincipals"] == [
        "aaaaaaaa-0000-4000-8000-000000000001",
        "bbbbbbbb-0000-4000-8000-000000000002",
    ]
    assert limits_record(configured)["fourEyes"] == 0 and limits_record(configured)["maxParallelWrites"] == 3
