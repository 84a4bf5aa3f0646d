"""``make local`` (``steward local up``): a seeded estate, a local principal, keys that survive a restart, and the
printed curl commands work by copy-paste (run here with bash, curl and jq exactly as printed)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from steward import bootstrap

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


class Running:
    def __init__(self, state: Path, *extra: str, quiet: bool = True) -> None:
        from sandbox.playground import main

        self.out, self.err, self.stop = io.StringIO(), io.StringIO(), threading.Event()
        self.rc: int | None = None
        flags = ["--quiet-logs"] if quiet else []

        def run() -> None:
            self.rc = main(["up", "--port", "0", "--scale", "600", *flags, "--state-dir", str(state),
                            *extra], out=self.out, err=self.err, stop=self.stop)

        self.thread = threading.Thread(target=run, daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        deadline = time.monotonic() + 120
        while "Try it" not in self.out.getvalue():
            assert self.thread.is_alive() and time.monotonic() < deadline, self.err.getvalue()
            time.sleep(0.2)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=60)


@pytest.fixture
def restore_env() -> Iterator[None]:
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
    bootstrap.reset()


def _bash(script: str, cwd: Path) -> str:
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    assert done.returncode == 0, f"{script}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    return done.stdout


@pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq")), reason="the examples use curl and jq")
def test_the_printed_curl_commands_plan_approve_run_report_and_audit(
    tmp_path: Path, restore_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    state = tmp_path / "var"
    with Running(state) as stack:
        text = stack.out.getvalue()
        assert "rsv-legacy" in text and "Local operator principal" in text
        block = text[text.index("Try it"):].splitlines()
        env_line = block[1]
        # the stack's own state directory is named: the line is pasted as printed (it read var/ instead)
        assert env_line.startswith('eval "$(') and env_line.endswith(f' -m steward.cli local env --state-dir {state})"')
        commands = [line for line in block[2:] if line and not line.startswith("#")]
        assert len(commands) == 5
        cli = [line.removeprefix("#   CLI: ") for line in block if line.startswith("#   CLI: ")]
        assert len(cli) == 3 and all(" -m steward.cli " in line for line in cli)
        prefix = env_line + "\n"
        def wait(variable: str) -> str:  # what a person does by repeating the status command
            return (f'for i in $(seq 1 200); do S=$(curl -sS "$LOCAL_API/teardowns/${variable}" '
                    '-H "x-functions-key: $LOCAL_KEY" -H "$LOCAL_AUTH" | jq -r .runtimeStatus); '
                    '[ "$S" = Completed ] && break; sleep 0.3; done')

        planned = _bash("\n".join([prefix, commands[0], wait("ID"), commands[1], cli[0], commands[2], wait("RUN"),
                                   commands[3], cli[1]]), tmp_path)
        assert re.search(r"^teardown-rsv-legacy-[0-9a-f]{16}-plan$", planned, re.MULTILINE), planned
        assert '"fingerprint": "sha256:' in planned
        run_id = re.search(r"^teardown-rsv-legacy-[0-9a-f]{16}-run-[0-9a-f]{16}$", planned, re.MULTILINE)
        assert run_id, planned
        run_id = run_id.group(0)
        assert '"outcome": "deleted"' in planned, planned
        assert "<html" in (tmp_path / "teardown-report.html").read_text().lower()
        assert re.search(r"^orchestrator:\s+teardown_vault$", planned, re.MULTILINE), "the CLI shows the instance"
        assert re.search(r"^INSTANCE\s+NAME\s+STATUS", planned, re.MULTILINE), "the CLI lists the instances"
        program = cli[1].split(" instances ")[0]
        listed = _bash(prefix + f'{program} instances --db "$LOCAL_DB" --output csv | sed -n 1p\n'
                       f'{program} instances show {run_id} --db "$LOCAL_DB" --output json | jq -r .output.outcome',
                       tmp_path)
        assert listed.splitlines() == ["instance,name,status,created,updated,customStatus", "deleted"], listed
        audited = _bash(prefix + commands[4] + "\n" + cli[2], tmp_path)
        assert "BKP-001" in audited.split("\n", 2)[-1], "the CLI audit finds what the HTTP audit finds"
        assert json.loads(audited.splitlines()[0])["started"] is True, audited
        assert "BKP-001" in audited, audited
        assert re.search(r'"resources": [1-9][0-9]*,', audited), "the printed audit query names the resources counted"
        keys = json.loads((state / "local" / "keys.json").read_text())
        assert oct((state / "local" / "keys.json").stat().st_mode & 0o777) == "0o600"
    with Running(state, "--no-seed") as again:
        assert keys["function"] in again.out.getvalue(), "the function key survives a restart"


def test_the_env_line_names_the_state_directory_only_when_it_is_not_the_default() -> None:
    from sandbox.playground import examples_text

    assert examples_text("steward").splitlines()[1] == 'eval "$(steward local env)"'
    assert examples_text("steward", Path("/tmp/my stack")).splitlines()[1] == (
        "eval \"$(steward local env --state-dir '/tmp/my stack')\""
    )


def test_local_up_help_names_the_steward_command(capsys: pytest.CaptureFixture[str]) -> None:
    from steward.cli import main

    with pytest.raises(SystemExit):
        main(["local", "up", "--help"])
    usage = capsys.readouterr().out
    assert usage.startswith("usage: steward local up"), usage
    assert "example:" in usage


@pytest.mark.parametrize("argv", [["demo"], ["sandbox", "serve"]])
def test_demo_and_sandbox_help_name_the_steward_command_with_an_example(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """As ``local up`` (issue 20 item 8): ``steward sandbox serve --help`` printed ``python -m sandbox.arm``, and
    neither showed an example."""
    from steward.cli import main

    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    usage = capsys.readouterr().out
    assert usage.startswith("usage: steward " + " ".join(argv)), usage
    assert "example: steward " + " ".join(argv) in usage, usage


def test_quiet_logs_keeps_the_apps_info_lines_off_the_terminal(
    tmp_path: Path, restore_env: None, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """``--quiet-logs`` said "do not print the JSON log lines" while every app line (the seeding's, the reconcile
    timer's each Azure hour) still printed: the flag only held back the sandbox's own."""
    import logging

    monkeypatch.chdir(tmp_path)
    app_handlers = [h for h in logging.getLogger("steward").handlers if isinstance(h, logging.StreamHandler)]
    streams, levels = [h.stream for h in app_handlers], [h.level for h in app_handlers]
    for handler in app_handlers:
        handler.stream = sys.stderr
    try:
        with Running(tmp_path / "var", quiet=True):
            pass
    finally:
        for handler, stream in zip(app_handlers, streams, strict=True):
            handler.stream = stream
    assert [h.level for h in app_handlers] == levels, "the stack gives the app's handlers their level back"
    printed = [line for line in capfd.readouterr().err.splitlines() if '"logger": "steward.' in line]
    assert not [line for line in printed if '"level": "INFO"' in line], printed[:3]


def test_make_local_prints_each_app_log_line_once(
    tmp_path: Path, restore_env: None, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    import logging

    monkeypatch.chdir(tmp_path)
    root_handlers = list(logging.getLogger().handlers)
    # the app's handler (made when an earlier test imported the app) writes to this test's captured stderr
    app_handlers = [h for h in logging.getLogger("steward").handlers if isinstance(h, logging.StreamHandler)]
    streams = [h.stream for h in app_handlers]
    for handler in app_handlers:  # not setStream: it flushes the old stream, which an earlier capture may have closed
        handler.stream = sys.stderr
    try:
        with Running(tmp_path / "var", quiet=False):
            pass
    finally:
        for handler, stream in zip(app_handlers, streams, strict=True):
            handler.stream = stream
    records = [json.loads(line) for line in capfd.readouterr().err.splitlines() if '"logger": "steward.' in line]
    assert records, "the seeding makes the app log"
    printed = [(r["logger"], r["message"], r.get("correlation_id"), r.get("event_id")) for r in records]
    assert len(printed) == len(set(printed)), "a steward line was printed twice"
    assert logging.getLogger().handlers == root_handlers, "the stack gives the process its logging back"
