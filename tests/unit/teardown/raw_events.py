"""Raw Event Grid events read straight into teardown requests, for tests only.

Production reads an event through ``steward.domain.events.classify`` and then
``steward.domain.teardown.teardown_request_from_event``; these tests feed raw JSON instead, so this reader lives
here and ends in the same checks production runs (:func:`steward.domain.teardown.check_event_request`).
``test_teardown_requests.py`` checks that it reads a failed delete and a custom event as the classifier does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from steward.domain.kernel import parse_time
from steward.domain.teardown import (
    DEFAULT_OPT_IN_TAG,
    InvalidTeardownInput,
    RequestSource,
    TeardownRequest,
    VaultRef,
    check_event_request,
)
from steward.domain.teardown.request import CUSTOM_EVENT_TYPE, FAILED_DELETE_EVENT_TYPE, event_principal


def teardown_request_from_raw_event(
    event: Any,
    *,
    allowed_subscriptions: Iterable[str],
    opt_in_tag: str = DEFAULT_OPT_IN_TAG,
    requests_topic_id: str | None = None,
    allowed_principals: Iterable[str] = (),
) -> TeardownRequest:
    """A raw event (Event Grid schema, or CloudEvents with ``type``) as a checked teardown request."""
    schema = "CloudEvents" if isinstance(event, Mapping) and "specversion" in event else "EventGrid"
    request = request_from_raw_event(event, opt_in_tag)
    return check_event_request(
        request,
        schema=schema,
        topic=event.get("topic") or event.get("source"),
        allowed_subscriptions=allowed_subscriptions,
        requests_topic_id=requests_topic_id,
        allowed_principals=allowed_principals,
    )


def request_from_raw_event(event: Any, opt_in_tag: str) -> TeardownRequest:
    if not isinstance(event, Mapping):
        raise InvalidTeardownInput("an event must be a JSON object")
    event_type = event.get("eventType") or event.get("type")
    data = event.get("data")
    if not isinstance(event_type, str):
        raise InvalidTeardownInput("the event has no eventType")
    if not isinstance(data, Mapping):
        raise InvalidTeardownInput("the event has no data object")
    event_id = str(event.get("id") or "")
    correlation = str(data.get("correlationId") or event_id)
    when = parse_time(event.get("eventTime") or event.get("time"))
    if event_type == FAILED_DELETE_EVENT_TYPE:
        operation = str(data.get("operationName") or "").lower()
        if operation not in (
            "microsoft.recoveryservices/vaults/delete",
            "microsoft.dataprotection/backupvaults/delete",
        ):
            raise InvalidTeardownInput(f"a failed {operation or 'unknown operation'} is not a vault delete")
        vault = VaultRef.parse(data.get("resourceUri") or event.get("subject"))
        claims = data.get("claims")
        claims = claims if isinstance(claims, Mapping) else {}
        requested_by = event_principal(
            claims.get("http://schemas.microsoft.com/identity/claims/objectidentifier"), claims.get("appid")
        )
        return TeardownRequest(vault.id, requested_by, RequestSource.EVENT, True, None, correlation, opt_in_tag, when)
    if event_type == CUSTOM_EVENT_TYPE:
        vault = VaultRef.parse(data.get("vaultId"))
        subject = event.get("subject")
        if isinstance(subject, str) and subject.startswith("/subscriptions/"):
            try:
                if VaultRef.parse(subject) != vault:
                    raise InvalidTeardownInput("subject and data.vaultId name different vaults")
            except InvalidTeardownInput as error:
                raise InvalidTeardownInput(f"the event is refused as forged: {error}") from None
        requested_by = str(data.get("requester") or data.get("requestedBy") or "custom-event")
        # a request, never an approval: a planFingerprint/approvedFingerprint/dryRun in it changes nothing
        return TeardownRequest(
            vault.id, requested_by, RequestSource.CUSTOM_EVENT, False, None, correlation, opt_in_tag, when
        )
    raise InvalidTeardownInput(f"event type {event_type!r} does not request a teardown")
