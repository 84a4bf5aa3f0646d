"""ARM token buckets in virtual time: per (subscription or tenant, principal, bucket), and one global bucket per
(subscription, bucket) that every principal draws from.

Source: MicrosoftDocs azure-docs ``articles/azure-resource-manager/management/request-limits-and-throttling.md``
("Regional throttling and token bucket algorithm", 2024 onwards): subscription and tenant buckets of reads
250 + 25/s, writes 200 + 10/s, deletes 200 + 10/s, applied "per subscription, per service principal, and per
operation type"; "There's also a global subscription limit that's equivalent to 15 times the individual
service principal limit for each operation type. The global limit applies across all service principals.
Requests are throttled if the global, service principal, or tenant specific limits are exceeded."

INFERRED (the article does not say): a request refused by one bucket spends no token of the other; the global
bucket refills at 15x the per-principal rate (its size is 15x: real answers carry
``x-ms-ratelimit-remaining-subscription-global-writes: 2999`` next to ``...-subscription-writes: 199``).
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from sandbox.arm.config import BucketSpec, ThrottleConfig

BUCKET_OF_KIND = {"read": "reads", "write": "writes", "action": "writes", "delete": "deletes"}
GLOBAL_PRINCIPAL = "*global*"


@dataclass
class _Bucket:
    spec: BucketSpec
    tokens: float
    at: float  # virtual epoch seconds of the last refill

    def refill(self, now: float) -> None:
        self.tokens = min(self.spec.capacity, self.tokens + max(0.0, now - self.at) * self.spec.refill_per_second)
        self.at = max(self.at, now)

    def wait(self) -> float:
        return max(0.0, (1 - self.tokens) / self.spec.refill_per_second)


@dataclass(frozen=True)
class ThrottleDecision:
    allowed: bool
    bucket: str  # reads | writes | deletes
    remaining: int  # the principal's bucket after this request
    retry_after_seconds: float  # Azure seconds until one token is back (0 when allowed)
    #: the subscription's global bucket after this request (None for tenant-scoped requests)
    global_remaining: int | None = None


class Throttle:
    def __init__(self, config: ThrottleConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}

    def reconfigure(self, config: ThrottleConfig) -> None:
        with self._lock:
            self.config = config
            self._buckets.clear()

    def _bucket(self, key: tuple[str, str, str], spec: BucketSpec, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(spec, float(spec.capacity), now)
        bucket.refill(now)
        return bucket

    def take(self, scope: str, principal: str, kind: str, now: float) -> ThrottleDecision:
        """Consume one token of the principal's bucket and (subscription scope) of the global one; refused (when
        enabled) if either is empty."""
        name = BUCKET_OF_KIND[kind]
        spec: BucketSpec = getattr(self.config, name)
        with self._lock:
            buckets = [self._bucket((scope.lower(), principal.lower(), name), spec, now)]
            if not scope.startswith("tenant:"):
                factor = self.config.global_factor
                global_spec = BucketSpec(spec.capacity * factor, spec.refill_per_second * factor)
                buckets.append(self._bucket((scope.lower(), GLOBAL_PRINCIPAL, name), global_spec, now))
            allowed = all(b.tokens >= 1 for b in buckets)
            if allowed:
                for b in buckets:
                    b.tokens -= 1
            elif not self.config.enabled:
                allowed = True  # throttle off: nothing refused, nothing spent from an empty bucket
            counts = [max(0, math.floor(b.tokens)) for b in buckets]
            wait = 0.0 if allowed else max(b.wait() for b in buckets)
            return ThrottleDecision(allowed, name, counts[0], wait, counts[1] if len(counts) > 1 else None)
