"""The worker's short-lived cache of ARM answers (steward/cloud/arm_cache.py): bounded lifetime, dropped by prefix."""

from __future__ import annotations

import contextlib
from typing import Any

from steward.cloud import arm_cache
from steward.cloud.arm_cache import ArmCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_entry_lives_its_lifetime_and_not_a_moment_longer() -> None:
    clock = Clock()
    cache = ArmCache(300, now=clock)
    key = arm_cache.policy_key("/Subscriptions/S/resourceGroups/G/providers/X/vaults/V", "Daily")
    cache.put(key, "policy-id")
    clock.now += 299.9
    assert cache.get(arm_cache.policy_key("/subscriptions/s/resourcegroups/g/providers/x/vaults/v", "daily")) == (
        "policy-id"
    )
    clock.now += 0.1
    assert cache.get(key) is None


def test_drop_forgets_every_entry_under_a_prefix_only() -> None:
    cache = ArmCache(300, now=Clock())
    cache.put(arm_cache.role_key("P1", "r1", "/s/a"), True)
    cache.put(arm_cache.role_key("p1", "r2", "/s/b"), True)
    cache.put(arm_cache.role_key("p2", "r1", "/s/a"), True)
    cache.put(arm_cache.vaults_key("Backup", "S"), ["v"])
    assert cache.drop("role", "p1") == 2
    assert cache.get(arm_cache.role_key("p2", "r1", "/s/a")) is True
    assert cache.drop(*arm_cache.vaults_key("Backup", "s")) == 1
    assert cache.get(arm_cache.vaults_key("Backup", "S")) is None


def test_a_zero_lifetime_caches_nothing_and_none_is_never_cached() -> None:
    off = ArmCache(0)
    off.put(("k",), 1)
    assert off.get(("k",)) is None
    on = ArmCache(60)
    on.put(("k",), None)
    assert on.get(("k",)) is None


def test_a_vaults_load_is_counted_up_in_place_and_keeps_its_expiry() -> None:
    clock = Clock()
    cache = ArmCache(300, now=clock)
    key = arm_cache.load_key("/subscriptions/s/resourceGroups/g/providers/Microsoft.RecoveryServices/vaults/V")
    assert not cache.adjust(key, lambda load: load)  # nothing cached: nothing to count up
    cache.put(key, {"items": 5, "vms": 4})
    clock.now += 200
    assert cache.adjust(key, lambda load: {"items": load["items"] + 1, "vms": load["vms"] + 1})
    assert cache.get(key) == {"items": 6, "vms": 5}
    clock.now += 100  # the count-up did not extend the entry's life
    assert cache.get(key) is None and not cache.adjust(key, lambda load: load)
    assert not ArmCache(0).adjust(key, lambda load: load)


class AzureClock(Clock):
    """Azure time for ``steward.cloud.azure_time`` (the probe's claim runs on it, not on the cache's clock)."""

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def monotonic(self) -> float:
        return self.now

    def request(self) -> Any:
        return contextlib.nullcontext({})


def test_one_probe_per_worker_until_it_notes_the_time_new_roles_took_and_using_the_time_keeps_it() -> None:
    """Issue 15: one protection per worker finds out how long a vault identity's new roles take to apply; the
    others wait for it. The claim is atomic, ends with the note, and lapses after the documented RBAC bound of
    Azure time (not the cache's lifetime: the roles may take longer than it); the time noted lives while used."""
    from steward.cloud import azure_time
    from steward.cloud.protection import PROBE_SECONDS, BackupVaultProtection

    clock, azure = Clock(), AzureClock()
    azure_time.install(azure)
    try:
        adapter = BackupVaultProtection(None, ArmCache(300, now=clock))  # type: ignore[arg-type]  # no request
        assert adapter.settle_seconds("P") is None and not adapter.probing("p")
        assert adapter.claim_probe("P") is True and adapter.claim_probe("p") is False and adapter.probing("P")
        assert adapter.claim_probe("other") is True
        adapter.note_settle("p", 152.0)
        assert not adapter.probing("P") and adapter.settle_seconds("P") == 152.0
        clock.now += 250
        assert adapter.settle_seconds("p") == 152.0  # in use: kept another lifetime
        clock.now += 250
        assert adapter.settle_seconds("p") == 152.0
        clock.now += 301
        assert adapter.settle_seconds("p") is None  # a lifetime unused: found out again
        assert adapter.probing("other")  # past the cache's lifetime, within the RBAC bound: still probing
        azure.now += PROBE_SECONDS + 1
        assert not adapter.probing("other") and adapter.claim_probe("other") is True  # a probe that never noted
        adapter.note_settle("other", None)  # a probe that ended without a time frees the claim
        assert adapter.settle_seconds("other") is None and adapter.claim_probe("other") is True
    finally:
        azure_time.reset()
    assert ArmCache(0).claim(arm_cache.probe_key("p"), True) is True  # cache off: each its own probe
