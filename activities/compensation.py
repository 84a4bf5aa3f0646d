"""Activities of the teardown reconciler (``orchestrators/compensation.py``): find the vaults that carry a
teardown marker, and restore one vault whose teardown no longer runs. Thin: the decisions are
``steward.domain.compensation``'s, the calls ``steward.cloud.vault_markers`` and ``TeardownOps``'."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import azure.durable_functions as df

from steward import bootstrap
from steward.cloud.errors import CloudError
from steward.cloud.teardown_errors import TeardownRefusal
from steward.cloud.vault_markers import VaultMarkers
from steward.domain.compensation import MarkedVault, MarkedVaults, TeardownMarker, VaultReconciled, restore_changes
from steward.domain.teardown import VaultRef
from steward.domain.teardown.inputs import MarkedVaultsQuery, VaultToReconcile
from steward.report.events import reconcile_event

LOG = logging.getLogger("steward.teardown")

bp = df.Blueprint()


def _markers() -> VaultMarkers:
    return VaultMarkers(bootstrap.teardown_ops())


@bp.activity_trigger(input_name="payload")
def teardown_find_marked_vaults(payload: dict[str, Any]) -> dict[str, Any]:
    """``{"markers": [{"vaultId", "marker"}], "gaps": [{"subscriptionId", "error"}]}`` over the subscriptions
    named, else the managed ones."""
    named = list(MarkedVaultsQuery.from_record(payload).subscriptions)
    subscriptions = named or list(bootstrap.settings().subscriptions)
    markers = _markers()
    found: list[MarkedVault] = []
    gaps: list[dict[str, str]] = []
    for subscription in subscriptions:
        try:
            found += [MarkedVault(vault_id=v, marker=m) for v, m in markers.find(subscription)]
        except CloudError as error:
            gaps.append({"subscriptionId": subscription, "error": str(error)})
    return MarkedVaults(markers=tuple(found), gaps=tuple(gaps)).to_record()


def reconciliation_record(vault_id: str, marker: TeardownMarker, reason: str) -> dict[str, Any]:
    """What the reconciler says about one marked vault before it restores anything."""
    return VaultReconciled(vault_id=vault_id, instance_id=marker.instance_id, marked_at=marker.to_record()["at"],
                           earlier=dict(marker.earlier), reason=reason).to_record()


def reconciled(record: dict[str, Any], restored: list[dict[str, Any]], marker: str) -> dict[str, Any]:
    """The result once the settings were restored (each ``restored`` entry's ``effect``; ``failed``: the marker
    is kept): also the ``BackupSteward.Teardown.Reconciled`` / ``.ReconcileFailed`` event's data."""
    failed = any(r["effect"] == "failed" for r in restored)
    return replace(VaultReconciled.from_record(record), restored=tuple(restored),
                   effect="failed" if failed else "reconciled", marker=marker).to_record()


@bp.activity_trigger(input_name="payload")
def teardown_reconcile_vault(payload: dict[str, Any]) -> dict[str, Any]:
    """Restore the settings a lost teardown turned off (only ever stronger), remove its marker, publish it."""
    wanted = VaultToReconcile.from_record(payload)
    vault = VaultRef.parse(wanted.vault_id)
    raw = wanted.marker
    marker = TeardownMarker.decode(raw)
    markers = _markers()
    record = reconciliation_record(vault.id, marker, wanted.reason)
    if markers.read(vault) != raw:
        return replace(VaultReconciled.from_record(record), effect="unchanged",
                       detail="the marker changed or went since it was read").to_record()
    current = markers.current_settings(vault)
    if current is None:
        return replace(VaultReconciled.from_record(record), effect="already-gone").to_record()
    restored: list[dict[str, Any]] = []
    for change in restore_changes(marker, current):
        entry: dict[str, Any] = {"setting": change.setting, "from": change.from_value, "to": change.to_value}
        try:
            entry["effect"] = bootstrap.teardown_ops().set_setting(vault, change.setting, change.to_value).effect
        except TeardownRefusal as refusal:
            entry.update(effect="failed", error=refusal.message)
        restored.append(entry)
    failed = any(r["effect"] == "failed" for r in restored)
    result = reconciled(record, restored, "kept" if failed else markers.unmark(vault, marker.instance_id))
    LOG.warning(
        "teardown %s lost with the vault weakened: %s",
        marker.instance_id,
        result["effect"],
        extra={"vault_id": vault.id, "instance_id": marker.instance_id, "effect": result["effect"]},
    )
    try:
        bootstrap.publisher_or_null().publish([reconcile_event(result)])
    except Exception:
        LOG.exception("publishing the reconciliation failed", extra={"vault_id": vault.id})
    return result


ACTIVITY_NAMES = ("teardown_find_marked_vaults", "teardown_reconcile_vault")
