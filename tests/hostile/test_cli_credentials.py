"""The ``steward`` CLI (protect, teardown, drill) as an attacker meets it: every request it sends carries the
caller's Entra ID access token and the function key, so where they go matters more than what the answer says.

* A redirect is never followed: urllib's ``HTTPRedirectHandler`` copies the request's headers, the
  ``Authorization`` and ``x-functions-key`` included, onto the request it sends to the ``Location`` (another host,
  or plain http). A compromised or mistaken endpoint (or anyone on a plain-http path) got both.
* Plain http is refused unless the API is on this machine (the local stack): nothing is sent, no token is asked for.
* What an answer says is printed without control characters: a hostile endpoint's problem detail cannot drive the
  caller's terminal (ANSI escape sequences).

Every server here listens on the loopback interface; the refused non-loopback URL is never connected to.
"""

from __future__ import annotations

import io
import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from steward import api_cli
from steward.api_cli import EXIT_USAGE

TOKEN = "eyJhbGciOiJSUzI1NiJ9.secret-token-of-the-caller.sig"
KEY = "function-key-of-the-app"
DRILL = "drill-" + "0" * 24


class Recorder(BaseHTTPRequestHandler):
    """Answers every request with ``self.server.answer`` (status, headers, body) and records what it was sent."""

    def _handle(self) -> None:
        server: Any = self.server
        server.seen.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}})
        status, headers, body = server.answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _handle

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def servers() -> Iterator[tuple[HTTPServer, HTTPServer]]:
    """Two loopback servers: ``first`` (the API the CLI is configured with) and ``elsewhere``."""
    made = []
    for _ in range(2):
        server: Any = HTTPServer(("127.0.0.1", 0), Recorder)
        server.seen, server.answer = [], (200, {"Content-Type": "application/json"}, b"{}")
        threading.Thread(target=server.serve_forever, daemon=True).start()
        made.append(server)
    yield made[0], made[1]
    for server in made:
        server.shutdown()
        server.server_close()


def url(server: HTTPServer) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}"


def run(*argv: str, api: str, tmp_path: Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    env = {"BACKUP_STEWARD_API": api, "BACKUP_STEWARD_TOKEN": TOKEN, "BACKUP_STEWARD_KEY": KEY}
    code = api_cli.main("drill", [*argv, "--state-dir", str(tmp_path)], stdout=out, stderr=err, env=env)
    return code, out.getvalue(), err.getvalue()


def test_a_redirect_is_not_followed_and_the_token_and_key_go_nowhere_else(
    servers: tuple[HTTPServer, HTTPServer], tmp_path: Path
) -> None:
    first, elsewhere = servers
    for status in (301, 302, 303, 307, 308):
        first.answer = (status, {"Location": f"{url(elsewhere)}/api/drills/{DRILL}"}, b"")
        code, out, err = run("status", DRILL, api=f"{url(first)}/api", tmp_path=tmp_path)
        assert code == EXIT_USAGE and out == "", (status, err)
        assert f"answered {status}, a redirect to {url(elsewhere)}" in err and "not followed" in err
    assert len(first.seen) == 5 and first.seen[0]["headers"]["authorization"] == f"Bearer {TOKEN}"
    assert elsewhere.seen == [], "the redirect target got the caller's request (its token and the function key)"


def test_plain_http_to_another_host_sends_nothing_and_asks_for_no_token(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    opened: list[str] = []

    def record(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(request.full_url if hasattr(request, "full_url") else str(request))
        raise AssertionError("the CLI opened a connection")

    monkeypatch.setattr(urllib.request.OpenerDirector, "open", record)
    monkeypatch.setattr(urllib.request, "urlopen", lambda request, *a, **k: record(None, request))
    for api in ("http://backup-steward.example/api", "http://10.0.0.7:7071/api", "HTTP://Steward.Example/api"):
        code, out, err = run("status", DRILL, api=api, tmp_path=tmp_path)
        assert code == EXIT_USAGE and out == "", err
        assert "plain http on a host that is not this machine" in err and "use https" in err
    assert opened == []


def test_the_local_stacks_loopback_http_and_https_are_allowed() -> None:
    for api in ("http://127.0.0.1:7071/api", "http://localhost:7071/api", "http://[::1]:7071/api",
                "https://app.azurewebsites.net/api"):
        api_cli.check_transport(api)  # no CliError
    with pytest.raises(api_cli.CliError):
        api_cli.check_transport("ftp://127.0.0.1/api")


def test_a_host_name_that_only_starts_like_a_loopback_address_is_not_this_machine() -> None:
    """``127.0.0.1.collector.example`` is a DNS name anyone can point anywhere: plain http to it would carry the
    token and the key over the network. Only loopback addresses (127.0.0.0/8, ::1) and ``localhost`` are."""
    for api in ("http://127.0.0.1.collector.example/api", "http://127.attacker.example:7071/api",
                "http://127.0.0.1@collector.example/api"):
        with pytest.raises(api_cli.CliError, match="not this machine"):
            api_cli.check_transport(api)
    api_cli.check_transport("http://127.0.0.2:7071/api")  # the whole 127.0.0.0/8 block is loopback


def test_an_answer_cannot_drive_the_callers_terminal(servers: tuple[HTTPServer, HTTPServer], tmp_path: Path) -> None:
    first, _ = servers
    hostile = {"code": "Conflict\x1b[31m", "detail": "busy\x1b]0;owned\x07\x1b[2J\rsteward: all good"}
    first.answer = (409, {"Content-Type": "application/problem+json"}, json.dumps(hostile).encode())
    code, _, err = run("status", DRILL, api=f"{url(first)}/api", tmp_path=tmp_path)
    assert code == api_cli.EXIT_REFUSED
    assert "\x1b" not in err and "\x07" not in err and "\r" not in err
    assert err.startswith("steward drill: refused (409 Conflict [31m): busy") and err.count("\n") == 1


def test_a_local_stack_file_naming_a_remote_api_gets_neither_the_token_nor_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``var/local/stack.json`` is found relative to the working directory (a checkout anyone may have written,
    ``--state-dir`` by default ``var``). Without ``--api``/``BACKUP_STEWARD_API`` the CLI falls back to the stack's
    ``api``: a stack file naming a remote https host must not receive the caller's production token and key from
    ``BACKUP_STEWARD_TOKEN``/``BACKUP_STEWARD_KEY``. The local stack is on this machine by definition."""
    opened: list[str] = []

    def record(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        opened.append(request.full_url if hasattr(request, "full_url") else str(request))
        raise AssertionError("the CLI opened a connection")

    monkeypatch.setattr(urllib.request.OpenerDirector, "open", record)
    monkeypatch.setattr(urllib.request, "urlopen", lambda request, *a, **k: record(None, request))
    (tmp_path / "local").mkdir()
    for planted in ("https://collector.example/api", "https://127.0.0.1.collector.example/api",
                    "http://10.0.0.7:7071/api"):
        stack = {"api": planted, "keys": {"function": "planted-key"}, "principal": "0" * 8}
        (tmp_path / "local" / "stack.json").write_text(json.dumps(stack), encoding="utf-8")
        out, err = io.StringIO(), io.StringIO()
        env = {"BACKUP_STEWARD_TOKEN": TOKEN, "BACKUP_STEWARD_KEY": KEY}  # no BACKUP_STEWARD_API
        code = api_cli.main("drill", ["status", DRILL, "--state-dir", str(tmp_path)], stdout=out, stderr=err,
                            env=env)
        assert code == EXIT_USAGE and out.getvalue() == "", (planted, err.getvalue())
        assert "not on this machine" in err.getvalue() and "--api" in err.getvalue(), err.getvalue()
    assert opened == [], "the CLI sent the caller's token and key to the API a stack file named"


def test_a_planted_stack_file_does_not_stop_a_configured_api(
    servers: tuple[HTTPServer, HTTPServer], tmp_path: Path
) -> None:
    first, _ = servers
    (tmp_path / "local").mkdir()
    (tmp_path / "local" / "stack.json").write_text(json.dumps({"api": "https://collector.example/api"}), "utf-8")
    first.answer = (200, {"Content-Type": "application/json"},
                    json.dumps({"id": DRILL, "runtimeStatus": "Running"}).encode())
    code, _, err = run("status", DRILL, api=f"{url(first)}/api", tmp_path=tmp_path)
    assert code == 0, err
    assert [seen["headers"]["authorization"] for seen in first.seen] == [f"Bearer {TOKEN}"]


def test_a_successful_answer_cannot_drive_the_callers_terminal_either(
    servers: tuple[HTTPServer, HTTPServer], tmp_path: Path
) -> None:
    """The table and CSV outputs print what the answer says (a drill's reason quotes Azure's error messages and
    other people's texts): no control character reaches the terminal, and no text forges a row of its own."""
    first, _ = servers
    hostile = "restore failed\x1b]0;owned\x07\x1b[2J\r\n/subscriptions/x/vm-2  Succeeded  10  all good"
    report = {"id": DRILL, "startedAt": "2026-12-07T00:00:00+00:00", "endedAt": "2026-12-07T01:00:00+00:00",
              "results": [{"resourceId": "/subscriptions/x/vm-1", "outcome": "Failed\x1b[32m", "reason": hostile}]}
    first.answer = (200, {"Content-Type": "application/json"},
                    json.dumps({"id": DRILL, "runtimeStatus": "Completed", "report": report}).encode())
    for output in ("table", "csv"):
        code, out, err = run("status", DRILL, "--output", output, api=f"{url(first)}/api", tmp_path=tmp_path)
        assert code == 0, err
        assert not any(c in out for c in "\x1b\x07\r"), (output, out)
        assert out.count("\n") == 2, (output, out)  # the header and the one result
