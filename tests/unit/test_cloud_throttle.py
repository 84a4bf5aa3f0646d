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
    base, steer, _ = p.reserve(SUB_A, "writes")
    assert base == pytest.approx(0.3)  # the local picture: tokens 0 - 2 in flight - 1 = -3
    # ...and steering by the count holds it back longer: the refill is not all ours (another client spends too)
    assert steer > base
    # ...and a faster refill than documented (ARM says 50 left) is followed too
    p2, _ = pacer(capacity=100, refill=10.0)
    for _ in range(100):
        p2.delay(SUB_A, "writes")
    for _ in range(99):
        p2.answered(SUB_A, "writes", 200, remaining=None, retry_after=None)
    assert p2.delay(SUB_A, "writes") > 0  # by the documented refill the bucket is empty...
    p2.answered(SUB_A, "writes", 200, remaining=50, retry_after=None)  # ...ARM says 50 left (1 in flight)
    base, steer, _ = p2.reserve(SUB_A, "writes")
    assert base == 0  # the picture follows ARM's count
    assert steer == pytest.approx(1 / (10.0 * (49 / 50) ** 2))  # steering: 49 left < 50 (half the bucket)


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


# ---- N instances, N pacers, one bucket: steering by the reported count ------------------------------------


def simulate(instances: int, threads: int, seconds: float, *, steer: bool, latency: float = 0.05,
             capacity: int = 200, refill: float = 10.0) -> dict[str, float]:
    """Discrete-event run on one fake clock: ``instances`` separate pacers (``threads`` callers each, every caller
    sends again as soon as its answer is in) against one ARM token bucket that reports what is left on every
    answer, as the sandbox and Azure do. Returns the 429 share and the successful rate after the first
    ``capacity`` requests, as a fraction of the refill."""
    import heapq

    clock = FakeClock()
    limits = PacingLimits(writes=BucketLimits(capacity, refill), steer_below_seconds=10.0 if steer else 0.0)
    pacers = [SubscriptionPacer(limits, now=clock.now, sleep=clock.sleep) for _ in range(instances)]
    tokens, at = float(capacity), 0.0
    events: list[tuple[float, int, str, int, int, int]] = []
    seq = 0
    for i in range(instances):
        for _ in range(threads):
            events.append((0.0, seq, "send", i, 0, 0))
            seq += 1
    heapq.heapify(events)
    ok = throttled = 0
    ok_times: list[float] = []
    while events:
        t, _, what, i, status, remaining = heapq.heappop(events)
        if t > seconds:
            break
        clock.t = t
        if what == "send":  # what PacingPolicy does through ``acquire``, one step per event
            wait, steer, claimed = pacers[i].reserve(SUB_A, "writes")
            if claimed:
                heapq.heappush(events, (t + wait + latency / 2, seq, "arrive", i, 0, 0))
            else:
                heapq.heappush(events, (t + wait, seq, "ready", i, 0, 0))
        elif what == "ready":
            steer = pacers[i].ready(SUB_A, "writes")
            if steer <= 0:
                heapq.heappush(events, (t + latency / 2, seq, "arrive", i, 0, 0))
            else:
                heapq.heappush(events, (t + min(steer, limits.steer_recheck_seconds), seq, "ready", i, 0, 0))
        elif what == "arrive":
            tokens, at = min(capacity, tokens + (t - at) * refill), t
            if tokens >= 1:
                tokens -= 1
                ok += 1
                ok_times.append(t)
                status = 200
            else:
                throttled += 1
                status = 429
            heapq.heappush(events, (t + latency / 2, seq, "answer", i, status, int(tokens)))
        else:
            retry = max(0.0, (1 - tokens) / refill) if status == 429 else None
            pacers[i].answered(SUB_A, "writes", status, remaining, retry)
            heapq.heappush(events, (t, seq, "send", i, 0, 0))
        seq += 1
    steady = ok_times[capacity:]
    span = (steady[-1] - steady[0]) if len(steady) > 1 else 1.0
    return {"share": throttled / max(1, ok + throttled), "steady_of_refill": len(steady) / span / refill,
            "ok": ok, "throttled": throttled}


@pytest.mark.parametrize("instances", [1, 4, 16])
def test_separate_pacers_that_steer_by_the_reported_count_share_one_bucket(instances: int) -> None:
    result = simulate(instances, threads=4, seconds=300.0, steer=True)
    assert result["share"] <= 0.01, result
    assert result["steady_of_refill"] >= 0.9, result  # the budget is used, not wasted


def test_without_steering_separate_pacers_overrun_one_bucket() -> None:
    """The control (the pacer before steering): each instance refills its own picture of the shared bucket."""
    result = simulate(16, threads=4, seconds=300.0, steer=False)
    assert result["share"] > 0.2, result


def test_the_global_bucket_steers_too() -> None:
    """Other principals emptied the subscription's global bucket: the principal's own is full, but the global
    count (15x the principal's bucket) low; requests are spaced all the same."""
    p, clock = pacer(capacity=200, refill=10.0)
    p.delay(SUB_A, "writes")
    p.answered(SUB_A, "writes", 200, remaining=199, retry_after=None, global_remaining=30)
    clock.t = 100.0  # a quiet spell
    first = p.reserve(SUB_A, "writes")
    assert first[1] == 0 and first[2]  # the first request after an answer goes
    second = p.reserve(SUB_A, "writes")
    assert second[1] > 0 and not second[2]  # the next one is held back for its turn...
    clock.t += second[1]
    assert p.ready(SUB_A, "writes") == 0  # ...and goes when it comes
    assert p.stats.steered == 1
