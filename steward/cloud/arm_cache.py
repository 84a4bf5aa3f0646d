"""Short-lived answers of ARM that many protections in one subscription and region ask for again (issue #15
item 1, the request diet): the vault list of a subscription, a vault's policy ids, the role assignments the app
itself made.

Each entry lives ``STEWARD_ARM_CACHE_SECONDS`` at most (0: no cache) and is dropped earlier by what changes it:

* the vault list of a subscription - when the app creates a vault there (``VaultCreator``) or tears one down,
  when a vault it chose answers 404 (its policy cannot be read, validation or the protected-item PUT answers 404),
  and when Azure refuses a Recovery Services protected-item PUT built from cached answers;
* a policy id - when Azure says the policy is not found (validation), or refuses or answers 404 to the
  protected-item PUT that named it (Azure's code for a missing policy there is not documented: any refusal drops
  it, which costs one policy GET on the next attempt);
* what a vault protects (its item and VM counts) - read by the legacy ``vault_loads`` only (vault sets now keep
  their counts and reservations in a ledger shared by every instance, ``reserve_in_set``), dropped when Azure
  refuses a protection there (full, or the cached answers were stale);
* a granted role - when a validation still says the vault's identity lacks permissions after the RBAC wait
  ran out (someone may have removed the assignment);
* how long a vault identity's new role assignments last took to apply (``protection_flow.rbac_settle_seconds``) -
  replaced by a longer time when a protection that waited it was still refused; each use keeps it another
  lifetime, so it shortens only after a lifetime without Backup-vault protections (a stale, too long wait costs
  latency, a too short one a refused validation); and, while nothing is known, which protection finds it out
  (the probe: dropped when it noted the time or ended without one).

Changes others make (a vault deleted by hand, a role assignment removed) reach the app through no event: the
Event Grid filter (``infra/event-filters.json``) passes only what the classifier acts on. The lifetime bounds
how long such a change goes unseen; a stale answer costs one refused request, which the callers handle.

One cache per worker process (Functions instances do not share it); thread-safe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, Final

#: default lifetime of an entry, seconds (STEWARD_ARM_CACHE_SECONDS)
DEFAULT_SECONDS: Final = 300


class ArmCache:
    def __init__(self, seconds: float = DEFAULT_SECONDS, *, now: Callable[[], float] = time.monotonic) -> None:
        self.seconds = float(seconds)
        self._now = now
        self._lock = threading.Lock()
        self._entries: dict[tuple[Hashable, ...], tuple[float, Any]] = {}

    @property
    def enabled(self) -> bool:
        return self.seconds > 0

    def get(self, key: tuple[Hashable, ...]) -> Any | None:
        if not self.enabled:
            return None
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            if found[0] <= self._now():
                del self._entries[key]
                return None
            return found[1]

    def put(self, key: tuple[Hashable, ...], value: Any, *, seconds: float | None = None) -> None:
        """``seconds``: this entry's lifetime (default the cache's)."""
        if not self.enabled or value is None:
            return
        with self._lock:
            self._entries[key] = (self._now() + (self.seconds if seconds is None else seconds), value)

    def adjust(self, key: tuple[Hashable, ...], change: Callable[[Any], Any]) -> bool:
        """Replace a live entry's value with ``change(value)``, keeping its expiry (what the app itself changed, e.g.
        one more item in a vault, without reading it again); False when there is none."""
        if not self.enabled:
            return False
        with self._lock:
            found = self._entries.get(key)
            if found is None or found[0] <= self._now():
                return False
            self._entries[key] = (found[0], change(found[1]))
            return True

    def claim(self, key: tuple[Hashable, ...], value: Any, *, seconds: float | None = None,
              live: Callable[[Any], bool] = lambda _value: True) -> bool:
        """Put ``value`` under ``key`` unless a live entry is there (atomically); whether it was put. ``seconds``:
        this entry's lifetime (default the cache's); ``live(value)``: whether a found entry still counts (an
        entry may carry its own deadline on another clock). With the cache off every claim succeeds (nothing is
        shared)."""
        if not self.enabled:
            return True
        with self._lock:
            found = self._entries.get(key)
            if found is not None and found[0] > self._now() and live(found[1]):
                return False
            self._entries[key] = (self._now() + (self.seconds if seconds is None else seconds), value)
            return True

    def drop(self, *prefix: Hashable) -> int:
        """Forget every entry whose key starts with ``prefix``; how many were dropped."""
        with self._lock:
            gone = [k for k in self._entries if k[: len(prefix)] == prefix]
            for key in gone:
                del self._entries[key]
            return len(gone)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


#: key helpers: one spelling for every reader and invalidator
def vaults_key(kind: str, subscription_id: str) -> tuple[str, str, str]:
    return ("vaults", str(kind), subscription_id.lower())


def load_key(vault_id: str) -> tuple[str, str]:
    """What a vault protects (items, VMs): vault sets choose by it (issue 19)."""
    return ("load", vault_id.lower())


def policy_key(vault_id: str, policy_name: str) -> tuple[str, str, str]:
    return ("policy", vault_id.lower(), policy_name.lower())


def role_key(principal_id: str, role_definition_guid: str, scope: str) -> tuple[str, str, str, str]:
    return ("role", principal_id.lower(), role_definition_guid.lower(), scope.lower())


def settle_key(principal_id: str) -> tuple[str, str]:
    """How long ``principal_id``'s new role assignments last took to apply (seconds)."""
    return ("rbac-settle", principal_id.lower())


def probe_key(principal_id: str) -> tuple[str, str]:
    """A protection of this worker is finding out how long ``principal_id``'s new role assignments take to apply."""
    return ("rbac-probe", principal_id.lower())


#: the cache adapters use when none is given (tests, the CLI): off
NO_CACHE: Final = ArmCache(0)
