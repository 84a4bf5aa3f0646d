"""Event Grid for the sandbox: ARM's ``Microsoft.Resources.*`` events and custom-topic publishing.

Every successful or failed write, delete and action through the sandbox raises the event ARM raises on the
subscription's system topic (Event Grid schema, ``dataVersion`` 2). Delivery is at least once, in background
threads (``max_concurrent_deliveries`` at once per subscription, as Event Grid overlaps deliveries), to
in-process callbacks and webhook URLs (after Event Grid's SubscriptionValidation handshake), with
optional duplicates and reordering, and retries on failure following Event Grid's schedule on the virtual clock.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import ssl
import threading
import urllib.error
import urllib.request
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Final
from urllib.parse import urlparse

from sandbox.arm.config import EventDeliveryConfig
from sandbox.arm.http import Principal
from sandbox.arm.ids import parse_id
from sandbox.arm.tokens import event_claims

log = logging.getLogger(__name__)

EventCallback = Callable[[list[dict[str, Any]]], None]
EVENT_TYPE_PREFIX = "Microsoft.Resources.Resource"
_VERB = {"write": "Write", "delete": "Delete", "action": "Action"}
_STATUS = {"Succeeded": "Success", "Failed": "Failure", "Canceled": "Cancel"}
NO_RETRY_STATUSES = (400, 401, 413)


@dataclass(frozen=True)
class RequestFacts:
    """What an ARM event says about the request that caused it (captured when the request arrives)."""

    kind: str  # write | delete | action
    resource_id: str
    operation_name: str
    subscription_id: str
    tenant_id: str
    principal: Principal
    correlation_id: str
    client_request_id: str
    client_ip: str
    method: str
    url: str
    is_update: bool  # a write to an existing resource (ARM shows httpRequest only on updates/deletes/actions)


def event_time(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def default_evidence(facts: RequestFacts) -> dict[str, Any]:
    return {
        "role": "Owner",
        "roleAssignmentScope": f"/subscriptions/{facts.subscription_id}",
        "principalId": facts.principal.object_id,
        "principalType": "ServicePrincipal",
    }


def subject_text(resource_id: str, kind: str) -> str:
    """Writes show ``resourcegroups`` lower-cased in ``subject``/``resourceUri`` (as Azure's sample does)."""
    if kind != "write":
        return resource_id
    parts = resource_id.split("/")
    return "/".join("resourcegroups" if p.lower() == "resourcegroups" else p for p in parts)


def build_resource_event(
    facts: RequestFacts,
    status: str,
    when: datetime,
    evidence: Callable[[RequestFacts], dict[str, Any]] = default_evidence,
) -> dict[str, Any]:
    """The Event Grid event ARM raises for ``facts`` ending in ``status`` (Succeeded/Failed/Canceled)."""
    subject = subject_text(facts.resource_id, facts.kind)
    data: dict[str, Any] = {
        "authorization": {"scope": subject, "action": facts.operation_name, "evidence": evidence(facts)},
        "claims": event_claims(facts.principal, facts.client_ip),
        "correlationId": facts.correlation_id,
    }
    if facts.kind in ("delete", "action") or facts.is_update:
        data["httpRequest"] = {
            "clientRequestId": facts.client_request_id,
            "clientIpAddress": facts.client_ip,
            "method": facts.method,
            "url": facts.url,
        }
    data.update(
        {
            "resourceProvider": parse_id(facts.resource_id).namespace or "Microsoft.Resources",
            "resourceUri": subject,
            "operationName": facts.operation_name,
            "status": status,
            "subscriptionId": facts.subscription_id,
            "tenantId": facts.tenant_id,
        }
    )
    return {
        "subject": subject,
        "eventType": EVENT_TYPE_PREFIX + _VERB[facts.kind] + _STATUS[status],
        "eventTime": event_time(when),
        "id": str(uuid.uuid4()),
        "data": data,
        "dataVersion": "2",
        "metadataVersion": "1",
        "topic": f"/subscriptions/{facts.subscription_id}",
    }


_STRING_OPERATORS: dict[str, Callable[[str, list[str]], bool]] = {
    "StringIn": lambda value, values: value in values,
    "StringNotIn": lambda value, values: value not in values,
    "StringBeginsWith": lambda value, values: any(value.startswith(v) for v in values),
    "StringEndsWith": lambda value, values: any(value.endswith(v) for v in values),
    "StringContains": lambda value, values: any(v in value for v in values),
}


def check_advanced_filter(spec: dict[str, Any]) -> dict[str, Any]:
    """Validate one Event Grid advanced filter (string operators only); returns it."""
    operator = spec.get("operatorType")
    if operator not in _STRING_OPERATORS:
        raise ValueError(f"advanced filter operatorType must be one of {sorted(_STRING_OPERATORS)}, got {operator!r}")
    if not isinstance(spec.get("key"), str) or not isinstance(spec.get("values"), list):
        raise ValueError("an advanced filter needs 'key' (e.g. 'data.operationName') and a list of 'values'")
    return spec


def advanced_filter_matches(spec: dict[str, Any], event: dict[str, Any]) -> bool:
    """Event Grid string filters: the key is a dotted path into the event; comparisons ignore case."""
    value: Any = event
    for part in str(spec["key"]).split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return spec["operatorType"] == "StringNotIn"
    values = [str(v).lower() for v in spec["values"]]
    return _STRING_OPERATORS[spec["operatorType"]](str(value).lower(), values)


@dataclass
class EventSubscription:
    """One subscriber: an in-process callback or a webhook URL, with Event Grid's basic filters."""

    id: str
    callback: EventCallback | None = None
    webhook_url: str | None = None
    included_event_types: tuple[str, ...] | None = None
    subject_begins_with: str | None = None
    subject_ends_with: str | None = None
    #: Event Grid advanced filters: [{"operatorType": "StringIn", "key": "data.operationName", "values": [...]}]
    advanced_filters: tuple[dict[str, Any], ...] = ()
    delivered: int = 0
    failed_attempts: int = 0
    dropped: list[dict[str, Any]] = field(default_factory=list)  # gave up (no dead-letter store)

    def wants(self, event: dict[str, Any]) -> bool:
        if self.included_event_types is not None and event.get("eventType") not in self.included_event_types:
            return False
        subject = str(event.get("subject", "")).lower()
        if self.subject_begins_with is not None and not subject.startswith(self.subject_begins_with.lower()):
            return False
        if self.subject_ends_with is not None and not subject.endswith(self.subject_ends_with.lower()):
            return False
        return all(advanced_filter_matches(f, event) for f in self.advanced_filters)


@dataclass(order=True)
class _Delivery:
    due: datetime
    seq: int
    subscription: EventSubscription = field(compare=False)
    event: dict[str, Any] = field(compare=False)
    attempt: int = field(default=1, compare=False)


class WebhookValidationError(Exception):
    """The webhook did not answer Event Grid's SubscriptionValidation handshake."""


class ActivityLog:
    """The administrative activity log ARM keeps of every write, delete and action (one ``Succeeded`` or ``Failed``
    entry per request; Azure also logs ``Started``/``Accepted`` entries, not modelled). Bounded: the newest
    ``MAX_ENTRIES`` stay (Azure keeps 90 days). Shapes: ``EventData`` of Microsoft.Insights 2015-04-01."""

    MAX_ENTRIES: Final = 200_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: deque[dict[str, Any]] = deque(maxlen=self.MAX_ENTRIES)

    def record(self, facts: RequestFacts, status: str, when: datetime) -> None:
        parsed = parse_id(facts.resource_id)
        entry = {
            "authorization": {"action": facts.operation_name, "scope": facts.resource_id},
            "caller": facts.principal.object_id,
            "channels": "Operation",
            "correlationId": facts.correlation_id,
            "eventDataId": str(uuid.uuid4()),
            "eventName": {"value": "EndRequest", "localizedValue": "End request"},
            "category": {"value": "Administrative", "localizedValue": "Administrative"},
            "eventTimestamp": event_time(when),
            "id": f"{facts.resource_id}/events/{uuid.uuid4()}",
            "level": "Informational" if status == "Succeeded" else "Error",
            "operationId": str(uuid.uuid4()),
            "operationName": {"value": facts.operation_name, "localizedValue": facts.operation_name},
            "resourceGroupName": parsed.resource_group or "",
            "resourceProviderName": {"value": parsed.namespace or "Microsoft.Resources",
                                     "localizedValue": parsed.namespace or "Microsoft.Resources"},
            "resourceId": facts.resource_id,
            "status": {"value": status, "localizedValue": status},
            "submissionTimestamp": event_time(when),
            "subscriptionId": facts.subscription_id,
            "tenantId": facts.tenant_id,
            "_when": when,
        }
        with self._lock:
            self._entries.append(entry)

    def entries(self, subscription_id: str) -> list[dict[str, Any]]:
        """The subscription's entries, newest first (as ARM lists them), each without the private time."""
        wanted = subscription_id.lower()
        with self._lock:
            found = [e for e in self._entries if str(e["subscriptionId"]).lower() == wanted]
        return list(reversed(found))


class EventBus:
    def __init__(self, clock: Any, config: EventDeliveryConfig, ssl_context: ssl.SSLContext | None = None) -> None:
        self.activity_log = ActivityLog()
        self.clock = clock
        self.config = config
        self._ssl = ssl_context
        self._lock = threading.Condition()
        self._queue: list[_Delivery] = []
        self._seq = itertools.count()
        self._random = random.Random(config.seed)
        self._subscriptions: dict[str, EventSubscription] = {}
        self._in_flight = 0
        self._in_flight_by_subscription: dict[str, int] = {}
        self._stopped = False
        self._threads: list[threading.Thread] = []
        #: every system-topic event raised, in order (tests read this)
        self.raised: list[dict[str, Any]] = []
        #: custom topic name (lower) -> events published to it
        self.topics: dict[str, list[dict[str, Any]]] = {}
        #: replaceable: evidence for data.authorization (the Authorization provider may install its own)
        self.evidence: Callable[[RequestFacts], dict[str, Any]] = default_evidence

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        """Delivery threads: ``max_concurrent_deliveries`` of them (deliveries overlap, as Event Grid's do)."""
        self._threads = [threading.Thread(target=self._run, name=f"sandbox-eventgrid-{n}", daemon=True)
                         for n in range(max(1, self.config.max_concurrent_deliveries))]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)

    def reconfigure(self, config: EventDeliveryConfig) -> None:
        with self._lock:
            self.config = config
            self._random = random.Random(config.seed)

    # -- subscriptions --------------------------------------------------------------------------
    def subscribe(
        self,
        callback: EventCallback,
        *,
        included_event_types: Iterable[str] | None = None,
        subject_begins_with: str | None = None,
        subject_ends_with: str | None = None,
        advanced_filters: Iterable[dict[str, Any]] = (),
    ) -> EventSubscription:
        """In-process subscriber; filters as an Event Grid event subscription has them."""
        sub = EventSubscription(
            id=str(uuid.uuid4()),
            callback=callback,
            included_event_types=tuple(included_event_types) if included_event_types is not None else None,
            subject_begins_with=subject_begins_with,
            subject_ends_with=subject_ends_with,
            advanced_filters=tuple(check_advanced_filter(dict(f)) for f in advanced_filters),
        )
        with self._lock:
            self._subscriptions[sub.id] = sub
        return sub

    def subscribe_webhook(
        self,
        url: str,
        *,
        included_event_types: Iterable[str] | None = None,
        subject_begins_with: str | None = None,
        subject_ends_with: str | None = None,
        advanced_filters: Iterable[dict[str, Any]] = (),
        topic: str = "/subscriptions",
    ) -> EventSubscription:
        """Register a webhook after Event Grid's validation handshake (loopback URLs only)."""
        filters = tuple(check_advanced_filter(dict(f)) for f in advanced_filters)
        host = urlparse(url).hostname
        if urlparse(url).scheme not in ("http", "https") or host not in ("127.0.0.1", "localhost", "::1"):
            raise WebhookValidationError(f"webhook URL must be http(s) on loopback, got {url!r}")
        code = str(uuid.uuid4())
        validation = [
            {
                "id": str(uuid.uuid4()),
                "topic": topic,
                "subject": "",
                "data": {"validationCode": code, "validationUrl": ""},
                "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
                "eventTime": event_time(self.clock.now()),
                "metadataVersion": "1",
                "dataVersion": "1",
            }
        ]
        status, body = self._post(url, validation, "SubscriptionValidation")
        try:
            answered = json.loads(body or b"{}").get("validationResponse")
        except ValueError:
            answered = None
        if status != 200 or answered != code:
            raise WebhookValidationError(
                f"webhook {url} failed the SubscriptionValidation handshake (HTTP {status}, "
                f"validationResponse {answered!r}, expected {code!r})"
            )
        sub = EventSubscription(
            id=str(uuid.uuid4()),
            webhook_url=url,
            included_event_types=tuple(included_event_types) if included_event_types is not None else None,
            subject_begins_with=subject_begins_with,
            subject_ends_with=subject_ends_with,
            advanced_filters=filters,
        )
        with self._lock:
            self._subscriptions[sub.id] = sub
        return sub

    def unsubscribe(self, subscription: EventSubscription | str) -> None:
        key = subscription if isinstance(subscription, str) else subscription.id
        with self._lock:
            self._subscriptions.pop(key, None)

    def subscriptions(self) -> list[EventSubscription]:
        with self._lock:
            return list(self._subscriptions.values())

    @contextmanager
    def unsubscribed(self) -> Iterator[None]:
        """As before any event subscription existed (an estate older than the app): events raised meanwhile
        reach nobody. The subscriptions are back afterwards."""
        with self._lock:
            saved = dict(self._subscriptions)
            self._subscriptions.clear()
        try:
            yield
        finally:
            with self._lock:
                self._subscriptions.update(saved)

    # -- raising --------------------------------------------------------------------------------
    def raise_resource_event(self, facts: RequestFacts, status: str) -> dict[str, Any]:
        """Build and publish the ``Microsoft.Resources.Resource*`` event for ``facts``; returns it. The same write
        is kept in the subscription's activity log (``activity_log``; served by the ``insights`` provider)."""
        event = build_resource_event(facts, status, self.clock.now(), self.evidence)
        self.activity_log.record(facts, status, self.clock.now())
        self.publish([event])
        return event

    def publish(self, events: list[dict[str, Any]]) -> None:
        """Queue system-topic events for every matching subscriber (with configured duplicates/jitter)."""
        now = self.clock.now()
        with self._lock:
            self.raised.extend(events)
            for event in events:
                for sub in self._subscriptions.values():
                    if not sub.wants(event):
                        continue
                    copies = 2 if self._random.random() < self.config.duplicate_probability else 1
                    for _ in range(copies):
                        jitter = self._random.uniform(0, self.config.reorder_jitter_seconds)
                        due = now + timedelta(seconds=jitter)
                        heapq.heappush(self._queue, _Delivery(due, next(self._seq), sub, event))
            self._lock.notify_all()

    def publish_to_topic(self, topic: str, events: list[dict[str, Any]]) -> None:
        with self._lock:
            self.topics.setdefault(topic.lower(), []).extend(events)

    def topic_events(self, topic: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.topics.get(topic.lower(), []))

    # -- delivery -------------------------------------------------------------------------------
    def pending(self) -> int:
        with self._lock:
            return len(self._queue) + self._in_flight

    def clock_probe(self) -> tuple[bool, datetime | None]:
        """For a discrete clock: (a delivery is in flight or due, when the next queued one is due)."""
        with self._lock:
            if self._in_flight:
                return True, None
            if not self._queue:
                return False, None
            due = min(d.due for d in self._queue)
        return due <= self.clock.now(), due

    def drain(self, timeout: float = 10.0) -> bool:
        """Wait (real seconds) until every queued delivery is done; False on timeout."""
        import time

        deadline = time.monotonic() + timeout
        with self._lock:
            while self._queue or self._in_flight:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(min(left, 0.05))
        return True

    def _next_due(self) -> tuple[_Delivery | None, float]:
        """(the earliest due delivery whose subscription has room for one more in flight, else None; how many
        Azure seconds until the earliest queued one is due). Called with the lock held."""
        head = self._queue[0]
        wait = (head.due - self.clock.now()).total_seconds()
        if wait > 0:
            return None, wait
        limit = max(1, self.config.max_concurrent_deliveries)
        if self._in_flight_by_subscription.get(head.subscription.id, 0) < limit:
            return heapq.heappop(self._queue), 0.0
        now = self.clock.now()  # the head's subscription is full: the earliest due one of another subscription
        ready = [d for d in self._queue
                 if d.due <= now and self._in_flight_by_subscription.get(d.subscription.id, 0) < limit]
        if not ready:
            return None, 0.0
        chosen = min(ready)
        self._queue.remove(chosen)
        heapq.heapify(self._queue)
        return chosen, 0.0

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._stopped:
                    return
                if not self._queue:
                    self._lock.wait(0.05)
                    continue
                delivery, wait = self._next_due()
                if delivery is None:
                    self._lock.wait(min(wait / self.clock.scale, 0.05) if wait > 0 else 0.05)
                    continue
                if delivery.subscription.id not in self._subscriptions:
                    continue
                self._in_flight += 1
                key = delivery.subscription.id
                self._in_flight_by_subscription[key] = self._in_flight_by_subscription.get(key, 0) + 1
            ok, retry = False, True
            try:
                ok, retry = self._deliver(delivery)
            finally:
                with self._lock:
                    self._in_flight -= 1
                    self._in_flight_by_subscription[key] -= 1
                    self._after(delivery, ok, retry)
                    self._lock.notify_all()

    def _after(self, delivery: _Delivery, ok: bool, retry: bool) -> None:
        sub = delivery.subscription
        if ok:
            sub.delivered += 1
            return
        sub.failed_attempts += 1
        if not retry or delivery.attempt >= self.config.max_attempts:
            sub.dropped.append(delivery.event)
            return
        schedule = self.config.retry_schedule
        delay = schedule[delivery.attempt - 1] if delivery.attempt <= len(schedule) else 43200.0
        heapq.heappush(
            self._queue,
            replace(delivery, due=self.clock.now() + timedelta(seconds=delay), seq=next(self._seq),
                    attempt=delivery.attempt + 1),
        )

    def _deliver(self, delivery: _Delivery) -> tuple[bool, bool]:
        """(delivered?, worth retrying?)"""
        sub = delivery.subscription
        if sub.callback is not None:
            try:
                sub.callback([delivery.event])
            except Exception:
                log.warning("event subscriber %s failed; will retry", sub.id, exc_info=True)
                return False, True
            return True, False
        assert sub.webhook_url is not None
        status, _ = self._post(sub.webhook_url, [delivery.event], "Notification")
        if 200 <= status < 300:
            return True, False
        return False, status not in NO_RETRY_STATUSES

    def _post(self, url: str, payload: list[dict[str, Any]], event_type: str) -> tuple[int, bytes]:
        request = urllib.request.Request(  # noqa: S310 - loopback only, checked at subscribe
            url,
            data=json.dumps(payload).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "aeg-event-type": event_type},
        )
        try:
            with urllib.request.urlopen(  # noqa: S310
                request, timeout=self.config.webhook_timeout_seconds, context=self._ssl
            ) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()
        except (OSError, ValueError):
            return 0, b""
