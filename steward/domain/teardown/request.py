"""Who asked to tear which vault down, how, and with which approval: requests, opt-in and approvals."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from steward.domain.kernel import (
    LenientEnum,
    VaultRef,
    format_time,
    parse_time,
)
from steward.domain.teardown.codec import RECORD_VERSION, InvalidTeardownInput, record_str
from steward.domain.teardown.inventory import VaultInventory

#: Tag a vault must carry before an Event Grid event may start its teardown (name configurable).
DEFAULT_OPT_IN_TAG: Final = "backup-steward:teardown"
#: Opt-in tag value that lets an event-started teardown run its own fresh plan without a human approval.
AUTO_TAG_VALUE: Final = "auto"
#: External events the saga waits for.
EVENT_APPROVE: Final = "TeardownApproved"
EVENT_CANCEL: Final = "Cancel"
EVENT_SECURITY_APPROVAL: Final = "SecurityApprovalGranted"
#: Custom Event Grid event type that requests a teardown.
CUSTOM_EVENT_TYPE: Final = "BackupSteward.Teardown.Requested"
#: Prefix of a requester known only by its application id (an ARM event whose claims carry no object id), so
#: that an app id is never compared with the allowed principals' object ids.
APP_ID_PREFIX: Final = "app:"
FAILED_DELETE_EVENT_TYPE: Final = "Microsoft.Resources.ResourceDeleteFailure"


class RequestSource(LenientEnum):
    HTTP = "http"
    EVENT = "event"
    CUSTOM_EVENT = "custom-event"


class TeardownOutcome(StrEnum):
    PLANNED = "planned"
    REPLANNED = "replanned"
    DELETED = "deleted"
    ALREADY_GONE = "already-gone"
    BLOCKED = "blocked"
    CANCELLED = "cancelled"
    FAILED = "failed"
    REFUSED = "refused"
    APPROVAL_EXPIRED = "approval-expired"


@dataclass(frozen=True)
class TeardownRequest:
    """Who asked to tear which vault down, how, and with which approval. The orchestrator's input."""

    vault_id: str
    requested_by: str
    source: RequestSource
    dry_run: bool = True
    approved_fingerprint: str | None = None
    correlation_id: str = ""
    #: set for event-started teardowns: the vault must carry this tag or the request is refused.
    opt_in_tag: str | None = None
    requested_at: datetime | None = None
    #: who approved ``approved_fingerprint`` when it is not the requester (the approve route's run request).
    approved_by: str | None = None
    #: the Event Grid event an event-started request came from (its ``id``): its instance id's key. Empty for
    #: HTTP requests and for records written before it was kept (their instance ids hashed ``correlation_id``).
    event_id: str = ""

    def __post_init__(self) -> None:
        VaultRef.parse(self.vault_id)
        if not self.requested_by:
            raise InvalidTeardownInput("a teardown request must name who requested it")

    @property
    def vault(self) -> VaultRef:
        return VaultRef.parse(self.vault_id)

    def to_record(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "vaultId": self.vault_id,
            "requestedBy": self.requested_by,
            "source": self.source.value,
            "dryRun": self.dry_run,
            "approvedFingerprint": self.approved_fingerprint,
            "correlationId": self.correlation_id,
            "optInTag": self.opt_in_tag,
            "requestedAt": format_time(self.requested_at),
            "approvedBy": self.approved_by,
            **({"eventId": self.event_id} if self.event_id else {}),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TeardownRequest:
        if not isinstance(record, Mapping):
            raise InvalidTeardownInput("a teardown request must be a JSON object")
        dry_run = record.get("dryRun", True)
        if not isinstance(dry_run, bool):
            raise InvalidTeardownInput("dryRun must be true or false")
        approved = record.get("approvedFingerprint")
        if approved is not None and not isinstance(approved, str):
            raise InvalidTeardownInput("approvedFingerprint must be a string")
        return cls(
            vault_id=VaultRef.parse(record.get("vaultId")).id,
            requested_by=record_str(record, "requestedBy"),
            source=RequestSource.parse(record.get("source")),
            dry_run=dry_run,
            approved_fingerprint=approved or None,
            correlation_id=str(record.get("correlationId") or ""),
            opt_in_tag=record.get("optInTag") or None,
            requested_at=parse_time(record.get("requestedAt")),
            approved_by=record_str(record, "approvedBy", optional=True) or None,
            event_id=str(record.get("eventId") or ""),
        )


def _instance_prefix(vault: VaultRef) -> str:
    vault_hash = hashlib.sha256(vault.key.encode()).hexdigest()[:16]
    return f"teardown-{vault.name.lower()[:40]}-{vault_hash}"


def plan_instance_id(vault_id: str) -> str:
    """The instance id ``POST /api/teardowns`` gives a dry run (plan) of ``vault_id``: what ``steward teardown
    status|approve|cancel VAULT`` looks up (InvalidValue for a text that is not a vault id)."""
    return f"{_instance_prefix(VaultRef.parse(vault_id))}-plan"


def run_instance_id(vault_id: str, fingerprint: str) -> str:
    """The instance id of the run an approval of ``fingerprint`` (over HTTP) starts for ``vault_id``."""
    return f"{_instance_prefix(VaultRef.parse(vault_id))}-run-{fingerprint.lower().removeprefix('sha256:')[:16]}"


def instance_id_for(request: TeardownRequest) -> str:
    """Deterministic instance id: same vault + mode + approval -> same instance (duplicates collapse).

    An event-started request is keyed by its event's ``id`` (16 hex digits of its SHA-256), never by the ARM
    correlation id, which the deleting caller chooses (``x-ms-correlation-request-id``) and many operations share:
    keyed on it, a caller could make another's failed delete look handled (``steward.domain.events``). A request
    without an event id (a record from before) keeps the old key, 8 hex digits of the correlation id: see
    :func:`legacy_instance_id_for`."""
    if request.dry_run:
        mode = "plan"
    elif request.approved_fingerprint:
        mode = "run-" + request.approved_fingerprint.lower().removeprefix("sha256:")[:16]
    else:
        mode = "run"
    if request.source is not RequestSource.HTTP and request.event_id:
        mode += "-" + hashlib.sha256(request.event_id.encode()).hexdigest()[:16]
    elif request.source is not RequestSource.HTTP and request.correlation_id:
        mode += "-" + hashlib.sha256(request.correlation_id.encode()).hexdigest()[:8]
    return f"{_instance_prefix(request.vault)}-{mode}"


def legacy_instance_id_for(request: TeardownRequest) -> str | None:
    """The id an event-started request's instance had before event ids keyed them (None for HTTP requests): the
    doorway reads it, never starts it, while the events of instances started before may still be redelivered."""
    if request.source is RequestSource.HTTP or not request.event_id:
        return None
    return instance_id_for(replace(request, event_id=""))


def same_event(request: TeardownRequest, previous: TeardownRequest) -> bool:
    """Whether ``previous`` (a legacy instance's request) came from the same event as ``request``: same vault,
    source, requester and event time. The event time is Event Grid's (``eventTime``), which a caller of ARM does
    not choose, so a caller who reuses a correlation id does not match another's event."""
    return (
        previous.vault.key == request.vault.key
        and previous.source is request.source
        and previous.requested_by.lower() == request.requested_by.lower()
        and previous.requested_at is not None
        and previous.requested_at == request.requested_at
    )


def _subscription_allowed(vault: VaultRef, allowed: Iterable[str]) -> bool:
    allowed_set = {a.lower() for a in allowed}
    return vault.subscription_id.lower() in allowed_set


def teardown_request_from_event(
    event: Any,
    *,
    allowed_subscriptions: Iterable[str],
    opt_in_tag: str = DEFAULT_OPT_IN_TAG,
    requests_topic_id: str | None = None,
    allowed_principals: Iterable[str] = (),
) -> TeardownRequest:
    """Turn an Event Grid event into a teardown request, or raise :class:`InvalidTeardownInput` saying why not.

    ``event`` is the intent ``steward.domain.events.classify`` made of it (``VaultDeleteFailed`` or
    ``TeardownRequested``); the checks are :func:`check_event_request`. Two events qualify:

    * ``Microsoft.Resources.ResourceDeleteFailure`` for ``Microsoft.RecoveryServices/vaults/delete`` or
      ``Microsoft.DataProtection/backupVaults/delete`` (a user's delete refused because the vault is not
      empty), from the system topic of the vault's subscription (``topic`` ``/subscriptions/{id}``; Event Grid
      stamps it, a publisher cannot write it). The request is a dry run asked by the deleting user (the object
      id ARM puts in ``data.claims``); the orchestrator refuses it unless the vault carries ``opt_in_tag``, and
      runs its own fresh plan only if the tag's value is ``auto`` and that user is an allowed principal.
    * ``BackupSteward.Teardown.Requested`` from the topic ``requests_topic_id`` (none configured: refused)
      whose ``requester`` is one of ``allowed_principals``. It is a request, never an approval: it plans and
      waits for an allowed principal's approval over HTTP; a ``planFingerprint`` in it is ignored. Also subject
      to the opt-in tag.

    Anything else, or a vault outside ``allowed_subscriptions``, is refused.
    """
    kind = getattr(event, "kind", None)
    origin = getattr(event, "origin", None)
    if not (isinstance(kind, str) and origin is not None and hasattr(event, "vault_id")):
        raise InvalidTeardownInput(
            "a teardown request is read from a classified event (steward.domain.events.classify), "
            f"not from {type(event).__name__}"
        )
    request = _request_from_intent(event, kind, opt_in_tag)
    return check_event_request(
        request,
        schema=str(getattr(origin, "schema", "") or ""),
        topic=getattr(origin, "topic", None),
        allowed_subscriptions=allowed_subscriptions,
        requests_topic_id=requests_topic_id,
        allowed_principals=allowed_principals,
    )


def check_event_request(
    request: TeardownRequest,
    *,
    schema: str,
    topic: object,
    allowed_subscriptions: Iterable[str],
    requests_topic_id: str | None = None,
    allowed_principals: Iterable[str] = (),
) -> TeardownRequest:
    """The checks every event-started request passes, whoever read the event: the Event Grid schema only, a
    managed subscription, and the topic that proves where it came from (the subscription's system topic for a
    failed delete; the configured requests topic and an allowed requester for a custom event). Returns the
    request, or raises :class:`InvalidTeardownInput` saying why not."""
    if schema.lower() == "cloudevents":
        # Event Grid stamps ``topic`` in its own schema; a CloudEvents ``source`` on a custom topic is whatever the
        # publisher wrote (event-grid/cloud-event-schema.md), so it proves nothing about where a request came from.
        # The deployment subscribes in the Event Grid schema (infra/modules/*events.bicep).
        raise InvalidTeardownInput(
            "teardown requests and failed vault deletes are accepted in the Event Grid schema only: a CloudEvents "
            "'source' is written by the publisher, so it cannot show which topic the event came from"
        )
    if not _subscription_allowed(request.vault, allowed_subscriptions):
        raise InvalidTeardownInput(f"subscription {request.vault.subscription_id} is not managed by this app")
    if request.source is RequestSource.CUSTOM_EVENT:
        _check_requests_topic(topic, requests_topic_id)
        if request.requested_by.lower() not in {p.strip().lower() for p in allowed_principals}:
            raise InvalidTeardownInput(
                f"requester {request.requested_by[:80]!r} is not in STEWARD_TEARDOWN_ALLOWED_PRINCIPALS; "
                f"a {CUSTOM_EVENT_TYPE} event is refused unless it names an allowed principal"
            )
    else:
        system_topic = f"/subscriptions/{request.vault.subscription_id}"
        if not isinstance(topic, str) or topic.strip().rstrip("/").lower() != system_topic.lower():
            raise InvalidTeardownInput(
                f"a failed vault delete is accepted only from the system topic of the vault's subscription "
                f"({system_topic}), not from topic {str(topic)[:200]!r}; the event is refused as forged"
            )
    return request


def _check_requests_topic(topic: object, requests_topic_id: str | None) -> None:
    expected = (requests_topic_id or "").strip().rstrip("/")
    if not expected:
        raise InvalidTeardownInput(
            f"{CUSTOM_EVENT_TYPE} events are refused: no requests topic is configured "
            "(STEWARD_TEARDOWN_REQUESTS_TOPIC_ID)"
        )
    if not isinstance(topic, str) or topic.strip().rstrip("/").lower() != expected.lower():
        raise InvalidTeardownInput(
            f"{CUSTOM_EVENT_TYPE} events are accepted only from the requests topic {expected}, "
            f"not from topic {str(topic)[:200]!r}"
        )


def event_principal(object_id: object, app_id: object) -> str:
    """Who an ARM event names as its caller: the object id, else the application id (prefixed), else a tag."""
    if isinstance(object_id, str) and object_id.strip():
        return object_id.strip()
    if isinstance(app_id, str) and app_id.strip():
        return APP_ID_PREFIX + app_id.strip()
    return "event-grid"


def _request_from_intent(intent: Any, kind: str, opt_in_tag: str) -> TeardownRequest:
    origin = intent.origin
    principal = getattr(origin, "principal", None)
    event_id = str(getattr(origin, "event_id", "") or "")
    correlation = str(getattr(origin, "correlation_id", None) or event_id)
    when = getattr(origin, "event_time", None)
    vault = VaultRef.parse(str(intent.vault_id))
    if kind == "vault-delete-failed":
        who = event_principal(getattr(principal, "object_id", None), getattr(principal, "app_id", None))
        return TeardownRequest(vault.id, who, RequestSource.EVENT, True, None, correlation, opt_in_tag, when,
                               event_id=event_id)
    if kind == "teardown":
        # a request, never an approval: whatever fingerprint the event names is not carried over
        requester = str(getattr(intent, "requester", "") or "custom-event")
        return TeardownRequest(
            vault.id, requester, RequestSource.CUSTOM_EVENT, False, None, correlation, opt_in_tag, when,
            event_id=event_id,
        )
    raise InvalidTeardownInput(f"a {kind!r} intent does not request a teardown")


def opt_in_decision(
    request: TeardownRequest,
    inventory: VaultInventory,
    allowed_principals: Iterable[str] = (),
    *,
    four_eyes: bool = False,
) -> tuple[bool, bool, str]:
    """``(allowed, auto_approve, reason)`` for an event-started request against the vault's tags.

    Only a failed delete (``RequestSource.EVENT``) may approve itself, on the tag value ``auto``, and only when
    the deleting user is one of ``allowed_principals``; a custom event never does. With four eyes on, not even
    then: the deleting user is the requester, and ``auto`` would be their own approval (one principal who may
    tag the vault could set ``auto`` and delete alone), so the plan waits for another principal."""
    if request.opt_in_tag is None:
        return True, False, "requested over HTTP by an authorised principal"
    value = inventory.tag(request.opt_in_tag)
    if value is None:
        return False, False, f"the vault does not carry the opt-in tag {request.opt_in_tag!r}"
    reason = f"the vault carries the opt-in tag {request.opt_in_tag}={value!r}"
    if value.strip().lower() != AUTO_TAG_VALUE or request.source is not RequestSource.EVENT:
        return True, False, reason
    if request.requested_by.lower() not in {p.strip().lower() for p in allowed_principals}:
        return (
            True,
            False,
            (
                f"{reason}, but the deleting principal {request.requested_by!r} is not in "
                "STEWARD_TEARDOWN_ALLOWED_PRINCIPALS: the plan needs an approval over HTTP"
            ),
        )
    if four_eyes:
        return (
            True,
            False,
            (
                f"{reason}; the deleting principal {request.requested_by} is allowed, but four eyes "
                "(STEWARD_TEARDOWN_FOUR_EYES) needs another allowed principal's approval over HTTP"
            ),
        )
    return True, True, f"{reason} and the deleting principal {request.requested_by} is an allowed principal"


def approval_refusal(request: TeardownRequest, approver: str | None, *, four_eyes: bool) -> str | None:
    """Why ``approver`` may not approve ``request`` (None: they may). With four eyes on, the approver must be
    named and must not be the requester (compared case-insensitively: object ids)."""
    if not four_eyes:
        return None
    if not approver or not approver.strip():
        return "four eyes: an approval must name its approver"
    if approver.strip().lower() == request.requested_by.strip().lower():
        return (
            f"four eyes: {approver} requested this teardown and may not approve it too; "
            "another allowed principal must approve"
        )
    return None


class ApprovalVerdict(StrEnum):
    APPROVED = "approved"
    #: four eyes on a custom-event request: this approval stands in for the requester, whom the event names
    #: without proof; a second, different principal must approve
    CONFIRMED = "confirmed"
    REFUSED = "refused"


def judge_approval(
    request: TeardownRequest, approver: str | None, *, four_eyes: bool, confirmed_by: str | None = None
) -> tuple[ApprovalVerdict, str | None]:
    """What one approval event does to a waiting teardown, and why.

    With four eyes, the approver must differ from the requester. A custom event's ``requester`` is only what its
    sender wrote (any allowed principal may send on the requests topic), so under four eyes the first approval
    of such a request *confirms* it - that verified caller becomes the requester (``confirmed_by``) - and a
    second, different principal approves: two people, both verified, whatever the event claimed."""
    if four_eyes and request.source is RequestSource.CUSTOM_EVENT and confirmed_by is None:
        if not approver or not approver.strip():
            return ApprovalVerdict.REFUSED, "four eyes: an approval must name its approver"
        return ApprovalVerdict.CONFIRMED, (
            f"{approver} confirmed the custom-event request (its requester is not verified); "
            "another allowed principal must approve"
        )
    requester = replace(request, requested_by=confirmed_by) if confirmed_by else request
    refusal = approval_refusal(requester, approver, four_eyes=four_eyes)
    return (ApprovalVerdict.REFUSED, refusal) if refusal else (ApprovalVerdict.APPROVED, None)


def request_approval(request: TeardownRequest, *, four_eyes: bool) -> tuple[str | None, str | None, str | None]:
    """``(fingerprint, approver, note)``: the approval a request carries itself, if the saga may take it.

    Only an HTTP request carries one (the route checked the caller); a fingerprint in an event-started request
    is never an approval. ``note`` says why a fingerprint the request names was not taken."""
    fingerprint = request.approved_fingerprint
    if request.source is not RequestSource.HTTP:
        if not fingerprint and request.source is not RequestSource.CUSTOM_EVENT:
            return None, None, None
        return (
            None,
            None,
            (
                f"a {request.source.value} request is never an approval (a fingerprint it names is ignored); "
                "an allowed principal must approve over HTTP"
            ),
        )
    if not fingerprint:
        return None, None, None
    approver = request.approved_by or request.requested_by
    refusal = approval_refusal(request, approver, four_eyes=four_eyes)
    if refusal is not None:
        return None, None, refusal
    return fingerprint, approver, None
