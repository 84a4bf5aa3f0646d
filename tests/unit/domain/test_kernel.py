"""The shared kernel (``steward.domain.kernel``): one Azure vocabulary for protection, teardown and audit, and
records that read and write as they did before it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from steward.domain import audit, kernel, rules, teardown, workloads
from steward.domain.errors import DomainError, InvalidValue
from steward.domain.ids import ResourceId
from steward.domain.kernel import (
    ImmutabilityState,
    SoftDeleteState,
    VaultKind,
    VaultRef,
    aware_time,
    format_time,
    normalise_region,
    parse_time,
    read_time,
    require_time,
    subscription_of,
    zoned_time,
)
from tests.unit.teardown.teardown_strategies import RS_VAULT, item

SUB = "00000000-0000-4000-8000-0000000000aa"
RSV = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/vault-1"
BV = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.DataProtection/backupVaults/bv-1"


def test_protection_teardown_and_audit_speak_one_vocabulary() -> None:
    assert teardown.VaultKind is workloads.VaultKind is rules.VaultKind is audit.VaultKind is VaultKind
    assert teardown.SoftDeleteState is audit.SoftDeleteState is SoftDeleteState
    assert teardown.ImmutabilityState is audit.ImmutabilityState is ImmutabilityState
    assert teardown.VaultRef is VaultRef
    assert teardown.parse_time is parse_time and teardown.format_time is format_time
    assert rules.normalise_region is normalise_region and audit.subscription_of is subscription_of
    assert teardown.InvalidTeardownInput is InvalidValue and issubclass(InvalidValue, DomainError)


def test_soft_delete_reads_both_vault_kinds_words_as_one_state() -> None:
    for words, state in (
        (("Enabled", "On", "on", " enabled "), SoftDeleteState.ENABLED),
        (("Disabled", "Off"), SoftDeleteState.DISABLED),
        (("AlwaysON", "AlwaysOn", "alwayson"), SoftDeleteState.ALWAYS_ON),
    ):
        for word in words:
            assert SoftDeleteState(word) is state and SoftDeleteState.parse(word) is state
            assert SoftDeleteState.from_arm(word) is state
    assert SoftDeleteState.ON is SoftDeleteState.ENABLED and SoftDeleteState.OFF is SoftDeleteState.DISABLED
    assert SoftDeleteState.from_arm(None) is SoftDeleteState.UNKNOWN
    assert SoftDeleteState.from_arm("Invalid") is SoftDeleteState.UNKNOWN
    assert SoftDeleteState.parse("Invalid") is SoftDeleteState.INVALID
    assert SoftDeleteState.parse("sometimes", SoftDeleteState.INVALID) is SoftDeleteState.INVALID
    with pytest.raises(InvalidValue):
        SoftDeleteState.parse("sometimes")
    strengths = [s.strength for s in (SoftDeleteState.UNKNOWN, SoftDeleteState.DISABLED, SoftDeleteState.ENABLED,
                                      SoftDeleteState.ALWAYS_ON)]
    assert strengths == [-1, 0, 1, 2]
    # the audit's reports keep the Backup vault's words
    assert [s.on_off for s in SoftDeleteState] == ["On", "Off", "AlwaysOn", "Invalid", "Unknown"]


def test_immutability_reads_any_case_and_unknown_for_nothing() -> None:
    assert ImmutabilityState.from_arm("locked") is ImmutabilityState.LOCKED
    assert ImmutabilityState.from_arm("") is ImmutabilityState.UNKNOWN
    assert ImmutabilityState.from_arm("Enabled") is ImmutabilityState.UNKNOWN
    assert ImmutabilityState.parse("Unlocked") is ImmutabilityState.UNLOCKED
    assert ImmutabilityState.LOCKED.strength > ImmutabilityState.UNLOCKED.strength > ImmutabilityState.DISABLED.strength


def test_vault_kinds_read_their_short_name_or_arm_type_and_ids_know_their_vault_kind() -> None:
    assert VaultKind("Microsoft.RecoveryServices/vaults") is VaultKind.RECOVERY_SERVICES
    assert VaultKind("microsoft.dataprotection/backupvaults") is VaultKind.BACKUP
    assert VaultKind("backup") is VaultKind.BACKUP
    assert VaultKind.BACKUP.arm_type == "Microsoft.DataProtection/backupVaults"
    assert VaultKind.RECOVERY_SERVICES.label == "Recovery Services vault"
    with pytest.raises(ValueError):
        VaultKind("Microsoft.Compute/virtualMachines")
    assert ResourceId.parse(RSV).vault_kind is VaultKind.RECOVERY_SERVICES
    assert ResourceId.parse(BV.upper().replace("SUBSCRIPTIONS", "subscriptions")).vault_kind is VaultKind.BACKUP
    assert ResourceId.parse(f"{RSV}/backupPolicies/p").vault_kind is None


def test_a_vault_ref_parses_strictly_and_compares_without_case() -> None:
    ref = VaultRef.parse(RSV.lower())
    assert ref.kind is VaultKind.RECOVERY_SERVICES
    assert ref.id == RSV, "canonical keywords and type, lower-case subscription; the names as given"
    assert ref == VaultRef.parse(RSV)
    for bad in (None, f"{RSV}/backupPolicies/p", RSV.replace("vaults", "vault"), "x" * 600):
        with pytest.raises(InvalidValue):
            VaultRef.parse(bad)


def test_region_and_subscription() -> None:
    assert normalise_region("West Europe") == normalise_region("westeurope") == "westeurope"
    assert subscription_of(RSV.upper().replace("SUBSCRIPTIONS", "subscriptions")) == SUB
    assert subscription_of("/providers/Microsoft.Resources/operations") == ""


def test_times_as_arm_writes_them() -> None:
    moment = datetime(2017, 8, 22, 22, 19, 38, 749780, tzinfo=UTC)
    assert parse_time("2017-08-22T22:19:38.7497806Z") == moment
    assert parse_time("2017-08-22T22:19:38.7497806") == moment, "no zone is UTC"
    assert parse_time("2017-08-23T00:19:38.749780+02:00") == moment
    assert parse_time(None) is None and parse_time("") is None
    for bad in ("soon", 5, "2017-08-22"):
        with pytest.raises(InvalidValue):
            parse_time(bad)
    assert format_time(moment) == "2017-08-22T22:19:38.749780Z"
    assert format_time(moment, whole_seconds=True) == "2017-08-22T22:19:38Z"
    assert format_time(moment.astimezone(timezone(timedelta(hours=2)))) == "2017-08-22T22:19:38.749780Z"
    assert format_time(None) is None
    assert parse_time(format_time(moment)) == moment
    assert read_time("0001-01-01T00:00:00Z") is None and read_time("soon") is None
    assert read_time("2017-08-22T22:19:38.7497806Z") == moment
    assert aware_time("2017-08-22T22:19:38+00:00") == datetime(2017, 8, 22, 22, 19, 38, tzinfo=UTC)
    assert aware_time("2017-08-22T22:19:38") is None and aware_time(None) is None


def test_times_that_must_be_there_or_must_name_their_zone() -> None:
    """The variants the app's other readers need (issue #16: ISO time handling in one place): ``require_time``
    is ``parse_time`` without the None; ``zoned_time`` refuses a time without a zone instead of taking it as
    UTC (events and drill records), saying which of the two is wrong, and keeps the offset it was given."""
    moment = datetime(2017, 8, 22, 22, 19, 38, tzinfo=UTC)
    assert require_time("2017-08-22T22:19:38Z") == moment
    assert require_time("2017-08-23T00:19:38+02:00") == moment and require_time("2017-08-22T22:19:38") == moment
    for missing in (None, ""):
        with pytest.raises(InvalidValue, match="got nothing"):
            require_time(missing)
    with pytest.raises(InvalidValue):
        require_time("soon")
    assert zoned_time("2017-08-22T22:19:38Z") == moment, "Z is UTC"
    two_hours = zoned_time("2017-08-23T00:19:38+02:00")
    assert two_hours == moment and two_hours.utcoffset() == timedelta(hours=2)
    with pytest.raises(InvalidValue, match=r"^has no time zone$"):
        zoned_time("2017-08-22T22:19:38")
    with pytest.raises(InvalidValue, match=r"^is not an ISO 8601 time$"):
        zoned_time("soon")
    assert aware_time("2017-08-22T22:19:38Z") == moment and aware_time("soon") is None


def test_teardown_records_keep_the_arm_type_and_their_fingerprints() -> None:
    """Running teardowns hold inventories and plans in their history, and approvals name a plan's fingerprint:
    both must read and hash as before the kernel (the fingerprint below was computed by the previous code)."""
    now = datetime(2026, 1, 5, 9, tzinfo=UTC)
    inventory = teardown.VaultInventory(
        RS_VAULT, VaultKind.RECOVERY_SERVICES, location="westeurope",
        settings=teardown.VaultSettings(soft_delete=SoftDeleteState.ENABLED,
                                        enhanced_security=SoftDeleteState.ALWAYS_ON,
                                        immutability=ImmutabilityState.UNLOCKED),
        items=(item("vm1"), item("vm2")),
    )
    record = inventory.to_record()
    assert record["kind"] == "Microsoft.RecoveryServices/vaults"
    assert record["settings"]["softDelete"] == "Enabled" and record["settings"]["enhancedSecurity"] == "AlwaysON"
    assert teardown.VaultInventory.from_record(record) == inventory
    short = teardown.VaultInventory.from_record({**record, "kind": "RecoveryServices"})
    assert short.kind is VaultKind.RECOVERY_SERVICES
    plan = teardown.plan_teardown(inventory, now)
    assert plan.to_record()["vaultKind"] == "Microsoft.RecoveryServices/vaults"
    assert plan.fingerprint == "sha256:c1b10c5faae16273ac0f836b63af87bb246f3c896baa6695e06f1db4063565b5"
    assert teardown.TeardownPlan.from_record(plan.to_record()) == plan


def test_the_audit_keeps_reading_and_writing_its_words() -> None:
    vault = audit.Vault(id=RSV, kind=VaultKind.RECOVERY_SERVICES, location="westeurope",
                        soft_delete=SoftDeleteState.from_arm("Enabled"))
    inventory = audit.EstateInventory(subscriptions=(SUB,), vaults=(vault,))
    record = audit.inventory_to_json(inventory)
    assert record["vaults"][0]["softDelete"] == "On"
    assert audit.inventory_from_json(record) == inventory


def test_the_kernel_is_the_only_home_of_the_vocabulary() -> None:
    defined = {name for name, value in vars(kernel).items() if getattr(value, "__module__", "") == kernel.__name__}
    for module in (audit, teardown, rules, workloads):
        mine = {name for name, value in vars(module).items() if getattr(value, "__module__", "") == module.__name__}
        assert not (mine & {"VaultKind", "SoftDeleteState", "ImmutabilityState", "VaultRef", "parse_time",
                            "format_time", "normalise_region", "subscription_of", "id_key", "name_of",
                            "resource_group_of"}), module.__name__
    assert {"VaultKind", "SoftDeleteState", "ImmutabilityState", "VaultRef"} <= defined
