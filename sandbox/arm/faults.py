"""Seeded fault injection: decisions are a pure function of the seed and the request's identity."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from dataclasses import dataclass

from sandbox.arm.config import FaultConfig


def uniform(seed: int, *parts: object) -> float:
    """A deterministic number in [0, 1) from the seed and ``parts``."""
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class FaultDecision:
    kind: str  # "none" | "server_error" | "throttle" | "reset"
    status: int = 0


class FaultInjector:
    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._seen: Counter[tuple[str, str]] = Counter()
        self._storm_until: dict[str, float] = {}

    def reconfigure(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._seen.clear()
            self._storm_until.clear()

    def decide(self, kind: str, method: str, path: str, now: float) -> FaultDecision:
        cfg = self.config
        if not cfg.active:
            return FaultDecision("none")
        with self._lock:
            n = self._seen[(method, path.lower())]
            self._seen[(method, path.lower())] += 1
            if self._storm_until.get(kind, -1.0) > now:
                return FaultDecision("throttle", 429)
            if uniform(cfg.seed, "reset", kind, method, path.lower(), n) < cfg.connection_reset.get(kind, 0.0):
                return FaultDecision("reset")
            if uniform(cfg.seed, "5xx", kind, method, path.lower(), n) < cfg.server_error.get(kind, 0.0):
                status = 503 if uniform(cfg.seed, "5xx-code", path.lower(), n) < 0.5 else 500
                return FaultDecision("server_error", status)
            if uniform(cfg.seed, "storm", kind, method, path.lower(), n) < cfg.throttle_storm.get(kind, 0.0):
                self._storm_until[kind] = now + cfg.storm_seconds
                return FaultDecision("throttle", 429)
        return FaultDecision("none")

    def lro_outcome(self, operation_key: str) -> tuple[float, bool]:
        """(duration factor, fails?) for an LRO identified by ``operation_key``."""
        cfg = self.config
        with self._lock:
            n = self._seen[("LRO", operation_key.lower())]
            self._seen[("LRO", operation_key.lower())] += 1
        factor = cfg.lro_slow_factor if uniform(cfg.seed, "lro-slow", operation_key.lower(), n) < cfg.lro_slow else 1.0
        fails = uniform(cfg.seed, "lro-fail", operation_key.lower(), n) < cfg.lro_fail
        return factor, fails
