"""N app instances (Flex Consumption scale-out), each with its own pacer, one principal, one subscription:
they share ARM's bucket only through what ARM reports on every answer
(``x-ms-ratelimit-remaining-subscription-{reads|...}`` and its ``-global-`` twin; request-limits-and-throttling.md).

Real threads against the sandbox at clock scale 1 (its buckets refill in real seconds). The buckets are smaller
than Azure's (reads 100 + 20/s instead of 250 + 25/s) so a few seconds exhaust them; every pacer is told the same
limits, as the app is told Azure's documented ones.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from sandbox.arm import ArmSandbox, BucketSpec, ThrottleConfig
from steward.cloud.clients import CloudClients
from steward.cloud.throttle import BucketLimits, PacingLimits

from .conftest import SUB, core_config

PRINCIPAL = "00000000-0000-4000-8000-0000000057e0"
CAPACITY, REFILL = 100, 20.0
INSTANCES, THREADS, SECONDS = 8, 2, 6.0


def hammer(steer: bool) -> dict[str, Any]:
    throttle = ThrottleConfig(enabled=True, reads=BucketSpec(CAPACITY, REFILL))
    sandbox = ArmSandbox(core_config(scale=1.0, throttle=throttle)).start()
    try:
        setup = CloudClients(dataclasses.replace(sandbox.cloud_target(), pacing=None))
        setup.resources(SUB).resource_groups.create_or_update("rg-hammer", {"location": "westeurope"})
        limits = PacingLimits(reads=BucketLimits(CAPACITY, REFILL), steer_below_seconds=2.5 if steer else 0.0)
        instances = [CloudClients(sandbox.cloud_target(principal_id=PRINCIPAL, pacing=limits,
                                                       pacing_instance=f"instance-{i}"))
                     for i in range(INSTANCES)]
        assert len({id(c.pacer) for c in instances}) == INSTANCES  # separate pacers, as separate processes
        before = sandbox.counters.get(kind="read", status=429)
        before_ok = sandbox.counters.get(kind="read", status=200)
        stop = time.monotonic() + SECONDS
        errors: list[BaseException] = []

        def work(clients: CloudClients) -> None:
            groups = clients.resources(SUB).resource_groups
            while time.monotonic() < stop:
                try:
                    groups.get("rg-hammer")
                except HttpResponseError as error:  # a step that failed after the SDK's own retries
                    errors.append(error)
                    time.sleep(0.5)

        threads = [threading.Thread(target=work, args=(c,)) for c in instances for _ in range(THREADS)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - started
        throttled = sandbox.counters.get(kind="read", status=429) - before
        ok = sandbox.counters.get(kind="read", status=200) - before_ok
        return {"ok": ok, "throttled": throttled, "share": throttled / max(1, ok + throttled),
                "ok_per_second": ok / elapsed, "errors": len(errors)}
    finally:
        sandbox.stop()


@pytest.mark.timeout(120)
def test_separate_pacers_steering_by_the_reported_count_stay_under_1_percent_429s() -> None:
    steered = hammer(steer=True)
    # the bucket is used: after its initial 100, about the refill rate (under a loaded 2-core machine, >= 60 %)
    assert steered["ok"] >= CAPACITY + 0.6 * REFILL * SECONDS, steered
    assert steered["share"] <= 0.01, steered


@pytest.mark.timeout(120)
def test_without_steering_separate_pacers_overrun_the_bucket() -> None:
    """The control: each pacer refilling its own picture of one shared bucket draws N times the refill."""
    unsteered = hammer(steer=False)
    assert unsteered["share"] > 0.05, unsteered
