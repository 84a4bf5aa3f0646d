"""Hostile-input, contract and authorization tests: the real app on the local host (ARM sandbox, Durable
runner, host with function keys), plus ``entrypoints.openapi`` until ``function_app.py`` registers it."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sandbox.arm import SandboxConfig
from sandbox.arm.config import DEFAULT_SUBSCRIPTION, SECOND_SUBSCRIPTION
from sandbox.clock import VirtualClock
from sandbox.durable.discovery import _indexed
from sandbox.host.local import LocalStack
from steward import bootstrap
from steward.cloud.clients import CloudClients

REPO = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "corpus"
OPENAPI = REPO / "openapi" / "backup-steward.yaml"
SUB1, SUB2 = DEFAULT_SUBSCRIPTION, SECOND_SUBSCRIPTION
ADMIN = "aaaaaaaa-0000-4000-8000-00000000ad01"
STRANGER = "bbbbbbbb-0000-4000-8000-0000000000b2"
OID_CLAIM = "http://schemas.microsoft.com/identity/claims/objectidentifier"
#: the Event Grid topic whose BackupSteward.Teardown.Requested events the app accepts (as requests only)
REQUESTS_TOPIC = f"/subscriptions/{SUB1}/resourceGroups/rg-steward/providers/Microsoft.EventGrid/topics/evgt-requests"


class AppWithContract:
    """``function_app.app``'s functions plus the OpenAPI route (registered on its own small app, so no
    blueprint is registered twice). Once ``function_app.py`` registers ``entrypoints.openapi.bp`` itself,
    its copy wins and this adds nothing."""

    _extra: list[Any] | None = None

    def get_functions(self) -> list[Any]:
        import azure.durable_functions as df
        import azure.functions as func

        import function_app
        from entrypoints import openapi

        # the SDK indexes an app once; share the local host's per-app cache so other tests can index it too
        functions = list(_indexed(function_app.app))
        if "openapi_document" in {f.get_function_name() for f in functions}:
            return functions
        if AppWithContract._extra is None:
            extra = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
            extra.register_functions(openapi.bp)
            AppWithContract._extra = list(extra.get_functions())
        return functions + AppWithContract._extra


def forged_platform_headers(principal: str = ADMIN) -> dict[str, str]:
    """App Service Authentication's headers as anyone holding the function key can send them (no token)."""
    claims = {"auth_typ": "aad", "claims": [{"typ": OID_CLAIM, "val": principal}]}
    return {
        "x-ms-client-principal-id": principal,
        "x-ms-client-principal": base64.b64encode(json.dumps(claims).encode()).decode(),
    }


@dataclasses.dataclass
class App:
    """The running app and how to call it."""

    stack: LocalStack
    clients: CloudClients

    @property
    def sandbox(self) -> Any:
        return self.stack.sandbox

    @property
    def host(self) -> Any:
        assert self.stack.host is not None
        return self.stack.host

    @property
    def function_key(self) -> str:
        return str(self.host.keys.function_key)

    def auth(self, principal: str = ADMIN, roles: tuple[str, ...] = (), **claims: Any) -> dict[str, str]:
        """``Authorization: Bearer`` with an access token for the app from the sandbox's Entra ID."""
        return self.stack.bearer(principal, roles, **claims)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        *,
        key: bool = True,
    ) -> tuple[int, dict[str, str], bytes]:
        """One real HTTP request to ``/api/<path>`` (with the function key unless ``key`` is False)."""
        sent = {"Content-Type": "application/json", **(headers or {})}
        if key:
            sent["x-functions-key"] = self.function_key
        request = urllib.request.Request(f"{self.host.api_base}/{path}", method=method, data=body, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, dict(response.headers.items()), response.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers.items()), error.read()

    def orchestrations(self) -> list[str]:
        runner = self.stack.runner
        assert runner is not None
        return sorted(i.instance_id for i in runner.query())

    def writes(self) -> int:
        """ARM writes the sandbox has answered (any status), from its request counters."""
        return int(self.sandbox.counters.get("write"))

    def state(self) -> tuple[int, list[str]]:
        """What a hostile request must not change: the ARM writes served and the orchestrations started."""
        return self.writes(), self.orchestrations()

    def settle(self, timeout: float = 30.0) -> None:
        runner = self.stack.runner
        assert runner is not None
        deadline = time.monotonic() + timeout
        time.sleep(0.2)
        while time.monotonic() < deadline:
            states = [runner.status(i.instance_id)["runtimeStatus"] for i in runner.query()]
            if all(s in {"Completed", "Failed", "Terminated"} for s in states):
                return
            time.sleep(0.05)
        raise AssertionError("orchestrations did not settle")


def start_app(tmp: Path, settings: dict[str, str] | None = None, *, scale: float = 600.0, **sandbox: Any) -> App:
    clock = VirtualClock(scale=scale)
    stack = LocalStack(
        app=AppWithContract(),
        app_root=REPO,
        db_path=str(tmp / "durable.sqlite"),
        arm_config=SandboxConfig(clock=clock, **sandbox),
        run_timers=False,
        settings={
            "STEWARD_TEARDOWN_ALLOWED_PRINCIPALS": ADMIN,
            "STEWARD_REPORTS_DIR": str(tmp / "teardown-reports"),
            "STEWARD_TEARDOWN_RATE_PER_MINUTE": "600",
            "STEWARD_AUDIT_RATE_PER_MINUTE": "600",
            "STEWARD_TEARDOWN_REQUESTS_TOPIC_ID": REQUESTS_TOPIC,
            **(settings or {}),
        },
    ).start()
    target = dataclasses.replace(stack.sandbox.cloud_target(), polling_interval=0.05)
    return App(stack, CloudClients(target))


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    running = start_app(tmp_path_factory.mktemp("hostile"))
    try:
        yield running
    finally:
        running.stack.stop()
        bootstrap.reset()


def load_corpus(name: str) -> list[dict[str, Any]]:
    """A corpus file: a YAML list of cases, each with a ``name``."""
    cases = yaml.safe_load((CORPUS / name).read_text(encoding="utf-8"))
    assert isinstance(cases, list) and cases, f"{name} holds no cases"
    return cases
