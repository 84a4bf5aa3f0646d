"""A sandbox with a small estate built once for the audit integration tests (see audit_sandbox_estate.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sandbox.arm import ArmSandbox, PropagationConfig, SandboxConfig
from steward.cloud.clients import CloudClients
from tests.integration.audit.audit_sandbox_estate import BuiltEstate, build


@pytest.fixture(scope="package")
def sandbox() -> Iterator[ArmSandbox]:
    # RBAC propagation off: the estate is built straight through the adapters, which do not wait it out
    sb = ArmSandbox(SandboxConfig(scale=3600.0, page_size=2, propagation=PropagationConfig(rbac_seconds=0))).start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture(scope="package")
def clients(sandbox: ArmSandbox) -> CloudClients:
    return CloudClients(sandbox.cloud_target(polling_interval=0.01))


@pytest.fixture(scope="package")
def built(sandbox: ArmSandbox, clients: CloudClients) -> BuiltEstate:
    return build(sandbox, clients)
