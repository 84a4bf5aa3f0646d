"""Azure's documented capacity limits of Recovery Services vaults (issue 19), enforced by the sandbox with Azure's
(inferred) errors, watched through the real SDK. Each test lowers a limit on the shared sandbox and puts it back."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator

import pytest
from azure.core.exceptions import HttpResponseError

from sandbox.arm.providers import recoveryservices_errors as err
from sandbox.arm.providers.recoveryservices_model import VaultLimits
from tests.integration.sandbox_rs.conftest import DAY, HOUR, Estate, error_code


def _refusal(call: object) -> tuple[int, str]:
    with pytest.raises(HttpResponseError) as caught:
        call()  # type: ignore[operator]
    return caught.value.status_code or 0, error_code(caught.value)


@pytest.fixture
def limits(estate: Estate) -> Iterator[VaultLimits]:
    model = estate.provider.model
    saved = model.limits
    model.limits = VaultLimits()
    try:
        yield model.limits
    finally:
        model.limits = saved


def test_the_sandbox_defaults_are_azures_documented_limits() -> None:
    limits = VaultLimits()
    assert (limits.vms, limits.datasources, limits.vaults_per_region, limits.policies, limits.policy_changes) == (
        1000, 2000, 500, 200, 50)
    assert limits.policy_change_window == DAY
    for spec in (err.VAULT_VM_LIMIT, err.VAULT_DATASOURCE_LIMIT, err.VAULTS_PER_REGION_LIMIT, err.POLICY_LIMIT,
                 err.POLICY_CHANGE_LIMIT):
        assert spec in err.ALL_ERRORS and spec.provenance == "inferred" and "backup-azure-backup-faq" in spec.source


def test_a_vault_full_of_vms_refuses_the_next_one(estate: Estate, limits: VaultLimits) -> None:
    limits.vms = 2
    rg = estate.group()
    estate.vault(rg)
    for name in ("vm1", "vm2"):
        estate.protect_vm(rg, "rsv", estate.vm(rg, name))
    third = estate.vm(rg, "vm3")
    assert _refusal(lambda: estate.protect_vm(rg, "rsv", third)) == (400, err.VAULT_VM_LIMIT.code)
    # another vault of the region takes it
    estate.vault(rg, "rsv2")
    assert estate.protect_vm(rg, "rsv2", third).properties["protectionState"] == "IRPending"


def test_a_stopped_item_still_counts_and_changing_a_protected_vm_is_no_new_datasource(
    estate: Estate, limits: VaultLimits
) -> None:
    limits.vms = 1
    rg = estate.group()
    estate.vault(rg)
    vm = estate.vm(rg, "vm1")
    estate.protect_vm(rg, "rsv", vm)
    estate.protect_vm(rg, "rsv", vm)  # a re-PUT of the same item is an update, not a second VM
    assert _refusal(lambda: estate.protect_vm(rg, "rsv", estate.vm(rg, "vm2")))[1] == err.VAULT_VM_LIMIT.code


def test_the_datasource_limit_counts_every_workload(estate: Estate, limits: VaultLimits) -> None:
    limits.datasources = 2
    rg = estate.group()
    estate.vault(rg)
    estate.provider.model.seed_vm_items(f"{estate.vault_id(rg, 'rsv')}", 2, prefix="seeded")
    assert _refusal(lambda: estate.protect_vm(rg, "rsv", estate.vm(rg, "vm1"))) == (
        400, err.VAULT_DATASOURCE_LIMIT.code)


def test_at_most_so_many_vaults_per_subscription_and_region(estate: Estate, limits: VaultLimits) -> None:
    rg = estate.group()
    estate.vault(rg, "first", location="northeurope")
    already = len([v for v in estate.provider.model.list_vaults(estate.subscription)
                   if v.location == "northeurope"])
    limits.vaults_per_region = already
    assert _refusal(lambda: estate.vault(rg, "one-too-many", location="northeurope")) == (
        400, err.VAULTS_PER_REGION_LIMIT.code)
    estate.vault(rg, "first", location="northeurope")  # an existing vault is still updated
    estate.vault(rg, "elsewhere", location="uksouth")  # another region has its own count


def _policy(estate: Estate, rg: str, name: str) -> object:
    body = {"properties": {"backupManagementType": "AzureWorkload", "workLoadType": "SQLDataBase"}}
    return estate.rsb().protection_policies.create_or_update("rsv", rg, name, body)


def test_at_most_so_many_policies_per_vault(estate: Estate, limits: VaultLimits) -> None:
    rg = estate.group()
    estate.vault(rg)
    limits.policies = len(estate.provider.model.vault(estate.vault_id(rg, "rsv")).policies) + 1
    _policy(estate, rg, "p1")
    assert _refusal(lambda: _policy(estate, rg, "p2")) == (400, err.POLICY_LIMIT.code)
    _policy(estate, rg, "p1")  # changing an existing policy is no new policy


def test_policy_changes_are_limited_per_24_hours(estate: Estate, limits: VaultLimits) -> None:
    limits.policy_changes = 2
    rg = estate.group()
    estate.vault(rg)
    _policy(estate, rg, "p1")
    _policy(estate, rg, "p1")  # a change counts as one too
    assert _refusal(lambda: _policy(estate, rg, "p2")) == (400, err.POLICY_CHANGE_LIMIT.code)
    estate.advance(DAY + HOUR)
    _policy(estate, rg, "p2")


def test_policy_writes_are_in_the_subscriptions_activity_log(estate: Estate) -> None:
    """What the audit's CAP-002 counts: ARM's activity log (Microsoft.Insights ``eventtypes/management/values``)."""
    rg = estate.group()
    estate.vault(rg)
    since = estate.sandbox.clock.now().isoformat()
    _policy(estate, rg, "p1")
    _policy(estate, rg, "p1")
    path = f"/subscriptions/{estate.subscription}/providers/Microsoft.Insights/eventtypes/management/values"
    status, body = estate.call("GET", path + "?$filter=" + urllib.parse.quote(
        f"eventTimestamp ge '{since}' and resourceGroupName eq '{rg}'"), api_version="2015-04-01")
    assert status == 200, body
    writes = [e for e in body["value"] if e["operationName"]["value"].lower()
              == "microsoft.recoveryservices/vaults/backuppolicies/write"]
    assert len(writes) == 2 and {e["status"]["value"] for e in writes} == {"Succeeded"}
    assert all(e["resourceId"].lower().endswith("/backuppolicies/p1") for e in writes)
    assert estate.call("GET", path, api_version="2015-04-01")[0] == 400  # eventTimestamp ge is required
