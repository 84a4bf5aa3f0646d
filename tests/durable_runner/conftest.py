"""Fixtures for the local runner's own tests: a runner (and host) over the sample app in this folder."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.clock import VirtualClock
from sandbox.durable import DurableRunner, RunnerConfig
from sandbox.host import LocalHost

SAMPLE_APP = Path(__file__).with_name("sample_app.py")
REPO_ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("SAMPLE_AUDIT_SCHEDULE", "0 0 3 * * *")


@pytest.fixture
def activity_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    target = tmp_path / "activities.log"
    monkeypatch.setenv("SAMPLE_ACTIVITY_LOG", str(target))
    return target


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock()


@pytest.fixture
def runner(tmp_path: Path, clock: VirtualClock, activity_log: Path) -> Iterator[DurableRunner]:
    with DurableRunner(SAMPLE_APP, RunnerConfig(db_path=str(tmp_path / "durable.sqlite")), clock=clock) as started:
        yield started


@pytest.fixture
def host(runner: DurableRunner) -> Iterator[LocalHost]:
    with LocalHost(runner.catalog, runner) as started:
        yield started
