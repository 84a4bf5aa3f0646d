"""POST /api/drills is metered per verified caller like the teardown and audit starts: a drill restores disks and
VMs and creates storage accounts (Azure cost, the drill group's quota), and each POST starts a new drill instance,
so one allowed caller (or a stolen token of one) must not be able to start them without bound."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import azure.functions as func
import pytest

from entrypoints import drill_http, routes
from steward import bootstrap
from steward.settings import Settings

PRINCIPAL = "11111111-1111-1111-1111-111111111111"
SUB = "00000000-0000-4000-8000-000000000001"
VM = f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm1"


class Client:
    def __init__(self) -> None:
        self.started: list[str] = []

    async def start_new(self, name: str, instance_id: str, payload: Any) -> str:
        self.started.append(instance_id)
        return instance_id


@pytest.fixture
def rate(monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    bootstrap.use(settings=Settings(teardown_rate_per_minute=3, subscriptions=(SUB,)))
    monkeypatch.setattr(routes, "allowed_caller", lambda req: PRINCIPAL)
    yield 3
    bootstrap.use()


def _post(client: Client) -> func.HttpResponse:
    req = func.HttpRequest("POST", "https://app.example/api/drills", headers={"content-type": "application/json"},
                           body=json.dumps({"resources": [VM], "dryRun": True}).encode())
    handler = drill_http.drill_http_start
    run = handler._function.get_user_function().__wrapped__  # the route body, below the durable client binding
    answer: func.HttpResponse = asyncio.run(run(req, client))
    return answer


def test_a_caller_starts_its_rate_of_drills_then_gets_429_with_retry_after(rate: int) -> None:
    client = Client()
    statuses = [_post(client).status_code for _ in range(rate)]
    assert statuses == [202] * rate
    refused = _post(client)
    assert refused.status_code == 429
    assert json.loads(refused.get_body())["code"] == "TooManyRequests"
    assert int(refused.headers["Retry-After"]) > 0
    assert len(client.started) == rate
