"""Request counters by op kind and status (tests and benchmarks read them)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any


class RequestCounters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by: Counter[tuple[str, int]] = Counter()
        self.resets = 0

    def count(self, kind: str, status: int) -> None:
        with self._lock:
            self._by[(kind, status)] += 1

    def count_reset(self, kind: str) -> None:
        with self._lock:
            self._by[(kind, 0)] += 1
            self.resets += 1

    def get(self, kind: str | None = None, status: int | None = None) -> int:
        with self._lock:
            return sum(
                n for (k, s), n in self._by.items() if (kind is None or k == kind) and (status is None or s == status)
            )

    def snapshot(self) -> dict[str, Any]:
        """``{"total": n, "byKind": {kind: {status: n}}}`` (status 0 = connection reset)."""
        with self._lock:
            by_kind: dict[str, dict[str, int]] = {}
            for (kind, status), n in sorted(self._by.items()):
                by_kind.setdefault(kind, {})[str(status)] = n
            return {"total": sum(self._by.values()), "byKind": by_kind}

    def reset(self) -> None:
        with self._lock:
            self._by.clear()
            self.resets = 0
