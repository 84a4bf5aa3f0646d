"""Activities of the vault teardown saga: one Azure fact or one effect on one target each.

Inputs and outputs are JSON records (``steward.domain.teardown``). Every effect is idempotent (the adapter
reads first). Transient failures raise, so the orchestration's retry options retry them; permanent refusals
come back as data, ``{"ok": false, "refusal": {"kind", "code", "message"}}``, because an activity's
exception reaches the orchestrator only as text and the saga decides on the kind (park for MUA, block on
immutability or permission, compensate on anything else).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import azure.durable_functions as df

from steward import bootstrap, telemetry
from steward.cloud.errors import AzureRefusal
from steward.cloud.teardown_errors import TeardownRefusal
from steward.cloud.teardown_ops import Effect, OperationPending, TeardownOps, refusal_of
from steward.cloud.vault_markers import VaultMarkers
from steward.domain.compensation import InvalidMarker, TeardownMarker
from steward.domain.teardown import (
    BackupInstance,
    BackupItem,
    BackupPolicy,
    PrivateEndpointConnection,
    ProtectionContainer,
    ProtectionIntent,
    RegisteredServer,
    SettingChange,
    SiteRecoveryObject,
    Target,
    VaultRef,
    target_from_record,
)
from steward.domain.teardown.inputs import (
    OperationToLook,
    ReportToRecord,
    SettingToSet,
    TargetStep,
    TeardownVault,
    VaultMarking,
)
from steward.domain.teardown.results import (
    OperationLook,
    ProtectionsRestored,
    Refusal,
    ReportStored,
    StepResult,
    TeardownLimits,
    VaultMarked,
    VaultUnmarked,
)
from steward.report.events import teardown_outcome_event
from steward.report.store import ReportStore
from steward.report.teardown import render_html, save_report
from steward.settings import Settings

LOG = logging.getLogger("steward.teardown")

bp = df.Blueprint()


def settings() -> Settings:
    return bootstrap.settings()


def _ops() -> TeardownOps:
    return bootstrap.teardown_ops()


def _store() -> ReportStore:
    return bootstrap.report_store()


def _publisher() -> Any:
    return bootstrap.publisher_or_null()


def _effect(payload: Mapping[str, Any], action: Callable[[TeardownOps, VaultRef, Any], Effect]) -> dict[str, Any]:
    step = TargetStep.from_record(payload)
    vault = VaultRef.parse(step.vault_id)
    target: Target = target_from_record(step.target)
    try:
        effect = action(_ops(), vault, target)
    except OperationPending as pending:
        # sent; the orchestrator follows the operation on durable timers (teardown_operation_status)
        return StepResult(ok=True, pending=pending.operation, target=target.to_record()).to_record()
    except TeardownRefusal as refusal:
        LOG.warning(
            "teardown step refused: %s",
            refusal.message,
            extra={"vault_id": vault.id, "target": target.id, "refusal": refusal.kind.value},
        )
        return StepResult(ok=False, refusal=_refusal(refusal), target=target.to_record()).to_record()
    LOG.info("teardown %s %s", effect.effect, target.id, extra={"vault_id": vault.id, "effect": effect.effect})
    return StepResult(ok=True, effect=effect.to_record()).to_record()


def _refusal(refusal: TeardownRefusal | AzureRefusal) -> Refusal:
    return Refusal.from_record((refusal if isinstance(refusal, TeardownRefusal) else refusal_of(refusal)).to_record())


# ------------------------------------------------------------------------------------------------ facts


@bp.activity_trigger(input_name="payload")
def teardown_inventory(payload: dict[str, Any]) -> dict[str, Any]:
    """Everything the vault holds (paged lists), as a ``VaultInventory`` record."""
    vault = VaultRef.parse(TeardownVault.from_record(payload).vault_id)
    inventory = _ops().inventory(vault, datetime.now(UTC))
    return inventory.to_record()


@bp.activity_trigger(input_name="payload")
def teardown_limits(payload: dict[str, Any]) -> dict[str, Any]:
    """The settings the orchestrator needs (it may not read the environment)."""
    del payload
    return limits_record(settings())


def limits_record(current: Settings) -> dict[str, Any]:
    """What the orchestrator needs (it may not read the environment itself): counts, four eyes (0/1), and the
    allowed principals (a failed delete's ``auto`` applies only to an allowed deleting user)."""
    return TeardownLimits(
        max_parallel_writes=current.max_parallel_writes,
        approval_timeout_hours=current.teardown_approval_timeout_hours,
        wait_chunk_hours=current.teardown_wait_chunk_hours,
        four_eyes=int(current.teardown_four_eyes),
        allowed_principals=tuple(sorted(p.lower() for p in current.teardown_allowed_principals)),
    ).to_record()


# ------------------------------------------------------------------------------------------------ settings


@bp.activity_trigger(input_name="payload")
def teardown_set_setting(payload: dict[str, Any]) -> dict[str, Any]:
    """Set one vault setting (``softDelete``, ``enhancedSecurity``, ``immutability``) to ``value``."""
    wanted = SettingToSet.from_record(payload)
    vault = VaultRef.parse(wanted.vault_id)
    setting, value = wanted.setting, wanted.value
    try:
        effect = _ops().set_setting(vault, setting, value)
    except TeardownRefusal as refusal:
        return StepResult(ok=False, refusal=_refusal(refusal), setting=setting).to_record()
    return StepResult(ok=True, effect=effect.to_record()).to_record()


@bp.activity_trigger(input_name="payload")
def teardown_mark_vault(payload: dict[str, Any]) -> dict[str, Any]:
    """Before the run's first step: the marker tag on the vault (instance, now, the settings the plan turns off,
    as they are), taking over one a lost teardown left (its earlier values win and are returned as
    ``inherited``). Nothing to turn off and no marker: ``none``, nothing written. The time is this host's clock,
    as the reconciler's snapshot of running teardowns is (both wall clocks)."""
    marking = VaultMarking.from_record(payload)
    vault = VaultRef.parse(marking.vault_id)
    changes = [SettingChange.from_record(c) for c in marking.changes]
    markers = VaultMarkers(_ops())
    try:
        if not changes and markers.read(vault) is None:
            return VaultMarked(ok=True, effect="none").to_record()
        marker = TeardownMarker.for_changes(marking.instance_id, datetime.now(UTC), changes)
        effect, carried = markers.mark(vault, marker)
    except InvalidMarker as error:
        return VaultMarked(ok=False, refusal=Refusal(kind="refused", message=str(error))).to_record()
    except AzureRefusal as error:
        return VaultMarked(ok=False, refusal=_refusal(error)).to_record()
    inherited = sorted(set(dict(carried.earlier)) - {c.setting for c in changes})
    LOG.info("teardown marker %s", effect, extra={"vault_id": vault.id, "effect": effect})
    return VaultMarked(ok=True, effect=effect, inherited=tuple(inherited), marker=carried.to_record()).to_record()


@bp.activity_trigger(input_name="payload")
def teardown_unmark_vault(payload: dict[str, Any]) -> dict[str, Any]:
    """The saga ended (after compensation): remove the marker this instance wrote."""
    marking = VaultMarking.from_record(payload)
    vault = VaultRef.parse(marking.vault_id)
    effect = VaultMarkers(_ops()).unmark(vault, marking.instance_id or None)
    return VaultUnmarked(ok=True, effect=effect).to_record()


@bp.activity_trigger(input_name="payload")
def teardown_restore_protections(payload: dict[str, Any]) -> dict[str, Any]:
    """Compensation: put back every setting the saga turned off (``changes`` in reverse order)."""
    marking = VaultMarking.from_record(payload)
    vault = VaultRef.parse(marking.vault_id)
    restored = []
    for change in reversed(marking.changes):
        setting, value = str(change.get("setting")), str(change.get("from"))
        try:
            effect = _ops().set_setting(vault, setting, value)
            restored.append({"setting": setting, "to": value, "effect": effect.effect})
        except TeardownRefusal as refusal:
            restored.append({"setting": setting, "to": value, "effect": "failed", "error": refusal.message})
    return ProtectionsRestored(ok=all(r["effect"] != "failed" for r in restored), restored=tuple(restored)).to_record()


# ------------------------------------------------------------------------------------------------ items


def _item(target: Any) -> BackupItem:
    if not isinstance(target, BackupItem):
        raise TypeError(f"expected a backup item, got {type(target).__name__}")
    return target


@bp.activity_trigger(input_name="payload")
def teardown_undelete_item(payload: dict[str, Any]) -> dict[str, Any]:
    return _effect(payload, lambda ops, vault, t: ops.undelete_item(vault, _item(t)))


@bp.activity_trigger(input_name="payload")
def teardown_delete_item(payload: dict[str, Any]) -> dict[str, Any]:
    """Stop protection with delete data (any workload kind). Sends only: the orchestrator awaits."""
    return _effect(payload, lambda ops, vault, t: ops.delete_item(vault, _item(t), wait=False))


@bp.activity_trigger(input_name="payload")
def teardown_operation_status(payload: dict[str, Any]) -> dict[str, Any]:
    """One look at an operation an effect activity started: ``{"ok", "state": "running"|"succeeded",
    "retryAfter"}``, or the refusal when it ended badly (transient failures raise and are retried)."""
    look = OperationToLook.from_record(payload)
    vault = VaultRef.parse(look.vault_id)
    try:
        return OperationLook.from_record(
            {**_ops().operation_status(vault, dict(look.operation)), "ok": True}).to_record()
    except TeardownRefusal as refusal:
        return OperationLook(ok=False, refusal=_refusal(refusal)).to_record()


@bp.activity_trigger(input_name="payload")
def teardown_complete_operation(payload: dict[str, Any]) -> dict[str, Any]:
    """After the operation succeeded: what it did to its target (read back), as the effect activity reports."""
    operation = dict(TargetStep.from_record(payload).operation)
    return _effect(payload, lambda ops, vault, t: ops.complete(vault, t, operation))


@bp.activity_trigger(input_name="payload")
def teardown_disable_intent(payload: dict[str, Any]) -> dict[str, Any]:
    def act(ops: TeardownOps, vault: VaultRef, target: Any) -> Effect:
        assert isinstance(target, ProtectionIntent)
        return ops.disable_intent(vault, target)

    return _effect(payload, act)


@bp.activity_trigger(input_name="payload")
def teardown_unregister_container(payload: dict[str, Any]) -> dict[str, Any]:
    def act(ops: TeardownOps, vault: VaultRef, target: Any) -> Effect:
        assert isinstance(target, ProtectionContainer)
        return ops.unregister_container(vault, target, wait=False)

    return _effect(payload, act)


@bp.activity_trigger(input_name="payload")
def teardown_unregister_server(payload: dict[str, Any]) -> dict[str, Any]:
    """Unregister a MARS agent, MABS or DPM server (its items go with it)."""

    def act(ops: TeardownOps, vault: VaultRef, target: Any) -> Effect:
        assert isinstance(target, RegisteredServer | ProtectionContainer)
        return ops.unregister_server(vault, target)

    return _effect(payload, act)


@bp.activity_trigger(input_name="payload")
def teardown_remove_site_recovery(payload: dict[str, Any]) -> dict[str, Any]:
    def act(ops: TeardownOps, vault: VaultRef, target: Any) -> Effect:
        assert isinstance(target, SiteRecoveryObject)
        return ops.remove_site_recovery(vault, target, wait=False)

    return _effect(payload, act)


@bp.activity_trigger(input_name="payload")
def teardown_remove_private_endpoint(payload: dict[str, Any]) -> dict[str, Any]:
    def act(ops: TeardownOps, vault: VaultRef, target: Any) -> Effect:
        assert isinstance(target, PrivateEndpointConnection)
        # the endpoint itself is deleted only where the app may act (STEWARD_SUBSCRIPTIONS)
        return ops.remove_private_endpoint(vault, target, bootstrap.settings().subscriptions)

    return _effect(payload, act)


# ------------------------------------------------------------------------------------------------ Backup vault


def _instance(target: Any) -> BackupInstance:
    assert isinstance(target, BackupInstance)
    return target


@bp.activity_trigger(input_name="payload")
def teardown_undelete_instance(payload: dict[str, Any]) -> dict[str, Any]:
    return _effect(payload, lambda ops, vault, t: ops.undelete_instance(vault, _instance(t)))


@bp.activity_trigger(input_name="payload")
def teardown_stop_instance(payload: dict[str, Any]) -> dict[str, Any]:
    return _effect(payload, lambda ops, vault, t: ops.stop_instance(vault, _instance(t), wait=False))


@bp.activity_trigger(input_name="payload")
def teardown_delete_instance(payload: dict[str, Any]) -> dict[str, Any]:
    return _effect(payload, lambda ops, vault, t: ops.delete_instance(vault, _instance(t), wait=False))


@bp.activity_trigger(input_name="payload")
def teardown_delete_policy(payload: dict[str, Any]) -> dict[str, Any]:
    def act(ops: TeardownOps, vault: VaultRef, target: Any) -> Effect:
        assert isinstance(target, BackupPolicy)
        return ops.delete_policy(vault, target)

    return _effect(payload, act)


# ------------------------------------------------------------------------------------------------ vault


@bp.activity_trigger(input_name="payload")
def teardown_delete_vault(payload: dict[str, Any]) -> dict[str, Any]:
    vault = VaultRef.parse(TeardownVault.from_record(payload).vault_id)
    # the cached vault list of its subscription would still offer it to protections (steward/cloud/arm_cache.py)
    bootstrap.forget_vaults(vault.kind, vault.subscription_id)
    try:
        effect = _ops().delete_vault(vault, wait=False)
    except OperationPending as pending:  # the orchestrator follows the delete on durable timers
        target = {"type": "vault", "id": vault.id, "name": vault.name}
        return StepResult(ok=True, pending=pending.operation, target=target).to_record()
    except TeardownRefusal as refusal:
        return StepResult(ok=False, refusal=_refusal(refusal)).to_record()
    return StepResult(ok=True, effect=effect.to_record()).to_record()


# ------------------------------------------------------------------------------------------------ record


@bp.activity_trigger(input_name="payload")
def teardown_record_report(payload: dict[str, Any]) -> dict[str, Any]:
    """Store the final report (JSON + HTML) and publish ``BackupSteward.Teardown.<Outcome>``."""
    wanted = ReportToRecord.from_record(payload)
    report = dict(wanted.report)
    name = str(wanted.name or report.get("instanceId") or "teardown")
    stored = save_report(_store(), name, report)
    telemetry.record_teardown(report)
    published = 0
    try:
        published = _publisher().publish([teardown_outcome_event(report, stored.to_record(), name)])
    except Exception:
        LOG.exception("publishing the teardown outcome failed", extra={"instance_id": report.get("instanceId")})
    return ReportStored(json_url=stored.json_url, html_url=stored.html_url, published=published,
                        html_bytes=len(render_html(report))).to_record()


# Activity names the orchestrator calls (the function names above; the host registers them by name).
ACTIVITY_NAMES = (
    "teardown_inventory",
    "teardown_limits",
    "teardown_set_setting",
    "teardown_mark_vault",
    "teardown_unmark_vault",
    "teardown_restore_protections",
    "teardown_undelete_item",
    "teardown_delete_item",
    "teardown_operation_status",
    "teardown_complete_operation",
    "teardown_disable_intent",
    "teardown_unregister_container",
    "teardown_unregister_server",
    "teardown_remove_site_recovery",
    "teardown_remove_private_endpoint",
    "teardown_undelete_instance",
    "teardown_stop_instance",
    "teardown_delete_instance",
    "teardown_delete_policy",
    "teardown_delete_vault",
    "teardown_record_report",
)
