"""A vault full of every kind, torn down in D-script's order through the real clients; and concurrent callers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from azure.core.exceptions import HttpResponseError

from tests.integration.sandbox_rs.conftest import HOUR, VM_TYPE, Estate, error_code


def test_seeded_vault_holds_every_kind_and_refuses_deletion(estate: Estate) -> None:
    rg = estate.group()
    vault = estate.vault(rg)
    made = estate.provider.seed_every_kind(vault.id)
    rsb = estate.rsb()
    kinds = sorted({i.properties["backupManagementType"] for i in rsb.backup_protected_items.list("rsv", rg)})
    assert kinds == ["AzureBackupServer", "AzureIaasVM", "AzureStorage", "AzureWorkload", "DPM", "MAB"]
    states = {i.name: i.properties["protectionState"] for i in rsb.backup_protected_items.list("rsv", rg)}
    assert states[made["softDeleted"][0]] == "ProtectionStopped"
    assert all(state == "Protected" for name, state in states.items() if name != made["softDeleted"][0])
    with pytest.raises(HttpResponseError) as caught:
        estate.rs().vaults.begin_delete(rg, "rsv").result()
    assert error_code(caught.value) == "ServiceResourceNotEmptyWithContainerDetails"
    for word in ("seed-mars.contoso.com", "Site Recovery replicated items", "private endpoint connection"):
        assert word in caught.value.message


def test_full_teardown_in_the_documented_order_empties_and_deletes_the_vault(estate: Estate) -> None:
    rg = estate.group()
    vault = estate.vault(rg)
    made = estate.provider.seed_every_kind(vault.id)
    rs, rsb = estate.rs(), estate.rsb()

    # 2-4: soft delete and hybrid security off; undelete what is soft-deleted
    rsb.backup_resource_vault_configs.put(
        "rsv", rg, {"properties": {"softDeleteFeatureState": "Disabled", "enhancedSecurityState": "Disabled"}}
    )
    for item in rsb.backup_protected_items.list("rsv", rg):
        if item.properties["isScheduledForDeferredDelete"]:
            container = "IaasVMContainer;" + item.properties["containerName"]
            rsb.protected_items.begin_create_or_update(
                "rsv",
                rg,
                "Azure",
                container,
                item.name,
                {
                    "properties": {
                        "protectedItemType": VM_TYPE,
                        "sourceResourceId": item.properties["sourceResourceId"],
                        "protectionState": "ProtectionStopped",
                        "isRehydrate": True,
                    }
                },
            ).result()
    # 6-9: stop protection with delete data for cloud items; intents off; unregister containers
    cloud = ("AzureIaasVM", "AzureWorkload", "AzureStorage")
    for item in rsb.backup_protected_items.list("rsv", rg):
        if item.properties["backupManagementType"] in cloud:
            container = item.id.split("/protectionContainers/")[1].split("/")[0]
            rsb.protected_items.delete("rsv", rg, "Azure", container, item.name)
    estate.advance(HOUR)
    for intent in rsb.backup_protection_intent.list("rsv", rg):
        rsb.protection_intent.delete("rsv", rg, "Azure", intent.name)
    estate.storage_account_contributor(f"/subscriptions/{estate.subscription}/resourceGroups/{rg}")
    for container in made["containers"]:
        rsb.protection_containers.unregister("rsv", rg, "Azure", container)
    estate.advance(HOUR)
    # 10: MARS, then MABS and DPM
    for server in (*made["mars"], *made["mabs"], *made["dpm"]):
        rs.registered_identities.delete(rg, "rsv", server)
    # 11: Site Recovery: items, container mappings, network mappings, containers, fabric
    fabric, sr_container, mapping, netmap, replicated = made["siteRecovery"]
    base = f"{vault.id}/replicationFabrics/{fabric}"
    for method, path in (
        (
            "POST",
            f"{base}/replicationProtectionContainers/{sr_container}/replicationProtectedItems/{replicated}/remove",
        ),
        (
            "POST",
            f"{base}/replicationProtectionContainers/{sr_container}/replicationProtectionContainerMappings/"
            f"{mapping}/remove",
        ),
        ("DELETE", f"{base}/replicationNetworks/seed-vnet/replicationNetworkMappings/{netmap}"),
        ("POST", f"{base}/replicationProtectionContainers/{sr_container}/remove"),
        ("POST", f"{base}/remove"),
    ):
        assert estate.call(method, path, {} if method == "POST" else None)[0] == 202
        estate.advance(HOUR)
    # 12: private endpoints
    for connection in rs.vaults.get(rg, "rsv").properties.private_endpoint_connections:
        rsb.private_endpoint_connection.begin_delete("rsv", rg, connection.id.rsplit("/", 1)[-1]).result()
    # 13-14
    assert list(rsb.backup_protected_items.list("rsv", rg)) == []
    assert list(rsb.backup_protection_containers.list("rsv", rg)) == []
    rs.vaults.begin_delete(rg, "rsv").result()
    assert [v.name for v in rs.vaults.list_by_resource_group(rg)] == []


def test_concurrent_callers_protect_and_list_without_losing_anything(estate: Estate) -> None:
    rg = estate.group()
    estate.vault(rg)
    vms = [estate.vm(rg, f"vm{i:02d}") for i in range(24)]

    def protect(vm: str) -> str:
        return str(estate.protect_vm(rg, "rsv", vm).properties["protectionState"])

    def count() -> int:
        return len(list(estate.rsb().backup_protected_items.list("rsv", rg)))

    with ThreadPoolExecutor(max_workers=8) as pool:
        states = list(pool.map(protect, vms))
        counts = list(pool.map(lambda _: count(), range(8)))
    assert set(states) <= {"IRPending", "Protected"}  # Protected only if this machine took 6 s
    assert all(0 <= c <= 24 for c in counts)
    estate.advance(7 * HOUR)
    items = list(estate.rsb().backup_protected_items.list("rsv", rg, filter="backupManagementType eq 'AzureIaasVM'"))
    assert len(items) == 24
    assert {i.properties["protectionState"] for i in items} == {"Protected"}
