"""Property tests of the Recovery Services state model itself (no HTTP): the one-way doors stay shut."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.arm.providers.recoveryservices_errors import RecoveryServicesError
from sandbox.arm.providers.recoveryservices_model import RecoveryServicesModel

SUB = "00000000-0000-4000-8000-000000000001"
VAULT = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/v"
VM = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"


class FakeClock:
    def __init__(self) -> None:
        self.at = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.at


class Resources:
    def __init__(self, *records: dict[str, Any]) -> None:
        self.records = {r["id"].lower(): r for r in records}

    def get(self, resource_id: str) -> dict[str, Any] | None:
        return self.records.get(resource_id.lower())

    def list(self, resource_type: str, subscription_id: str) -> list[dict[str, Any]]:
        return [r for r in self.records.values() if r["type"].lower() == resource_type.lower()]


def model_with_vault(**security: Any) -> tuple[RecoveryServicesModel, FakeClock]:
    clock = FakeClock()
    vm = {"id": VM, "type": "Microsoft.Compute/virtualMachines", "location": "westeurope"}
    model = RecoveryServicesModel(clock, Resources(vm))
    model.put_vault(VAULT, {"location": "westeurope", "properties": {"securitySettings": security}})
    return model, clock


change = st.one_of(
    st.tuples(st.just("soft"), st.sampled_from(["Enabled", "Disabled", "AlwaysON"])),
    st.tuples(st.just("enhanced"), st.sampled_from(["Enabled", "Disabled", "AlwaysON"])),
    st.tuples(st.just("days"), st.integers(min_value=0, max_value=400)),
    st.tuples(st.just("immutability"), st.sampled_from(["Disabled", "Unlocked", "Locked"])),
    st.tuples(st.just("proxy"), st.just(None)),
    st.tuples(st.just("grant"), st.just(None)),
    st.tuples(st.just("wait"), st.integers(min_value=0, max_value=5 * 3600)),
)


def apply(model: RecoveryServicesModel, clock: FakeClock, what: str, value: Any) -> None:
    if what == "soft":
        model.put_vault_config(VAULT, {"properties": {"softDeleteFeatureState": value}})
    elif what == "enhanced":
        model.put_vault_config(VAULT, {"properties": {"enhancedSecurityState": value}})
    elif what == "days":
        body = {"properties": {"securitySettings": {"softDeleteSettings": {"softDeleteRetentionPeriodInDays": value}}}}
        model.patch_vault(VAULT, body)
    elif what == "immutability":
        model.patch_vault(VAULT, {"properties": {"securitySettings": {"immutabilitySettings": {"state": value}}}})
    elif what == "proxy":
        model.put_proxy(VAULT, "VaultProxy", {"properties": {"resourceGuardResourceId": "/guards/g"}})
    elif what == "grant":
        model.grant_resource_guard_access(VAULT, minutes=60)
    else:
        clock.at += timedelta(seconds=value)


@settings(max_examples=120, deadline=None)
@given(st.lists(change, max_size=25))
def test_security_one_way_doors_stay_shut_and_failed_changes_change_nothing(changes: list[tuple[str, Any]]) -> None:
    model, clock = model_with_vault()
    vault = model.vault(VAULT)
    always_on = locked = False
    for what, value in changes:
        before = dataclasses.replace(vault.security)
        granted = vault.grant_until is not None and clock.now() < vault.grant_until
        try:
            apply(model, clock, what, value)
        except RecoveryServicesError:
            assert vault.security == before  # all or nothing
        security = vault.security
        always_on = always_on or security.soft_delete_state == "AlwaysON"
        locked = locked or security.immutability_state == "Locked"
        assert (security.soft_delete_state == "AlwaysON") == always_on
        assert (security.immutability_state == "Locked") == locked
        assert 14 <= security.retention_days <= 180
        if vault.mua_enabled and not granted and before.soft_delete_state != "Disabled":
            assert security.soft_delete_state != "Disabled"


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=14, max_value=180), st.floats(min_value=0, max_value=200 * 86400))
def test_a_soft_deleted_item_lives_exactly_its_retention(days: int, waited: float) -> None:
    model, clock = model_with_vault(softDeleteSettings={"softDeleteRetentionPeriodInDays": days})
    policy = f"{VAULT}/backupPolicies/DefaultPolicy"
    body = {
        "properties": {
            "protectedItemType": "Microsoft.Compute/virtualMachines",
            "sourceResourceId": VM,
            "policyId": policy,
        }
    }
    container, item = "IaasVMContainer;iaasvmcontainerv2;rg;vm1", "VM;iaasvmcontainerv2;rg;vm1"
    model.put_item(VAULT, "Azure", container, item, body)
    pending = model.delete_item(VAULT, container, item)
    assert pending.effect is not None
    pending.effect()  # the engine would run it when the operation ends
    deleted_at = clock.now()
    clock.at += timedelta(seconds=waited)
    model.settle()
    present = bool(model.list_items(VAULT, None))
    assert present == (clock.now() < deleted_at + timedelta(days=days))
    if not present:
        assert model.protecting_vault(VM) is None
        assert model.vault(VAULT).containers == {}  # the IaaS VM container went with its last item
