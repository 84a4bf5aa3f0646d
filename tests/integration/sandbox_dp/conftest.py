"""A running ARM sandbox and the app's real SDK clients for the Data Protection / Authorization tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from sandbox.arm.config import DEFAULT_SUBSCRIPTION, SECOND_SUBSCRIPTION, SandboxConfig
from sandbox.arm.server import ArmSandbox
from steward.cloud.clients import CloudClients

#: one real second = one Azure hour: LROs of 20-60 s end in milliseconds, 14 days pass with advance()
SCALE = 3600.0


@pytest.fixture(scope="module")
def sandbox() -> Iterator[ArmSandbox]:
    sb = ArmSandbox(SandboxConfig(scale=SCALE, page_size=2)).start()
    try:
        yield sb
    finally:
        sb.stop()


@pytest.fixture(scope="module")
def clients(sandbox: ArmSandbox) -> CloudClients:
    return CloudClients(sandbox.cloud_target())


@dataclass
class Estate:
    """Names for one test's resources, unique per test so tests share one sandbox safely."""

    sandbox: ArmSandbox
    clients: CloudClients
    tag: str
    subscription: str = DEFAULT_SUBSCRIPTION

    @property
    def dp(self) -> Any:
        return self.clients.data_protection(self.subscription)

    @property
    def auth(self) -> Any:
        return self.clients.authorization(self.subscription)

    def group(self, name: str, location: str = "westus", subscription: str | None = None) -> str:
        sub = subscription or self.subscription
        rg = f"{name}-{self.tag}"
        self.clients.resources(sub).resource_groups.create_or_update(rg, {"location": location})
        return rg

    def group_id(self, rg: str, subscription: str | None = None) -> str:
        return f"/subscriptions/{subscription or self.subscription}/resourceGroups/{rg}"

    def datasource(self, rg: str, full_type: str, name: str, location: str = "westus",
                   subscription: str | None = None) -> str:
        """A disk / storage account / PostgreSQL server record, as the generic providers keep them."""
        rid = f"{self.group_id(rg, subscription)}/providers/{full_type}/{name}"
        self.sandbox.store.put({"id": rid, "name": name, "type": full_type, "location": location, "tags": {},
                                "properties": {"provisioningState": "Succeeded"}})
        return rid


@pytest.fixture
def estate(sandbox: ArmSandbox, clients: CloudClients) -> Estate:
    return Estate(sandbox, clients, uuid.uuid4().hex[:8])


__all__ = ["SECOND_SUBSCRIPTION", "Estate"]


def begin_raw(client: Any, method: str, path: str, body: Any = None, api_version: str = "2025-07-01") -> Any:
    """Start an LRO through the SDK client's own pipeline and ARM poller, for the operations the SDK blocks.

    azure-mgmt-dataprotection 2.2.0 refuses two operations at api-version 2025-07-01 before sending anything:
    ``backup_vaults.begin_create_or_update`` always forwards ``x_ms_deleted_vault_id=None`` to a helper whose
    version check rejects that keyword below 2025-09-01, and ``backup_instances.begin_resume_protection`` is
    marked as added in 2026-06-01 although the REST API has had it since 2023. Same pipeline (auth, TLS, retry),
    same ``ARMPolling`` as the generated code.
    """
    from azure.core.exceptions import HttpResponseError
    from azure.core.polling import LROPoller
    from azure.core.rest import HttpRequest
    from azure.mgmt.core.exceptions import ARMErrorFormat
    from azure.mgmt.core.polling.arm_polling import ARMPolling

    pipeline_client = client._client
    endpoint = {"endpoint": client._config.base_url}
    sep = "&" if "?" in path else "?"
    url = pipeline_client.format_url(f"{{endpoint}}{path}{sep}api-version={api_version}", **endpoint)
    request = HttpRequest(method, url, json=body)
    response = pipeline_client._pipeline.run(request)
    if response.http_response.status_code not in (200, 201, 202, 204):
        raise HttpResponseError(response=response.http_response, error_format=ARMErrorFormat)

    def output(pipeline_response: Any) -> Any:
        http = pipeline_response.http_response
        return http.json() if http.text() else None

    return LROPoller(pipeline_client, response, output, ARMPolling(0, path_format_arguments=endpoint))
