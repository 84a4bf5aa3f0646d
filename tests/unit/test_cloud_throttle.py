"""The client-side ARM pacer (steward.cloud.throttle) on a fake clock: pure timing logic."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from steward.cloud.throttle import (
    BucketLimits,
    PacingLimits,
    SubscriptionPacer,
    remaining_of,
    retry_after_seconds,
    subscription_of,
)

SUB_A, SUB_B = "00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002"


@dataclass
class FakeClock:
    t: float = 0.0
    slept: list[float] = field(default_factory=list)

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def pacer(capacity: int = 5, refill: float = 10.0, reserve: int = 0) -> tuple[SubscriptionPacer, FakeClock]:
    clock = FakeClock()
    limits = PacingLimits(reads=BucketLimits(capacity, refill), writes=BucketLimits(capacity, refill),
                          deletes=BucketLimits(capacity, refill), reserve=reserve)
    return SubscriptionPacer(limits, now=clock.now, sleep=clock.sleep), clock


def test_a_full_bucket_sends_at_once_then_paces_at_the_refill_rate() -> None:
    p, clock = pacer(capacity=5, refill=10.0)
    delays = [p.delay(SUB_A, "writes") for _ in range(8)]
    assert delays[:5] == [0, 0, 0, 0, 0]
    # tokens -1, -2, -3 -> the 6th waits 0.1 s, the 7th 0.2 s, the 8th 0.3 s: 10 per second
    assert delays[5:] == pytest.approx([0.1, 0.2, 0.3])
    clock.t = 1.0  # a second later ten tokens came back: 2 left after the three reserved
    assert p.delay(SUB_A, "writes") == 0


def test_subscriptions_and_buckets_are_paced_separately() -> None:
    p, _ = pacer(capacity=1)
    assert p.delay(SUB_A, "writes") == 0
    assert p.delay(SUB_B, "writes") == 0
    assert p.delay(SUB_A, "reads") == 0
    assert p.delay(SUB_A, "writes") > 0


def test_the_remaining_header_replaces_the_local_picture_minus_requests_in_flight() -> None:
    p, _ = pacer(capacity=100, refill=10.0)
    for _ in range(3):
        p.delay(SUB_A, "writes")
    # ARM says none left after the first answer (another client of the same principal spent them);
    # two of ours are still in flight
    p.answered(SUB_A, "writes", 200, remaining=0, retry_after=None)
    assert p.delay(SUB_A, "writes") == pytest.approx(0.3)  # tokens: 0 - 2 in flight - 1 = -3
    # ...and a faster refill than documented (ARM says 50 left) is followed too
    p2, _ = pacer(capacity=100, refill=10.0)
    for _ in range(100):
        p2.delay(SUB_A, "writes")
    for _ in range(99):
        p2.answered(SUB_A, "writes", 200, remaining=None, retry_after=None)
    assert p2.delay(SUB_A, "writes") > 0  # by the documented refill the bucket is empty...
    p2.answered(SUB_A, "writes", 200, remaining=50, retry_after=None)  # ...ARM says 50 left (1 in flight)
    assert p2.delay(SUB_A, "writes") == 0


def test_a_429_closes_the_bucket_for_every_caller_until_retry_after() -> None:
    p, clock = pacer(capacity=100, refill=10.0)
    p.delay(SUB_A, "writes")
    p.answered(SUB_A, "writes", 429, remaining=None, retry_after=4.0)
    assert p.delay(SUB_A, "writes") == pytest.approx(4.0)
    assert p.delay(SUB_B, "writes") == 0  # another subscription's bucket is open
    clock.t = 4.0
    assert p.delay(SUB_A, "writes") < 4.0
    assert p.stats.throttled == 1


def test_acquire_sleeps_the_delay_and_waits_are_bounded() -> None:
    clock = FakeClock()
    limits = PacingLimits(writes=BucketLimits(1, 0.001), max_wait_seconds=5.0, reserve=0)
    p = SubscriptionPacer(limits, now=clock.now, sleep=clock.sleep)
    p.acquire(SUB_A, "writes")
    p.acquire(SUB_A, "writes")
    assert clock.slept == [5.0]
    assert p.stats.waits == 1 and p.stats.waited_seconds == 5.0


def test_a_request_without_an_answer_stops_counting_as_in_flight() -> None:
    p, _ = pacer(capacity=10)
    p.delay(SUB_A, "writes")
    p.cancelled(SUB_A, "writes")
    p.answered(SUB_A, "writes", 200, remaining=10, retry_after=None)
    assert p.delay(SUB_A, "writes") == 0


def test_header_parsing() -> None:
    assert subscription_of(f"https://h/subscriptions/{SUB_A}/resourceGroups/rg?api-version=1") == SUB_A
    assert subscription_of("https://h/providers/Microsoft.Resources/operations") is None
    assert retry_after_seconds({"retry-after-ms": "250", "Retry-After": "7"}) == 0.25
    assert retry_after_seconds({"Retry-After": "7"}) == 7.0
    assert retry_after_seconds({"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert remaining_of({"x-ms-ratelimit-remaining-subscription-writes": "42"}, "writes") == 42
    assert remaining_of({"x-ms-ratelimit-remaining-subscription-writes": "x"}, "writes") is None
