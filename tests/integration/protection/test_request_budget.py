"""ARM requests per protected resource, on the sandbox, against a budget per type (issue #15 item 1).

The real app protects two resources of each type (benchmarks.protection_speed.measure_per_type, latency model and
ARM's throttle on) with RBAC propagation off, so what is counted is the app's own choice of requests; the
minimum and the reason for each request are in ``benchmarks/protection_speed.py`` (``MINIMUM_REASONS``). The
budget is that minimum plus what is stated below; a request added to the path makes this fail.
"""

from __future__ import annotations

import pytest

from benchmarks import protection_speed

#: requests per resource allowed above the REST minimum, per type, and why
ALLOWANCE = {
    # GET of the protected item before the PUT (a soft-deleted item must never be PUT over; backupStatus does not
    # say it is there) + a second status poll (the app polls at 30 s; the sandbox, at this clock scale, sends its
    # wait in real ms that no durable timer can use) + vault list and policy GET (1 each per run, / 2 VMs)
    "vm": 3.0 + 0.1,
    # vault list and policy GET once per run (the cache), / 2 resources, + one status poll of timing jitter
    "disk": 1.0 + 1.0,
    "storage": 1.0 + 1.0,
    "postgres": 1.0 + 1.0,
}


@pytest.fixture(scope="module")
def measured() -> dict[str, object]:
    # the discrete clock: the sandbox sends Retry-After in Azure seconds, as ARM does, and the app's durable timers
    # follow it (on the scaled clock it sends real milliseconds, which no durable timer can use)
    result = protection_speed.measure_per_type(2, scale=20.0, seed=5, rbac_seconds=0.0, clock="discrete")
    return result["summary"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("key", sorted(ALLOWANCE))
def test_requests_per_resource_stay_within_the_budget(measured: dict[str, dict[str, object]], key: str) -> None:
    figures = measured[key]
    assert figures["protected"] == figures["resources"] == 2
    app = figures["requests_per_resource"]["total"]  # type: ignore[index]
    minimum = figures["minimum"]["total"]  # type: ignore[index]
    assert app >= minimum, "fewer requests than the REST API needs: the count is wrong"
    assert app <= minimum + ALLOWANCE[key], (key, figures["by_category"])
