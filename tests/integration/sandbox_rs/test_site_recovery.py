"""Site Recovery objects in a vault: they block vault deletion and moves until torn down in D-script's order.

The app does not ship the Site Recovery SDK, so these requests go over plain HTTPS with a sandbox token, on
the paths ``azure-mgmt-recoveryservicessiterecovery`` uses.
"""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from tests.integration.sandbox_rs.conftest import HOUR, Estate, error_code


def _site_recovery_vault(estate: Estate, rg: str) -> str:
    """A vault replicating one VM: fabric, container, container mapping, network mapping, replicated item."""
    vault = estate.vault(rg, "asr")
    base = vault.id
    fabric = f"{base}/replicationFabrics/asr-a2a-westeurope"
    container = f"{fabric}/replicationProtectionContainers/asr-a2a-container"
    for path, body in (
        (fabric, {"properties": {"customDetails": {"instanceType": "Azure", "location": "westeurope"}}}),
        (container, {"properties": {"providerSpecificInput": [{"instanceType": "A2A"}]}}),
        (f"{container}/replicationProtectionContainerMappings/map1", {"properties": {"policyId": "p"}}),
        (f"{fabric}/replicationNetworks/vnet1/replicationNetworkMappings/netmap1", {"properties": {}}),
        (f"{container}/replicationProtectedItems/vm1", {"properties": {"policyId": "p"}}),
    ):
        status, _ = estate.call("PUT", path, body)
        assert status == 202
    estate.advance(HOUR)
    status, item = estate.call("GET", f"{container}/replicationProtectedItems/vm1")
    assert status == 200
    assert item["properties"]["protectionState"] == "Protected"
    return base


def test_vault_with_site_recovery_items_cannot_be_deleted_until_teardown_in_order(estate: Estate) -> None:
    rg = estate.group()
    base = _site_recovery_vault(estate, rg)
    fabric = f"{base}/replicationFabrics/asr-a2a-westeurope"
    container = f"{fabric}/replicationProtectionContainers/asr-a2a-container"
    with pytest.raises(HttpResponseError) as caught:
        estate.rs().vaults.begin_delete(rg, "asr").result()
    assert error_code(caught.value) == "ServiceResourceNotEmptyWithContainerDetails"
    assert "Site Recovery replicated items" in caught.value.message

    status, listed = estate.call("GET", f"{base}/replicationNetworkMappings")
    assert [m["id"] for m in listed["value"]] == [
        f"{fabric}/replicationNetworks/vnet1/replicationNetworkMappings/netmap1"
    ]
    status, listed = estate.call("GET", f"{base}/replicationProtectionContainerMappings")
    assert [m["name"] for m in listed["value"]] == ["map1"]
    status, listed = estate.call("GET", f"{base}/replicationProtectedItems")
    assert [m["id"] for m in listed["value"]] == [f"{container}/replicationProtectedItems/vm1"]

    # out of order: the mapping is still used by a replicated item
    status, body = estate.call("DELETE", f"{container}/replicationProtectionContainerMappings/map1")
    assert (status, body["error"]["code"]) == (400, "SiteRecoveryObjectInUse")

    steps = (
        ("POST", f"{container}/replicationProtectedItems/vm1/remove"),  # disable replication
        ("POST", f"{container}/replicationProtectionContainerMappings/map1/remove"),
        ("DELETE", f"{fabric}/replicationNetworks/vnet1/replicationNetworkMappings/netmap1"),
        ("POST", f"{container}/remove"),
        ("POST", f"{fabric}/remove"),
    )
    for method, path in steps:
        status, _ = estate.call(method, path, {} if method == "POST" else None)
        assert status == 202, path
        estate.advance(HOUR)
    status, fabrics = estate.call("GET", f"{base}/replicationFabrics")
    assert (status, fabrics["value"]) == (200, [])
    estate.rs().vaults.begin_delete(rg, "asr").result()


def test_the_official_script_order_never_removes_a_protection_container(estate: Estate) -> None:
    """D-script purges the replicated items, removes container mappings and network mappings, then
    ``Remove-AzRecoveryServicesAsrFabric -Force``: no protection container is removed on its own, and the fabric
    takes its (empty) containers along. A fabric whose container still has a mapping is refused."""
    rg = estate.group()
    base = _site_recovery_vault(estate, rg)
    fabric = f"{base}/replicationFabrics/asr-a2a-westeurope"
    container = f"{fabric}/replicationProtectionContainers/asr-a2a-container"
    for method, path in (
        ("DELETE", f"{container}/replicationProtectedItems/vm1"),  # DisableDR (purge)
        ("DELETE", f"{fabric}/replicationNetworks/vnet1/replicationNetworkMappings/netmap1"),
    ):
        status, _ = estate.call(method, path)
        assert status == 202, path
        estate.advance(HOUR)
    status, body = estate.call("DELETE", fabric)
    assert (status, body["error"]["code"]) == (400, "SiteRecoveryObjectInUse")
    assert "container mapping map1" in body["error"]["message"]
    status, _ = estate.call("DELETE", f"{container}/replicationProtectionContainerMappings/map1")
    assert status == 202
    estate.advance(HOUR)
    status, _ = estate.call("DELETE", fabric)  # Remove-AzRecoveryServicesAsrFabric -Force
    assert status == 202
    estate.advance(HOUR)
    status, fabrics = estate.call("GET", f"{base}/replicationFabrics")
    assert (status, fabrics["value"]) == (200, [])
    estate.rs().vaults.begin_delete(rg, "asr").result()


def test_site_recovery_lro_is_followed_to_its_end(estate: Estate) -> None:
    rg = estate.group()
    base = _site_recovery_vault(estate, rg)
    item = f"{base}/replicationFabrics/asr-a2a-westeurope/replicationProtectionContainers/asr-a2a-container"
    item += "/replicationProtectedItems/vm1"
    with estate.frozen():
        status, _ = estate.call("DELETE", item)  # purge
        assert status == 202
        status, _ = estate.call("GET", item)
        assert status == 200  # still there while the operation runs
        estate.advance(HOUR)
    status, body = estate.call("GET", item)
    assert (status, body["error"]["code"]) == (404, "ResourceNotFound")


def test_vault_with_site_recovery_cannot_move(estate: Estate) -> None:
    path = f"/subscriptions/{estate.subscription}/resourceGroups/x/moveResources"
    if estate.sandbox.router.resolve("POST", path) is None:
        pytest.skip("the Microsoft.Resources provider does not serve moveResources yet")
    rg = estate.group("src")
    target = estate.group("dst")
    base = _site_recovery_vault(estate, rg)
    resources = estate.clients.resources(estate.subscription).resources
    move = {"resources": [base], "targetResourceGroup": f"/subscriptions/{estate.subscription}/resourceGroups/{target}"}
    with pytest.raises(HttpResponseError) as caught:
        resources.begin_validate_move_resources(rg, move).result()
    assert "BMSUserErrorVaultMoveNotSupportedWithSiteRecovery" in str(caught.value)
    with pytest.raises(HttpResponseError) as caught:
        resources.begin_move_resources(rg, move).result()
    assert "BMSUserErrorVaultMoveNotSupportedWithSiteRecovery" in str(caught.value)
    assert estate.rs().vaults.get(rg, "asr").id.lower() == base.lower()
