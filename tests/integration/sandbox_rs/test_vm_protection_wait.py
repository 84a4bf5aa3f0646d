"""The wait the app takes between looks at a VM's protection operation comes from Azure's Retry-After
(RecoveryServicesProtection.begin_enable): ARM sends whole seconds; the sandbox's real-millisecond hint at other
clock scales (``retry-after-ms``) is not a wait a durable timer can use and is not read."""

from __future__ import annotations

from steward.cloud.protection import RecoveryServicesProtection
from tests.integration.sandbox_rs.conftest import TIMING, Estate


def test_begin_enable_hands_back_azures_retry_after(estate: Estate) -> None:
    rg = estate.group()
    vault = estate.vault(rg)
    adapter = RecoveryServicesProtection(estate.clients)
    operations = estate.sandbox.operations
    mode = operations.retry_after_mode
    try:
        operations.retry_after_mode = "azure"  # what ARM sends: Retry-After in whole seconds
        started = adapter.begin_enable(vault.id, estate.vm(rg, "azurewait"), f"{vault.id}/backupPolicies/DefaultPolicy")
        assert started["operation"]
        assert started["retry_after"] == TIMING.retry_after
        operations.retry_after_mode = "fast"  # the sandbox's real-millisecond hint: no wait the app can use
        started = adapter.begin_enable(vault.id, estate.vm(rg, "fastwait"), f"{vault.id}/backupPolicies/DefaultPolicy")
        assert started["operation"] and started["retry_after"] is None
    finally:
        operations.retry_after_mode = mode
