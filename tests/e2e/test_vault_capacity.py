"""Vaults fill up (issue 19 item 1), end to end on the local host: the sandbox enforces Azure's per-vault limits
(lowered here: a vault of 2 VMs stands for one of 1,000) and the real app meets them."""

from __future__ import annotations

from sandbox.arm.providers import recoveryservices_errors as err
from sandbox.arm.providers.recoveryservices import recovery_services
from sandbox.arm.providers.recoveryservices_model import VaultLimits
from steward.cloud.protection import RecoveryServicesProtection
from tests.e2e.conftest import Harness

WEU = "westeurope"


def _small_vaults(h: Harness, vms: int) -> None:
    recovery_services(h.sandbox).model.limits = VaultLimits(vms=vms)


def test_a_regions_default_vault_takes_vms_until_azure_refuses_then_protection_fails(harness: Harness) -> None:
    """A rule naming one vault (here the regional default) behaves as before vault sets: the vault takes VMs until
    Azure refuses, and the refused VM's outcome is Failed with Azure's code; nothing spills anywhere else."""
    h = harness
    _small_vaults(h, 2)
    est = h.estate()
    est.resource_group("rg-app", WEU)
    rsv = est.recovery_services_vault("rg-app", "rsv-weu", WEU)
    spare = est.recovery_services_vault("rg-app", "rsv-spare", WEU, default=False)
    first = [est.vm("rg-app", f"vm-{n}", WEU) for n in (1, 2)]
    for vm in first:
        h.wait_outcome(vm, "Protected")
    third = est.vm("rg-app", "vm-3", WEU)
    outcome = h.wait_outcome(third, "Failed", timeout=60)
    assert err.VAULT_VM_LIMIT.code in outcome["reason"]
    assert outcome["vaultId"].lower() == rsv.lower()
    rs = RecoveryServicesProtection(h.clients)
    assert len(rs.vm_items(rsv)) == 2
    assert rs.vm_items(spare) == []  # a rule naming one vault never spills
