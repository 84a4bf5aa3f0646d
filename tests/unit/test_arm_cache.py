"""The worker's short-lived cache of ARM answers (steward/cloud/arm_cache.py): bounded lifetime, dropped by prefix."""

from __future__ import annotations

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
