"""ARM token buckets in virtual time, per (subscription or tenant, principal, bucket)."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from sandbox.arm.config import BucketSpec, ThrottleConfig

BUCKET_OF_KIND = {"read": "reads", "write": "writes", "action": "writes", "delete": "deletes"}


@dataclass
class _Bucket:
    spec: BucketSpec
    tokens: float
    at: float  # virtual epoch seconds of the last refill


@dataclass(frozen=True)
class ThrottleDecision:
    allowed: bool
    bucket: str  # reads | writes | deletes
    remaining: int
    retry_after_seconds: float  # Azure seconds until one token is back (0 when allowed)


class Throttle:
    def __init__(self, config: ThrottleConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._buckets: dict[tuple[str, str, str], _Bucket] = {}

    def reconfigure(self, config: ThrottleConfig) -> None:
        with self._lock:
            self.config = config
            self._buckets.clear()

    def take(self, scope: str, principal: str, kind: str, now: float) -> ThrottleDecision:
        """Consume one token; refused (when enabled) if the bucket is empty."""
        name = BUCKET_OF_KIND[kind]
        spec: BucketSpec = getattr(self.config, name)
        with self._lock:
            key = (scope.lower(), principal.lower(), name)
            bucket = self._buckets.get(key)
            if bucket is None:
                bucket = self._buckets[key] = _Bucket(spec, float(spec.capacity), now)
            bucket.tokens = min(spec.capacity, bucket.tokens + (now - bucket.at) * spec.refill_per_second)
            bucket.at = now
            if bucket.tokens >= 1:
                bucket.tokens -= 1
                return ThrottleDecision(True, name, math.floor(bucket.tokens), 0.0)
            if not self.config.enabled:
                return ThrottleDecision(True, name, 0, 0.0)
            wait = (1 - bucket.tokens) / spec.refill_per_second
            return ThrottleDecision(False, name, 0, wait)
