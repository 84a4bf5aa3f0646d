"""VM discovery before protection (issue #13 item 1).

The sources disagree: Microsoft's quickstart template (create a VM and protect it in one deployment) and Terraform
PUT the protected item directly, so by default the sandbox accepts a direct PUT. The CLI's ``enable-for-vm``
(``_get_protectable_item_for_vm``) and the REST guide ("Discover unprotected Azure VMs") refresh the vault's
containers first, and azure-sdk-for-python#22232 saw a new VM listed as protectable only ~30 min later without a
refresh. ``PropagationConfig.vm_discovery`` (INFERRED, off by default) makes the PUT refuse a VM the vault has not
discovered with the refusal Terraform users saw for an unknown container (``BMSUserErrorInvalidConfigureProtection
Request``, hashicorp/terraform-provider-azurerm#2143), so the app's refresh-and-retry path can be exercised.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError

from sandbox.arm import ArmSandbox, PropagationConfig
from tests.integration.sandbox_rs.conftest import HOUR, Estate, error_code


@pytest.fixture
def discovery(sandbox: ArmSandbox) -> Iterator[ArmSandbox]:
    sandbox.configure_propagation(PropagationConfig(vm_discovery=True, vm_auto_discovery_seconds=1800.0))
    try:
        yield sandbox
    finally:
        sandbox.configure_propagation(PropagationConfig())


def test_by_default_a_vm_is_protected_by_a_direct_put(estate: Estate) -> None:
    rg = estate.group()
    estate.vault(rg)
    vm = estate.vm(rg, "direct")
    assert estate.protect_vm(rg, "rsv", vm).properties["protectionState"] in {"IRPending", "Protected"}


def test_with_discovery_an_undiscovered_vm_is_refused_until_a_refresh_found_it(
    estate: Estate, discovery: ArmSandbox
) -> None:
    rg = estate.group()
    estate.vault(rg)
    vm = estate.vm(rg, "fresh")
    with pytest.raises(HttpResponseError) as caught:
        estate.protect_vm(rg, "rsv", vm)
    assert error_code(caught.value) == "BMSUserErrorInvalidConfigureProtectionRequest"
    assert estate.provider.model.vaults  # nothing half-made: no item for the VM
    assert not [i for v in estate.provider.model.vaults.values() for i in v.items.values() if i.source_id == vm]

    estate.rsb().protection_containers.refresh("rsv", rg, "Azure")
    estate.advance(HOUR)
    assert estate.protect_vm(rg, "rsv", vm).properties["protectionState"] in {"IRPending", "Protected"}


def test_with_discovery_an_older_vm_is_discovered_without_a_refresh(estate: Estate, discovery: ArmSandbox) -> None:
    rg = estate.group()
    estate.vault(rg)
    vm = estate.vm(rg, "older")
    record = estate.sandbox.store.get(vm)
    assert record is not None
    born = estate.sandbox.clock.now() - timedelta(minutes=31)
    record["properties"]["timeCreated"] = born.isoformat().replace("+00:00", "Z")
    estate.sandbox.store.put(record)
    assert estate.protect_vm(rg, "rsv", vm).properties["protectionState"] in {"IRPending", "Protected"}


def test_a_vm_still_creating_is_not_discovered(estate: Estate, discovery: ArmSandbox) -> None:
    rg = estate.group()
    estate.vault(rg)
    vm = estate.vm(rg, "creating")
    record = estate.sandbox.store.get(vm)
    assert record is not None
    record["properties"]["provisioningState"] = "Creating"
    estate.sandbox.store.put(record)
    estate.rsb().protection_containers.refresh("rsv", rg, "Azure")
    estate.advance(HOUR)
    found = list(estate.rsb().backup_protectable_items.list("rsv", rg, filter="backupManagementType eq 'AzureIaasVM'"))
    assert "creating" not in {i.properties["friendlyName"] for i in found}
