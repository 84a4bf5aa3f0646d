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
* when the picture says the bucket is empty, the caller waits for the next token instead of sending.

Pure timing logic on an injected clock (``now`` and ``sleep``), so it is tested with a fake one.
``PacingPolicy`` is the azure-core pipeline policy around it (placed per retry, after the ``RetryPolicy``).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import HTTPPolicy

REMAINING_HEADER: Final = "x-ms-ratelimit-remaining-subscription-{bucket}"
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
    #: longest single wait the pacer imposes (a Retry-After longer than this is cut to it; the SDK's own
    #: retry policy still honours the full value on the 429 itself)
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


@dataclass
class PacerStats:
    """What the pacer did: requests paced, how long they waited in total, 429s seen."""

    requests: int = 0
    waits: int = 0
    waited_seconds: float = 0.0
    throttled: int = 0


@dataclass
class SubscriptionPacer:
    """The local picture of ARM's buckets, per (subscription, bucket). Thread-safe."""

    limits: PacingLimits = field(default_factory=PacingLimits)
    now: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
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
            if wait > 0:
                self.stats.waits += 1
                self.stats.waited_seconds += wait
            return wait

    def acquire(self, subscription: str, bucket_name: str) -> None:
        """``delay`` and wait it out."""
        wait = self.delay(subscription, bucket_name)
        if wait > 0:
            self.sleep(wait)

    def answered(self, subscription: str, bucket_name: str, status: int, remaining: int | None,
                 retry_after: float | None) -> None:
        """What ARM said about the request ``acquire`` let through."""
        key = (subscription.lower(), bucket_name)
        with self._lock:
            at = self.now()
            bucket = self._bucket(key, at)
            bucket.in_flight = max(0, bucket.in_flight - 1)
            self._refill(bucket, at)
            if remaining is not None:
                # ARM's count after serving this request; the ones still in flight will spend more
                bucket.tokens = min(float(bucket.limits.capacity), float(remaining - bucket.in_flight))
                bucket.at = at
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


def remaining_of(headers: Any, bucket_name: str) -> int | None:
    value = headers.get(REMAINING_HEADER.format(bucket=bucket_name))
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
                            remaining_of(headers, bucket), retry_after_seconds(headers))
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
