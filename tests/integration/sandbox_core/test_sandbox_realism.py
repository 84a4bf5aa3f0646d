"""Throttling (ARM token buckets), seeded faults, latency and request counters."""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections import Counter

import pytest

from sandbox.arm import ArmSandbox, BucketSpec, FaultConfig, LatencyConfig, ThrottleConfig
from sandbox.arm.faults import FaultInjector
from steward.cloud.clients import CloudClients

from .conftest import SUB, core_config
from .test_sandbox_serving import raw

FROZEN = 1e-9  # the virtual clock practically stands still: no refill during the burst


class Client:
    """One keep-alive HTTPS connection with a sandbox token (fast enough for 1,000-request bursts)."""

    def __init__(self, sb: ArmSandbox) -> None:
        self.sb = sb
        self.token = sb.mint_token()
        self.context = ssl.create_default_context(cafile=sb.ca_bundle)
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPSConnection:
        host, port = self.sb.endpoint.removeprefix("https://").split(":")
        return http.client.HTTPSConnection(host, int(port), context=self.context, timeout=10)

    def call(self, method: str, path: str, body: object = None) -> tuple[int, dict[str, str]]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        try:
            self.conn.request(method, path, body=data, headers=headers)
            response = self.conn.getresponse()
            response.read()
            return response.status, {k.lower(): v for k, v in response.getheaders()}
        except (ConnectionError, http.client.HTTPException, ssl.SSLError):
            self.conn.close()
            self.conn = self._connect()
            return 0, {}


@pytest.fixture
def throttled() -> ArmSandbox:
    sandbox = ArmSandbox(core_config(scale=FROZEN, throttle=ThrottleConfig(enabled=True), retry_after="azure"))
    return sandbox.start()


def test_a_1000_read_burst_gets_250_then_429s_and_refills_25_per_second(throttled: ArmSandbox) -> None:
    sb = throttled
    try:
        client = Client(sb)
        path = f"/subscriptions/{SUB}/resourcegroups?api-version=2025-04-01"
        results = [client.call("GET", path) for _ in range(1000)]
        statuses = Counter(status for status, _ in results)
        assert statuses == {200: 250, 429: 750}
        remaining = [int(h["x-ms-ratelimit-remaining-subscription-reads"]) for _, h in results]
        assert remaining[:3] == [249, 248, 247] and remaining[249] == 0 and set(remaining[250:]) == {0}
        assert all(h["retry-after"] == "1" for status, h in results if status == 429)
        sb.advance(4)  # 4 s x 25 tokens/s
        more = Counter(client.call("GET", path)[0] for _ in range(150))
        assert more == {200: 100, 429: 50}
        sb.advance(3600)  # refills stop at the bucket size
        assert Counter(client.call("GET", path)[0] for _ in range(300)) == {200: 250, 429: 50}
        assert sb.counters.get(kind="read", status=429) == 850
    finally:
        sb.stop()


def test_writes_and_deletes_have_their_own_buckets_of_200(throttled: ArmSandbox) -> None:
    sb = throttled
    try:
        client = Client(sb)
        group = f"/subscriptions/{SUB}/resourcegroups/rg-burst?api-version=2025-04-01"
        writes = Counter(client.call("PUT", group, {"location": "westeurope"})[0] for _ in range(300))
        assert writes == {201: 1, 200: 199, 429: 100}
        disk = f"/subscriptions/{SUB}/resourceGroups/rg-burst/providers/Microsoft.Compute/disks/absent"
        deletes = Counter(client.call("DELETE", disk + "?api-version=2026-03-02")[0] for _ in range(250))
        assert deletes == {204: 200, 429: 50}
        status, headers = client.call("GET", group)
        assert status == 200 and headers["x-ms-ratelimit-remaining-subscription-reads"] == "249"
        sb.advance(1)  # writes refill at 10 per second
        assert Counter(client.call("PUT", group, {"location": "westeurope"})[0] for _ in range(12)) == {
            200: 10, 429: 2
        }
    finally:
        sb.stop()


def test_every_answer_reports_the_principal_and_the_global_bucket(throttled: ArmSandbox) -> None:
    """As real ARM answers do: ``...-subscription-writes: 199`` beside ``...-subscription-global-writes: 2999``
    (global bucket = 15 x the principal's), for reads, writes and deletes, and on a 429 too."""
    sb = throttled
    try:
        client, other = Client(sb), Client(sb)
        other.token = sb.mint_token(principal_id="00000000-0000-4000-8000-0000000000b2")
        group = f"/subscriptions/{SUB}/resourcegroups/rg-hdr?api-version=2025-04-01"
        status, headers = client.call("PUT", group, {"location": "westeurope"})
        assert status == 201
        assert headers["x-ms-ratelimit-remaining-subscription-writes"] == "199"
        assert headers["x-ms-ratelimit-remaining-subscription-global-writes"] == "2999"
        status, headers = other.call("GET", group)
        assert headers["x-ms-ratelimit-remaining-subscription-reads"] == "249"
        assert headers["x-ms-ratelimit-remaining-subscription-global-reads"] == "3749"
        status, headers = client.call("GET", group)
        assert (headers["x-ms-ratelimit-remaining-subscription-reads"],
                headers["x-ms-ratelimit-remaining-subscription-global-reads"]) == ("249", "3748")
        disk = f"/subscriptions/{SUB}/resourceGroups/rg-hdr/providers/Microsoft.Compute/disks/absent"
        status, headers = client.call("DELETE", disk + "?api-version=2026-03-02")
        assert headers["x-ms-ratelimit-remaining-subscription-deletes"] == "199"
        assert headers["x-ms-ratelimit-remaining-subscription-global-deletes"] == "2999"
        statuses = [client.call("PUT", group, {"location": "westeurope"}) for _ in range(200)]
        assert statuses[-1][0] == 429
        assert statuses[-1][1]["x-ms-ratelimit-remaining-subscription-writes"] == "0"
        assert statuses[-1][1]["x-ms-ratelimit-remaining-subscription-global-writes"] == "2800"
    finally:
        sb.stop()


def test_throttling_is_off_by_default_but_headers_are_always_there(sb: ArmSandbox) -> None:
    client = Client(sb)
    path = f"/subscriptions/{SUB}/resourcegroups?api-version=2025-04-01"
    assert {client.call("GET", path)[0] for _ in range(300)} == {200}
    assert "x-ms-ratelimit-remaining-subscription-reads" in client.call("GET", path)[1]


def fault_run(seed: int) -> list[int]:
    faults = FaultConfig(seed=seed, server_error={"read": 0.2}, connection_reset={"read": 0.1},
                         throttle_storm={"read": 0.02}, storm_seconds=0.0)
    sandbox = ArmSandbox(core_config(faults=faults)).start()
    try:
        client = Client(sandbox)
        path = f"/subscriptions/{SUB}/resourcegroups?api-version=2025-04-01"
        return [client.call("GET", path)[0] for _ in range(120)]
    finally:
        sandbox.stop()


def test_faults_are_deterministic_from_the_seed() -> None:
    first, again, other = fault_run(11), fault_run(11), fault_run(12)
    assert first == again
    assert first != other
    kinds = Counter(first)
    assert kinds[200] > 60 and kinds[0] > 0 and (kinds[500] + kinds[503]) > 0 and kinds[429] > 0


def test_a_429_storm_refuses_every_request_of_that_kind_for_its_duration() -> None:
    faults = FaultConfig(seed=1, throttle_storm={"write": 1.0}, storm_seconds=120.0)
    sandbox = ArmSandbox(core_config(scale=1.0, faults=faults, retry_after="azure")).start()
    try:
        group = f"/subscriptions/{SUB}/resourcegroups/rg-storm?api-version=2025-04-01"
        status, headers, body = raw(sandbox, "PUT", group, {"location": "westeurope"})
        assert (status, body["error"]["code"]) == (429, "SubscriptionRequestsThrottled")
        assert headers["Retry-After"] == "120"
        assert raw(sandbox, "GET", group)[0] == 404  # reads are not in the storm
        sandbox.configure_faults(FaultConfig())
        assert raw(sandbox, "PUT", group, {"location": "westeurope"})[0] == 201
    finally:
        sandbox.stop()


def test_latency_is_slept_on_the_virtual_clock() -> None:
    latency = LatencyConfig(enabled=True, seconds={"read": 5.0, "write": 0.0, "delete": 0.0, "action": 0.0})
    sandbox = ArmSandbox(core_config(scale=500.0, latency=latency)).start()
    try:
        before, started = sandbox.clock.now(), time.monotonic()
        assert raw(sandbox, "GET", f"/subscriptions/{SUB}/resourcegroups?api-version=2025-04-01")[0] == 200
        assert (sandbox.clock.now() - before).total_seconds() >= 5.0
        assert time.monotonic() - started >= 5.0 / 500
    finally:
        sandbox.stop()


def test_counters_by_kind_and_status_over_the_admin_api(sb: ArmSandbox) -> None:
    sb.counters.reset()
    raw(sb, "GET", f"/subscriptions/{SUB}/resourcegroups?api-version=2025-04-01")
    raw(sb, "GET", f"/subscriptions/{SUB}/resourcegroups/absent?api-version=2025-04-01")
    raw(sb, "PUT", f"/subscriptions/{SUB}/resourcegroups/rg-count?api-version=2025-04-01", {"location": "x"})
    _, _, counters = raw(sb, "GET", "/sandbox/counters", token=None)
    assert counters == {"total": 3, "byKind": {"read": {"200": 1, "404": 1}, "write": {"201": 1}}}


def test_the_sdk_waits_out_a_429_and_succeeds() -> None:
    throttle = ThrottleConfig(enabled=True, reads=BucketSpec(2, 0.5))  # 1 token per 2 Azure seconds
    sandbox = ArmSandbox(core_config(scale=50.0, throttle=throttle)).start()
    try:
        # the app's own pacer is off here: this is the SDK's retry honouring Retry-After
        groups = CloudClients(sandbox.cloud_target(pacing=None)).resources(SUB).resource_groups
        counts = [len(list(groups.list())) for _ in range(5)]
        assert counts == [0] * 5
        assert sandbox.counters.get(kind="read", status=429) >= 1  # refused, waited, retried
        assert sandbox.counters.get(kind="read", status=200) == 5
    finally:
        sandbox.stop()


def test_the_apps_pacer_keeps_the_same_reads_under_the_bucket() -> None:
    throttle = ThrottleConfig(enabled=True, reads=BucketSpec(2, 0.5))
    sandbox = ArmSandbox(core_config(scale=50.0, throttle=throttle)).start()
    try:
        groups = CloudClients(sandbox.cloud_target()).resources(SUB).resource_groups
        assert [len(list(groups.list())) for _ in range(5)] == [0] * 5
        assert sandbox.counters.get(kind="read", status=200) == 5
        assert sandbox.counters.get(kind="read", status=429) == 0  # paced from the rate-limit headers
    finally:
        sandbox.stop()


def first_seed_resetting_then_not() -> int:
    path = f"/subscriptions/{SUB}/resourcegroups/rg-reset"
    for seed in range(1000):
        injector = FaultInjector(FaultConfig(seed=seed, connection_reset={"read": 0.5}))
        if [injector.decide("read", "GET", path, 0.0).kind for _ in range(2)] == ["reset", "none"]:
            return seed
    raise AssertionError("no seed found")


def test_a_connection_reset_is_survived_by_the_sdk_retry() -> None:
    faults = FaultConfig(seed=first_seed_resetting_then_not(), connection_reset={"read": 0.5})
    sandbox = ArmSandbox(core_config()).start()
    try:
        groups = CloudClients(sandbox.cloud_target()).resources(SUB).resource_groups
        groups.create_or_update("rg-reset", {"location": "westeurope"})
        sandbox.configure_faults(faults)
        assert groups.get("rg-reset").name == "rg-reset"
        assert sandbox.counters.resets == 1
    finally:
        sandbox.stop()
