"""A hostile or buggy ARM answers ``Retry-After: 86400`` (``FaultConfig.retry_after_seconds``): the app's clients
follow the operation to its end without ever waiting longer than ``MAX_SDK_WAIT_SECONDS`` at a time, and say so
in the log (steward/cloud/polling.py). Before, azure-core's poller slept whatever the answer asked for, holding
an activity slot until the function timed out."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from azure.core.exceptions import HttpResponseError

from sandbox.arm import ArmSandbox
from sandbox.arm.config import FaultConfig
from steward.cloud import azure_time
from steward.cloud.clients import CloudClients
from steward.cloud.polling import MAX_SDK_WAIT_SECONDS, patient

from .conftest import SUB, core_config, make_group

DAY = 86_400.0


class RecordingClock:
    """The app's clock seam, recording every wait it is asked for and sleeping a few milliseconds instead."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        time.sleep(min(seconds, 0.02))

    def monotonic(self) -> float:
        return time.monotonic()

    @contextmanager
    def request(self) -> Iterator[dict[str, str]]:
        yield {}


@pytest.fixture
def hostile() -> Iterator[ArmSandbox]:
    # "azure": the hint as ARM spells it (Retry-After in whole seconds), whatever the sandbox's clock scale; 50x so
    # that an operation is still running when the client first asks (a 30 s create lasts 0.6 s)
    sandbox = ArmSandbox(core_config(scale=50.0, retry_after="azure",
                                     faults=FaultConfig(retry_after_seconds=DAY))).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture
def clock() -> Iterator[RecordingClock]:
    recording = RecordingClock()
    azure_time.install(recording)
    yield recording
    azure_time.reset()


def test_the_sandbox_switch_answers_a_day_long_retry_after(hostile: ArmSandbox) -> None:
    clients = CloudClients(hostile.cloud_target())
    make_group(clients, "rg-wait")
    poller = clients.resources(SUB).resources.begin_create_or_update_by_id(
        f"/subscriptions/{SUB}/resourceGroups/rg-wait/providers/Microsoft.Storage/storageAccounts/stwait0",
        {"location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"}, api_version="2024-01-01",
        polling=False,
    )
    assert poller._polling_method._initial_response.http_response.headers["Retry-After"] == "86400"


def test_a_day_long_retry_after_is_cut_to_the_bound_and_logged(
    hostile: ArmSandbox, clock: RecordingClock, caplog: pytest.LogCaptureFixture
) -> None:
    clients = CloudClients(hostile.cloud_target())
    make_group(clients, "rg-wait")
    account = f"/subscriptions/{SUB}/resourceGroups/rg-wait/providers/Microsoft.Storage/storageAccounts/stwait1"
    with caplog.at_level(logging.WARNING, logger="steward.cloud.polling"):
        created = clients.resources(SUB).resources.begin_create_or_update_by_id(
            account, {"location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"},
            api_version="2024-01-01", polling=patient(30.0),  # the poller the app's activities follow with
        ).result()
    assert created.id.lower() == account.lower()
    assert clock.waits, "the poller waited at least once"
    assert max(clock.waits) <= MAX_SDK_WAIT_SECONDS
    assert any("86400 s was cut to 60 s" in r.getMessage() for r in caplog.records)


def test_the_sdks_own_poller_is_bounded_too(hostile: ArmSandbox, clock: RecordingClock) -> None:
    """The call sites that pass ``polling_interval`` (vault and tag updates, deletes) keep azure-core's ARMPolling:
    its waits go through the same transport."""
    clients = CloudClients(hostile.cloud_target())
    make_group(clients, "rg-wait-sdk")
    account = f"/subscriptions/{SUB}/resourceGroups/rg-wait-sdk/providers/Microsoft.Storage/storageAccounts/stwait2"
    clients.resources(SUB).resources.begin_create_or_update_by_id(
        account, {"location": "westeurope", "sku": {"name": "Standard_LRS"}, "kind": "StorageV2"},
        api_version="2024-01-01", polling_interval=30.0,
    ).result()
    assert clock.waits and max(clock.waits) <= MAX_SDK_WAIT_SECONDS


def test_a_throttled_answer_asking_for_a_day_is_retried_within_the_bound(clock: RecordingClock) -> None:
    """A 429 whose Retry-After says a day: the SDK's retry policy (and the pacer) wait at most the bound."""
    sandbox = ArmSandbox(core_config(scale=50.0, retry_after="azure", faults=FaultConfig(
        retry_after_seconds=DAY, throttle_storm={"read": 1.0}, storm_seconds=1.0))).start()
    try:
        clients = CloudClients(sandbox.cloud_target())
        with pytest.raises(HttpResponseError):  # throttled for good: 429 after the SDK's retries
            list(clients.resources(SUB).resource_groups.list())
        assert clock.waits, "the throttled read was retried after a wait"
        assert max(clock.waits) <= MAX_SDK_WAIT_SECONDS
    finally:
        sandbox.stop()
