"""The one record codec (``steward/domain/records.py``): camelCase keys, values by kind, the old snake_case keys
still read, and a refusal naming the field for what is not a record."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from steward.domain.errors import InvalidValue
from steward.domain.protection import OutcomeStatus, ProtectionOutcome, ProtectionRef
from steward.domain.records import Record, camel

RID = "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg/providers/Microsoft.Compute/disks/d1"


@dataclass(frozen=True)
class Sample(Record):
    status: OutcomeStatus
    resource_id: str
    seen_at: datetime | None = None
    attempts: int = 0
    quiet: bool = False
    note: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


def test_keys_are_camel_case_and_values_travel_by_kind() -> None:
    sample = Sample(OutcomeStatus.PROTECTED, RID, datetime(2026, 1, 5, 9, 0, tzinfo=UTC), 2, True, None, {"a": 1})
    record = sample.to_record()
    assert list(record) == ["status", "resourceId", "seenAt", "attempts", "quiet", "note", "details"]
    assert record["status"] == "Protected" and record["seenAt"].startswith("2026-01-05T09:00:00")
    assert Sample.from_record(json.loads(json.dumps(record))) == sample


def test_a_snake_case_record_written_before_the_codec_reads_the_same_and_camel_case_wins() -> None:
    old = {"status": "Retained", "resource_id": RID, "vault_id": "v", "item_id": "i", "correlation_id": "c",
           "previous_item_id": None, "details": {}}
    outcome = ProtectionOutcome.from_record(old)
    assert (outcome.resource_id, outcome.vault_id, outcome.item_id, outcome.correlation_id) == (RID, "v", "i", "c")
    assert outcome.to_record()["resourceId"] == RID and "resource_id" not in outcome.to_record()
    both = {**old, "resourceId": RID + "-new"}
    assert ProtectionOutcome.from_record(both).resource_id == RID + "-new"
    ref = ProtectionRef.from_record({"vault_id": "v", "item_id": "i", "source_id": "", "kind": "Backup"})
    assert ref == ProtectionRef("v", "i", "", kind="Backup")
    assert ref.to_record() == {"vaultId": "v", "itemId": "i", "sourceId": "", "identity": "", "kind": "Backup",
                               "state": ""}


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"status": "Sideways", "resourceId": RID}, "'status'"),
        ({"status": "Protected"}, "'resourceId'"),
        ({"status": "Protected", "resourceId": RID, "attempts": [1]}, "'attempts'"),
        ({"status": "Protected", "resourceId": RID, "details": [1]}, "'details'"),
    ],
)
def test_what_is_not_a_record_is_refused_naming_the_field(record: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidValue, match=message):
        Sample.from_record(record)
    with pytest.raises(InvalidValue, match="must be an object"):
        Sample.from_record([record])  # type: ignore[arg-type]


@given(st.from_regex(r"[a-z]{1,8}(_[a-z]{1,8}){0,3}", fullmatch=True))
def test_camel_drops_each_underscore_and_capitalises_the_next_part(name: str) -> None:
    key = camel(name)
    assert "_" not in key and key.lower() == name.replace("_", "")
    assert key[0] == name[0]


def test_an_optional_integer_field_reads_null_or_an_integer_and_read_takes_either_form() -> None:
    from steward.domain.protection_results import ResourceRecord, VmProtectionBegun

    assert VmProtectionBegun.from_record({"ok": True, "retryAfter": 60}).retry_after == 60
    assert VmProtectionBegun.from_record({"ok": True}).retry_after is None
    assert VmProtectionBegun.from_record({"ok": True, "retry_after": 30}).retry_after == 30  # the old key
    with pytest.raises(InvalidValue, match="retryAfter"):
        VmProtectionBegun.from_record({"ok": True, "retryAfter": "60"})
    # a field left out while it has its default: a refusal keeps the keys it had
    assert VmProtectionBegun(ok=False, code="X", message="no").to_record() == {"ok": False, "code": "X",
                                                                               "message": "no"}
    facts = ResourceRecord(id="/subscriptions/s/resourceGroups/g", managed_by="vm")
    assert ResourceRecord.read(facts) is facts
    assert ResourceRecord.read({"id": facts.id, "managed_by": "vm"}) == facts
    assert facts.to_record()["managedBy"] == "vm"
