"""Scale-out modelled (issue 15 item 4): N worker instances over one task hub, as Flex Consumption runs them.

Each instance has its own activity slots (host.json's ``maxConcurrentActivityFunctions`` is per instance) and
its own app state (``instance_initializer``); all of them take work from the one hub, and no activity runs twice.
"""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

from sandbox.clock import VirtualClock
from sandbox.durable import DurableRunner, RunnerConfig

from .conftest import SAMPLE_APP
from .support import executions

COUNT, SLOTS, INSTANCES = 40, 2, 4


def _run(tmp_path: Path, config: RunnerConfig) -> tuple[DurableRunner, dict[str, object]]:
    runner = DurableRunner(SAMPLE_APP, config, clock=VirtualClock()).start()
    try:
        runner.start_new("slow_fan_out", "fan", {"count": COUNT, "seconds": 0.02})
        return runner, runner.wait_for("fan", timeout=60)
    finally:
        runner.stop()


def test_four_instances_share_one_hub_and_run_every_activity_once(tmp_path: Path, activity_log: Path) -> None:
    entered: list[tuple[int, str]] = []
    lock = threading.Lock()

    def enter(index: int) -> None:
        with lock:
            entered.append((index, threading.current_thread().name))

    config = RunnerConfig(db_path=str(tmp_path / "durable.sqlite"), max_activity_workers=SLOTS, instances=INSTANCES,
                          instance_initializer=enter)
    runner, status = _run(tmp_path, config)

    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == [f"step-{n}" for n in range(COUNT)]
    # each activity ran exactly once across the instances (the hub's one queue, no duplicate work)
    assert sorted(int(n) for n in executions(activity_log, "slow_step")) == list(range(COUNT))
    assert runner.stats.activities == COUNT
    # every instance took work, and each had its host.json slots: SLOTS threads, each entered once
    by_instance = runner.stats.activities_by_instance
    assert set(by_instance) == set(range(INSTANCES)) and sum(by_instance.values()) == COUNT
    assert Counter(index for index, _ in entered) == dict.fromkeys(range(INSTANCES), SLOTS)
    assert len({name for _, name in entered}) == SLOTS * INSTANCES


def test_one_instance_is_the_single_process_runner(tmp_path: Path, activity_log: Path) -> None:
    runner, status = _run(tmp_path, RunnerConfig(db_path=str(tmp_path / "durable.sqlite"), max_activity_workers=SLOTS))

    assert status["runtimeStatus"] == "Completed"
    assert sorted(int(n) for n in executions(activity_log, "slow_step")) == list(range(COUNT))
    assert runner.stats.activities_by_instance == {0: COUNT}
    assert runner._pool._max_workers == SLOTS  # one pool of host.json's slots, as before
