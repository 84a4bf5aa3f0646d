"""Recovery Services vaults through the real RecoveryServicesClient: CRUD, pollers, paging, events, moves."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

from sandbox.arm import ArmSandbox, SandboxConfig
from sandbox.arm.providers.recoveryservices import recovery_services
from steward.cloud.clients import CloudClients
from tests.integration.sandbox_rs.conftest import Estate, error_code


def test_vault_create_get_patch_delete_complete_through_the_sdk_pollers(estate: Estate) -> None:
    rg = estate.group()
    rs = estate.rs()
    created = estate.vault(rg, "crud")
    assert created.properties.provisioning_state == "Succeeded"
    assert created.identity.principal_id
    soft = created.properties.security_settings.soft_delete_settings
    assert (soft.soft_delete_state, soft.soft_delete_retention_period_in_days) == ("Enabled", 14)

    patched = rs.vaults.begin_update(rg, "crud", {"tags": {"owner": "steward"}}).result()
    assert patched.tags == {"owner": "steward"}
    assert rs.vaults.get(rg, "crud").tags == {"owner": "steward"}

    rs.vaults.begin_delete(rg, "crud").result()
    with pytest.raises(ResourceNotFoundError):
        rs.vaults.get(rg, "crud")


def test_vault_lists_page_through_next_links(estate: Estate) -> None:
    rg = estate.group()
    for name in ("a", "b", "c"):
        estate.vault(rg, name)
    in_group = sorted(v.name for v in estate.rs().vaults.list_by_resource_group(rg))
    assert in_group == ["a", "b", "c"]  # page_size 2: the SDK followed a nextLink
    in_subscription = {v.id.lower() for v in estate.rs().vaults.list_by_subscription_id()}
    assert {v.id.lower() for v in estate.rs().vaults.list_by_resource_group(rg)} <= in_subscription


def test_every_vault_comes_with_default_and_enhanced_policies(estate: Estate) -> None:
    rg = estate.group()
    estate.vault(rg)
    names = sorted(p.name for p in estate.rsb().backup_policies.list("rsv", rg))
    assert names == ["DefaultPolicy", "EnhancedPolicy"]
    enhanced = estate.rsb().protection_policies.get("rsv", rg, "EnhancedPolicy")
    assert enhanced.properties["policyType"] == "V2"


def test_vault_writes_and_refused_deletes_raise_resource_events(estate: Estate) -> None:
    rg = estate.group()
    seen: list[dict] = []
    subscription = estate.sandbox.subscribe(seen.extend)
    try:
        vault = estate.vault(rg, "evented")
        vm = estate.vm(rg)
        estate.protect_vm(rg, "evented", vm)
        with pytest.raises(HttpResponseError):
            estate.rs().vaults.begin_delete(rg, "evented").result()
        assert estate.sandbox.events.drain(5)
    finally:
        estate.sandbox.events.unsubscribe(subscription)
    mine = [e for e in seen if vault.id.lower() in e["subject"].lower()]
    kinds = {(e["eventType"], e["data"]["operationName"]) for e in mine}
    assert ("Microsoft.Resources.ResourceWriteSuccess", "Microsoft.RecoveryServices/vaults/write") in kinds
    assert ("Microsoft.Resources.ResourceDeleteFailure", "Microsoft.RecoveryServices/vaults/delete") in kinds
    assert any(
        op == "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems/write"
        for _, op in kinds
    )


def require_moves(estate: Estate) -> None:
    path = f"/subscriptions/{estate.subscription}/resourceGroups/x/moveResources"
    if estate.sandbox.router.resolve("POST", path) is None:
        pytest.skip("the Microsoft.Resources provider does not serve moveResources yet")


def test_a_moved_vault_keeps_its_items_under_its_new_id(estate: Estate) -> None:
    require_moves(estate)
    source = estate.group("src")
    target = estate.group("dst")
    vault = estate.vault(source, "mover")
    vm = estate.vm(source)
    estate.protect_vm(source, "mover", vm)
    resources = estate.clients.resources(estate.subscription)
    target_id = f"/subscriptions/{estate.subscription}/resourceGroups/{target}"
    resources.resources.begin_move_resources(
        source, {"resources": [vault.id], "targetResourceGroup": target_id}
    ).result()
    moved = estate.rs().vaults.get(target, "mover")
    assert moved.properties.move_details.source_resource_id.lower() == vault.id.lower()
    items = list(estate.rsb().backup_protected_items.list("mover", target))
    assert [i.properties["sourceResourceId"] for i in items] == [vm]
    with pytest.raises(ResourceNotFoundError):
        estate.rs().vaults.get(source, "mover")


def test_patch_of_an_unknown_vault_is_resource_not_found(estate: Estate) -> None:
    rg = estate.group()
    with pytest.raises(HttpResponseError) as caught:
        estate.rs().vaults.begin_update(rg, "nope", {"tags": {}}).result()
    assert error_code(caught.value) == "ResourceNotFound"


def test_a_sandbox_started_from_its_state_file_resumes_with_vault_contents(tmp_path: Path) -> None:
    state = tmp_path / "sandbox.json"
    config = SandboxConfig(scale=3600.0, providers=("resources", "recoveryservices"), state_file=state)
    with ArmSandbox(config) as first:
        estate = Estate(first, CloudClients(first.cloud_target()), "persist")
        rg = estate.group()
        vault = estate.vault(rg, soft_delete="AlwaysON", days=30)
        vm = estate.vm(rg)
        estate.protect_vm(rg, "rsv", vm)
        recovery_services(first).seed_every_kind(vault.id, prefix="p")
    with ArmSandbox(replace(config)) as second:
        estate = Estate(second, CloudClients(second.cloud_target()), "persist")
        again = estate.rs().vaults.get(rg, "rsv")
        soft = again.properties.security_settings.soft_delete_settings
        assert (soft.soft_delete_state, soft.soft_delete_retention_period_in_days) == ("AlwaysON", 30)
        names = [i.name for i in estate.rsb().backup_protected_items.list("rsv", rg)]
        assert f"VM;iaasvmcontainerv2;{rg};vm1" in names or any(n.lower().endswith(f"{rg};vm1".lower()) for n in names)
        assert len(names) >= 9
        with pytest.raises(HttpResponseError) as caught:
            estate.rs().vaults.begin_delete(rg, "rsv").result()
        assert error_code(caught.value) == "ServiceResourceNotEmptyWithContainerDetails"


def test_deleting_a_group_whose_vault_holds_backup_data_fails_and_raises_the_vaults_delete_failure(
    estate: Estate,
) -> None:
    """ARM deletes a group resource by resource through the providers; a vault with backup data refuses, so
    the group delete ends ResourceGroupDeletionBlocked, the group and the vault stay, everything else goes,
    and the vault's failed delete is the event the teardown listens for (Azure/azure-powershell#4804)."""
    from steward.domain import events as app_events

    rg = estate.group("rg-del")
    estate.vault(rg, "full", soft_delete="Disabled")  # so that emptying it below leaves nothing soft-deleted
    estate.vault(rg, "empty")
    vm_id = estate.vm(rg, "vm-del")
    estate.protect_vm(rg, "full", vm_id)
    resources = estate.clients.resources(estate.subscription)
    seen = len(estate.sandbox.events.raised)

    with pytest.raises(HttpResponseError) as blocked:
        resources.resource_groups.begin_delete(rg).result()
    assert error_code(blocked.value) == "ResourceGroupDeletionBlocked"
    assert "could not be deleted" in str(blocked.value)
    assert "Microsoft.RecoveryServices/vaults/full" in str(blocked.value)
    assert resources.resource_groups.check_existence(rg)
    assert estate.rs().vaults.get(rg, "full").name == "full"
    with pytest.raises(ResourceNotFoundError):
        estate.rs().vaults.get(rg, "empty")
    assert estate.sandbox.store.get(vm_id) is None

    raised = estate.sandbox.events.raised[seen:]
    failures = [e for e in raised if e["eventType"] == "Microsoft.Resources.ResourceDeleteFailure"]
    vault_failure = [e for e in failures if e["subject"].lower().endswith("/vaults/full")]
    assert len(vault_failure) == 1
    assert vault_failure[0]["data"]["operationName"] == "Microsoft.RecoveryServices/vaults/delete"
    intent = app_events.classify(vault_failure[0])
    assert isinstance(intent, app_events.VaultDeleteFailed)
    assert any(e["subject"].lower().endswith(f"/resourcegroups/{rg.lower()}") for e in failures)

    # once emptied, the same group delete succeeds
    estate.delete_vm_backup(rg, "full", vm_id)
    estate.advance(60)
    resources.resource_groups.begin_delete(rg).result()
    assert not resources.resource_groups.check_existence(rg)
