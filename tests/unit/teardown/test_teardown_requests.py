"""Who may request a teardown and how: HTTP validation, events, opt-in tag, instance ids."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from entrypoints import problems
from entrypoints.caller_checks import (
    Caller,
    RequestRefused,
    TeardownAccessPolicy,
    approval_from_http,
    authenticated_caller,
    teardown_request_from_http,
)
from steward.auth.tokens import AuthorityUnavailable, Unauthenticated, VerifiedIdentity
from steward.domain.teardown import (
    ApprovalVerdict,
    InvalidTeardownInput,
    RequestSource,
    TeardownRequest,
    VaultInventory,
    VaultKind,
    approval_refusal,
    instance_id_for,
    judge_approval,
    opt_in_decision,
    request_approval,
    teardown_request_from_event,
)
from tests.shared_fixtures import EVENT_GRID, require
from tests.unit.teardown.raw_events import teardown_request_from_raw_event
from tests.unit.teardown.teardown_strategies import BV_VAULT, RS_VAULT, SUB

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
ALLOWED = "11111111-1111-1111-1111-111111111111"
OTHER = "22222222-2222-2222-2222-222222222222"
POLICY = TeardownAccessPolicy.of([ALLOWED], ["Steward.Teardown"], [SUB])
FP = "sha256:" + "ab" * 32
FIXTURES = EVENT_GRID


def headers(object_id: str = ALLOWED, roles: tuple[str, ...] = ()) -> Caller:
    """The caller a validated token proved (validation itself: tests/hostile/test_tokens.py)."""
    return Caller(object_id, None, frozenset(r.lower() for r in roles))


def body(**fields) -> bytes:
    return json.dumps({"vaultId": RS_VAULT, **fields}).encode()


# ------------------------------------------------------------------ HTTP


def test_an_allowed_principal_gets_a_dry_run_by_default() -> None:
    request = teardown_request_from_http(headers(), body(), POLICY, now=NOW, correlation_id="c-1")
    assert request.dry_run and request.approved_fingerprint is None
    assert request.requested_by == ALLOWED and request.source is RequestSource.HTTP
    assert request.opt_in_tag is None and request.correlation_id == "c-1"


def test_a_run_carries_the_normalised_fingerprint() -> None:
    request = teardown_request_from_http(
        headers(), body(dryRun=False, approvedFingerprint=FP.removeprefix("sha256:").upper()), POLICY, now=NOW
    )
    assert request.approved_fingerprint == FP and not request.dry_run


def test_a_role_is_enough() -> None:
    request = teardown_request_from_http(headers(OTHER, ("steward.teardown",)), body(), POLICY, now=NOW)
    assert request.requested_by == OTHER


@pytest.mark.parametrize(
    ("hdrs", "payload", "status", "code"),
    [
        (headers(OTHER), body(), 403, "CallerNotAllowed"),
        (headers(), b"{", 400, "InvalidBody"),
        (headers(), b"[]", 400, "InvalidBody"),
        (headers(), b"", 400, "InvalidBody"),
        (headers(), b"x" * 20000, 413, "BodyTooLarge"),
        (headers(), json.dumps({"dryRun": True}).encode(), 400, "MissingVaultId"),
        (headers(), body(force=True), 400, "UnknownField"),
        (headers(), body(dryRun="yes"), 400, "InvalidDryRun"),
        (headers(), body(dryRun=False, approvedFingerprint="abc"), 400, "InvalidFingerprint"),
        (headers(), body(dryRun=True, approvedFingerprint=FP), 400, "ConflictingFields"),
        (headers(), json.dumps({"vaultId": "/subscriptions/x/../../etc"}).encode(), 400, "InvalidVaultId"),
        (
            headers(),
            json.dumps({"vaultId": RS_VAULT.replace(SUB, "99999999-9999-9999-9999-999999999999")}).encode(),
            403,
            "SubscriptionNotManaged",
        ),
        (
            headers(),
            json.dumps({"vaultId": RS_VAULT.replace("Microsoft.RecoveryServices/vaults", "Microsoft.Compute/disks")})
            .encode(),
            400,
            "InvalidVaultId",
        ),
    ],
)
def test_bad_requests_are_refused_with_a_clear_reason(hdrs, payload, status, code) -> None:
    with pytest.raises(RequestRefused) as refused:
        teardown_request_from_http(hdrs, payload, POLICY, now=NOW)
    assert refused.value.status == status
    assert refused.value.code == code
    assert refused.value.message
    answer = problems.refused(refused.value)
    assert answer.status_code == status and problems.code_of(answer) == code
    assert "Traceback" not in answer.get_body().decode()


def test_nobody_is_allowed_when_nothing_is_configured() -> None:
    with pytest.raises(RequestRefused) as refused:
        teardown_request_from_http(headers(), body(), TeardownAccessPolicy.of([], [], [SUB]), now=NOW)
    assert refused.value.status == 403


@given(st.sampled_from([ALLOWED, OTHER, ""]), st.binary(max_size=300))
def test_hostile_input_gives_a_refusal_never_a_crash(principal, payload) -> None:
    try:
        teardown_request_from_http(headers(principal), payload, POLICY, now=NOW)
    except RequestRefused as refused:
        assert 400 <= refused.status < 500


def test_approval_needs_a_fingerprint_from_an_allowed_caller() -> None:
    approval = approval_from_http(headers(), json.dumps({"fingerprint": FP}).encode(), POLICY)
    assert approval.fingerprint == FP and approval.approved_by == ALLOWED
    with pytest.raises(RequestRefused, match="fingerprint"):
        approval_from_http(headers(), b"{}", POLICY)
    with pytest.raises(RequestRefused):
        approval_from_http(headers(OTHER), json.dumps({"fingerprint": FP}).encode(), POLICY)


class FakeValidator:
    """Stands in for BearerTokenValidator: answers what it was given (the real one: tests/hostile/test_tokens.py)."""

    def __init__(self, answer: VerifiedIdentity | Exception) -> None:
        self.answer = answer
        self.seen: list[str | None] = []

    def validate_authorization(self, authorization: str | None) -> VerifiedIdentity:
        self.seen.append(authorization)
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


def test_the_caller_is_the_identity_the_token_proves_never_a_platform_header() -> None:
    validator = FakeValidator(VerifiedIdentity(OTHER, SUB, frozenset({"admin"}), "o@example.com"))
    forged = {"x-ms-client-principal-id": ALLOWED, "Authorization": "Bearer t"}
    caller = authenticated_caller(forged, validator)  # type: ignore[arg-type]
    assert caller == Caller(OTHER, "o@example.com", frozenset({"admin"}))
    assert validator.seen == ["Bearer t"]


@pytest.mark.parametrize(
    ("answer", "status", "code", "challenge"),
    [
        (Unauthenticated("no access token", error=None), 401, "Unauthenticated", 'Bearer realm="backup-steward"'),
        (Unauthenticated('the "token" has expired'), 401, "InvalidToken",
         'Bearer realm="backup-steward", error="invalid_token", error_description="the token has expired"'),
        (AuthorityUnavailable("down"), 503, "AuthorityUnavailable", None),
    ],
)
def test_token_failures_are_401_with_a_bearer_challenge_or_503(answer, status, code, challenge) -> None:
    with pytest.raises(RequestRefused) as refused:
        authenticated_caller({"x-ms-client-principal-id": ALLOWED}, FakeValidator(answer))  # type: ignore[arg-type]
    assert (refused.value.status, refused.value.code) == (status, code)
    assert refused.value.headers().get("WWW-Authenticate") == challenge
    if status == 503:
        assert refused.value.headers()["Retry-After"] == "30"


def test_an_unreachable_authority_tells_the_caller_no_configuration_or_network_detail(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The 503 goes to a caller whose token was never checked: it names the cause, not the app's authority URL or
    the network error (a proxy's host, an address); those go to the log for the operator."""
    cause = ("could not fetch https://login.corp-proxy.internal:8443/tenant/v2.0/.well-known/openid-configuration: "
             "<urlopen error [Errno 111] Connection refused>")
    with caplog.at_level("WARNING"), pytest.raises(RequestRefused) as refused:
        authenticated_caller({}, FakeValidator(AuthorityUnavailable(cause)))  # type: ignore[arg-type]
    assert (refused.value.status, refused.value.code) == (503, "AuthorityUnavailable")
    for secret in ("corp-proxy", "8443", "Errno", "openid-configuration", "https://"):
        assert secret not in refused.value.message
    assert "token" in refused.value.message
    assert any(cause in r.getMessage() for r in caplog.records)


def test_without_token_validation_configured_nobody_authenticates() -> None:
    with pytest.raises(RequestRefused) as refused:
        authenticated_caller({"x-ms-client-principal-id": ALLOWED}, None)
    assert refused.value.status == 401 and "STEWARD_AUTH_TENANTS" in refused.value.message
    assert refused.value.headers()["WWW-Authenticate"].startswith("Bearer ")


# ------------------------------------------------------------------ events


def failed_delete(vault: str = RS_VAULT, operation: str = "Microsoft.RecoveryServices/vaults/delete") -> dict:
    return {
        "topic": f"/subscriptions/{SUB}",  # the subscription's system topic, as Event Grid stamps it
        "subject": vault.lower(),
        "eventType": "Microsoft.Resources.ResourceDeleteFailure",
        "eventTime": "2026-11-25T09:00:00.1234567Z",
        "id": "evt-1",
        "data": {
            "operationName": operation,
            "resourceUri": vault,
            "status": "Failed",
            "correlationId": "corr-1",
            "claims": {"http://schemas.microsoft.com/identity/claims/objectidentifier": ALLOWED},
        },
    }


def test_a_failed_vault_delete_becomes_a_dry_run_that_needs_the_opt_in_tag() -> None:
    request = teardown_request_from_raw_event(
        failed_delete(), allowed_subscriptions=[SUB], opt_in_tag="steward-teardown"
    )
    assert request.source is RequestSource.EVENT and request.dry_run
    assert request.opt_in_tag == "steward-teardown" and request.requested_by == ALLOWED
    assert request.correlation_id == "corr-1"
    untagged = VaultInventory(RS_VAULT, VaultKind.RECOVERY_SERVICES)
    allowed, _auto, reason = opt_in_decision(request, untagged)
    assert not allowed and "steward-teardown" in reason
    tagged = VaultInventory(RS_VAULT, VaultKind.RECOVERY_SERVICES, tags=(("Steward-Teardown", "yes"),))
    assert opt_in_decision(request, tagged)[:2] == (True, False)
    auto_tagged = VaultInventory(RS_VAULT, VaultKind.RECOVERY_SERVICES, tags=(("steward-teardown", "auto"),))
    assert opt_in_decision(request, auto_tagged, [ALLOWED.upper()])[:2] == (True, True)
    # ``auto`` is for an allowed deleting user only; anyone else's failed delete only plans
    allowed, auto, reason = opt_in_decision(request, auto_tagged, [OTHER])
    assert (allowed, auto) == (True, False) and "not in STEWARD_TEARDOWN_ALLOWED_PRINCIPALS" in reason
    assert opt_in_decision(request, auto_tagged)[:2] == (True, False)
    # with four eyes, ``auto`` would be the deleting user's own approval: it only plans
    allowed, auto, reason = opt_in_decision(request, auto_tagged, [ALLOWED], four_eyes=True)
    assert (allowed, auto) == (True, False) and "four eyes" in reason


def test_a_backup_vault_failed_delete_qualifies_too() -> None:
    request = teardown_request_from_raw_event(
        failed_delete(BV_VAULT, "Microsoft.DataProtection/backupVaults/delete"), allowed_subscriptions=[SUB]
    )
    assert request.vault.kind is VaultKind.BACKUP


REQUESTS_TOPIC = f"/subscriptions/{SUB}/resourceGroups/rg-steward/providers/Microsoft.EventGrid/topics/evgt-requests"


def custom_event(requester: str = ALLOWED, topic: str | None = REQUESTS_TOPIC, **data: object) -> dict:
    event = {
        "type": "BackupSteward.Teardown.Requested",
        "id": "e2",
        "time": "2026-11-25T09:00:00Z",
        "subject": RS_VAULT,
        "data": {"vaultId": RS_VAULT, "requester": requester, "planFingerprint": FP, **data},
    }
    if topic is not None:
        event["source"] = topic
    return event


def test_the_custom_event_is_a_request_never_an_approval() -> None:
    # was: the event's planFingerprint became the request's approved fingerprint (a run) - the defect fixed here
    request = teardown_request_from_raw_event(
        custom_event(dryRun=False), allowed_subscriptions=[SUB], requests_topic_id=REQUESTS_TOPIC.upper(),
        allowed_principals=[ALLOWED],
    )
    assert request.source is RequestSource.CUSTOM_EVENT and request.requested_by == ALLOWED
    assert request.approved_fingerprint is None and not request.dry_run  # plans, then waits for an approval
    assert request_approval(request, four_eyes=False)[:2] == (None, None)
    assert "never an approval" in str(request_approval(request, four_eyes=False)[2])
    # an ``auto`` vault does not change that: only a failed delete may approve itself
    auto_tagged = VaultInventory(RS_VAULT, VaultKind.RECOVERY_SERVICES, tags=(("backup-steward:teardown", "auto"),))
    assert opt_in_decision(request, auto_tagged, [ALLOWED])[:2] == (True, False)


@pytest.mark.parametrize(
    ("event", "topic_id", "message"),
    [
        (custom_event(), None, "no requests topic is configured"),
        (custom_event(topic=REQUESTS_TOPIC.replace("evgt-requests", "evgt-other")), REQUESTS_TOPIC, "only from"),
        (custom_event(topic=None), REQUESTS_TOPIC, "only from"),
        (custom_event(requester=OTHER), REQUESTS_TOPIC, "not in STEWARD_TEARDOWN_ALLOWED_PRINCIPALS"),
    ],
)
def test_a_custom_event_from_another_topic_or_a_stranger_is_refused(event, topic_id, message) -> None:
    with pytest.raises(InvalidTeardownInput, match=message):
        teardown_request_from_raw_event(
            event, allowed_subscriptions=[SUB], requests_topic_id=topic_id, allowed_principals=[ALLOWED]
        )


@pytest.mark.parametrize(
    "topic",
    [None, f"/subscriptions/{OTHER}", f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.EventGrid/topics/t"],
)
def test_a_failed_delete_only_counts_from_the_vaults_subscription_system_topic(topic) -> None:
    event = failed_delete()
    event["topic"] = topic
    with pytest.raises(InvalidTeardownInput, match="system topic"):
        teardown_request_from_raw_event(event, allowed_subscriptions=[SUB])


def test_an_app_id_is_never_taken_for_an_object_id() -> None:
    event = failed_delete()
    event["data"]["claims"] = {"appid": ALLOWED}
    request = teardown_request_from_raw_event(event, allowed_subscriptions=[SUB])
    assert request.requested_by == "app:" + ALLOWED
    auto_tagged = VaultInventory(RS_VAULT, VaultKind.RECOVERY_SERVICES, tags=(("backup-steward:teardown", "auto"),))
    assert opt_in_decision(request, auto_tagged, [ALLOWED])[:2] == (True, False)


def test_four_eyes_on_a_custom_event_needs_two_verified_principals() -> None:
    declared = TeardownRequest(RS_VAULT, OTHER, RequestSource.CUSTOM_EVENT, False)  # the sender wrote OTHER
    verdict, why = judge_approval(declared, ALLOWED, four_eyes=True)
    assert verdict is ApprovalVerdict.CONFIRMED and "not verified" in str(why)
    assert judge_approval(declared, ALLOWED, four_eyes=True, confirmed_by=ALLOWED)[0] is ApprovalVerdict.REFUSED
    assert judge_approval(declared, OTHER, four_eyes=True, confirmed_by=ALLOWED) == (ApprovalVerdict.APPROVED, None)
    assert judge_approval(declared, "", four_eyes=True)[0] is ApprovalVerdict.REFUSED
    assert judge_approval(declared, ALLOWED, four_eyes=False) == (ApprovalVerdict.APPROVED, None)
    http = TeardownRequest(RS_VAULT, ALLOWED, RequestSource.HTTP, False)  # a verified requester: one approval
    assert judge_approval(http, OTHER, four_eyes=True) == (ApprovalVerdict.APPROVED, None)
    assert judge_approval(http, ALLOWED, four_eyes=True)[0] is ApprovalVerdict.REFUSED


def test_only_an_http_request_carries_an_approval_and_four_eyes_needs_another_approver() -> None:
    own = TeardownRequest(RS_VAULT, ALLOWED, RequestSource.HTTP, False, FP)
    assert request_approval(own, four_eyes=False) == (FP, ALLOWED, None)
    fingerprint, approver, note = request_approval(own, four_eyes=True)  # a self-approval: it waits instead
    assert (fingerprint, approver) == (None, None) and "four eyes" in str(note)
    approved = TeardownRequest(RS_VAULT, ALLOWED, RequestSource.HTTP, False, FP, approved_by=OTHER)
    assert request_approval(approved, four_eyes=True) == (FP, OTHER, None)
    for source in (RequestSource.EVENT, RequestSource.CUSTOM_EVENT):  # defence in depth: never from an event
        forged = TeardownRequest(RS_VAULT, ALLOWED, source, False, FP, approved_by=OTHER)
        assert request_approval(forged, four_eyes=False)[:2] == (None, None)
    assert approval_refusal(own, ALLOWED.upper(), four_eyes=True) is not None
    assert approval_refusal(own, "", four_eyes=True) is not None
    assert approval_refusal(own, OTHER, four_eyes=True) is None
    assert approval_refusal(own, ALLOWED, four_eyes=False) is None


@pytest.mark.parametrize(
    ("event", "message"),
    [
        (failed_delete(operation="Microsoft.Compute/virtualMachines/delete"), "not a vault delete"),
        ({**failed_delete(), "eventType": "Microsoft.Resources.ResourceWriteSuccess"}, "does not request"),
        ({"eventType": "Microsoft.Resources.ResourceDeleteFailure"}, "no data"),
        ([], "JSON object"),
        (
            {
                "eventType": "BackupSteward.Teardown.Requested",
                "subject": BV_VAULT,
                "data": {"vaultId": RS_VAULT, "requester": "x"},
            },
            "forged",
        ),
    ],
)
def test_other_events_are_refused_with_a_reason(event, message) -> None:
    with pytest.raises(InvalidTeardownInput, match=message):
        teardown_request_from_raw_event(event, allowed_subscriptions=[SUB])


def test_an_event_for_an_unmanaged_subscription_is_refused() -> None:
    with pytest.raises(InvalidTeardownInput, match="not managed"):
        teardown_request_from_raw_event(failed_delete(), allowed_subscriptions=["33333333-3333-3333-3333-333333333333"])


def test_the_classified_intent_is_accepted_as_well() -> None:
    events = pytest.importorskip("steward.domain.events")
    intent = events.classify(failed_delete())
    if not hasattr(intent, "vault_id"):
        pytest.skip(f"classifier returned {type(intent).__name__}")
    request = teardown_request_from_event(intent, allowed_subscriptions=[SUB])
    assert request.vault_id.lower() == RS_VAULT.lower() and request.dry_run


def test_the_tests_raw_reader_and_the_classifier_read_the_same_request() -> None:
    # the raw reader lives in tests (tests/unit/teardown/raw_events.py): it must not drift from what production
    # reads through events.classify, or the refusals tested with it would prove nothing
    from steward.domain import events

    failed = failed_delete()
    failed["data"]["claims"] = {"appid": ALLOWED}  # an app-only caller, the subtle branch
    cases = [
        (failed_delete(), {}),
        (failed, {}),
        (
            {**custom_event(), "eventType": custom_event()["type"], "topic": REQUESTS_TOPIC},
            {"requests_topic_id": REQUESTS_TOPIC, "allowed_principals": [ALLOWED]},
        ),
    ]
    for raw, options in cases:
        eventgrid = {k: v for k, v in raw.items() if k not in ("type", "source", "time")}
        eventgrid.setdefault("eventTime", raw.get("time") or raw.get("eventTime"))
        eventgrid.setdefault("dataVersion", "1")
        eventgrid.setdefault("metadataVersion", "1")
        intent = events.classify(eventgrid)
        from_classifier = teardown_request_from_event(intent, allowed_subscriptions=[SUB], **options)
        from_raw = teardown_request_from_raw_event(eventgrid, allowed_subscriptions=[SUB], **options)
        assert (from_raw.vault.key, from_raw.requested_by, from_raw.source, from_raw.dry_run) == (
            from_classifier.vault.key,
            from_classifier.requested_by,
            from_classifier.source,
            from_classifier.dry_run,
        )
        assert from_raw.approved_fingerprint is None and from_classifier.approved_fingerprint is None


def test_production_reads_a_teardown_request_only_from_a_classified_event() -> None:
    with pytest.raises(InvalidTeardownInput, match="classified event"):
        teardown_request_from_event(failed_delete(), allowed_subscriptions=[SUB])


def test_a_sample_event_from_microsoft_is_not_a_teardown() -> None:
    sample = FIXTURES / "Microsoft.Resources.ResourceDeleteSuccess.eventgrid-schema.json"
    require(FIXTURES)
    event = json.loads(sample.read_text())[0]
    with pytest.raises(InvalidTeardownInput):
        teardown_request_from_raw_event(event, allowed_subscriptions=[SUB])


# ------------------------------------------------------------------ records and ids


def test_request_round_trips_and_ids_are_deterministic() -> None:
    request = TeardownRequest(RS_VAULT, ALLOWED, RequestSource.HTTP, False, FP, "c", None, NOW)
    again = TeardownRequest.from_record(json.loads(json.dumps(request.to_record())))
    assert again == request
    approved = TeardownRequest(RS_VAULT, ALLOWED, RequestSource.HTTP, False, FP, "c", None, NOW, approved_by=OTHER)
    assert TeardownRequest.from_record(json.loads(json.dumps(approved.to_record()))) == approved
    assert instance_id_for(request) == instance_id_for(again)
    upper = TeardownRequest(RS_VAULT.upper().replace("SUBSCRIPTIONS", "subscriptions"), ALLOWED, RequestSource.HTTP,
                            False, FP)
    assert instance_id_for(upper).split("-")[-3:] == instance_id_for(request).split("-")[-3:]
    dry = TeardownRequest(RS_VAULT, ALLOWED, RequestSource.HTTP, True)
    assert instance_id_for(dry) != instance_id_for(request)


def test_request_records_are_validated() -> None:
    with pytest.raises(InvalidTeardownInput):
        TeardownRequest.from_record({"vaultId": RS_VAULT, "requestedBy": "x", "source": "carrier-pigeon"})
    with pytest.raises(InvalidTeardownInput):
        TeardownRequest.from_record({"vaultId": RS_VAULT, "requestedBy": "x", "source": "http", "dryRun": "no"})
