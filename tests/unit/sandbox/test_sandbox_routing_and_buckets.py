"""Routing (case-insensitive literals, specificity), token buckets, fault decisions, paging tokens."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from sandbox.arm.config import BucketSpec, FaultConfig, ThrottleConfig
from sandbox.arm.faults import FaultInjector
from sandbox.arm.http import Request, Response
from sandbox.arm.lro import retry_after_headers
from sandbox.arm.paging import Pager
from sandbox.arm.routing import Router
from sandbox.arm.throttle import Throttle


def handler(name: str):
    return lambda req: Response(200, name)


def test_literal_segments_match_case_insensitively_and_params_are_decoded() -> None:
    router = Router()
    rp = router.provider("Microsoft.Compute", ["2024-01-01"])
    rp.add("GET", "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/disks/{name}", handler("d"))
    shouted = "/SUBSCRIPTIONS/s/resourcegroups/My%20RG/PROVIDERS/microsoft.compute/DISKS/d1"
    route, params = router.resolve("GET", shouted)
    assert route.handler(None).body == "d"  # type: ignore[arg-type]
    assert params == {"sub": "s", "rg": "My RG", "name": "d1"}
    assert router.resolve("PUT", "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/disks/d1") is None
    assert router.path_known("/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/disks/d1")
    assert router.knows_namespace("MICROSOFT.COMPUTE") and not router.knows_namespace("Microsoft.Nope")


def test_the_most_literal_template_wins_and_kinds_follow_the_method() -> None:
    router = Router()
    rp = router.provider("Microsoft.X", ["1"])
    rp.add("GET", "/a/{x}/{y}", handler("generic"))
    rp.add("GET", "/a/{x}/operationResults", handler("specific"))
    post = rp.add("POST", "/a/{x}/act", handler("post"))
    assert router.resolve("GET", "/a/1/operationresults")[0].handler(None).body == "specific"  # type: ignore[arg-type]
    assert router.resolve("GET", "/a/1/other")[0].handler(None).body == "generic"  # type: ignore[arg-type]
    assert post.kind == "action" and post.api_versions == frozenset({"1"})


def test_token_buckets_refill_at_their_rate_up_to_their_size() -> None:
    throttle = Throttle(ThrottleConfig(enabled=True, writes=BucketSpec(3, 1)))
    taken = [throttle.take("s", "p", "write", now=0.0) for _ in range(4)]
    assert [d.allowed for d in taken] == [True, True, True, False]
    assert [d.remaining for d in taken[:3]] == [2, 1, 0] and taken[3].retry_after_seconds == 1.0
    assert throttle.take("s", "p", "action", now=1.0).allowed  # POST counts as a write
    assert not throttle.take("s", "p", "write", now=1.5).allowed
    assert throttle.take("s", "other-principal", "write", now=1.5).allowed  # per principal
    assert throttle.take("s", "p", "read", now=1.5).allowed  # reads have their own bucket
    assert throttle.take("s", "p", "write", now=100.0).remaining == 2  # capped at the size


def test_the_global_subscription_bucket_is_15_times_one_principals_and_shared_by_all() -> None:
    """request-limits-and-throttling.md: a global subscription limit 15x the per-principal one, across all
    principals; throttled if either is exceeded."""
    throttle = Throttle(ThrottleConfig(enabled=True, writes=BucketSpec(2, 1)))
    first = throttle.take("s", "p0", "write", now=0.0)
    assert (first.remaining, first.global_remaining) == (1, 29)
    allowed = sum(throttle.take("s", f"p{i}", "write", now=0.0).allowed for i in range(40) for _ in range(2))
    assert allowed == 29  # 30 global tokens in all, though 40 principals hold 80 of their own
    refused = throttle.take("s", "p39", "write", now=0.0)
    assert not refused.allowed and refused.global_remaining == 0 and refused.retry_after_seconds == pytest.approx(
        1 / 15)
    assert throttle.take("s", "p39", "write", now=0.1).allowed  # the global bucket refills at 15 x 1/s
    assert throttle.take("other-sub", "p0", "write", now=0.0).global_remaining == 29  # per subscription
    assert throttle.take("tenant:t", "p0", "write", now=0.0).global_remaining is None  # tenant scope: none


def test_disabled_throttling_never_refuses() -> None:
    throttle = Throttle(ThrottleConfig(enabled=False, deletes=BucketSpec(1, 0.001)))
    assert all(throttle.take("s", "p", "delete", now=0.0).allowed for _ in range(10))


def test_fault_decisions_depend_only_on_seed_and_call_sequence() -> None:
    config = FaultConfig(seed=4, server_error={"read": 0.5})
    first = [FaultInjector(config).decide("read", "GET", "/a", 0.0).kind for _ in range(1)]
    a, b = FaultInjector(config), FaultInjector(config)
    seq_a = [a.decide("read", "GET", "/a", 0.0).kind for _ in range(50)]
    seq_b = [b.decide("read", "GET", "/A", 0.0).kind for _ in range(50)]  # paths compare case-insensitively
    assert seq_a == seq_b and set(seq_a) == {"none", "server_error"} and first[0] == seq_a[0]
    assert FaultInjector(FaultConfig()).decide("read", "GET", "/a", 0.0).kind == "none"


def test_wait_hints_follow_the_clock_scale() -> None:
    assert retry_after_headers(10, 1.0) == {"Retry-After": "10"}
    assert retry_after_headers(10, 1000.0) == {"retry-after-ms": "10"}
    assert retry_after_headers(0.0001, 1000.0) == {"retry-after-ms": "1"}
    assert retry_after_headers(10, 1000.0, "azure") == {"Retry-After": "10"}


def _request(query: dict[str, str]) -> Request:
    return Request("GET", "/subscriptions/s/resourcegroups", dict(query), {}, b"", "https://h:1",
                   target="/subscriptions/s/resourcegroups")


def test_pages_cover_every_item_once_in_id_order() -> None:
    pager = Pager(page_size=3)
    items = [{"id": f"/x/{i:02d}"} for i in range(8)]
    seen: list[str] = []
    query = {"api-version": "1"}
    while True:
        body = pager.page(_request(query), items).body
        seen += [i["id"] for i in body["value"]]
        if "nextLink" not in body:
            break
        next_query = parse_qs(urlsplit(body["nextLink"]).query)
        assert next_query["api-version"] == ["1"]
        query = {"api-version": "1", "$skiptoken": next_query["$skiptoken"][0]}
    assert seen == [i["id"] for i in items]
