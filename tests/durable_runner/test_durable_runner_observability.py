"""Observability: JSON log lines carry instance and correlation ids; the CLI lists and shows instances."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from pathlib import Path

from sandbox.durable import DurableRunner
from sandbox.durable.logs import DurableContextFilter, JsonLineFormatter

from .conftest import REPO_ROOT


def test_every_runner_and_app_line_carries_instance_and_correlation_ids(runner: DurableRunner) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(DurableContextFilter())
    handler.setFormatter(JsonLineFormatter())
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        runner.wait_for(runner.start_new("fan_out", "logged-1", {"count": 3}, correlation_id="corr-42"))
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    mine = [line for line in lines if line["instance_id"] == "logged-1"]
    assert {line["logger"] for line in mine} >= {"sandbox.durable", "sample_app"}
    assert all(line["correlation_id"] == "corr-42" for line in mine)
    app_lines = [line for line in lines if line["logger"] == "sample_app"]
    assert len(app_lines) == 3
    assert all(line["instance_id"] == "logged-1" for line in app_lines)


def _cli(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", "sandbox.durable", *args], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=30, check=True)
    return result.stdout


def test_cli_lists_instances_and_shows_history(runner: DurableRunner) -> None:
    runner.wait_for(runner.start_new("fan_out", "cli-fan", {"count": 2}))
    runner.start_new("forever", "cli-wait")
    runner.wait_until(lambda: runner.status("cli-wait")["runtimeStatus"] == "Running")
    db = runner.config.db_path
    listing = _cli("instances", "--db", db)
    rows = {line.split()[0]: line.split() for line in listing.splitlines()[1:]}
    assert rows["cli-fan"][1:3] == ["fan_out", "Completed"]
    assert rows["cli-wait"][1:3] == ["forever", "Running"]
    assert '{"phase": "done"}' in listing
    shown = _cli("show", "cli-fan", "--db", db)
    assert "status:        Completed" in shown
    assert 'custom status: {"phase": "done"}' in shown
    kinds = [line.split()[1] for line in shown.splitlines() if line.startswith("  ")]
    assert kinds.count("TaskScheduled") == 2
    assert kinds.count("TaskCompleted") == 2
    assert kinds[-1] == "ExecutionCompleted"
    # issue 20 item 8: --output csv on every command that prints results, instances show included
    import csv

    rows_csv = list(csv.DictReader(_cli("show", "cli-fan", "--db", db, "--output", "csv").splitlines()))
    assert [r["EventType"] for r in rows_csv].count("TaskScheduled") == 2
    assert rows_csv[-1]["EventType"] == "ExecutionCompleted"


def test_cli_says_when_there_is_no_store(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "sandbox.durable", "instances", "--db", str(tmp_path / "x.db")],
                            cwd=REPO_ROOT, capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 2
    assert "no runner store" in result.stderr
