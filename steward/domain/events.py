"""Classify Event Grid events into the intents Backup Steward acts on.

Input is ONE event as a dict, in the Event Grid schema (``eventType``, ``subject``, ``eventTime``, ``id``,
``data``, ``dataVersion``, ``topic``) or the CloudEvents 1.0 schema (``specversion``, ``type``, ``source``,
``subject``, ``time``, ``id``, ``data``). Events of the subscription system topic
(``Microsoft.Resources.Resource{Write,Delete,Action}{Success,Failure,Cancel}``) and our own custom
``BackupSteward.Teardown.Requested`` event become intents; everything else becomes :class:`Ignored` with the
reason. An event that cannot be trusted or understood raises :class:`InvalidEvent` — and nothing else: the
classifier is fuzzed to hold that promise.

Trust checks (a forged or garbled event must not steer protection or teardown):
- ``subject`` and ``data.resourceUri`` must name the same resource (case-insensitively: Event Grid lower-cases
  parts of ``subject``);
- the subscription of the topic / source, of ``data.subscriptionId`` and of the resource must agree, and a
  ``Microsoft.Resources.*`` event's topic must be a subscription's or a resource group's (a system topic), not a
  custom topic whose publisher writes the event's id;
- ``data.status`` must agree with the event type's outcome;
- for the operations we act on, ``data.operationName`` must match the resource's type.

Instance ids (:attr:`instance_id`) are deterministic so that duplicate deliveries collapse onto one
orchestration (Event Grid delivers at least once, unordered):
- ``protect:<h(resource)>`` — every write of one resource collapses: protection converges on the current
  state, so one running instance per resource is what we want (a VM create emits several writes);
- ``containers:<h(storage account)>`` — every new blob container of one account (issue 19): one run reads the
  account's containers afresh;
- ``gone:<h(resource)>`` — a different prefix, so a delete after a create never collapses onto the create;
- ``moved:<h(source group, event id)>`` — one per move event of one source group;
- ``vault-delete-failed:<h(vault, event id)>`` — one per failed delete event;
- ``teardown:<h(vault)>`` — at most one teardown saga per vault at a time, whatever the plan.
``h`` is the first 32 hex digits of SHA-256 over the lower-cased canonical id text (and the other parts).

Never ``data.correlationId``: ARM takes it from the caller's ``x-ms-correlation-request-id`` (ARM RPC
``common-api-details.md``), so whoever may write to one resource group chooses it, and many operations share one
(a Terraform session, a template deployment). Keyed on it, a caller could land a move or a failed delete on an
instance id another one's event needs (collapsing onto it while it runs, or, for a failed delete, marking it
handled for ever). The event ``id`` is Event Grid's "unique identifier for the event", and on the subscription
system topic ARM writes it, not the caller (``topic`` is not writeable either: MicrosoftDocs/azure-docs
``articles/event-grid/event-schema-subscriptions.md``, "Event properties"); a redelivery keeps it, so
redeliveries still collapse. ``legacy_instance_id`` is the correlation-keyed id of instances started before this
rule, which the doorway reads while their events may still be redelivered (24 h).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeAlias, TypeVar

from steward.domain.errors import InvalidEvent, InvalidRecord, InvalidResourceId, InvalidValue
from steward.domain.ids import ResourceId, is_subscription_guid
from steward.domain.kernel import VaultKind, zoned_time
from steward.domain.records import Record

__all__ = [
    "BLOB_CONTAINER_TYPE",
    "MAX_EVENT_BYTES",
    "MOVE_RESOURCES_OPERATION",
    "PROTECTED_TYPES",
    "TEARDOWN_REQUESTED_EVENT_TYPE",
    "VAULT_DELETE_OPERATIONS",
    "ContainerCreated",
    "EventOrigin",
    "EventSchema",
    "Ignored",
    "Intent",
    "InvalidEvent",
    "Principal",
    "ProtectResource",
    "ResourceGone",
    "ResourcesMoved",
    "TeardownRequested",
    "VaultDeleteFailed",
    "classify",
    "classify_json",
    "intent_from_record",
    "read_intent",
]

#: Event Grid's own bound on one event (1 MB); anything larger is refused before it is looked at.
MAX_EVENT_BYTES: Final = 1_048_576
#: Bound on the strings we copy into intents (ids, names, correlation ids).
MAX_FIELD_LENGTH: Final = 2048

#: Resource types we protect, keyed by lower-cased type, valued by their canonical spelling.
PROTECTED_TYPES: Final[dict[str, str]] = {
    t.lower(): t
    for t in (
        "Microsoft.Compute/virtualMachines",
        "Microsoft.Compute/disks",
        "Microsoft.Storage/storageAccounts",
        "Microsoft.DBforPostgreSQL/flexibleServers",
    )
}
#: A blob container (issue 19): its write names a container that vaulted blob backup may have to add.
BLOB_CONTAINER_TYPE: Final = "Microsoft.Storage/storageAccounts/blobServices/containers"
MOVE_RESOURCES_OPERATION: Final = "Microsoft.Resources/subscriptions/resourceGroups/moveResources/action"
#: Vault delete operations whose failure is a teardown request candidate, valued by the vault type.
VAULT_DELETE_OPERATIONS: Final[dict[str, str]] = {
    f"{kind.arm_type.lower()}/delete": kind.arm_type for kind in VaultKind
}
TEARDOWN_REQUESTED_EVENT_TYPE: Final = "BackupSteward.Teardown.Requested"

_RESOURCE_EVENT = re.compile(r"Microsoft\.Resources\.Resource(Write|Delete|Action)(Success|Failure|Cancel)")
_OBJECT_ID_CLAIMS: Final = ("http://schemas.microsoft.com/identity/claims/objectidentifier", "oid")
_FINGERPRINT = re.compile(r"[A-Za-z0-9:_-]{8,200}")
_EXPECTED_STATUS: Final = {"Success": "succeeded", "Failure": "failed", "Cancel": "canceled"}


class EventSchema(StrEnum):
    EVENT_GRID = "EventGrid"
    CLOUD_EVENTS = "CloudEvents"


@dataclass(frozen=True)
class Principal(Record):
    """Who caused the event, from its claims: the Entra object id and/or the application id."""

    object_id: str | None = None
    app_id: str | None = None


@dataclass(frozen=True)
class EventOrigin(Record):
    """Where an intent came from: enough to log, correlate and audit it."""

    event_id: str
    event_type: str
    #: timezone-aware, UTC; recorded as ``isoformat()`` (``+00:00``) as before the codec: reasons quote it
    event_time: datetime = field(metadata={"keep_offset": True})
    schema: EventSchema
    subscription_id: str | None = None
    tenant_id: str | None = None
    correlation_id: str | None = None
    operation_name: str | None = None
    principal: Principal | None = None
    #: the event's ``topic`` (CloudEvents: ``source``) as delivered. Event Grid stamps it: a publisher cannot
    #: write another topic's id (MicrosoftDocs/azure-docs articles/event-grid/event-schema.md, ``topic``).
    topic: str | None = None


class _FromEvent:
    """What every intent tells about the event it came from (shortcuts into ``origin``)."""

    origin: EventOrigin

    @property
    def event_id(self) -> str:
        return self.origin.event_id

    @property
    def correlation_id(self) -> str | None:
        return self.origin.correlation_id

    @property
    def subscription_id(self) -> str | None:
        return self.origin.subscription_id

    @property
    def tenant_id(self) -> str | None:
        return self.origin.tenant_id

    @property
    def principal(self) -> Principal | None:
        return self.origin.principal


class _IntentRecord(_FromEvent, Record):
    """An intent's record: the codec's (camelCase keys, ``origin`` nested) with its ``kind`` first, which
    :func:`intent_from_record` dispatches on (each intent's ``kind`` is its record's tag, ``type_name``)."""

    kind: ClassVar[str]
    tag_key: ClassVar[str] = "kind"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            cls.type_name = cls.kind


def _digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:32]


class _ActingIntent(_IntentRecord):
    """An intent that starts an orchestration about one resource, under the deterministic instance id
    ``<instance_prefix>:<h(resource)>`` (every event of the resource collapses onto one instance) or, where
    ``per_event``, ``<instance_prefix>:<h(resource, event id)>`` (one per event; redeliveries keep the event id,
    and the caller chooses no part of it)."""

    instance_prefix: ClassVar[str]
    per_event: ClassVar[bool] = False

    if TYPE_CHECKING:  # a field or a property of each intent (a property here would be the fields' default)

        @property
        def resource_id(self) -> ResourceId: ...

    @property
    def instance_id(self) -> str:
        if self.per_event:
            return f"{self.instance_prefix}:{_digest(self.resource_id.key, self.origin.event_id.lower())}"
        return f"{self.instance_prefix}:{_digest(self.resource_id.key)}"


class _VaultIntent(_ActingIntent):
    """An intent about a vault (``vault_id``, a field of each): the vault is its resource."""

    vault_id: ResourceId

    @property
    def resource_id(self) -> ResourceId:
        return self.vault_id


@dataclass(frozen=True)
class ProtectResource(_ActingIntent):
    """A supported resource (VM, managed disk, storage account, PostgreSQL flexible server) was created or
    updated: make sure it is protected as the rules say."""

    kind: ClassVar[str] = "protect"
    instance_prefix: ClassVar[str] = "protect"
    resource_id: ResourceId
    origin: EventOrigin
    #: a move's child run: its parent publishes the lineage, so this run publishes nothing (absent: False)
    quiet: bool = field(default=False, metadata={"omit_default": True})


@dataclass(frozen=True)
class ContainerCreated(_ActingIntent):
    """A blob container was created (or written) in a storage account: a vaulted backup of the account covers
    only the containers it lists, so the list may have to gain it. ``resource_id`` is the storage account: every
    container of one account collapses onto one instance (``containers:<h(account)>``), which reads the
    account's containers afresh, so one run covers the containers created meanwhile."""

    kind: ClassVar[str] = "container"
    instance_prefix: ClassVar[str] = "containers"
    container_id: ResourceId
    origin: EventOrigin

    @property
    def resource_id(self) -> ResourceId:
        account = self.container_id.parent  # .../blobServices/default
        account = account.parent if account is not None else None
        return account if account is not None else self.container_id

    def to_record(self) -> dict[str, Any]:
        """The codec's record with the account (``resourceId``, derived) before ``origin``, as before the codec."""
        record = super().to_record()
        origin = record.pop("origin")
        return {**record, "resourceId": str(self.resource_id), "origin": origin}


@dataclass(frozen=True)
class ResourceGone(_ActingIntent):
    """A supported resource was deleted: apply its on-delete choice (retain data, or leave it). Its prefix is not
    ``protect``: a delete after a create never collapses onto the create."""

    kind: ClassVar[str] = "gone"
    instance_prefix: ClassVar[str] = "gone"
    resource_id: ResourceId
    origin: EventOrigin


@dataclass(frozen=True)
class ResourcesMoved(_ActingIntent):
    """Resources were moved OUT of ``source_group`` (``moveResources`` on the source group succeeded): one instance
    per move event.

    The event names only the source group: it carries neither the ids that moved nor the target group or
    subscription (docs/azure-facts.md, "Subscription events": the move body is not in the event). Whoever
    handles this must reconcile: list what the source group still holds and what the vaults protect from it,
    and find the moved resources by their backup items' ``sourceResourceId``.
    """

    kind: ClassVar[str] = "moved"
    instance_prefix: ClassVar[str] = "moved"
    per_event: ClassVar[bool] = True
    source_group: ResourceId
    origin: EventOrigin

    @property
    def resource_id(self) -> ResourceId:
        return self.source_group

    @property
    def legacy_instance_id(self) -> str:
        """The id this event's instance had before event ids keyed moves (the ARM correlation id, caller-chosen):
        read, never started, so that a redelivery of an event handled before the change starts nothing."""
        operation = self.origin.correlation_id or self.origin.event_id
        return f"moved:{_digest(self.source_group.key, operation.lower())}"


@dataclass(frozen=True)
class VaultDeleteFailed(_VaultIntent):
    """Deleting a Recovery Services vault or a Backup vault failed: a candidate teardown request (the
    teardown saga still needs an approved plan and an allowed principal). One instance per failed delete event
    (the teardown it may start has its own id: ``teardown.instance_id_for``)."""

    kind: ClassVar[str] = "vault-delete-failed"
    instance_prefix: ClassVar[str] = "vault-delete-failed"
    per_event: ClassVar[bool] = True
    vault_id: ResourceId
    origin: EventOrigin


@dataclass(frozen=True)
class TeardownRequested(_VaultIntent):
    """Our custom event: ``requester`` asks to tear down ``vault_id``. A request, never an approval: the
    ``plan_fingerprint`` it may name is kept for the record only (``steward.domain.teardown`` ignores it)."""

    kind: ClassVar[str] = "teardown"
    instance_prefix: ClassVar[str] = "teardown"
    vault_id: ResourceId
    requester: str
    plan_fingerprint: str | None
    origin: EventOrigin


@dataclass(frozen=True)
class Ignored(_IntentRecord):
    """An event we deliberately do not act on, and why."""

    kind: ClassVar[str] = "ignored"
    reason: str
    origin: EventOrigin
    resource_id: ResourceId | None = None

    @property
    def instance_id(self) -> None:
        return None


Intent: TypeAlias = (ProtectResource | ContainerCreated | ResourceGone | ResourcesMoved | VaultDeleteFailed
                     | TeardownRequested | Ignored)
_INTENT_KINDS: Final[dict[str, type[Intent]]] = {
    cls.kind: cls
    for cls in (ProtectResource, ContainerCreated, ResourceGone, ResourcesMoved, VaultDeleteFailed,
                TeardownRequested, Ignored)
}


def intent_from_record(record: object) -> Intent:
    """Rebuild an intent from its :meth:`to_record` form; :class:`InvalidRecord` when it is not one."""
    if not isinstance(record, Mapping):
        raise InvalidRecord(f"an intent record must be an object, got {type(record).__name__}")
    kind = record.get("kind")
    cls = _INTENT_KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidRecord(f"unknown intent kind {kind!r}; expected one of {sorted(_INTENT_KINDS)}")
    try:
        return cls.from_record(record)
    except InvalidValue as error:
        raise InvalidRecord(f"invalid {kind} intent record: {error}") from None


IntentT = TypeVar("IntentT", bound=_IntentRecord)


def read_intent(record: object, kind: type[IntentT]) -> IntentT:
    """The ``kind`` intent an orchestration was started with (its input record), typed; :class:`InvalidRecord`
    when the record is not one."""
    intent = intent_from_record(record)
    if not isinstance(intent, kind):
        raise InvalidRecord(f"expected a {kind.kind!r} intent record, got {intent.kind!r}")
    return intent


# ---- classification ----------------------------------------------------------------------------------


def classify_json(text: str | bytes) -> Intent:
    """Decode one event from JSON text (bounded in size and nesting) and classify it."""
    if len(text) > MAX_EVENT_BYTES:
        raise InvalidEvent(f"event is {len(text)} bytes; at most {MAX_EVENT_BYTES} are accepted")
    try:
        event = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise InvalidEvent(f"event is not valid JSON: {str(error)[:200]}") from None
    return classify(event)


def classify(event: object) -> Intent:
    """Classify one decoded event. Raises :class:`InvalidEvent` (only) when it is malformed or forged."""
    if not isinstance(event, Mapping):
        raise InvalidEvent(f"an event must be a JSON object, got {type(event).__name__}")
    _check_size(event)
    if "specversion" in event:
        envelope = _cloud_events_envelope(event)
    elif "eventType" in event:
        envelope = _event_grid_envelope(event)
    else:
        raise InvalidEvent(
            "event is neither in the Event Grid schema (no 'eventType') nor CloudEvents 1.0 (no 'specversion')"
        )
    if envelope.event_type == TEARDOWN_REQUESTED_EVENT_TYPE:
        return _teardown_requested(envelope)
    match = _RESOURCE_EVENT.fullmatch(envelope.event_type)
    if match is None:
        origin = EventOrigin(envelope.event_id, envelope.event_type, envelope.event_time, envelope.schema)
        return Ignored(f"event type {envelope.event_type!r} is not one Backup Steward acts on", origin)
    return _resource_event(envelope, action=match.group(1), outcome=match.group(2))


def _check_size(event: Mapping[str, Any]) -> None:
    try:
        size = len(json.dumps(event, allow_nan=False).encode())
    except (TypeError, ValueError, RecursionError) as error:
        raise InvalidEvent(f"event is not plain JSON data: {str(error)[:200]}") from None
    if size > MAX_EVENT_BYTES:
        raise InvalidEvent(f"event is {size} bytes; at most {MAX_EVENT_BYTES} are accepted")


@dataclass(frozen=True)
class _Envelope:
    schema: EventSchema
    event_id: str
    event_type: str
    event_time: datetime
    subject: str | None
    topic: str | None
    data: Mapping[str, Any] | None


def _event_grid_envelope(event: Mapping[str, Any]) -> _Envelope:
    return _Envelope(
        schema=EventSchema.EVENT_GRID,
        event_id=_required_str(event, "id"),
        event_type=_required_str(event, "eventType"),
        event_time=_time(event, "eventTime"),
        subject=_optional_str(event, "subject"),
        topic=_optional_str(event, "topic"),
        data=_optional_object(event, "data"),
    )


def _cloud_events_envelope(event: Mapping[str, Any]) -> _Envelope:
    version = event.get("specversion")
    if version != "1.0":
        raise InvalidEvent(f"'specversion' must be \"1.0\", got {_show(version)}")
    if "data_base64" in event:
        raise InvalidEvent("CloudEvents with binary 'data_base64' are not accepted; send JSON 'data'")
    return _Envelope(
        schema=EventSchema.CLOUD_EVENTS,
        event_id=_required_str(event, "id"),
        event_type=_required_str(event, "type"),
        event_time=_time(event, "time"),
        subject=_optional_str(event, "subject"),
        topic=_required_str(event, "source"),
        data=_optional_object(event, "data"),
    )


def _resource_event(envelope: _Envelope, action: str, outcome: str) -> Intent:
    data = envelope.data
    if data is None:
        raise InvalidEvent(f"{envelope.event_type} event has no 'data' object")
    operation = _required_str(data, "operationName", "data.")
    verdict = _verdict(action, outcome, operation)
    if isinstance(verdict, str):
        # Nothing will be done, so the ids need not be trusted: ARM also raises events for resources whose
        # names our strict parser refuses (spaces, for one); they are ignored, not rejected.
        declared = _optional_str(data, "subscriptionId", "data.")
        origin = _origin(envelope, data, operation, declared if declared and is_subscription_guid(declared) else None)
        return Ignored(verdict, origin, _try_resource(data))
    kind, expected_type = verdict
    resource = _resource_of(envelope, data, move=kind is ResourcesMoved)
    if expected_type is not None:
        _check_operation_type(operation, resource, expected_type)
    subscription = _check_subscriptions(envelope, data, resource)
    _check_status(envelope, data, outcome)
    return kind(resource, _origin(envelope, data, operation, subscription))


_Actionable: TypeAlias = (type[ProtectResource] | type[ContainerCreated] | type[ResourceGone] | type[ResourcesMoved]
                          | type[VaultDeleteFailed])


def _verdict(action: str, outcome: str, operation: str) -> tuple[_Actionable, str | None] | str:
    """What an operation's outcome calls for: an intent class and the resource type it must concern, or the
    reason it is ignored."""
    op = operation.lower()
    if outcome == "Cancel":
        return f"cancelled operation {operation!r} changed nothing to act on"
    if action == "Delete" and outcome == "Failure" and op in VAULT_DELETE_OPERATIONS:
        return VaultDeleteFailed, VAULT_DELETE_OPERATIONS[op]
    if outcome == "Failure":
        return f"failed operation {operation!r} changed nothing to act on"
    if action == "Action" and op == MOVE_RESOURCES_OPERATION.lower():
        return ResourcesMoved, None
    verb = {"Write": "/write", "Delete": "/delete"}.get(action)
    if verb is None or not op.endswith(verb):
        return f"operation {operation!r} is not one Backup Steward acts on"
    op_type = op[: -len(verb)]
    if action == "Write" and op_type == BLOB_CONTAINER_TYPE.lower():
        return ContainerCreated, BLOB_CONTAINER_TYPE
    if op_type not in PROTECTED_TYPES:
        return f"resource type of {operation!r} is not protected by Backup Steward"
    return (ProtectResource if action == "Write" else ResourceGone), PROTECTED_TYPES[op_type]


def _origin(envelope: _Envelope, data: Mapping[str, Any], operation: str, subscription: str | None) -> EventOrigin:
    return EventOrigin(
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        event_time=envelope.event_time,
        schema=envelope.schema,
        subscription_id=subscription,
        tenant_id=_optional_str(data, "tenantId", "data."),
        correlation_id=_optional_str(data, "correlationId", "data."),
        operation_name=operation,
        principal=_principal(data),
        topic=envelope.topic,
    )


def _try_resource(data: Mapping[str, Any]) -> ResourceId | None:
    text = _optional_str(data, "resourceUri", "data.")
    if text is None:
        return None
    try:
        return ResourceId.parse(text)
    except InvalidResourceId:
        return None


def _check_operation_type(operation: str, resource: ResourceId, expected_type: str) -> None:
    if not resource.is_type(expected_type):
        raise InvalidEvent(
            f"operation {operation!r} does not match the resource type {resource.full_type!r} of the subject"
        )


def _resource_of(envelope: _Envelope, data: Mapping[str, Any], *, move: bool) -> ResourceId:
    uri_text = _required_str(data, "resourceUri", "data.")
    subject_text = envelope.subject
    if subject_text is None:
        raise InvalidEvent(f"{envelope.event_type} event has no 'subject'")
    if move:
        # UNCONFIRMED (docs/azure-facts.md, "Subscription events"): the move action's scope is the source group;
        # tolerate a trailing
        # '/moveResources' in case the subject names the action itself.
        subject_text = _strip_action(subject_text)
        uri_text = _strip_action(uri_text)
    subject = _event_id(subject_text, "subject")
    uri = _event_id(uri_text, "data.resourceUri")
    if subject != uri:
        raise InvalidEvent(
            f"'subject' {_show(subject_text)} and 'data.resourceUri' {_show(uri_text)} name different "
            "resources; the event is refused as forged"
        )
    if move and not subject.is_resource_group:
        raise InvalidEvent(f"a moveResources event must name the source resource group, got {_show(subject_text)}")
    return uri


def _strip_action(text: str) -> str:
    suffix = "/moveresources"
    return text[: -len(suffix)] if text.lower().endswith(suffix) else text


def _check_subscriptions(envelope: _Envelope, data: Mapping[str, Any], resource: ResourceId) -> str:
    expected = resource.subscription_id.lower()
    declared = _optional_str(data, "subscriptionId", "data.")
    if declared is not None and declared.lower() != expected:
        raise InvalidEvent(
            f"'data.subscriptionId' {_show(declared)} is not the subscription of the resource "
            f"{_show(resource.subscription_id)}; the event is refused as forged"
        )
    if envelope.topic is not None:
        topic = _event_id(envelope.topic, "topic" if envelope.schema is EventSchema.EVENT_GRID else "source")
        if topic.subscription_id.lower() != expected:
            raise InvalidEvent(
                f"the event's topic {_show(envelope.topic)} is in another subscription than the resource "
                f"{_show(str(resource))}; the event is refused as forged"
            )
        if not (topic.is_subscription or topic.is_resource_group):
            # ARM raises these on the subscription's (or a group's) system topic, whose id is the subscription's
            # (or the group's) (event-schema-subscriptions.md, event-schema-resource-groups.md); a custom topic's
            # publisher writes the event's id and data itself, and instance ids are keyed on the id
            raise InvalidEvent(
                f"{envelope.event_type} events come from a subscription's or a resource group's system topic, not "
                f"from {_show(envelope.topic)}; the event is refused as forged"
            )
    return resource.subscription_id


def _check_status(envelope: _Envelope, data: Mapping[str, Any], outcome: str) -> None:
    status = _optional_str(data, "status", "data.")
    if status is None:
        return
    succeeded = status.lower() == "succeeded"
    if succeeded != (outcome == "Success"):
        raise InvalidEvent(f"'data.status' {_show(status)} contradicts the event type {envelope.event_type!r}")


def _principal(data: Mapping[str, Any]) -> Principal | None:
    claims = _optional_object(data, "claims", "data.")
    if claims is None:
        return None
    object_id = next(
        (v for v in (_optional_str(claims, k, "data.claims.") for k in _OBJECT_ID_CLAIMS) if v is not None), None
    )
    app_id = _optional_str(claims, "appid", "data.claims.")
    if object_id is None and app_id is None:
        return None
    return Principal(object_id=object_id, app_id=app_id)


def _teardown_requested(envelope: _Envelope) -> TeardownRequested:
    data = envelope.data
    if data is None:
        raise InvalidEvent(f"{TEARDOWN_REQUESTED_EVENT_TYPE} event has no 'data' object")
    vault_text = _required_str(data, "vaultId", "data.")
    vault = _event_id(vault_text, "data.vaultId")
    if vault.vault_kind is None:
        raise InvalidEvent(f"'data.vaultId' {_show(vault_text)} is not a Recovery Services vault or a Backup vault")
    if envelope.subject is not None and _event_id(envelope.subject, "subject") != vault:
        raise InvalidEvent("'subject' and 'data.vaultId' name different vaults; the event is refused as forged")
    requester = _required_str(data, "requester", "data.")
    fingerprint = _optional_str(data, "planFingerprint", "data.")
    if fingerprint is not None and not _FINGERPRINT.fullmatch(fingerprint):
        raise InvalidEvent("'data.planFingerprint' must be 8-200 characters of letters, digits, ':', '_' or '-'")
    origin = EventOrigin(
        event_id=envelope.event_id,
        event_type=envelope.event_type,
        event_time=envelope.event_time,
        schema=envelope.schema,
        subscription_id=vault.subscription_id,
        tenant_id=_optional_str(data, "tenantId", "data."),
        correlation_id=_optional_str(data, "correlationId", "data."),
        operation_name=TEARDOWN_REQUESTED_EVENT_TYPE,
        principal=Principal(object_id=requester),
        topic=envelope.topic,
    )
    return TeardownRequested(vault, requester, fingerprint, origin)


# ---- field helpers -----------------------------------------------------------------------------------


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _optional_str(obj: Mapping[str, Any], key: str, prefix: str = "") -> str | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidEvent(f"'{prefix}{key}' must be a string, got {type(value).__name__}")
    if len(value) > MAX_FIELD_LENGTH:
        raise InvalidEvent(f"'{prefix}{key}' is {len(value)} characters long (at most {MAX_FIELD_LENGTH})")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InvalidEvent(f"'{prefix}{key}' contains control characters")
    return value


def _required_str(obj: Mapping[str, Any], key: str, prefix: str = "") -> str:
    value = _optional_str(obj, key, prefix)
    if value is None or not value.strip():
        raise InvalidEvent(f"'{prefix}{key}' is missing or empty")
    return value


def _optional_object(obj: Mapping[str, Any], key: str, prefix: str = "") -> Mapping[str, Any] | None:
    value = obj.get(key)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidEvent(f"'{prefix}{key}' must be an object, got {type(value).__name__}")
    return value


def _time(obj: Mapping[str, Any], key: str) -> datetime:
    text = _required_str(obj, key)
    try:
        return zoned_time(text).astimezone(UTC)
    except InvalidValue as error:  # "is not an ISO 8601 time" / "has no time zone"
        raise InvalidEvent(f"'{key}' {_show(text)} {error}") from None


def _event_id(text: str, field: str) -> ResourceId:
    try:
        return ResourceId.parse(text)
    except InvalidResourceId as error:
        raise InvalidEvent(f"'{field}' is not a valid resource id: {error}") from None
