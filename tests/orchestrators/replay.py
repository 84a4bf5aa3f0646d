"""Replay one of our orchestrators over a history built here, in the Durable SDK's own testing style.

azure-functions-durable-python tests its orchestrators by building the history the extension would send
(``tests/test_utils/ContextBuilder.py``: ``OrchestratorStarted``, ``ExecutionStarted``, ``TaskScheduled``,
``TaskCompleted``, ``TimerCreated``, ``TimerFired``, ``EventRaised`` ...), handing it to ``Orchestrator.handle``
and reading the JSON state it returns. ``replay`` does that in a loop: every episode replays the WHOLE history
from the start (so an orchestrator that is not deterministic cannot pass), the tasks the generator left open are
answered by the test's fake activities, sub-orchestrations and events, and their events are appended, until the
orchestration completes, fails, continues as new or waits on nothing the test supplies.

Answering order in an episode, as a host would see it: every open activity and sub-orchestration runs; the
events in the test's inbox (one per name, only once the orchestration waits for that name; a fake may add one
while it runs: an event that arrives while the activity works) are written first, then the completions. A
durable timer fires only when nothing else can happen, the earliest first, and moves the orchestration's clock
to its ``fireAt``.

This drives the SDK's generator directly: no host, no runner, no sandbox (the local runner has tests of its own
in ``tests/durable_runner/``).
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from azure.durable_functions.models.DurableOrchestrationContext import DurableOrchestrationContext
from azure.durable_functions.models.history.HistoryEventType import HistoryEventType as E
from azure.durable_functions.models.Task import AtomicTask, TaskBase
from azure.durable_functions.orchestrator import Orchestrator

EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # azure.durable_functions.constants.DATETIME_STRING_FORMAT
#: Action types of the SDK's ActionType enum that the loop answers.
CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY, CALL_SUB, CALL_SUB_WITH_RETRY, CONTINUE_AS_NEW, CREATE_TIMER, WAIT = (
    0, 1, 2, 3, 4, 5, 6)

Fake = Callable[[Any], Any]
FakeSub = Callable[[Any, str], Any]


@dataclass
class Call:
    kind: str  # "activity" | "sub"
    name: str
    input: Any
    instance_id: str | None = None


@dataclass
class Replay:
    status: str  # Completed | Failed | ContinuedAsNew | Waiting
    output: Any
    custom_status: Any
    error: str | None
    calls: list[Call]
    history: list[dict[str, Any]]
    now: datetime
    generations: list[Any] = field(default_factory=list)  # the input of every ContinueAsNew

    def names(self) -> list[str]:
        return [c.name for c in self.calls]

    def inputs(self, name: str) -> list[Any]:
        return [c.input for c in self.calls if c.name == name]


class HistoryBuilder:
    """The history of one orchestration instance, as the extension sends it (ContextBuilder's shape)."""

    def __init__(self, name: str, input_: Any, instance_id: str, parent: str | None, start: datetime) -> None:
        self.name, self.instance_id, self.parent = name, instance_id, parent
        self.input_text = json.dumps(input_)
        self.now = start
        self.events: list[dict[str, Any]] = []
        self.add(E.ORCHESTRATOR_STARTED)
        self.add(E.EXECUTION_STARTED, Name=name, Version="", Input=self.input_text,
                 OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": "1"})

    def add(self, kind: E, event_id: int = -1, **fields: Any) -> None:
        self.events.append({"EventType": int(kind), "EventId": event_id, "IsPlayed": False,
                            "Timestamp": self.now.strftime(FORMAT), **fields})

    def new_episode(self, at: datetime) -> None:
        self.add(E.ORCHESTRATOR_COMPLETED)
        for event in self.events:
            event["IsPlayed"] = True
        self.now = max(self.now, at)
        self.add(E.ORCHESTRATOR_STARTED)

    def context_json(self) -> str:
        return json.dumps({"history": self.events, "instanceId": self.instance_id, "isReplaying": False,
                           "parentInstanceId": self.parent, "input": self.input_text})


def _action(task: AtomicTask) -> dict[str, Any]:
    action = task.action_repr[0] if isinstance(task.action_repr, list) else task.action_repr
    return dict(action.to_json())


def _open_tasks(context: DurableOrchestrationContext) -> dict[int | str, AtomicTask]:
    tasks: dict[int | str, AtomicTask] = {}
    for key, value in context.open_tasks.items():
        task = value[0] if isinstance(value, list) else value
        if isinstance(task, TaskBase):
            tasks[key] = task  # type: ignore[assignment]
    return tasks


def _flatten(actions: Iterable[Any]) -> list[dict[str, Any]]:
    flat: list[dict[str, Any]] = []
    for item in actions:
        flat.extend(_flatten(item) if isinstance(item, list) else [item])
    return flat


def replay(
    orchestrator: Any,
    input_: Any = None,
    *,
    activities: Mapping[str, Fake] | None = None,
    subs: Mapping[str, FakeSub] | None = None,
    events: list[tuple[str, Any]] | None = None,
    instance_id: str = "instance-1",
    parent: str | None = None,
    start: datetime = EPOCH,
    activity_seconds: float = 1.0,
    max_episodes: int = 2_000,
    max_generations: int = 20,
) -> Replay:
    """Drive ``orchestrator`` (the function a Blueprint decorator registered) to its end; see the module doc.

    ``events`` is an inbox the fakes may append to while they run (an event raised while an activity works):
    each is raised in the next episode in which the orchestration waits for its name."""
    fn = _user_function(orchestrator)
    activities, subs = dict(activities or {}), dict(subs or {})
    inbox = events if events is not None else []
    calls: list[Call] = []
    generations: list[Any] = []
    current_input = input_
    now = start
    for _ in range(max_generations):
        history = HistoryBuilder(getattr(fn, "__name__", "orchestrator"), current_input, instance_id, parent, now)
        answered: set[int | str] = set()
        scheduled: set[int | str] = set()
        for _episode in range(max_episodes):
            context = DurableOrchestrationContext.from_json(history.context_json())
            state = _handle(fn, context)
            actions = _flatten(state.get("actions") or [])
            again = next((a for a in actions if a.get("actionType") == CONTINUE_AS_NEW), None)
            if again is not None:
                generations.append(json.loads(again["input"]) if isinstance(again.get("input"), str) else None)
                current_input, now = generations[-1], history.now
                break
            if state.get("isDone"):
                output = state.get("output")
                return Replay("Completed", output, state.get("customStatus"), None, calls, history.events,
                              history.now, generations)
            if state.get("error") is not None:
                return Replay("Failed", None, state.get("customStatus"), str(state["error"]), calls,
                              history.events, history.now, generations)
            pending = {k: t for k, t in _open_tasks(context).items() if k not in answered}
            for key, task in sorted(pending.items(), key=lambda kv: str(kv[0])):
                if key in scheduled:
                    continue
                scheduled.add(key)
                action = _action(task)
                kind = action.get("actionType")
                if kind in (CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY) and isinstance(key, int):
                    history.add(E.TASK_SCHEDULED, key, Name=action["functionName"], Input=action.get("input"))
                elif kind in (CALL_SUB, CALL_SUB_WITH_RETRY) and isinstance(key, int):
                    history.add(E.SUB_ORCHESTRATION_INSTANCE_CREATED, key, Name=action["functionName"],
                                InstanceId=action.get("instanceId"), Input=action.get("input"))
                elif kind == CREATE_TIMER and isinstance(key, int):
                    history.add(E.TIMER_CREATED, key, FireAt=action["fireAt"])
            work = [(k, t) for k, t in pending.items()
                    if _action(t).get("actionType") in (CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY, CALL_SUB,
                                                        CALL_SUB_WITH_RETRY)]
            awaited = {k for k, t in pending.items() if _action(t).get("actionType") == WAIT}
            awaited |= {k for k in _open_tasks(context) if isinstance(k, str)}
            timers = sorted(((_fire_at(_action(t)), k) for k, t in pending.items()
                             if _action(t).get("actionType") == CREATE_TIMER), key=lambda x: (x[0], str(x[1])))
            if not work and not _deliverable(inbox, awaited) and not timers:
                return Replay("Waiting", None, state.get("customStatus"), None, calls, history.events,
                              history.now, generations)
            history.new_episode(history.now + timedelta(seconds=activity_seconds if work else 0))
            completions: list[tuple[E, dict[str, Any]]] = []
            for key, task in sorted(work, key=lambda kv: int(kv[0])):
                answered.add(key)
                action = _action(task)
                name = action["functionName"]
                payload = json.loads(action["input"]) if isinstance(action.get("input"), str) else None
                if action["actionType"] in (CALL_SUB, CALL_SUB_WITH_RETRY):
                    child = str(action.get("instanceId") or f"{instance_id}:{key}")
                    calls.append(Call("sub", name, payload, child))
                    try:
                        result = subs[name](payload, child)
                    except Exception as error:  # noqa: BLE001 - the failure goes into the history, as the host does
                        completions.append((E.SUB_ORCHESTRATION_INSTANCE_FAILED, {
                            "TaskScheduledId": key, "Reason": f"Orchestrator function '{name}' failed: {error}",
                            "Details": traceback.format_exc()}))
                    else:
                        completions.append((E.SUB_ORCHESTRATION_INSTANCE_COMPLETED,
                                            {"TaskScheduledId": key, "Result": json.dumps(result)}))
                    continue
                calls.append(Call("activity", name, payload))
                try:
                    result = activities[name](payload)
                except Exception as error:  # noqa: BLE001
                    completions.append((E.TASK_FAILED, {
                        "TaskScheduledId": key, "Reason": f"Activity function '{name}' failed: {error}",
                        "Details": traceback.format_exc()}))
                else:
                    completions.append((E.TASK_COMPLETED, {"TaskScheduledId": key, "Result": json.dumps(result)}))
            # events the test raised, including those a fake raised while it ran, come before the completions
            deliverable = _deliverable(inbox, awaited)
            for index in reversed(deliverable):
                name, payload = inbox.pop(index)
                completions.insert(0, (E.EVENT_RAISED, {"Name": name, "Input": json.dumps(payload)}))
            for kind, fields in completions:
                history.add(kind, **fields)
            if not work and not deliverable:
                fire_at, key = timers[0]
                answered.add(key)
                history.now = max(history.now, fire_at)
                history.events[-1]["Timestamp"] = history.now.strftime(FORMAT)  # the episode starts when it fires
                history.add(E.TIMER_FIRED, TimerId=key, FireAt=fire_at.strftime(FORMAT))
        else:
            raise AssertionError(f"{instance_id} did not finish in {max_episodes} episodes")
    raise AssertionError(f"{instance_id} continued as new more than {max_generations} times")


def _handle(fn: Callable[..., Any], context: DurableOrchestrationContext) -> dict[str, Any]:
    """The JSON state ``Orchestrator.handle`` returns; when the orchestrator raised, the SDK raises too, with the
    state (its ``error``) after ``$OutOfProcData$:`` in the message, as the extension reads it."""
    try:
        return dict(json.loads(Orchestrator(fn).handle(context)))
    except Exception as raised:
        text = str(raised)
        marker = "$OutOfProcData$:"
        if marker not in text:
            raise
        return dict(json.loads(text[text.index(marker) + len(marker):]))


def _deliverable(inbox: list[tuple[str, Any]], awaited: set[int | str]) -> list[int]:
    """The inbox events the orchestration waits for: the oldest of each name (one per name per episode)."""
    first: dict[str, int] = {}
    for index, (name, _) in enumerate(inbox):
        if name in awaited:
            first.setdefault(name, index)
    return sorted(first.values())


def _fire_at(action: dict[str, Any]) -> datetime:
    text = str(action["fireAt"])
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _user_function(orchestrator: Any) -> Callable[..., Any]:
    """The generator function behind a Blueprint's ``orchestration_trigger`` (what ``Orchestrator.create`` got)."""
    handle = orchestrator._function.get_user_function() if hasattr(orchestrator, "_function") else orchestrator
    return getattr(handle, "orchestrator_function", handle)  # type: ignore[no-any-return]


def nested(orchestrator: Any, **fakes: Any) -> FakeSub:
    """A sub-orchestration answered by replaying the real orchestrator with the given fakes; fails as it fails."""

    def run(payload: Any, child: str) -> Any:
        result = replay(orchestrator, payload, instance_id=child, **fakes)
        if result.status != "Completed":
            raise RuntimeError(result.error or result.status)
        return result.output

    return run


def replay_recorded(orchestrator: Any, recorded: Mapping[str, Any], history: list[dict[str, Any]]) -> dict[str, Any]:
    """One replay of ``history`` (a history recorded by older code, or a cut of it) by ``orchestrator`` with the
    recorded input and instance id: the JSON state it returns (its actions, output or error)."""
    context = DurableOrchestrationContext.from_json(json.dumps({
        "history": history, "instanceId": recorded["instanceId"], "isReplaying": False, "parentInstanceId": None,
        "input": json.dumps(recorded["input"])}))
    return _handle(_user_function(orchestrator), context)


def scheduled(history: Iterable[Mapping[str, Any]]) -> list[str]:
    """The activities and sub-orchestrations a history scheduled, in order."""
    kinds = {int(E.TASK_SCHEDULED), int(E.SUB_ORCHESTRATION_INSTANCE_CREATED)}
    return [e["Name"] for e in history if e["EventType"] in kinds]


def scheduled_calls(state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The activity and sub-orchestration actions of a replay's JSON state, in order."""
    calls = (CALL_ACTIVITY, CALL_ACTIVITY_WITH_RETRY, CALL_SUB)
    return [a for a in _flatten(state.get("actions") or []) if a.get("actionType") in calls]


def replays_as_recorded(orchestrator: Any, recorded: Mapping[str, Any]) -> dict[str, Any]:
    """Replay a whole recorded history on today's code: it must complete, having scheduled the same activities and
    sub-orchestrations in the same order (what Durable requires of a replay). Returns the state (its output)."""
    state = replay_recorded(orchestrator, recorded, list(recorded["history"]))
    assert state.get("error") is None and state.get("isDone"), state
    assert [a["functionName"] for a in scheduled_calls(state)] == scheduled(recorded["history"])
    return state
