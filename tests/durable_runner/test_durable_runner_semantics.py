"""Durable semantics of the local runner, driven through the sample app's orchestrators."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from sandbox.durable import (
    DurableRunner,
    InstanceAlreadyExists,
    InstanceNotFound,
    InstanceNotRunning,
    RunnerConfig,
    UnknownFunction,
)

from .conftest import SAMPLE_APP
from .support import eventually, executions


def _types(runner: DurableRunner, instance_id: str) -> list[str]:
    from sandbox.durable.history import type_name

    return [type_name(e) for e in runner.history(instance_id)]


def _key() -> str:
    return uuid.uuid4().hex


def test_fan_out_runs_every_activity_once_and_aggregates(runner: DurableRunner, activity_log: Path) -> None:
    instance = runner.start_new("fan_out", "fan-20", {"count": 20})
    status = runner.wait_for(instance)
    assert status["runtimeStatus"] == "Completed"
    assert status["output"] == sum(2 * i for i in range(20))
    assert status["customStatus"] == {"phase": "done"}
    assert sorted(int(v) for v in executions(activity_log, "double")) == list(range(20))
    kinds = _types(runner, instance)
    assert kinds.count("TaskScheduled") == 20
    assert kinds.count("TaskCompleted") == 20
    assert kinds[:2] == ["OrchestratorStarted", "ExecutionStarted"]
    assert kinds[-1] == "ExecutionCompleted"


def test_fan_out_batches_completions_into_few_replays(runner: DurableRunner, activity_log: Path) -> None:
    runner.wait_for(runner.start_new("fan_out", "fan-200", {"count": 200}), timeout=20)
    # one replay per completion would be 201 replays; batching keeps it far lower
    assert runner.stats.replays < 100
    # and no activity is handed to the pool twice, however the completions interleave with the replays
    assert sorted(int(v) for v in executions(activity_log, "double")) == list(range(200))


def test_retry_recovers_after_virtual_backoff(runner: DurableRunner, activity_log: Path) -> None:
    key = _key()
    instance = runner.start_new("retrying", None, {"key": key, "succeed_on": 3, "first_ms": 60_000,
                                                   "attempts": 5})
    eventually(lambda: len(runner.store.timers()) == 1)
    assert len(executions(activity_log, "flaky")) == 1
    # the retry waits a minute of Azure time: nothing runs until the clock gets there
    runner.clock.advance(30)
    with pytest.raises(AssertionError):
        eventually(lambda: len(executions(activity_log, "flaky")) > 1, timeout=0.3)
    runner.clock.advance(31)
    eventually(lambda: len(executions(activity_log, "flaky")) == 2 and len(runner.store.timers()) == 1)
    runner.clock.advance(61)
    status = runner.wait_for(instance)
    assert status["output"]["ok"] == f"{key} ok after 3"
    kinds = _types(runner, instance)
    assert kinds.count("TaskFailed") == 2
    assert kinds.count("TimerFired") == 2


def test_retry_exhausted_raises_into_the_orchestrator(runner: DurableRunner, activity_log: Path) -> None:
    key = _key()
    instance = runner.start_new("retrying", None, {"key": key, "succeed_on": 99, "first_ms": 1000, "attempts": 3})
    for attempt in range(1, 4):
        eventually(lambda n=attempt: len(executions(activity_log, "flaky")) == n and len(runner.store.timers()) == 1)
        runner.clock.advance(2)
    status = runner.wait_for(instance)
    assert "transient failure 3" in status["output"]["failed"]
    assert len(executions(activity_log, "flaky")) == 3


def test_fourteen_day_timer_passes_with_clock_advance(runner: DurableRunner) -> None:
    instance = runner.start_new("waiter", None, {"days": 14})
    eventually(lambda: runner.status(instance)["runtimeStatus"] == "Running")
    runner.clock.advance(13 * 86400)
    with pytest.raises(AssertionError):
        eventually(lambda: runner.status(instance)["runtimeStatus"] == "Completed", timeout=0.3)
    runner.clock.advance(86400 + 1)
    status = runner.wait_for(instance)
    assert status["output"]["waited_days"] >= 14
    # the Azure Storage backend splits timers over 6 days into 3-day intervals; the SDK asks for them
    assert _types(runner, instance).count("TimerCreated") >= 2


def test_sub_orchestrations_with_and_without_retry(runner: DurableRunner) -> None:
    instance = runner.start_new("parent", "parent-1", {"children": 3})
    status = runner.wait_for(instance)
    assert status["output"]["totals"] == [6, 6, 6]
    assert status["output"]["retried"]["ok"].startswith("parent-1-sub ok")
    child = runner.status("parent-1-child-2")
    assert child["runtimeStatus"] == "Completed"
    assert runner.store.instance("parent-1-child-2").parent_instance_id == "parent-1"
    assert _types(runner, instance).count("SubOrchestrationInstanceCompleted") == 4


def test_sub_orchestration_with_retry_reruns_the_failed_child(runner: DurableRunner, activity_log: Path) -> None:
    key = _key()
    instance = runner.start_new("parent_retrying_child", "retry-parent",
                                {"key": key, "succeed_on": 2, "first_ms": 5000, "attempts": 3})
    eventually(lambda: len(runner.store.timers()) == 1)
    assert runner.status("retry-parent:0000")["runtimeStatus"] == "Failed"
    runner.clock.advance(6)
    assert runner.wait_for(instance)["output"] == f"{key} ok after 2"
    assert runner.status("retry-parent:0002")["runtimeStatus"] == "Completed"
    assert len(executions(activity_log, "flaky")) == 2


def test_unknown_activity_fails_the_task_not_the_runner(runner: DurableRunner) -> None:
    status = runner.wait_for(runner.start_new("calls_unknown"))
    assert "no activityTrigger function named 'no_such_activity'" in status["output"]["caught"]


def test_unsupported_actions_fail_the_instance_with_a_clear_error(runner: DurableRunner) -> None:
    status = runner.wait_for(runner.start_new("uses_entity"))
    assert status["runtimeStatus"] == "Failed"
    assert "does not support CallEntityAction" in status["output"]


def test_failed_sub_orchestration_raises_in_parent(runner: DurableRunner) -> None:
    status = runner.wait_for(runner.start_new("parent_of_failing", "pf-1"))
    assert "child gave up" in status["output"]["caught"]
    assert runner.status("pf-1:0000")["runtimeStatus"] == "Failed"


def test_external_event_resumes_and_cancels_the_timeout(runner: DurableRunner) -> None:
    instance = runner.start_new("approval", "appr-1")
    eventually(lambda: runner.status(instance)["customStatus"] == "waiting for approval")
    runner.raise_event(instance, "Approval", {"by": "alice"})
    status = runner.wait_for(instance)
    assert status["output"] == {"approved": {"by": "alice"}}
    assert runner.store.timers() == []


def test_external_event_timeout_wins_when_nobody_answers(runner: DurableRunner) -> None:
    instance = runner.start_new("approval", "appr-2")
    eventually(lambda: runner.status(instance)["runtimeStatus"] == "Running")
    runner.clock.advance(3601)
    assert runner.wait_for(instance)["output"] == {"approved": None, "timed_out": True}
    with pytest.raises(InstanceNotRunning):
        runner.raise_event(instance, "Approval", True)


def test_continue_as_new_starts_a_new_generation_with_reset_history(runner: DurableRunner,
                                                                   activity_log: Path) -> None:
    instance = runner.start_new("counter", "count-1", {"n": 0, "until": 3})
    status = runner.wait_for(instance)
    assert status["output"] == {"final": 3}
    assert status["input"] == {"n": 3, "until": 3}
    assert runner.store.instance(instance).generation == 3
    assert [json.loads(v)["generation"] for v in executions(activity_log, "echo")] == [0, 1, 2, 3]
    assert _types(runner, instance).count("ExecutionStarted") == 1


def test_terminate_stops_a_waiting_instance(runner: DurableRunner) -> None:
    instance = runner.start_new("forever", "never-1")
    eventually(lambda: runner.status(instance)["runtimeStatus"] == "Running")
    runner.terminate(instance, "operator said so")
    status = runner.status(instance)
    assert status["runtimeStatus"] == "Terminated"
    assert status["output"] == "operator said so"
    with pytest.raises(InstanceNotRunning):
        runner.terminate(instance, "again")


def test_a_start_with_the_id_of_a_running_instance_is_refused(runner: DurableRunner) -> None:
    # The extension's default overridableExistingInstanceStates is NonRunningStates: a start that names a
    # Pending or Running instance throws OrchestrationAlreadyExistsException (HTTP 409). The previous runner
    # returned the running instance as if the start had succeeded (kinder than Azure).
    first = runner.start_new("forever", "dup-1")
    eventually(lambda: runner.status(first)["runtimeStatus"] == "Running")
    created = runner.status(first)["createdTime"]
    with pytest.raises(InstanceAlreadyExists, match="already exists"):
        runner.start_new("fan_out", "dup-1", {"count": 1})
    assert runner.status("dup-1")["name"] == "forever"
    assert runner.status("dup-1")["createdTime"] == created
    runner.terminate("dup-1", "done")
    # once the instance is no longer running, the same id starts a fresh execution
    runner.start_new("fan_out", "dup-1", {"count": 2})
    assert runner.wait_for("dup-1")["output"] == 2


def test_unknown_names_and_ids_are_refused(runner: DurableRunner) -> None:
    with pytest.raises(UnknownFunction, match="no orchestrationTrigger function named 'nope'"):
        runner.start_new("nope")
    with pytest.raises(InstanceNotFound):
        runner.status("missing")
    assert runner.purge("missing") == 0


def test_purge_removes_instance_and_history(runner: DurableRunner) -> None:
    runner.wait_for(runner.start_new("fan_out", "purge-1", {"count": 1}))
    assert runner.purge("purge-1") == 1
    assert runner.store.history("purge-1") == []
    with pytest.raises(InstanceNotFound):
        runner.status("purge-1")


def test_history_survives_a_runner_restart(tmp_path: Path, clock, activity_log: Path) -> None:  # type: ignore[no-untyped-def]
    config = RunnerConfig(db_path=str(tmp_path / "restart.sqlite"))
    with DurableRunner(SAMPLE_APP, config, clock=clock) as first:
        first.start_new("approval", "restart-1")
        eventually(lambda: first.status("restart-1")["runtimeStatus"] == "Running")
    with DurableRunner(SAMPLE_APP, config, clock=clock) as second:
        second.raise_event("restart-1", "Approval", "yes")
        assert second.wait_for("restart-1")["output"] == {"approved": "yes"}


def test_instance_of_an_orchestrator_the_app_no_longer_has_fails_cleanly(runner: DurableRunner) -> None:
    runner.start_new("forever", "orphan-1")
    runner.wait_until(lambda: runner.status("orphan-1")["runtimeStatus"] == "Running")
    with runner.store.transaction() as conn:  # as if the app had renamed the orchestrator meanwhile
        conn.execute("UPDATE instances SET name = 'renamed_away' WHERE instance_id = 'orphan-1'")
    runner.raise_event("orphan-1", "never", 1)
    status = runner.wait_for("orphan-1")
    assert status["runtimeStatus"] == "Failed"
    assert "renamed_away" in status["output"]
    assert runner.store.inbox("orphan-1") == []


def test_one_event_per_replay_gives_the_same_results(tmp_path: Path, clock, activity_log: Path) -> None:  # type: ignore[no-untyped-def]
    """The naive mode (the benchmark's baseline) replays after every single event: same outcomes."""
    config = RunnerConfig(db_path=str(tmp_path / "naive.sqlite"), batch_replays=False)
    with DurableRunner(SAMPLE_APP, config, clock=clock) as naive:
        fan = naive.start_new("fan_out", None, {"count": 15})
        parent = naive.start_new("parent", "naive-parent", {"children": 2})
        assert naive.wait_for(fan)["output"] == sum(2 * i for i in range(15))
        assert naive.wait_for(parent)["output"]["totals"] == [6, 6]
        assert naive.stats.replays > 15


def _retry_delays(runner: DurableRunner, instance_id: str) -> list[float]:
    """Seconds between each retry timer's creation and its FireAt, in order."""
    from sandbox.durable.history import parse_timestamp

    return [(parse_timestamp(e["FireAt"]) - parse_timestamp(e["Timestamp"])).total_seconds()
            for e in runner.history(instance_id) if e.get("FireAt") and "TimerId" not in e]


def test_retry_delays_come_from_the_serialised_retry_options_only(runner: DurableRunner,
                                                                   activity_log: Path) -> None:
    # backoff_coefficient / max_retry_interval_in_milliseconds set on a 1.7.0 RetryOptions are plain Python
    # attributes: RetryOptions.to_json sends only firstRetryIntervalInMilliseconds and maxNumberOfAttempts, and
    # the extension's RetryOptionsConverter then keeps DurableTask's BackoffCoefficient default of 1. Every
    # retry waits the first interval. (The previous runner read the attributes and waited 10, 30, 90 s.)
    key = _key()
    instance = runner.start_new("retrying", None, {"key": key, "succeed_on": 99, "first_ms": 10_000,
                                                   "attempts": 4, "backoff": 3.0, "max_ms": 600_000})
    for attempt in range(1, 5):
        eventually(lambda n=attempt: len(executions(activity_log, "flaky")) == n and len(runner.store.timers()) == 1)
        runner.clock.advance(700)  # past any delay either reading could give
    status = runner.wait_for(instance)
    assert "transient failure 4" in status["output"]["failed"]
    assert _retry_delays(runner, instance) == [10.0, 10.0, 10.0, 10.0]  # incl. DurableTask's extra last timer


def test_a_custom_status_over_16_kb_fails_the_orchestration(runner: DurableRunner) -> None:
    # DurableOrchestrationContext.SetCustomStatus limits the payload to 16 KB of UTF-16 (an ArgumentException
    # that fails the orchestrator). The previous runner stored any size.
    small = runner.wait_for(runner.start_new("big_status", "status-15k", {"chars": 8_000}))  # ~16,000 bytes
    assert small["runtimeStatus"] == "Completed"
    assert len(small["customStatus"]["note"]) == 8_000
    big = runner.wait_for(runner.start_new("big_status", "status-17k", {"chars": 9_000}))  # ~18,000 bytes
    assert big["runtimeStatus"] == "Failed"
    assert "must not exceed 16 KB. The current payload size is 17 KB" in big["output"]
    assert big["customStatus"] is None
