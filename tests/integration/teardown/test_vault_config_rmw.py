"""The Recovery Services vault config is one resource: a PUT replaces it (ARM's resource provider contract; the
spec does not say otherwise), so the teardown reads it and sends it back whole with one field changed, as the
Azure CLI's ``set_backup_properties`` does, and compensation puts back exactly the earlier values."""

from __future__ import annotations

from typing import Any

from steward.cloud.teardown_ops import TeardownOps
from steward.domain.teardown import VaultRef

from .conftest import Estate


def _config(estate: Estate, rg: str) -> dict[str, Any]:
    props = estate.rsb.backup_resource_vault_configs.get("rsv", rg).properties
    return {
        "softDelete": props.soft_delete_feature_state,
        "enhancedSecurity": props.enhanced_security_state,
        "days": props.soft_delete_retention_period_in_days,
    }


def test_the_sandbox_put_replaces_the_config_and_patch_merges(estate: Estate) -> None:
    rg = estate.group()
    estate.rs_vault(rg, soft_delete="Enabled", enhanced="Disabled", days=30)
    estate.rsb.backup_resource_vault_configs.put("rsv", rg, {"properties": {"softDeleteFeatureState": "Disabled"}})
    # the omitted properties went back to their defaults (a new vault's)
    assert _config(estate, rg) == {"softDelete": "Disabled", "enhancedSecurity": "Enabled", "days": 14}
    estate.rsb.backup_resource_vault_configs.update(
        "rsv", rg, {"properties": {"softDeleteRetentionPeriodInDays": 45}}
    )
    assert _config(estate, rg) == {"softDelete": "Disabled", "enhancedSecurity": "Enabled", "days": 45}


def test_disabling_one_setting_keeps_the_others_as_they_were(estate: Estate, ops: TeardownOps) -> None:
    rg = estate.group()
    vault = VaultRef.parse(estate.rs_vault(rg, soft_delete="Enabled", enhanced="Enabled", days=30))
    assert ops.set_setting(vault, "softDelete", "Disabled").effect == "changed"
    assert _config(estate, rg) == {"softDelete": "Disabled", "enhancedSecurity": "Enabled", "days": 30}
    assert ops.set_setting(vault, "enhancedSecurity", "Disabled").effect == "changed"
    # a partial PUT would have turned soft delete back on and reset the retention to 14 days
    assert _config(estate, rg) == {"softDelete": "Disabled", "enhancedSecurity": "Disabled", "days": 30}


def test_restoring_soft_delete_puts_back_exactly_the_earlier_values(estate: Estate, ops: TeardownOps) -> None:
    rg = estate.group()
    vault = VaultRef.parse(estate.rs_vault(rg, soft_delete="Enabled", enhanced="Disabled", days=60))
    ops.set_setting(vault, "softDelete", "Disabled")
    assert ops.set_setting(vault, "softDelete", "Enabled").effect == "changed"
    # enhanced security was off before the teardown and stays off; the retention is the vault's own
    assert _config(estate, rg) == {"softDelete": "Enabled", "enhancedSecurity": "Disabled", "days": 60}
