"""Client-side pacing under ARM's throttle: one limiter per (subscription, bucket), shared by every SDK client
of the process that acts as the same principal.

ARM throttles each principal per subscription with token buckets (reads, writes, deletes; a POST counts as a
write) and tells the caller how many requests are left in ``x-ms-ratelimit-remaining-subscription-{reads|writes|
deletes}``; a 429 carries ``Retry-After`` (or ``retry-after-ms``). Left alone, every parallel activity finds the
bucket empty on its own, and each of them eats a 429 before its retry policy backs off. ``SubscriptionPacer``
keeps a local picture of each bucket instead:

* it spends one token per request before sending, and refills at the bucket's documented rate;
* every answer that carries the remaining-count header resets the picture to what ARM says (minus the
  requests still in flight), so other clients of the same principal, or a sandbox that runs faster than the
  wall clock, are followed rather than guessed;
* a 429 closes the bucket for every caller until its ``Retry-After`` has passed;
* when the picture says the bucket is empty, the caller waits for the next token instead of sending;
* it steers by what ARM reports, so that N instances of the app (Flex Consumption scale-out: N processes, N
  pacers, one principal, one bucket) share the budget without talking to each other: while the reported count
  (``x-ms-ratelimit-remaining-subscription-{bucket}``, and the subscription's global bucket in
  ``x-ms-ratelimit-remaining-subscription-global-{bucket}``, 15x the principal's) less this pacer's own requests
  since that answer is at or above a threshold ``T`` (``steer_below_seconds`` of refill, at most half the
  bucket) it sends freely; below it, it spaces its requests at ``refill x (remaining / T)^2`` per second
  (at least ``refill / T``). Every pacer does the same, so N of them settle where their rates add up to the
  refill: the bucket hovers near ``T / sqrt(N)`` (plus the requests each holds in flight) instead of being
  driven to zero (the square keeps that level off zero for large N: 1/4 of T for 16), and none of them needs
  to know N. The first request after a quiet spell is not held back (its answer brings a fresh count).

Pure timing logic on an injected clock (``now`` and ``sleep``), so it is tested with a fake one.
``PacingPolicy`` is the azure-core pipeline policy around it (placed per retry, after the ``RetryPolicy``).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import HTTPPolicy

from steward.cloud import azure_time

REMAINING_HEADER: Final = "x-ms-ratelimit-remaining-subscription-{bucket}"
GLOBAL_REMAINING_HEADER: Final = "x-ms-ratelimit-remaining-subscription-global-{bucket}"
_SUBSCRIPTION: Final = re.compile(r"/subscriptions/([^/?#]+)", re.IGNORECASE)
BUCKET_OF_METHOD: Final[dict[str, str]] = {
    "GET": "reads", "HEAD": "reads", "OPTIONS": "reads",
    "PUT": "writes", "PATCH": "writes", "POST": "writes",
    "DELETE": "deletes",
}


@dataclass(frozen=True)
class BucketLimits:
    """ARM's documented bucket for one principal in one subscription: capacity and refill per second."""

    capacity: int
    refill_per_second: float


@dataclass(frozen=True)
class PacingLimits:
    """The buckets ARM documents (reads 250 + 25/s, writes 200 + 10/s, deletes 200 + 10/s) and how many tokens
    to leave unspent (``reserve``: headroom for requests of the same principal from elsewhere)."""

    reads: BucketLimits = BucketLimits(250, 25.0)
    writes: BucketLimits = BucketLimits(200, 10.0)
    deletes: BucketLimits = BucketLimits(200, 10.0)
    reserve: int = 2
    #: steer by the reported count below this many seconds of refill (capped at half the bucket); 0 = off
    steer_below_seconds: float = 10.0
    #: the subscription's global bucket is this many times the principal's (request-limits-and-throttling.md:
    #: "a global subscription limit that's equivalent to 15 times the individual service principal limit")
    global_factor: int = 15
    #: a request held back by steering looks at the counts again at least this often
    steer_recheck_seconds: float = 0.5
    #: longest single wait the pacer imposes (a Retry-After longer than this is cut to it; the SDK's own retry
    #: policy and LRO poller wait at most ``steward.cloud.polling.MAX_SDK_WAIT_SECONDS`` on one answer too)
    max_wait_seconds: float = 60.0

    def bucket(self, name: str) -> BucketLimits:
        limits: BucketLimits = getattr(self, name)
        return limits


@dataclass
class _Bucket:
    limits: BucketLimits
    tokens: float
    at: float
    in_flight: int = 0
    closed_until: float = 0.0
    #: ARM's last reported counts (principal's bucket, the subscription's global one) and how many requests this
    #: pacer let through since that answer (its own spending the count does not show yet)
    reported: float | None = None
    reported_global: float | None = None
    sent_since_report: int = 0
    outstanding: int = 0  # sent (slot claimed) and not answered yet
    last_send: float = float("-inf")  # steering: when this pacer last let a request go


@dataclass
class PacerStats:
    """What the pacer did: requests paced, how long they waited in total, 429s seen."""

    requests: int = 0
    waits: int = 0
    waited_seconds: float = 0.0
    throttled: int = 0
    steered: int = 0  # requests spaced because the reported count was below the threshold


@dataclass
class SubscriptionPacer:
    """The local picture of ARM's buckets, per (subscription, bucket). Thread-safe."""

    limits: PacingLimits = field(default_factory=PacingLimits)
    now: Callable[[], float] = azure_time.monotonic
    sleep: Callable[[float], None] = azure_time.sleep
    stats: PacerStats = field(default_factory=PacerStats)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str], _Bucket] = {}

    def _bucket(self, key: tuple[str, str], at: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            limits = self.limits.bucket(key[1])
            bucket = self._buckets[key] = _Bucket(limits, float(limits.capacity), at)
        return bucket

    def _refill(self, bucket: _Bucket, at: float) -> None:
        if at > bucket.at:
            bucket.tokens = min(float(bucket.limits.capacity),
                                bucket.tokens + (at - bucket.at) * bucket.limits.refill_per_second)
            bucket.at = at

    def delay(self, subscription: str, bucket_name: str) -> float:
        """Reserve a token for one request now; return how long to wait before sending it (0 = at once)."""
        base, steer, _ = self.reserve(subscription, bucket_name)
        return max(base, steer)

    def reserve(self, subscription: str, bucket_name: str) -> tuple[float, float, bool]:
        """Reserve a token for one request now: (wait by the local picture and any 429, wait by steering, whether
        the request already holds its steering slot; if not, ``ready`` claims one later)."""
        key = (subscription.lower(), bucket_name)
        with self._lock:
            at = self.now()
            bucket = self._bucket(key, at)
            self._refill(bucket, at)
            bucket.tokens -= 1
            bucket.in_flight += 1
            self.stats.requests += 1
            short = self.limits.reserve - bucket.tokens  # tokens missing to keep the reserve
            wait = max(0.0, bucket.closed_until - at, short / bucket.limits.refill_per_second if short > 0 else 0.0)
            wait = min(wait, self.limits.max_wait_seconds)
            steer = self._steer_wait(bucket, at)
            if steer <= 0:
                self._claim(bucket, at)
            else:
                self.stats.steered += 1
            if wait > 0 or steer > 0:
                self.stats.waits += 1
                self.stats.waited_seconds += max(wait, steer)
            return wait, steer, steer <= 0

    def ready(self, subscription: str, bucket_name: str) -> float:
        """For a request ``reserve`` held back by steering: 0 when it may go now (its slot is claimed), else how
        long until its turn by the counts known now."""
        key = (subscription.lower(), bucket_name)
        with self._lock:
            at = self.now()
            bucket = self._bucket(key, at)
            steer = self._steer_wait(bucket, at)
            if steer <= 0:
                self._claim(bucket, at)
            return steer

    @staticmethod
    def _claim(bucket: _Bucket, at: float) -> None:
        bucket.last_send = at
        bucket.sent_since_report += 1
        bucket.outstanding += 1

    def _steer_wait(self, bucket: _Bucket, at: float) -> float:
        """How long the reported counts hold the next request of this pacer back (0 at or above the threshold)."""
        if self.limits.steer_below_seconds <= 0:
            return 0.0
        rate = float("inf")
        limits = bucket.limits
        factor = self.limits.global_factor
        for reported, capacity, refill in ((bucket.reported, limits.capacity, limits.refill_per_second),
                                           (bucket.reported_global, limits.capacity * factor,
                                            limits.refill_per_second * factor)):
            if reported is None:
                continue
            threshold = min(refill * self.limits.steer_below_seconds, capacity / 2)
            left = reported - bucket.sent_since_report
            if left < threshold:
                rate = min(rate, refill * max((max(left, 0.0) / threshold) ** 2, 1.0 / threshold))
        if rate == float("inf"):
            return 0.0
        return max(0.0, bucket.last_send + 1.0 / rate - at)

    def acquire(self, subscription: str, bucket_name: str) -> None:
        """``reserve`` and wait it out; a request held back by steering looks again at least every
        ``steer_recheck_seconds`` (a fresher count from another answer may let it go sooner)."""
        wait, steer, claimed = self.reserve(subscription, bucket_name)
        if wait > 0:
            self.sleep(wait)
        if claimed:
            return
        while (steer := self.ready(subscription, bucket_name)) > 0:
            self.sleep(min(steer, self.limits.steer_recheck_seconds))

    def answered(self, subscription: str, bucket_name: str, status: int, remaining: int | None,
                 retry_after: float | None, *, global_remaining: int | None = None) -> None:
        """What ARM said about the request ``acquire`` let through (``remaining``: the principal's bucket;
        ``global_remaining``: the subscription's global bucket, when the answer carries them)."""
        key = (subscription.lower(), bucket_name)
        with self._lock:
            at = self.now()
            bucket = self._bucket(key, at)
            bucket.in_flight = max(0, bucket.in_flight - 1)
            bucket.outstanding = max(0, bucket.outstanding - 1)
            self._refill(bucket, at)
            if remaining is not None:
                # ARM's count after serving this request; the ones still in flight will spend more
                bucket.tokens = min(float(bucket.limits.capacity), float(remaining - bucket.in_flight))
                bucket.at = at
                bucket.reported = float(remaining)
            if global_remaining is not None:
                bucket.reported_global = float(global_remaining)
            if remaining is not None or global_remaining is not None:
                bucket.sent_since_report = bucket.outstanding  # the ones still out may not be counted yet
            if status == 429:
                self.stats.throttled += 1
                pause = retry_after if retry_after is not None else 1.0 / bucket.limits.refill_per_second
                bucket.closed_until = max(bucket.closed_until, at + pause)
                bucket.tokens = min(bucket.tokens, float(-bucket.in_flight))

    def cancelled(self, subscription: str, bucket_name: str) -> None:
        """The request never got an answer (connection error): it no longer counts as in flight."""
        with self._lock:
            bucket = self._buckets.get((subscription.lower(), bucket_name))
            if bucket is not None:
                bucket.in_flight = max(0, bucket.in_flight - 1)
                bucket.outstanding = max(0, bucket.outstanding - 1)


def subscription_of(url: str) -> str | None:
    match = _SUBSCRIPTION.search(url)
    return match.group(1) if match else None


def retry_after_seconds(headers: Any) -> float | None:
    """``retry-after-ms`` (azure-core's first choice), else ``Retry-After`` in seconds; None if neither parses."""
    for name, factor in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("Retry-After", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * factor)
        except ValueError:
            continue  # an HTTP date: leave it to the SDK's retry policy
    return None


def retry_after(headers: Mapping[str, str]) -> float:
    """Azure's suggested wait in seconds before an operation is looked at again (``retry-after-ms`` /
    ``Retry-After``, at least 1 s), 10 s when it says nothing: the drill's and the teardown's operations."""
    try:
        if "retry-after-ms" in headers:
            return max(1.0, float(headers["retry-after-ms"]) / 1000)
        return max(1.0, float(headers.get("retry-after", "10")))
    except ValueError:
        return 10.0


def remaining_of(headers: Any, bucket_name: str, header: str = REMAINING_HEADER) -> int | None:
    value = headers.get(header.format(bucket=bucket_name))
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


class PacingPolicy(HTTPPolicy):  # type: ignore[type-arg]
    """azure-core policy: paces each attempt through a shared ``SubscriptionPacer`` and feeds it the answer."""

    def __init__(self, pacer: SubscriptionPacer) -> None:
        super().__init__()
        self.pacer = pacer

    def send(self, request: PipelineRequest) -> PipelineResponse:  # type: ignore[type-arg]
        http_request = request.http_request
        subscription = subscription_of(http_request.url) or "-"
        bucket = BUCKET_OF_METHOD.get(http_request.method.upper(), "writes")
        self.pacer.acquire(subscription, bucket)
        try:
            response = self.next.send(request)
        except BaseException:
            self.pacer.cancelled(subscription, bucket)
            raise
        headers = response.http_response.headers
        self.pacer.answered(subscription, bucket, response.http_response.status_code,
                            remaining_of(headers, bucket), retry_after_seconds(headers),
                            global_remaining=remaining_of(headers, bucket, GLOBAL_REMAINING_HEADER))
        return response


_SHARED: dict[tuple[str, ...], SubscriptionPacer] = {}
_SHARED_LOCK = threading.Lock()


def shared_pacer(key: tuple[str, ...], limits: PacingLimits) -> SubscriptionPacer:
    """The one pacer of this process for ``key`` (ARM endpoint + the principal the credential acts as)."""
    with _SHARED_LOCK:
        pacer = _SHARED.get(key)
        if pacer is None or pacer.limits != limits:
            pacer = _SHARED[key] = SubscriptionPacer(limits)
        return pacer
