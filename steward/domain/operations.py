"""Backup-vault protection's long-running operations, followed by the orchestrator on durable timers (issue 15 item 1).

``validateForBackup`` (POST) and the backup instance PUT are asynchronous in Azure: they answer 202 / 201 with an
``Azure-AsyncOperation`` status URL and a ``Retry-After`` (S-DP 2025-07-01 ``ValidateForBackup.json``,
``PutBackupInstance.json``; the ARM async-operation contract: wait ``Retry-After`` seconds before each look). An
activity starts one (``protect_in_backup_vault``, ``begin_backup_instance``) and returns at once; the orchestrator
waits ``Retry-After`` on a durable timer and asks for the status (``backup_operation_status``); once the instance
PUT has ended, the same activity GETs the instance: that read is the verification. No activity holds a worker slot
for the operation's minute (an SDK poller in the activity did, issue 15: ~92 s per protection).

These records are what those activities return; the functions below turn an operation's end into the result
``protect_in_backup_vault`` returned when it followed both operations itself (``{"ok", "instance", "created",
"repaired", "failure", "code", "message"}``), so the RBAC and reconfiguration waits around it are unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Final

from steward.domain import protection_flow, vault_defaults
from steward.domain.errors import SERVER_SIDE_CODES
from steward.domain.ids import ResourceId
from steward.domain.protection_results import VaultRecord
from steward.domain.records import Record

#: validateForBackup's refusal for a datasource a backup instance already protects (D-diskrest)
DATASOURCE_ALREADY_PROTECTED: Final = "UserErrorDppDatasourceAlreadyProtected"
#: an operation runs while its status is none of ARM's terminal values, in any case (``InProgress``, Data Protection's
#: ``Inprogress``, ``Accepted``, ``Running``...; a 202 on a ``Location`` URL reads as InProgress):
#: ``protection_flow.operation_running``
#: the wait when Azure names none: Azure names one on both operations (S-DP 2025-07-01 ValidateForBackup.json and
#: PutBackupInstance.json: ``Retry-After: 60``); the sandbox at a clock scale other than 1 sends its hint in real
#: milliseconds instead, which no durable timer can use. 10 s is a choice (**inferred**: short enough to cost
#: little latency, a few more looks at most)
DEFAULT_WAIT_SECONDS: Final = 10
#: a ``Retry-After`` is obeyed within these bounds (seconds)
WAIT_BOUNDS: Final = (1, 300)
#: how long one operation is followed before it counts as not finished (Azure time)
WINDOW_SECONDS: Final = 20 * 60
#: an operation that failed on Azure's side (SERVER_SIDE_CODES) starts again this many times at most
STARTS: Final = 3
#: the refusal code when an operation did not end within WINDOW_SECONDS
NOT_FINISHED: Final = "OperationNotFinished"
#: the refusal code when the instance PUT's operation succeeded but no instance reads back
INSTANCE_MISSING: Final = "BackupInstanceMissing"
#: the refusal code when a vault the app created does not read back as created (``vault_defaults.unmet``), or not
#: at all
VAULT_NOT_AS_CREATED: Final = "VaultNotAsCreated"


class Step(StrEnum):
    """Which operation a started record follows."""

    VALIDATE = "validate"
    INSTANCE = "instance"
    STOP = "stop"  # stop protection, recovery points kept (a Recovery Services item re-PUT, a Backup vault POST)
    VAULT = "vault"  # a vault the app creates (STEWARD_AUTO_CREATE_VAULTS, a vault set's next vault)


@dataclass(frozen=True)
class OperationStarted(Record):
    """Azure accepted ``validateForBackup`` or the instance PUT. ``operation``: the status URL to look at ("" when
    Azure answered at once: done); ``retry_after``: its ``Retry-After`` (0: none named); ``body``: the instance
    body validated (the PUT sends it); ``repaired``: the failure of an instance of ours being configured again."""

    kind: ClassVar[str] = "operationStarted"
    tag_key: ClassVar[str] = "kind"
    type_name: ClassVar[str | None] = kind
    step: Step
    operation: str = ""
    retry_after: int = 0
    body: Mapping[str, Any] = field(default_factory=dict)
    repaired: Mapping[str, Any] = field(default_factory=dict)
    #: what Azure answered at once when there is no operation to follow (the instance, for a PUT answered 200)
    instance: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OperationState(Record):
    """One look at an operation: its status, its error once it failed, the ``Retry-After`` of this answer (0:
    none), and, once an instance PUT ended (or a validation was refused because an instance exists), the
    instance as it reads back (empty: none)."""

    status: str
    error: Mapping[str, Any] = field(default_factory=dict)
    retry_after: int = 0
    instance: Mapping[str, Any] = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return protection_flow.operation_running(self.status)

    @property
    def succeeded(self) -> bool:
        return protection_flow.operation_status(self.status) == "Succeeded"

    @property
    def code(self) -> str:
        return str(self.error.get("code") or "")


def started(result: Mapping[str, Any]) -> OperationStarted | None:
    """The operation a start activity's result names, or None for a final result (a refusal, an instance already
    protecting, or a result recorded before the operations were followed here: replays read it as final)."""
    if result.get(OperationStarted.tag_key) != OperationStarted.kind:
        return None
    return OperationStarted.from_record(result)


def wait_seconds(retry_after: int, *, expected: float = 0.0) -> int:
    """Seconds to wait before the next look: Azure's ``Retry-After`` (bounded) or DEFAULT_WAIT_SECONDS; never less
    than ``expected`` (how long the same operation took before in this run: waiting longer than ``Retry-After``
    is allowed, and a look before it ends is a request spent for nothing)."""
    wait = DEFAULT_WAIT_SECONDS if retry_after <= 0 else min(max(retry_after, WAIT_BOUNDS[0]), WAIT_BOUNDS[1])
    return int(max(wait, min(expected, WAIT_BOUNDS[1])))


def reads_instance(step: Step, state: OperationState) -> bool:
    """Whether the status look also GETs the instance: once the PUT ended (the verification, or what a failed
    configuration left), or when validation was refused because an instance already protects the datasource."""
    if state.running:
        return False
    if step is Step.INSTANCE:
        return True
    return not state.succeeded and state.code == DATASOURCE_ALREADY_PROTECTED


def restart(state: OperationState) -> bool:
    """The operation failed on Azure's own side (not a refusal): worth starting again."""
    return not state.running and not state.succeeded and state.code in SERVER_SIDE_CODES


def refusal(state: OperationState) -> dict[str, Any]:
    """A failed operation as the ``{"ok": false, "code", "message"}`` record activities return for refusals."""
    error = state.error
    return {"ok": False, "code": state.code or state.status,
            "message": str(error.get("message") or f"the operation ended {state.status}")}


_WHAT: Final = {Step.VALIDATE: "validateForBackup", Step.INSTANCE: "the backup instance PUT",
                Step.STOP: "the stop protection", Step.VAULT: "the vault PUT"}


def not_finished(step: Step) -> dict[str, Any]:
    what = _WHAT[step]
    return {"ok": False, "code": NOT_FINISHED,
            "message": f"Azure's {what} operation did not finish within {WINDOW_SECONDS // 60} minutes"}


@dataclass(frozen=True)
class AfterValidation:
    """What follows a validation that ended: ``final`` is the result when nothing more is to be done (an instance
    of ours already protects, or a refusal); otherwise the instance is PUT, ``repaired`` naming the failure of an
    instance of ours that is configured again."""

    final: dict[str, Any] | None = None
    repaired: Mapping[str, Any] = field(default_factory=dict)


def after_validation(state: OperationState) -> AfterValidation:
    """Validation refuses a datasource an instance already protects; only then is the instance read (ours and
    healthy: AlreadyProtected; ours and failed: configured again; none of ours: the refusal stands, a conflict)."""
    if state.succeeded:
        return AfterValidation()
    if state.code != DATASOURCE_ALREADY_PROTECTED or not state.instance:
        return AfterValidation(final=refusal(state))
    failed = protection_flow.instance_failure(state.instance)
    if failed is None:
        return AfterValidation(final={"ok": True, "instance": dict(state.instance), "created": False})
    return AfterValidation(repaired=failed)


def after_instance(state: OperationState, repaired: Mapping[str, Any]) -> dict[str, Any]:
    """The result once the instance PUT's operation ended, from the instance as it reads back (the verification).
    A PUT that ended Failed leaving the instance ``ConfiguringProtectionFailed`` / ``ProtectionError`` is a failed
    configuration (configured again by the caller; missing permissions keep their code: RBAC propagation will lift
    them); any other failure is a refusal."""
    made = dict(state.instance)
    if not state.succeeded and (not made or protection_flow.instance_failure(made) is None):
        return refusal(state)
    if not made:
        return {"ok": False, "code": INSTANCE_MISSING,
                "message": "the backup instance PUT reported success but no instance reads back"}
    result: dict[str, Any] = {"ok": True, "instance": made, "created": True}
    if repaired:
        result["repaired"] = {k: v for k, v in repaired.items() if k != "remedy"}
        if repaired.get("remedy") == protection_flow.REMEDY_SYNC:  # Azure's sync retried it: nothing was PUT
            result.update(created=False, remedy=protection_flow.REMEDY_SYNC)
    after = protection_flow.instance_failure(made)
    if after is not None:  # configured, and it reads back failed: not protection
        pending = after["code"].lower() in protection_flow.RBAC_PENDING_CODES
        result.update(ok=False, code=after["code"] if pending else protection_flow.CONFIGURATION_FAILED,
                      failure=after, message=f"the backup instance reads back {protection_flow.failure_text(after)}")
    return result


def after_modification(state: OperationState) -> dict[str, Any]:
    """The result of modifying an instance (its blob containers) once the PUT's operation ended: ``{"ok": true,
    "instance"}``, or ``{"ok": false, "code", "message", "instance"?}`` when it was refused or the instance reads back
    failed."""
    made = dict(state.instance)
    failure = protection_flow.instance_failure(made)
    if not state.succeeded and failure is None:
        return refusal(state)
    if not made:
        return {"ok": False, "code": INSTANCE_MISSING,
                "message": "the backup instance PUT reported success but no instance reads back"}
    if failure is not None:
        return {"ok": False, "code": failure["code"] or failure["state"], "instance": made,
                "message": f"the backup instance reads back {protection_flow.failure_text(failure)}"}
    return {"ok": True, "instance": made}


def after_stop(state: OperationState) -> dict[str, Any]:
    """``stop_protection_retain``'s result once the stop's operation ended."""
    return {"ok": True, "stopped": True} if state.succeeded else refusal(state)


def vault_started(started: OperationStarted) -> str:
    """The id of the vault whose creation ``started`` follows (the activity puts it in the answered body)."""
    return str(started.instance.get("id") or "")


def after_vault(state: OperationState, started: OperationStarted) -> dict[str, Any]:
    """``create_vault``'s result once the vault PUT's operation ended, from the vault as it reads back (the
    verification against the body sent, ``vault_defaults.unmet``): ``{"ok": true, "vault": a VaultRecord}``, or
    the refusal."""
    if not state.succeeded:
        return refusal(state)
    vault_id = vault_started(started)
    found = dict(state.instance)
    if not found:
        return {"ok": False, "code": VAULT_NOT_AS_CREATED,
                "message": f"the vault PUT reported success but {vault_id} does not read back"}
    kind = ResourceId.parse(vault_id).vault_kind
    if kind is None:
        return {"ok": False, "code": VAULT_NOT_AS_CREATED, "message": f"{vault_id} is not a vault"}
    problems = vault_defaults.unmet(kind, found, started.body)
    if problems:
        return {"ok": False, "code": VAULT_NOT_AS_CREATED,
                "message": f"{vault_id} reads back other than created: {'; '.join(problems)}"}
    return {"ok": True, "vault": VaultRecord.from_arm(found, kind).to_record()}
