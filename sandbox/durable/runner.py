"""The local Durable runner: the app's orchestrators replayed by ``azure-functions-durable``'s own engine.

How one orchestrator step works (what the Functions host and the Durable extension do, done here):

1. The instance's stored history (all marked ``IsPlayed``) plus a new ``OrchestratorStarted`` and every
   event waiting in the instance's inbox (a batch: all completions that arrived since the last step) form
   the ``history`` of the orchestration context JSON the worker receives (``instanceId``, ``input``,
   ``isReplaying``, ``parentInstanceId``, ``upperSchemaVersion`` / ``upperSchemaVersionNew`` and the
   Azure Storage long-timer settings).
2. The orchestrator the DFApp decorator registered (``Orchestrator.create(fn)``'s handle) replays it and
   returns the JSON ``OrchestratorState`` (isDone, output, customStatus, error, actions).
3. New work is read from the ``actions`` of that JSON state, as the extension's ``OutOfProcOrchestrationShim``
   reads them: name, input, ``fireAt``, ``isCanceled``, ``instanceId`` and ``retryOptions`` (retry delays are
   DurableTask's ``RetryInterceptor`` over the serialised options only, so an attribute the SDK does not
   serialise has no effect). Which actions are new, and their sequence numbers, come from the SDK's table of
   open tasks (each has the number the SDK gave it, the same number DurableTask assigns): the extension derives
   them by replaying the actions through DurableTask, which is not available here. That is the one place the
   runner looks past the JSON, and it only locates an action's JSON there.
4. One SQLite transaction appends the episode to the history, consumes the inbox events and records the
   scheduled work. Activities then run in a bounded thread pool; each completion is committed to the
   inbox before the orchestrator sees it.

Instance ids are unique: ``start_new`` with the id of a Pending or Running instance returns that instance
unchanged (the duplicate collapses onto it, like the host's "start if not running" pattern); with the id
of a Completed, Failed or Terminated instance it starts a fresh execution under the same id, as the host
does when it replaces a non-running instance.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from azure.durable_functions.models.actions.ActionType import ActionType
from azure.durable_functions.models.actions.NoOpAction import NoOpAction
from azure.durable_functions.models.DurableOrchestrationContext import DurableOrchestrationContext
from azure.durable_functions.models.history import HistoryEventType as T
from azure.durable_functions.models.Task import AtomicTask, RetryAbleTask, TaskBase, TaskState, TimerTask
from azure.durable_functions.orchestrator import Orchestrator
from azure.functions import meta
from azure.functions.durable_functions import ActivityTriggerConverter

from sandbox.clock import DiscreteClock, VirtualClock
from sandbox.clock import busy as clock_busy

from . import history as h
from .discovery import ACTIVITY, ORCHESTRATION, FunctionCatalog, load_catalog
from .errors import (
    InstanceAlreadyExists,
    InstanceNotFound,
    InstanceNotRunning,
    OrchestrationTimeout,
    UnsupportedAction,
)
from .logs import RUNNER_LOGGER, log_context
from .store import TERMINAL, ActivityWork, DurableStore, InstanceRecord

log = logging.getLogger(RUNNER_LOGGER)

DEFAULT_DB_PATH = "var/durable.sqlite"
OUT_OF_PROC_LABEL = "\n\n$OutOfProcData$:"
_SCHEDULING_EVENTS = (int(T.TASK_SCHEDULED), int(T.TIMER_CREATED), int(T.SUB_ORCHESTRATION_INSTANCE_CREATED))


def _dotnet_timespan(span: timedelta) -> str:
    total = int(span.total_seconds())
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{days}.{hours:02d}:{minutes:02d}:{seconds:02d}"


@dataclass(frozen=True)
class RunnerConfig:
    """Settings of the runner. ``db_path`` ``":memory:"`` keeps nothing across processes."""

    db_path: str = DEFAULT_DB_PATH
    task_hub: str = "StewardHub"
    max_activity_workers: int = 16
    batch_window_seconds: float = 0.005
    # False replays once per new event (the naive runner, O(n^2) for a fan-out): only for the benchmark
    batch_replays: bool = True
    poll_seconds: float = 0.02
    # What the Azure Storage backend tells the worker: timers longer than this are split into intervals.
    maximum_short_timer: timedelta | None = timedelta(days=6)
    long_timer_interval: timedelta = timedelta(days=3)
    upper_schema_version: int = 1
    upper_schema_version_new: int = 2
    # Flex Consumption scale-out, modelled: ``instances`` worker instances over this one task hub, each with
    # ``max_activity_workers`` activity slots (the host's ``maxConcurrentActivityFunctions`` is per instance).
    # All slots take work from the one queue of pending activities as they free up (competing consumers, as
    # every instance's worker polls the hub's shared work-item queue), and each slot's thread calls
    # ``instance_initializer(k)`` once, k = 0..instances-1, so the app can keep one set of its process state
    # (clients, pacer, caches) per instance. 1 instance and no initializer: the single-process runner.
    instances: int = 1
    instance_initializer: Callable[[int], None] | None = None


@dataclass
class RunnerStats:
    """Counters for the replay-cost benchmark."""

    replays: int = 0
    replayed_events: int = 0
    replay_cpu_seconds: float = 0.0
    activities: int = 0
    activity_cpu_seconds: float = 0.0
    activities_by_instance: dict[int, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


@dataclass(frozen=True)
class _Step:
    """One orchestrator step: the instance, its stored history, the new episode, the step's time."""

    record: InstanceRecord
    past: list[dict[str, Any]]
    episode: list[dict[str, Any]]
    now: datetime
    custom_text: str | None


@dataclass(frozen=True)
class _Scheduled:
    """Work decided by one orchestrator step."""

    events: list[dict[str, Any]]
    activities: list[tuple[int, str, str | None]]
    timers: list[tuple[int, datetime]]
    children: list[tuple[int, str, str, str | None]]
    cancelled_timers: list[int]


class DurableRunner:
    """Runs the app's orchestrations with persisted history, concurrent activities and virtual-time timers."""

    def __init__(self, app: Any, config: RunnerConfig | None = None, clock: VirtualClock | None = None) -> None:
        self.config = config or RunnerConfig()
        self.catalog: FunctionCatalog = load_catalog(app)
        self.clock = clock or VirtualClock()
        self.store = DurableStore(self.config.db_path)
        self.stats = RunnerStats()
        if self.config.instances < 1:
            raise ValueError("RunnerConfig.instances must be at least 1")
        self._instance_of_thread = threading.local()
        self._threads_started = 0
        self._pool = ThreadPoolExecutor(max_workers=self._activity_slots(),
                                        thread_name_prefix="durable-activity",
                                        initializer=self._enter_instance)
        self._wake = threading.Event()
        self._changed = threading.Condition()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._first_seen: dict[str, float] = {}
        self._replay_cost: dict[str, float] = {}
        self._submitted: set[int] = set()
        self._submitted_lock = threading.Lock()
        self._running: set[int] = set()  # activity rows executing now (a discrete clock's probe reads it)
        self._seen_row = 0  # highest activity row id handed to ``_submit`` by ``_submit_pending``

    def _activity_slots(self) -> int:
        return self.config.max_activity_workers * self.config.instances

    def _enter_instance(self) -> None:
        """Pool thread initializer: the threads are dealt round robin to the instances, so with every slot
        started each instance has ``max_activity_workers`` of them (ThreadPoolExecutor starts a thread per
        submission while none is idle, up to the pool's size)."""
        with self._submitted_lock:
            instance = self._threads_started % self.config.instances
            self._threads_started += 1
        self._instance_of_thread.index = instance
        if self.config.instance_initializer is not None:
            self.config.instance_initializer(instance)

    # ---- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> DurableRunner:
        """Resume owed work (activities not completed, timers, inbox events) and start the loops."""
        for work in self.store.pending_activities():
            log.info("resuming activity %s (task %s) that had not completed", work.name, work.task_id,
                     extra={"instance_id": work.instance_id})
            self._submit(work)
        for target, name in ((self._dispatch_loop, "durable-dispatcher"), (self._timer_loop, "durable-timers")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        if isinstance(self.clock, DiscreteClock):
            self.clock.add_probe(self.clock_probe)
        self._wake.set()
        log.info("durable runner started", extra={"db_path": self.config.db_path,
                                                  "orchestrators": len(self.catalog.orchestrators),
                                                  "activities": len(self.catalog.activities)})
        return self

    def stop(self) -> None:
        if isinstance(self.clock, DiscreteClock):
            self.clock.remove_probe(self.clock_probe)
        self._stopping.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        self.store.close()

    def __enter__(self) -> DurableRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- client operations --------------------------------------------------------------------------------

    def start_new(self, name: str, instance_id: str | None = None, input: Any = None, *,
                  input_json: str | None = None, correlation_id: str | None = None) -> str:
        """Start an orchestration. The id of a Pending or Running instance is refused (InstanceAlreadyExists);
        the id of a finished one starts a fresh execution under it."""
        orchestrator = self.catalog.get(name, ORCHESTRATION)
        text = input_json if input_json is not None else (None if input is None else json.dumps(input))
        instance_id = instance_id or uuid.uuid4().hex
        with self.store.transaction() as conn:
            existing = self.store.instance(instance_id)
            if existing is not None and not existing.is_terminal:
                # the extension's default overridableExistingInstanceStates (NonRunningStates)
                raise InstanceAlreadyExists(f"An Orchestration instance with the status {existing.status} already "
                                            f"exists: {instance_id!r}")
            self._create(conn, orchestrator.name, instance_id, text, correlation_id=correlation_id or uuid.uuid4().hex,
                         parent=None, replaces=existing is not None)
        self._wake.set()
        return instance_id

    def raise_event(self, instance_id: str, event_name: str, data: Any = None, *,
                    data_json: str | None = None) -> None:
        text = data_json if data_json is not None else json.dumps(data)
        record = self._require(instance_id)
        if record.is_terminal:
            raise InstanceNotRunning(f"instance {instance_id} is {record.status}; it takes no more events")
        with self.store.transaction() as conn:
            self.store.enqueue(conn, instance_id, None, h.event_raised(self.clock.now(), event_name, text))
        with log_context(instance_id, record.correlation_id):
            log.info("event %s raised", event_name)
        self._wake.set()

    def terminate(self, instance_id: str, reason: str) -> None:
        record = self._require(instance_id)
        if record.is_terminal:
            raise InstanceNotRunning(f"instance {instance_id} is already {record.status}")
        now = self.clock.now()
        with self.store.transaction() as conn:
            self.store.clear_instance_work(conn, instance_id, history=False)
            self.store.append_history(conn, instance_id, [h.execution_terminated(now, reason)])
            final = self._finish(conn, record, "Terminated", output=json.dumps(reason),
                                 custom_status=record.custom_status, now=now)
            self._notify_parent(conn, final, failed=True, reason=f"terminated: {reason}", details="")
        with log_context(instance_id, record.correlation_id):
            log.info("instance terminated: %s", reason)
        self._announce()

    def purge(self, instance_id: str) -> int:
        with self.store.transaction() as conn:
            found = conn.execute("DELETE FROM instances WHERE instance_id = ?", (instance_id,)).rowcount
            self.store.clear_instance_work(conn, instance_id, history=True)
        return int(found)

    def purge_where(self, created_from: datetime | None = None, created_to: datetime | None = None,
                    statuses: list[str] | None = None) -> int:
        doomed = [r.instance_id for r in self.query(created_from, created_to, statuses)]
        return sum(self.purge(i) for i in doomed)

    def query(self, created_from: datetime | None = None, created_to: datetime | None = None,
              statuses: list[str] | None = None, prefix: str | None = None) -> list[InstanceRecord]:
        selected = []
        for record in self.store.instances():
            created = h.parse_timestamp(record.created)
            if created_from and created < created_from:
                continue
            if created_to and created > created_to:
                continue
            if statuses and record.status not in statuses:
                continue
            if prefix and not record.instance_id.startswith(prefix):
                continue
            selected.append(record)
        return selected

    def status(self, instance_id: str, *, show_history: bool = False, show_input: bool = True) -> dict[str, Any]:
        """The instance in the DF HTTP API's status shape; raises InstanceNotFound."""
        return status_body(self._require(instance_id), self.store.history(instance_id) if show_history else None,
                           show_input)

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        self._require(instance_id)
        return self.store.history(instance_id)

    def wait_for(self, instance_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """Block (real seconds) until the instance is Completed, Failed or Terminated; its status."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                record = self.store.instance(instance_id)
                if record is not None and record.is_terminal:
                    return self.status(instance_id)
                left = deadline - time.monotonic()
                if left <= 0:
                    state = record.status if record else "missing"
                    raise OrchestrationTimeout(f"instance {instance_id} is still {state} after {timeout}s")
                self._changed.wait(timeout=min(left, 0.05))

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate():
                left = deadline - time.monotonic()
                if left <= 0:
                    raise OrchestrationTimeout(f"condition not met within {timeout}s")
                self._changed.wait(timeout=min(left, 0.05))

    # ---- internals: instance records ------------------------------------------------------------------------

    def _require(self, instance_id: str) -> InstanceRecord:
        record = self.store.instance(instance_id)
        if record is None:
            raise InstanceNotFound(f"no orchestration instance has the id {instance_id!r}")
        return record

    def _create(self, conn: Any, name: str, instance_id: str, input_text: str | None, *, correlation_id: str,
                parent: tuple[str, str, int] | None, replaces: bool) -> None:
        now = self.clock.now()
        execution_id = uuid.uuid4().hex
        if replaces:
            self.store.clear_instance_work(conn, instance_id, history=True)
        record = InstanceRecord(
            instance_id=instance_id, name=name, execution_id=execution_id, status="Pending", input=input_text,
            output=None, custom_status=None, created=h.timestamp(now), updated=h.timestamp(now),
            parent_instance_id=parent[0] if parent else None, parent_execution_id=parent[1] if parent else None,
            parent_task_id=parent[2] if parent else None, correlation_id=correlation_id, generation=0)
        self.store.put_instance(conn, record)
        parent_json = {"OrchestrationInstance": {"InstanceId": parent[0], "ExecutionId": parent[1]},
                       "TaskScheduleId": parent[2]} if parent else None
        self.store.enqueue(conn, instance_id, execution_id,
                           h.execution_started(now, name, instance_id, execution_id, input_text, parent=parent_json,
                                               correlation_id=correlation_id))
        with log_context(instance_id, correlation_id):
            log.info("instance of %s created", name, extra={"parent_instance_id": parent[0] if parent else None})

    def _finish(self, conn: Any, record: InstanceRecord, status: str, *, output: str | None,
                custom_status: str | None, now: datetime) -> InstanceRecord:
        final = InstanceRecord(**{**record.__dict__, "status": status, "output": output,
                                  "custom_status": custom_status, "updated": h.timestamp(now)})
        self.store.put_instance(conn, final)
        return final

    def _notify_parent(self, conn: Any, child: InstanceRecord, *, failed: bool, reason: str = "",
                       details: str = "") -> None:
        if child.parent_instance_id is None or child.parent_task_id is None:
            return
        now = self.clock.now()
        if failed:
            event = h.sub_orchestration_failed(now, child.parent_task_id, reason, details)
        else:
            event = h.sub_orchestration_completed(now, child.parent_task_id, child.output)
        self.store.enqueue(conn, child.parent_instance_id, child.parent_execution_id, event)

    def _announce(self) -> None:
        self._wake.set()
        with self._changed:
            self._changed.notify_all()

    # ---- dispatcher -------------------------------------------------------------------------------------------

    def _dispatch_loop(self) -> None:
        while not self._stopping.is_set():
            self._wake.wait(timeout=self.config.poll_seconds)
            self._wake.clear()
            try:
                self._dispatch_ready()
            except Exception:
                log.exception("dispatcher pass failed")

    def _dispatch_ready(self) -> None:
        now = time.monotonic()
        for instance_id in self.store.instances_with_inbox():
            if self._stopping.is_set():
                return
            first = self._first_seen.setdefault(instance_id, now)
            # Batch completions: while activities of this instance are still running, wait a short window
            # (at least as long as its last replay took) so one replay takes many completions instead of
            # one replay per completion; replay time then stays a bounded share of the run.
            window = max(self.config.batch_window_seconds, self._replay_cost.get(instance_id, 0.0))
            if self.config.batch_replays and now - first < window and self.store.in_flight(instance_id) > 0:
                self._wake.set()
                continue
            self._first_seen.pop(instance_id, None)
            try:
                self._step(instance_id)
            except Exception as exc:  # one broken instance must not stall the others
                log.exception("step of %s failed inside the runner", instance_id)
                self._abandon(instance_id, f"local runner error: {type(exc).__name__}: {exc}")

    def _abandon(self, instance_id: str, reason: str) -> None:
        """Fail an instance the runner itself could not step (e.g. its orchestrator is not registered)."""
        record = self.store.instance(instance_id)
        now = self.clock.now()
        with self.store.transaction() as conn:
            conn.execute("DELETE FROM inbox WHERE instance_id = ?", (instance_id,))
            if record is not None and not record.is_terminal:
                self.store.clear_instance_work(conn, instance_id, history=False)
                final = self._finish(conn, record, "Failed", output=json.dumps(reason),
                                     custom_status=record.custom_status, now=now)
                self._notify_parent(conn, final, failed=True, reason=reason, details="")
        self._announce()

    def _context_json(self, record: InstanceRecord, events: list[dict[str, Any]]) -> str:
        body: dict[str, Any] = {
            "history": events,
            "input": record.input,
            "instanceId": record.instance_id,
            "isReplaying": len(events) > 2,
            "parentInstanceId": record.parent_instance_id,
            "upperSchemaVersion": self.config.upper_schema_version,
            "upperSchemaVersionNew": self.config.upper_schema_version_new,
        }
        if self.config.maximum_short_timer is not None:
            body["maximumShortTimerDuration"] = _dotnet_timespan(self.config.maximum_short_timer)
            body["longRunningTimerIntervalDuration"] = _dotnet_timespan(self.config.long_timer_interval)
        return json.dumps(body)

    def _step(self, instance_id: str) -> None:
        record = self.store.instance(instance_id)
        inbox = self.store.inbox(instance_id)
        consumed = [row_id for row_id, _, _ in inbox]
        if record is None or record.is_terminal:
            with self.store.transaction() as conn:
                conn.executemany("DELETE FROM inbox WHERE id = ?", [(i,) for i in consumed])
            return
        fresh = [e for _, execution, e in inbox if execution in (None, record.execution_id)]
        if fresh and not self.config.batch_replays:
            first_row = next(row for row, execution, _ in inbox if execution in (None, record.execution_id))
            consumed = [row for row, _, _ in inbox if row <= first_row]
            fresh = fresh[:1]
        if not fresh:
            with self.store.transaction() as conn:
                conn.executemany("DELETE FROM inbox WHERE id = ?", [(i,) for i in consumed])
            return
        with log_context(instance_id, record.correlation_id):
            self._replay(record, fresh, consumed)
        self._submit_pending()
        self._announce()

    def _replay(self, record: InstanceRecord, fresh: list[dict[str, Any]], consumed: list[int]) -> None:
        now = self.clock.now()
        past = [{**e, "IsPlayed": True} for e in self.store.history(record.instance_id)]
        episode = [h.orchestrator_started(now), *fresh]
        handle = self.catalog.get(record.name, ORCHESTRATION).user_function
        started, wall = time.thread_time(), time.perf_counter()
        context = DurableOrchestrationContext.from_json(self._context_json(record, past + episode))
        context._input_expected_type = getattr(handle, "_df_input_type", None)
        tasks = _record_tasks(context)
        error: str | None = None
        try:
            state = json.loads(Orchestrator(getattr(handle, "orchestrator_function")).handle(context))  # noqa: B009
        except Exception as exc:  # noqa: BLE001 - the SDK reports an orchestrator failure as a bare Exception
            state, error = _failed_state(exc)
        with self.stats.lock:
            self.stats.replays += 1
            self.stats.replayed_events += len(past) + len(episode)
            self.stats.replay_cpu_seconds += time.thread_time() - started
        self._replay_cost[record.instance_id] = time.perf_counter() - wall
        custom = state.get("customStatus")
        custom_text = json.dumps(custom) if custom is not None else record.custom_status
        scheduled: _Scheduled | None = None
        finished = True  # the extension's walk of the actions got past the last one
        if error is None and custom is not None and (too_big := _custom_status_too_big(custom)) is not None:
            # SetCustomStatus runs before the actions are replayed: the step fails whatever they are
            error, custom_text = too_big, record.custom_status
        elif error is None or "actions" in state:
            # Even a finished or failed orchestrator only ends once the extension's walk of its actions gets past
            # the last one: ScheduleDurableTaskEvents awaits ReplayOOProcOrchestration before it reads isDone or
            # error. A walk held by an incomplete action leaves the instance Running (see ``_walk``).
            try:
                scheduled, finished = self._plan(record, past + episode, context, state, tasks=tasks, now=now)
            except UnsupportedAction as exc:
                error, scheduled = str(exc), None
        with self.store.transaction() as conn:
            conn.executemany("DELETE FROM inbox WHERE id = ?", [(i,) for i in consumed])
            step = _Step(record, past, episode, now, custom_text)
            if scheduled is not None and (not finished or (error is None and not state.get("isDone"))):
                self._advance(conn, step, scheduled)
            elif error is not None:
                self._fail(conn, step, error)
            else:
                self._complete(conn, step, state)

    def _fail(self, conn: Any, step: _Step, error: str) -> None:
        record, episode, custom_text, now = step.record, step.episode, step.custom_text, step.now
        self.store.clear_instance_work(conn, record.instance_id, history=False)
        self.store.append_history(conn, record.instance_id,
                                  [*episode, h.execution_completed(now, "Failed", json.dumps(error))])
        final = self._finish(conn, record, "Failed", output=json.dumps(error), custom_status=custom_text, now=now)
        self._notify_parent(conn, final, failed=True,
                            reason=f"Orchestrator function '{record.name}' failed: {error}", details=error)
        log.warning("instance failed: %s", error)

    def _complete(self, conn: Any, step: _Step, state: dict[str, Any]) -> None:
        record, episode, custom_text, now = step.record, step.episode, step.custom_text, step.now
        continue_as_new = next((a for a in _flatten(state.get("actions", [])) if a.get("actionType") == 4), None)
        if continue_as_new is not None:
            self.store.clear_instance_work(conn, record.instance_id, history=True)
            execution_id = uuid.uuid4().hex
            renewed = InstanceRecord(**{**record.__dict__, "execution_id": execution_id, "status": "Running",
                                        "input": continue_as_new.get("input"), "custom_status": custom_text,
                                        "updated": h.timestamp(now), "generation": record.generation + 1})
            self.store.put_instance(conn, renewed)
            self.store.enqueue(conn, record.instance_id, execution_id, h.execution_started(
                now, record.name, record.instance_id, execution_id, continue_as_new.get("input"),
                correlation_id=record.correlation_id))
            log.info("continued as new (generation %s)", renewed.generation)
            return
        output = json.dumps(state.get("output"))
        self.store.clear_instance_work(conn, record.instance_id, history=False)
        self.store.append_history(conn, record.instance_id,
                                  [*episode, h.execution_completed(now, "Completed", output)])
        final = self._finish(conn, record, "Completed", output=output, custom_status=custom_text, now=now)
        self._notify_parent(conn, final, failed=False)
        log.info("instance completed")

    def _advance(self, conn: Any, step: _Step, scheduled: _Scheduled) -> None:
        record, episode, custom_text, now = step.record, step.episode, step.custom_text, step.now
        self.store.append_history(conn, record.instance_id,
                                  [*episode, *scheduled.events, h.orchestrator_completed(now)])
        running = InstanceRecord(**{**record.__dict__, "status": "Running", "custom_status": custom_text,
                                    "updated": h.timestamp(now)})
        self.store.put_instance(conn, running)
        for task_id, name, input_text in scheduled.activities:
            conn.execute("INSERT INTO activities (instance_id, execution_id, task_id, name, input) "
                         "VALUES (?,?,?,?,?)", (record.instance_id, record.execution_id, task_id, name, input_text))
        for timer_id, fire_at in scheduled.timers:
            conn.execute("INSERT OR REPLACE INTO timers VALUES (?,?,?,?)",
                         (record.instance_id, record.execution_id, timer_id, h.timestamp(fire_at)))
        for timer_id in scheduled.cancelled_timers:
            conn.execute("DELETE FROM timers WHERE instance_id = ? AND execution_id = ? AND timer_id = ?",
                         (record.instance_id, record.execution_id, timer_id))
        for task_id, name, child_id, input_text in scheduled.children:
            existing = self.store.instance(child_id)
            if existing is not None and not existing.is_terminal:
                log.warning("sub-orchestration id %s is already running; not started again", child_id)
                continue
            self._create(conn, name, child_id, input_text, correlation_id=record.correlation_id or uuid.uuid4().hex,
                         parent=(record.instance_id, record.execution_id, task_id),
                         replaces=existing is not None)

    def _plan(self, record: InstanceRecord, events: list[dict[str, Any]], context: DurableOrchestrationContext,
              state: dict[str, Any], *, tasks: dict[int, AtomicTask], now: datetime) -> tuple[_Scheduled, bool]:
        """The work the extension schedules from this step's actions, and whether its walk of them ended.

        Only the actions the extension's in-order walk reaches are scheduled (``_walk``): a task the SDK has
        numbered but the walk has not reached stays unscheduled until a later step's walk gets to it."""
        known = {e["EventId"] for e in events if e["EventType"] in _SCHEDULING_EVENTS}
        serialised, objects = _serialised_actions(context, state)
        reached, finished = _walk(state, objects, tasks, _completed_ids(events))
        out = _Scheduled([], [], [], [], [])
        open_tasks: list[AtomicTask] = []
        for entry in context.open_tasks.values():
            open_tasks.extend(entry if isinstance(entry, list) else [entry])
        for task in sorted((t for t in open_tasks if isinstance(t.id, int)), key=lambda t: t.id):
            if task.id in known:
                if isinstance(task, TimerTask) and task.is_cancelled:
                    out.cancelled_timers.append(task.id)
                continue
            if id(_owning_action(task)) not in reached:
                continue  # behind an action the extension still awaits: not scheduled (yet)
            known.add(task.id)
            self._plan_task(record, task, serialised, now, out)
        return out, finished

    def _plan_task(self, record: InstanceRecord, task: AtomicTask, serialised: dict[int, dict[str, Any]],
                   now: datetime, out: _Scheduled) -> None:
        """Schedule one new task from the action JSON the SDK serialised for it (what the extension reads)."""
        action = task._get_action()
        task_id = int(task.id)
        if isinstance(action, NoOpAction):  # a retry timer or a rescheduled attempt of a *_with_retry call
            retry = task.parent
            if not isinstance(retry, RetryAbleTask):
                raise UnsupportedAction(f"internal task {action.metadata!r} outside a retry")
            base = retry.actions[0] if isinstance(retry.actions, list) else retry.actions
            body = _action_json(serialised, base)
            if action.metadata == "-WithRetry timer":
                fire_at = now + _retry_delay(body, retry.num_attempts)
                out.events.append(h.timer_created(now, task_id, fire_at))
                out.timers.append((task_id, fire_at))
                return
        else:
            body = _action_json(serialised, action)
        kind = body.get("actionType")
        if kind in (ActionType.CALL_ACTIVITY, ActionType.CALL_ACTIVITY_WITH_RETRY):
            # an unknown activity name fails when it runs (TaskFailed), as in the host
            name, input_text = str(body["functionName"]), body.get("input")
            out.events.append(h.task_scheduled(now, task_id, name, input_text))
            out.activities.append((task_id, name, input_text))
        elif kind == ActionType.CREATE_TIMER:
            fire_at = h.parse_timestamp(str(body["fireAt"]))
            out.events.append(h.timer_created(now, task_id, fire_at))
            if not body.get("isCanceled"):
                out.timers.append((task_id, fire_at))
        elif kind in (ActionType.CALL_SUB_ORCHESTRATOR, ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY):
            function_name, input_text = str(body["functionName"]), body.get("input")
            if not self.catalog.has(function_name, ORCHESTRATION):
                raise UnsupportedAction(f"sub-orchestrator {function_name!r} is not registered by the app")
            name = self.catalog.get(function_name, ORCHESTRATION).name
            child_id = body.get("instanceId") or f"{record.instance_id}:{task_id:04d}"
            out.events.append(h.sub_orchestration_created(now, task_id, name, child_id, input_text))
            out.children.append((task_id, name, child_id, input_text))
        else:
            raise UnsupportedAction(f"the local runner does not support {type(action).__name__} (actionType {kind}) "
                                    "(entities and durable HTTP calls are not emulated)")

    # ---- activities -------------------------------------------------------------------------------------------

    def _submit(self, work: ActivityWork) -> None:
        with self._submitted_lock:
            if work.row_id in self._submitted:
                return
            self._submitted.add(work.row_id)
        self._pool.submit(self._run_activity, work)

    def _submit_pending(self) -> None:
        # only rows newer than the last seen: every older row is in ``_submitted`` already (row ids only grow),
        # so a step costs its own new rows, not a read of every activity in flight (issue 19)
        with self._submitted_lock:
            after = self._seen_row
        fresh = self.store.pending_activities(after=after)
        for work in fresh:
            self._submit(work)
        if fresh:
            with self._submitted_lock:
                self._seen_row = max(self._seen_row, fresh[-1].row_id)

    def clock_probe(self) -> tuple[bool, datetime | None]:
        """For a discrete clock: (a message waits in an inbox, an activity waits for a free slot, or a timer is
        due; when the next timer is due). Running activities hold busy tokens of their own."""
        if self._stopping.is_set():
            return False, None
        # Called on every clock step: aggregate queries only (an index lookup for the next timer), never a read
        # of every row - with 1,000 instances in flight a per-row probe made each virtual step O(N) (issue 19).
        if self.store.has_inbox():
            return True, None
        with self._submitted_lock:
            running = len(self._running)
        waiting = self.store.activity_count() - running
        if waiting > 0 and running < self._activity_slots():
            return True, None
        next_timer = self.store.next_timer()
        if next_timer is None:
            return False, None
        earliest = h.parse_timestamp(next_timer)
        return earliest <= self.clock.now(), earliest

    def _run_activity(self, work: ActivityWork) -> None:
        # on a discrete clock an executing activity is runnable work: its CPU costs no Azure time, and its
        # clock waits (pacer, SDK polls, the server's latency for its requests) release the token
        with clock_busy(self.clock, f"activity {work.name}"):
            with self._submitted_lock:
                self._running.add(work.row_id)
            try:
                self._run_activity_now(work)
            finally:
                with self._submitted_lock:
                    self._running.discard(work.row_id)

    def _run_activity_now(self, work: ActivityWork) -> None:
        # Row ids are never reused (AUTOINCREMENT) and stay in ``_submitted``: a stale read of the pending
        # table can never hand a completed activity to the pool again. The row check covers work dropped
        # by terminate / continue-as-new / purge before it started.
        if not self.store.activity_pending(work.row_id):
            return
        record = self.store.instance(work.instance_id)
        correlation = record.correlation_id if record else None
        started = time.thread_time()
        with log_context(work.instance_id, correlation):
            event = self._invoke_activity(work)
        instance = getattr(self._instance_of_thread, "index", 0)
        with self.stats.lock:
            self.stats.activities += 1
            self.stats.activity_cpu_seconds += time.thread_time() - started
            self.stats.activities_by_instance[instance] = self.stats.activities_by_instance.get(instance, 0) + 1
        if self._stopping.is_set():
            return
        with self.store.transaction() as conn:
            gone = conn.execute("DELETE FROM activities WHERE id = ?", (work.row_id,)).rowcount == 0
            if not gone:
                self.store.enqueue(conn, work.instance_id, work.execution_id, event)
        self._wake.set()

    def _invoke_activity(self, work: ActivityWork) -> dict[str, Any]:
        try:
            activity = self.catalog.get(work.name, ACTIVITY)
            value = ActivityTriggerConverter.decode(meta.Datum(type="json", value=work.input or "null"),
                                                    trigger_metadata=None)
            result = activity.user_function(**{activity.trigger_arg: value})
            if inspect.isawaitable(result):
                result = asyncio.run(_awaited(result))
            encoded = ActivityTriggerConverter.encode(result, expected_type=None).value
            log.info("activity %s completed", work.name, extra={"task_id": work.task_id})
            return h.task_completed(self.clock.now(), work.task_id, encoded)
        except Exception as exc:  # noqa: BLE001 - any activity failure becomes TaskFailed, as in the host
            log.warning("activity %s failed: %s", work.name, exc, extra={"task_id": work.task_id})
            reason = f"Activity function '{work.name}' failed: {type(exc).__name__}: {exc}"
            return h.task_failed(self.clock.now(), work.task_id, reason, traceback.format_exc())

    # ---- timers -----------------------------------------------------------------------------------------------

    def _timer_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                self._submit_pending()
                earliest = self._fire_due_timers()
            except Exception:
                log.exception("timer pass failed")
                earliest = None
            if earliest is None:
                self._stopping.wait(self.config.poll_seconds)
            else:
                self.clock.wait_until(earliest, timeout=self.config.poll_seconds)

    def _fire_due_timers(self) -> datetime | None:
        now = self.clock.now()
        # only the due rows, then the next one by index (``fire_at`` is fixed-width UTC text: text order is time
        # order), not a parse of every timer on each pass (issue 19)
        due = self.store.timers(due_by=h.timestamp(now))
        if due:
            with self.store.transaction() as conn:
                for timer in due:
                    deleted = conn.execute(
                        "DELETE FROM timers WHERE instance_id = ? AND execution_id = ? AND timer_id = ?",
                        (timer.instance_id, timer.execution_id, timer.timer_id)).rowcount
                    if deleted:
                        self.store.enqueue(conn, timer.instance_id, timer.execution_id,
                                           h.timer_fired(now, timer.timer_id, timer.fire_at))
            self._wake.set()
        next_timer = self.store.next_timer()
        return None if next_timer is None else h.parse_timestamp(next_timer)


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


#: The extension's ``RetryOptions`` constructor sets ``MaxRetryInterval`` to 6 days when the JSON names none
#: (azure-functions-durable-extension ``src/WebJobs.Extensions.DurableTask/RetryOptions.cs``).
_DEFAULT_MAX_RETRY_INTERVAL = timedelta(days=6)


def _retry_options(body: dict[str, Any]) -> dict[str, Any]:
    """The ``retryOptions`` object of a serialised ``*WithRetry`` action, read as the extension's
    ``RetryOptionsConverter`` reads it: the two fields 1.7.0 sends are required, the others optional."""
    options = body.get("retryOptions")
    if not isinstance(options, dict):
        raise UnsupportedAction(f"{body.get('functionName')!r}: a with-retry action carries no retryOptions")
    for required in ("firstRetryIntervalInMilliseconds", "maxNumberOfAttempts"):
        if required not in options:
            raise UnsupportedAction(f"Invalid JSON. Must contain field {required}")
    if "retryTimeoutInMilliseconds" in options:
        # azure-functions-durable 1.7.0 cannot send it; DurableTask would then end retries without a timer,
        # which the 1.7.0 SDK's retry task cannot follow
        raise UnsupportedAction("retryTimeoutInMilliseconds is not emulated by the local runner")
    return options


def _retry_delay(body: dict[str, Any], attempt: int) -> timedelta:
    """DurableTask's ``RetryInterceptor.ComputeNextDelay`` over the serialised options (Azure/durabletask
    ``src/DurableTask.Core/RetryInterceptor.cs``): ``first * backoff^(attempt-1)``, capped at the max interval.

    Only the JSON counts: a ``backoff_coefficient`` or ``max_retry_interval_in_milliseconds`` attribute set on
    a 1.7.0 ``RetryOptions`` object is not in ``to_json()``, so the extension never sees it and the backoff
    stays DurableTask's default of 1 (``src/DurableTask.Core/RetryOptions.cs``): every retry waits the first
    interval. ``attempt`` is the 1-based number of the attempt that just failed.
    """
    options = _retry_options(body)
    first_ms = float(int(options["firstRetryIntervalInMilliseconds"]))
    backoff = float(options.get("backoffCoefficient", 1.0))
    cap_ms = (float(int(options["maxRetryIntervalInMilliseconds"])) if "maxRetryIntervalInMilliseconds" in options
              else _DEFAULT_MAX_RETRY_INTERVAL.total_seconds() * 1000)
    delay_ms = first_ms * backoff ** max(0, attempt - 1)
    return timedelta(milliseconds=delay_ms if delay_ms < cap_ms else cap_ms)


#: ``DurableOrchestrationContext.SetCustomStatus`` (azure-functions-durable-extension): "Limit the custom status
#: payload to 16 KB", measured by ``MessagePayloadDataConverter.Serialize`` as UTF-16 bytes / 1024, truncated.
MAX_CUSTOM_STATUS_KB = 16


def _custom_status_too_big(custom: Any) -> str | None:
    """The extension's ArgumentException text when the custom status is over the limit (the orchestration fails:
    the out-of-proc shim sets the custom status from the orchestrator's state), else None."""
    text = json.dumps(custom, ensure_ascii=False, separators=(",", ":"))  # Newtonsoft's Formatting.None
    size_kb = int(len(text.encode("utf-16-le")) / 1024.0)
    if size_kb <= MAX_CUSTOM_STATUS_KB:
        return None
    return (f"The UTF-16 size of the JSON-serialized payload must not exceed {MAX_CUSTOM_STATUS_KB:,} KB. "
            f"The current payload size is {size_kb:,} KB.")


def _serialised_actions(context: DurableOrchestrationContext,
                        state: dict[str, Any]) -> tuple[dict[int, dict[str, Any]], dict[int, Any]]:
    """Each action object of the replay, keyed by identity, to the JSON the SDK serialised for it in the
    ``OrchestratorState`` (``state["actions"]``, the payload the extension's ``OutOfProcOrchestrationShim``
    deserialises), and the reverse (the JSON object's identity to the action object). The objects only locate
    an action; every value the runner uses is read from the JSON."""
    found: dict[int, dict[str, Any]] = {}
    by_body: dict[int, Any] = {}

    def walk(obj: Any, body: Any) -> None:
        if not isinstance(body, dict):
            raise UnsupportedAction(f"the serialised actions do not match the SDK's ({type(body).__name__})")
        found[id(obj)] = body
        by_body[id(body)] = obj
        children = getattr(obj, "compound_tasks", None)
        if children is not None:
            nested = body.get("compoundActions") or []
            if len(nested) != len(children):
                raise UnsupportedAction("the serialised compound action does not match the SDK's")
            for child, child_body in zip(children, nested, strict=True):
                walk(child, child_body)

    payload = state.get("actions") or []
    objects = context._actions
    if len(payload) != len(objects):
        raise UnsupportedAction("the serialised actions do not match the SDK's")
    for group, bodies in zip(objects, payload, strict=True):
        if len(group) != len(bodies):
            raise UnsupportedAction("the serialised actions do not match the SDK's")
        for obj, body in zip(group, bodies, strict=True):
            walk(obj, body)
    return found, by_body


def _action_json(serialised: dict[int, dict[str, Any]], action: Any) -> dict[str, Any]:
    body = serialised.get(id(action))
    if body is None:  # the extension schedules only what the orchestrator state carries
        raise UnsupportedAction(f"{type(action).__name__} is not in the orchestrator's serialised actions")
    return body


def _record_tasks(context: DurableOrchestrationContext) -> dict[int, AtomicTask]:
    """Collect, during the replay, every atomic task the SDK registers, keyed by the identity of its action
    object: the walk of the serialised actions reads whether each one has completed in the history."""
    tasks: dict[int, AtomicTask] = {}
    register = context._add_to_open_tasks

    def recording(task: TaskBase) -> None:
        if isinstance(task, AtomicTask):
            tasks.setdefault(id(task._get_action()), task)
        register(task)  # the SDK's own method; it recurses into compound tasks through this wrapper

    context._add_to_open_tasks = recording
    return tasks


def _owning_action(task: AtomicTask) -> Any:
    """The serialised action a task belongs to: its own, or for the timer and the re-attempts of a
    ``*_with_retry`` call (``NoOpAction``, never serialised) the retried call's action."""
    action = task._get_action()
    if isinstance(action, NoOpAction) and isinstance(task.parent, RetryAbleTask):
        retried = task.parent.actions
        return retried[0] if isinstance(retried, list) else retried
    return action


#: Actions the extension's ``InvokeAPIFromAction`` answers with ``Task.CompletedTask`` (fire and forget).
_FIRE_AND_FORGET = (int(ActionType.CONTINUE_AS_NEW), int(ActionType.SIGNAL_ENTITY), 10)
_RETRIED = (int(ActionType.CALL_ACTIVITY_WITH_RETRY), int(ActionType.CALL_SUB_ORCHESTRATOR_WITH_RETRY))


_COMPLETIONS = (int(T.TASK_COMPLETED), int(T.TASK_FAILED), int(T.SUB_ORCHESTRATION_INSTANCE_COMPLETED),
                int(T.SUB_ORCHESTRATION_INSTANCE_FAILED))


def _completed_ids(events: list[dict[str, Any]]) -> set[int]:
    """The ids of the activities, sub-orchestrations and timers the history has an outcome for."""
    done = {int(e["TaskScheduledId"]) for e in events if e["EventType"] in _COMPLETIONS}
    return done | {int(e["TimerId"]) for e in events if e["EventType"] == int(T.TIMER_FIRED)}


def _walk(state: dict[str, Any], objects: dict[int, Any], tasks: dict[int, AtomicTask],
          completed_ids: set[int]) -> tuple[set[int], bool]:
    """The extension's replay of the serialised actions: which actions it invokes (schedules), and whether it
    gets past the last one.

    azure-functions-durable-extension ``src/WebJobs.Extensions.DurableTask/Listener/OutOfProcOrchestrationShim.cs``
    ``ProcessAsyncActionsV2`` (schema V2 and V3; azure-functions-durable 1.7.0 answers with V3 when the worker
    context carries ``upperSchemaVersionNew`` 2) invokes the actions one at a time and awaits each before it
    invokes the next: action k+1 is only scheduled once action k's task is complete. A ``WhenAny`` / ``WhenAll``
    action is ``Task.WhenAny`` / ``Task.WhenAll`` over its ``compoundActions`` only, and 1.7.0's ``CompoundTask``
    serialises only the children not scheduled before (``if not task._is_scheduled``): a ``task_any`` over a task
    raced earlier and a new one waits, in the extension, for the new one alone. A failed or cancelled task counts
    as complete (the shim swallows the exception and goes on). ``ProcessAsyncActionsV1`` (schema V1) invokes a
    whole action set and awaits ``Task.WhenAny`` of it. An outcome counts from the history itself too: the SDK
    stops reading the history once the orchestrator has returned or raised, DurableTask does not (a ``task_all``
    the SDK failed at its first failed call is, in the extension, ``Task.WhenAll``: complete once every call is).

    A ``WhenAny`` with no children: 1.7.0 never sends one (a ``task_any`` whose children were all scheduled
    before is itself ``_is_scheduled``, so ``TaskOrchestrationExecutor.resume_user_code`` adds no action);
    ``Task.WhenAny`` over an empty list throws ``ArgumentException`` in .NET, outside the shim's try block, so
    the step fails (inferred: the runner fails the instance). An empty ``WhenAll`` is complete.
    """

    reached: set[int] = set()

    def invoke(body: dict[str, Any]) -> None:
        reached.add(id(objects.get(id(body))))
        for child in body.get("compoundActions") or []:
            invoke(child)

    def complete(body: dict[str, Any]) -> bool:
        kind = int(body.get("actionType", -1))
        children = body.get("compoundActions") or []
        if kind == ActionType.WHEN_ANY:
            if not children:
                raise UnsupportedAction("Task.WhenAny over no tasks: the serialised WhenAny action has no children")
            return any(complete(child) for child in children)
        if kind == ActionType.WHEN_ALL:
            return all(complete(child) for child in children)
        if kind in _FIRE_AND_FORGET or (kind == ActionType.CREATE_TIMER and body.get("isCanceled")):
            return True
        task = tasks.get(id(objects.get(id(body))))
        if task is None:
            raise UnsupportedAction(f"action type {kind} in the serialised actions has no task in the replay")
        if kind in _RETRIED and isinstance(task.parent, RetryAbleTask):
            return task.parent.state is not TaskState.RUNNING
        return task.state is not TaskState.RUNNING or (isinstance(task.id, int) and task.id in completed_ids)

    payload = state.get("actions") or []
    if state.get("schemaVersion") is None:  # V1: per action set, Task.WhenAny of what it invoked
        for group in payload:
            for body in group:
                invoke(body)
            awaited = [body for body in group if int(body.get("actionType", -1)) not in _FIRE_AND_FORGET]
            if awaited and not any(complete(body) for body in awaited):
                return reached, False
        return reached, True
    for group in payload:
        for body in group:
            invoke(body)
            if not complete(body):
                return reached, False
    return reached, True


def _flatten(actions: list[Any]) -> list[dict[str, Any]]:
    flat: list[dict[str, Any]] = []
    for item in actions:
        if isinstance(item, list):
            flat.extend(_flatten(item))
        elif isinstance(item, dict):
            flat.append(item)
            flat.extend(_flatten(item.get("compoundActions", [])))
    return flat


def _failed_state(exc: Exception) -> tuple[dict[str, Any], str]:
    """The OrchestratorState embedded in the SDK's out-of-proc error, and its error text."""
    message = str(exc)
    if OUT_OF_PROC_LABEL in message:
        head, _, tail = message.partition(OUT_OF_PROC_LABEL)
        try:
            state = json.loads(tail)
        except json.JSONDecodeError:
            state = {}
        return state, str(state.get("error") or head)
    return {}, f"{type(exc).__name__}: {message}"


def status_body(record: InstanceRecord, events: list[dict[str, Any]] | None, show_input: bool) -> dict[str, Any]:
    """The DF HTTP API status object of an instance."""
    body: dict[str, Any] = {
        "name": record.name,
        "instanceId": record.instance_id,
        "runtimeStatus": record.status,
        "input": _parsed(record.input) if show_input else None,
        "customStatus": _parsed(record.custom_status),
        "output": _parsed(record.output),
        "createdTime": record.created,
        "lastUpdatedTime": record.updated,
    }
    if events is not None:
        body["historyEvents"] = [{"EventType": h.type_name(e), **{k: v for k, v in e.items() if k != "EventType"}}
                                 for e in events]
    return body


def _parsed(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def default_db_path(root: str | Path = ".") -> str:
    return str(Path(root) / DEFAULT_DB_PATH)


__all__ = ["TERMINAL", "DurableRunner", "RunnerConfig", "RunnerStats", "default_db_path", "status_body"]
