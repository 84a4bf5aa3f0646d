"""The record contract of the teardown's inventory objects: the keys running orchestrations keep in their
history (renaming a dataclass field must not silently rename a key), the round trip, and bad records."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from steward.domain.teardown import (
    BackupInstance,
    BackupItem,
    BackupPolicy,
    ContainerKind,
    ImmutabilityState,
    InvalidTeardownInput,
    ItemKind,
    ItemState,
    PrivateEndpointConnection,
    ProtectionContainer,
    ProtectionIntent,
    RegisteredServer,
    SiteRecoveryKind,
    SiteRecoveryObject,
    SoftDeleteState,
    VaultObject,
    VaultSettings,
    target_from_record,
)

WHEN = datetime(2026, 11, 25, 8, 30, 15, 123456, tzinfo=UTC)

SAMPLES: list[tuple[Any, dict[str, Any]]] = [
    (
        VaultSettings(SoftDeleteState.ENABLED, 30, SoftDeleteState.DISABLED, ImmutabilityState.DISABLED, True, "g"),
        {"softDelete": "Enabled", "softDeleteRetentionDays": 30, "enhancedSecurity": "Disabled",
         "immutability": "Disabled", "muaEnabled": True, "resourceGuardId": "g"},
    ),
    (
        BackupItem("i", "n", "Azure", "c", ItemKind.VM, ItemState.SOFT_DELETED, "s",
                   "Microsoft.Compute/virtualMachines", WHEN, False),
        {"type": "backupItem", "id": "i", "name": "n", "fabric": "Azure", "container": "c", "kind": "vm",
         "state": "soft-deleted", "sourceResourceId": "s", "itemType": "Microsoft.Compute/virtualMachines",
         "deferredDeleteAt": "2026-11-25T08:30:15.123456Z", "hasData": False},
    ),
    (
        ProtectionContainer("i", "n", "Azure", ContainerKind.MARS, True),
        {"type": "container", "id": "i", "name": "n", "fabric": "Azure", "kind": "mars", "softDeleted": True},
    ),
    (
        ProtectionIntent("i", "n", "Azure", None),
        {"type": "intent", "id": "i", "name": "n", "fabric": "Azure", "sourceResourceId": None},
    ),
    (
        RegisteredServer("i", "n", ContainerKind.DPM, "c"),
        {"type": "server", "id": "i", "name": "n", "kind": "dpm", "container": "c"},
    ),
    (
        SiteRecoveryObject("i", "n", SiteRecoveryKind.REPLICATED_ITEM, "f", "p"),
        {"type": "siteRecovery", "id": "i", "name": "n", "kind": "replicated-item", "fabric": "f",
         "parent": "p"},
    ),
    (
        PrivateEndpointConnection("i", "n", "pe"),
        {"type": "privateEndpointConnection", "id": "i", "name": "n", "privateEndpointId": "pe"},
    ),
    (
        BackupInstance("i", "n", "Microsoft.Compute/disks", ItemState.SOFT_DELETED, WHEN, True),
        {"type": "backupInstance", "id": "i", "name": "n", "datasourceType": "Microsoft.Compute/disks",
         "state": "soft-deleted", "purgeAt": "2026-11-25T08:30:15.123456Z", "hasData": True},
    ),
    (BackupPolicy("i", "n"), {"type": "backupPolicy", "id": "i", "name": "n"}),
    (VaultObject("i", "n"), {"type": "vault", "id": "i", "name": "n"}),
]


@pytest.mark.parametrize(("obj", "record"), SAMPLES, ids=lambda v: type(v).__name__)
def test_records_keep_their_keys_and_round_trip(obj: Any, record: dict[str, Any]) -> None:
    assert obj.to_record() == record
    assert list(obj.to_record()) == list(record), "the key order is part of the history's text"
    again = type(obj).from_record(json.loads(json.dumps(record)))
    assert again == obj
    if "type" in record:
        assert target_from_record(record) == obj


def test_defaults_fill_what_an_older_record_did_not_carry() -> None:
    assert VaultSettings.from_record({}) == VaultSettings()
    item = BackupItem.from_record({"id": "i", "name": "n", "fabric": "Azure", "container": "c",
                                   "kind": "vm", "state": "protected"})
    assert (item.source_resource_id, item.item_type, item.deferred_delete_at, item.has_data) == (None, "", None, True)
    instance = BackupInstance.from_record({"id": "i", "name": "n", "state": "protected"})
    assert (instance.datasource_type, instance.purge_at, instance.has_data) == ("", None, True)


@pytest.mark.parametrize(
    ("cls", "record", "complaint"),
    [
        (BackupPolicy, {"name": "n"}, "'id'"),
        (BackupPolicy, {"id": "", "name": "n"}, "'id'"),
        (VaultObject, {"id": 7, "name": "n"}, "'id'"),
        (ProtectionIntent, {"id": "i", "name": "n", "fabric": "f", "sourceResourceId": ["x"]}, "'sourceResourceId'"),
        (VaultSettings, {"softDeleteRetentionDays": [14]}, "'softDeleteRetentionDays'"),
        (VaultSettings, {"softDelete": "Sometimes"}, "Sometimes"),
        (BackupInstance, {"id": "i", "name": "n", "datasourceType": "d", "state": "protected",
                           "purgeAt": "yesterday"}, "yesterday"),
    ],
)
def test_a_bad_record_is_refused_naming_the_field(cls: Any, record: dict[str, Any], complaint: str) -> None:
    with pytest.raises(InvalidTeardownInput) as refused:
        cls.from_record(record)
    assert complaint in str(refused.value)
