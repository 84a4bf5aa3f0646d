"""Fixtures: an in-process ARM sandbox driven by the app's real SDK clients."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.arm import ArmSandbox, SandboxConfig
from sandbox.arm.config import DEFAULT_SUBSCRIPTION, SECOND_SUBSCRIPTION
from steward.cloud.clients import CloudClients

SUB = DEFAULT_SUBSCRIPTION
SUB2 = SECOND_SUBSCRIPTION
#: the framework and the generic providers only: the other providers are tested in their own folders
CORE_PROVIDERS = ("resources",)
FAST = 2000.0  # virtual seconds per real second: a 30 s LRO takes 15 ms


def core_config(**overrides: object) -> SandboxConfig:
    values: dict[str, object] = {"scale": FAST, "providers": CORE_PROVIDERS, "page_size": 100}
    values.update(overrides)
    return SandboxConfig(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def sb() -> Iterator[ArmSandbox]:
    sandbox = ArmSandbox(core_config()).start()
    yield sandbox
    sandbox.stop()


@pytest.fixture(scope="module")
def clients(sb: ArmSandbox) -> CloudClients:
    return CloudClients(sb.cloud_target())
