"""No log line shows a key: the local host writes one access line per request with its ``code=`` key replaced by
``***``, and every log record and every byte printed while keys travel in query strings and headers (right ones,
wrong ones, the master key, the extensions' system keys) is searched for each key."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.durable.discovery import EVENT_GRID
from sandbox.durable.logs import HOST_LOGGER
from steward import bootstrap
from tests.hostile.conftest import ADMIN, App, start_app


class Everything(logging.Handler):
    """Keeps every record of every logger, with all its attributes (extras included)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def text(self) -> str:
        lines = []
        for record in self.records:
            fields = {k: v for k, v in vars(record).items() if k not in ("args", "exc_info", "msg")}
            lines.append(f"{record.getMessage()} {json.dumps(fields, default=repr)} {record.exc_text or ''}")
        return "\n".join(lines)


@pytest.fixture(scope="module")
def keyed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    running = start_app(tmp_path_factory.mktemp("keys"))
    try:
        yield running
    finally:
        running.stack.stop()
        bootstrap.reset()


def _call(url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None) -> int:
    data = None if body is None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, method=method, data=data, headers=sent)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            return int(response.status)
    except urllib.error.HTTPError as error:
        error.read()
        return int(error.code)


def test_no_log_line_shows_a_key_and_every_request_has_an_access_line(
    keyed_app: App, capfd: pytest.CaptureFixture[str]
) -> None:
    host = keyed_app.host
    keys = host.keys
    secrets = {"function": keys.function_key, "master": keys.master_key, **dict(keys.system_keys)}
    api, origin, auth = host.api_base, host.origin, keyed_app.auth(ADMIN)
    grid = host.catalog.of_kind(EVENT_GRID)[0].name
    validation = [
        {
            "id": "v1",
            "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
            "subject": "",
            "eventTime": "2026-01-01T00:00:00Z",
            "dataVersion": "1",
            "data": {"validationCode": "abc"},
        }
    ]

    root = logging.getLogger()
    catcher, level = Everything(), root.level
    root.addHandler(catcher)
    root.setLevel(logging.DEBUG)
    try:
        answers = {
            "contract, key in the query": _call(f"{api}/openapi.yaml?code={keys.function_key}"),
            "refused body, key in the query": _call(
                f"{api}/teardowns?code={keys.function_key}", "POST", {"vault": "x"}, auth
            ),
            "drill, master key in the query": _call(
                f"{api}/drills?code={keys.master_key}", "POST", {"dryRun": True}, auth
            ),
            "status, key in the header": _call(
                f"{api}/teardowns/teardown-abc", headers={"x-functions-key": keys.function_key, **auth}
            ),
            "wrong key in the query": _call(f"{api}/teardowns/teardown-abc?code=not-{keys.function_key}"),
            "no route, key in the query": _call(f"{api}/nothing-here?code={keys.function_key}"),
            "event grid handshake, system key": _call(
                host.eventgrid_url(grid), "POST", validation, {"aeg-event-type": "SubscriptionValidation"}
            ),
            "admin, master key in the query": _call(f"{origin}/admin/host/status?code={keys.master_key}"),
        }
        keyed_app.settle()
    finally:
        root.removeHandler(catcher)
        root.setLevel(level)
    printed = capfd.readouterr()
    assert answers == {
        "contract, key in the query": 200,
        "refused body, key in the query": 400,
        "drill, master key in the query": 202,
        "status, key in the header": 404,
        "wrong key in the query": 401,
        "no route, key in the query": 404,
        "event grid handshake, system key": 200,
        "admin, master key in the query": 200,
    }
    access = [r for r in catcher.records if r.name == HOST_LOGGER and hasattr(r, "target")]
    targets = [str(getattr(r, "target", "")) for r in access]
    assert sum("code=***" in t for t in targets) >= 6, targets
    assert any(
        t.endswith("/teardowns/teardown-abc") and getattr(r, "status", None) == 404
        for t, r in zip(targets, access, strict=True)
    ), "a request without code= has its access line too"
    logged = catcher.text() + printed.out + printed.err
    for name, key in secrets.items():
        assert key not in logged, f"the {name} key is in a log line"
    # the refusals' codes are logged under a name that is not redacted (a field named 'code' would be '***')
    teardown_lines = [r for r in catcher.records if getattr(r, "event", None) == "steward.teardown.request"]
    assert any(getattr(r, "error_code", None) == "UnknownField" for r in teardown_lines), teardown_lines
