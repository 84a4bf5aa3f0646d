"""Activities of the teardown reconciler (``orchestrators/compensation.py``): find the vaults that carry a
teardown marker, and restore one vault whose teardown no longer runs. Thin: the decisions are
``steward.domain.compensation``'s, the calls ``steward.cloud.vault_markers`` and ``TeardownOps``'."""

from __future__ import annotations

import logging
from typing import Any

import azure.durable_functions as df

from steward import bootstrap
from steward.cloud.errors import CloudError
from steward.cloud.publisher import OutcomeEvent
from steward.cloud.teardown_errors import TeardownRefusal
from steward.cloud.vault_markers import VaultMarkers
from steward.domain.compensation import TeardownMarker, restore_changes
from steward.domain.teardown import VaultRef

LOG = logging.getLogger("steward.teardown")

bp = df.Blueprint()

#: Published for every vault the reconciler restored (or failed to).
EVENT_RECONCILED = "BackupSteward.Teardown.Reconciled"
EVENT_RECONCILE_FAILED = "BackupSteward.Teardown.ReconcileFailed"


def _markers() -> VaultMarkers:
    return VaultMarkers(bootstrap.teardown_ops())


@bp.activity_trigger(input_name="payload")
def teardown_find_marked_vaults(payload: dict[str, Any]) -> dict[str, Any]:
    """``{"markers": [{"vaultId", "marker"}], "gaps": [{"subscriptionId", "error"}]}`` over the subscriptions
    named, else the managed ones."""
    named = [str(s) for s in payload.get("subscriptions") or []]
    subscriptions = named or list(bootstrap.settings().subscriptions)
    markers = _markers()
    found: list[dict[str, str]] = []
    gaps: list[dict[str, str]] = []
    for subscription in subscriptions:
        try:
            found += [{"vaultId": v, "marker": m} for v, m in markers.find(subscription)]
        except CloudError as error:
            gaps.append({"subscriptionId": subscription, "error": str(error)})
    return {"markers": found, "gaps": gaps}


@bp.activity_trigger(input_name="payload")
def teardown_reconcile_vault(payload: dict[str, Any]) -> dict[str, Any]:
    """Restore the settings a lost teardown turned off (only ever stronger), remove its marker, publish it."""
    vault = VaultRef.parse(payload.get("vaultId"))
    raw = str(payload.get("marker") or "")
    marker = TeardownMarker.decode(raw)
    markers = _markers()
    record: dict[str, Any] = {
        "vaultId": vault.id,
        "instanceId": marker.instance_id,
        "markedAt": marker.to_record()["at"],
        "earlier": dict(marker.earlier),
        "reason": str(payload.get("reason") or ""),
        "restored": [],
    }
    if markers.read(vault) != raw:
        return {**record, "effect": "unchanged", "detail": "the marker changed or went since it was read"}
    current = markers.current_settings(vault)
    if current is None:
        return {**record, "effect": "already-gone"}
    restored: list[dict[str, Any]] = []
    for change in restore_changes(marker, current):
        entry: dict[str, Any] = {"setting": change.setting, "from": change.from_value, "to": change.to_value}
        try:
            entry["effect"] = bootstrap.teardown_ops().set_setting(vault, change.setting, change.to_value).effect
        except TeardownRefusal as refusal:
            entry.update(effect="failed", error=refusal.message)
        restored.append(entry)
    failed = any(r["effect"] == "failed" for r in restored)
    removed = "kept" if failed else markers.unmark(vault, marker.instance_id)
    result = {**record, "restored": restored, "effect": "failed" if failed else "reconciled", "marker": removed}
    LOG.warning(
        "teardown %s lost with the vault weakened: %s",
        marker.instance_id,
        result["effect"],
        extra={"vault_id": vault.id, "instance_id": marker.instance_id, "effect": result["effect"]},
    )
    try:
        bootstrap.publisher_or_null().publish(
            [OutcomeEvent(EVENT_RECONCILE_FAILED if failed else EVENT_RECONCILED, vault.id, result)]
        )
    except Exception:
        LOG.exception("publishing the reconciliation failed", extra={"vault_id": vault.id})
    return result


ACTIVITY_NAMES = ("teardown_find_marked_vaults", "teardown_reconcile_vault")
