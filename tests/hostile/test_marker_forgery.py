"""A forged teardown marker (issue 14, crash-proof compensation): anyone who may write a vault's tags can plant
``backup-steward:teardown-restore`` before a teardown runs. The reconciler only ever strengthens a vault, so a
forged marker cannot make it weaken one; but the saga takes over a marker it finds (its "earlier" values win),
so a planted marker that says the protections were already off - or one that names the teardown's own,
predictable instance id, or claims an irreversible ``AlwaysON`` the reconciler never sets - used to leave
nothing to restore once the task hub is lost: the vault stayed weak (the tests fail on that code).

The marker is written and read on the ARM sandbox through the app's adapter (``VaultMarkers``, tags at the vault
scope), the vault weakened as the saga does (``TeardownOps.set_setting``), and the restore decided by the
reconciler's pure code (``restore_changes``) from what the vault then carries."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from sandbox.arm import ArmSandbox
from steward.cloud.clients import CloudClients
from steward.cloud.teardown_ops import TeardownOps
from steward.cloud.vault_markers import VaultMarkers
from steward.domain.compensation import MARKER_TAG, TeardownMarker, restore_changes
from steward.domain.teardown import SettingChange, VaultRef
from tests.integration.teardown.conftest import Estate, start_sandbox

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ArmSandbox]:
    running = start_sandbox()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def estate(sandbox: ArmSandbox) -> Estate:
    return Estate(sandbox, CloudClients(dataclasses.replace(sandbox.cloud_target(), polling_interval=0.05)))


@pytest.fixture(scope="module")
def ops(estate: Estate) -> TeardownOps:
    return TeardownOps(estate.clients)


def _plant(estate: Estate, vault: VaultRef, value: str) -> None:
    """What a user with tag write (Tag Contributor, Contributor) can do to any vault."""
    tags = estate.clients.resources(estate.subscription).tags
    tags.begin_update_at_scope(vault.id, {"operation": "Merge", "properties": {"tags": {MARKER_TAG: value}}}).result()


def _forged(instance_id: str, **earlier: str) -> str:
    return json.dumps({"v": 1, "i": instance_id, "t": "2026-01-01T00:00:00Z", "s": earlier}, separators=(",", ":"))


def _teardown_weakens(estate: Estate, ops: TeardownOps, forged: str, instance_id: str) -> dict[str, str]:
    """A vault with soft delete and enhanced security on and a planted marker; a teardown marks it (as
    ``teardown_mark_vault`` does) and turns both off; the task hub is then lost. What the reconciler restores."""
    rg = estate.group()
    vault = VaultRef.parse(estate.rs_vault(rg, soft_delete="Enabled", enhanced="Enabled"))
    _plant(estate, vault, forged)
    markers = VaultMarkers(ops)
    changes = [
        SettingChange("softDelete", "Enabled", "Disabled"),
        SettingChange("enhancedSecurity", "Enabled", "Disabled"),
    ]
    markers.mark(vault, TeardownMarker.for_changes(instance_id, AT, changes))
    for change in changes:
        ops.set_setting(vault, change.setting, change.to_value)
    current = markers.current_settings(vault)
    assert current is not None and current["softDelete"] == "Disabled" and current["enhancedSecurity"] == "Disabled"
    carried = markers.read(vault)
    assert carried is not None, "the vault lost its marker"
    return {c.setting: c.to_value for c in restore_changes(TeardownMarker.decode(carried), current)}


def test_a_planted_marker_saying_protections_were_off_does_not_cancel_the_restore(
    estate: Estate, ops: TeardownOps
) -> None:
    forged = _forged("teardown-planted-by-someone", softDelete="Disabled", enhancedSecurity="Disabled")
    restored = _teardown_weakens(estate, ops, forged, "teardown-rsv-0123456789abcdef-run-00112233")
    assert restored == {"softDelete": "Enabled", "enhancedSecurity": "Enabled"}


def test_a_planted_marker_with_the_teardowns_own_instance_id_does_not_cancel_the_restore(
    estate: Estate, ops: TeardownOps
) -> None:
    # instance ids are deterministic (vault + fingerprint) and shown by every status route: easy to predict
    instance_id = "teardown-rsv-0123456789abcdef-run-44556677"
    forged = _forged(instance_id, softDelete="Disabled", enhancedSecurity="Disabled")
    restored = _teardown_weakens(estate, ops, forged, instance_id)
    assert restored == {"softDelete": "Enabled", "enhancedSecurity": "Enabled"}


def test_a_planted_irreversible_earlier_value_does_not_cancel_the_restore(estate: Estate, ops: TeardownOps) -> None:
    # the reconciler never sets AlwaysON (irreversible): a marker claiming it must still restore what it can
    forged = _forged("teardown-planted-by-someone", softDelete="AlwaysON", enhancedSecurity="AlwaysON")
    restored = _teardown_weakens(estate, ops, forged, "teardown-rsv-0123456789abcdef-run-8899aabb")
    assert restored == {"softDelete": "Enabled", "enhancedSecurity": "Enabled"}
