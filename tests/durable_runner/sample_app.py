"""A small Functions app (Python v2 model) that exercises every feature of the local runner and host.

It uses the same decorators as the real ``function_app.py`` and imports nothing from ``sandbox``.
Activities append a line per execution to the file named by ``SAMPLE_ACTIVITY_LOG`` so tests can count
executions across processes.
"""

from __future__ import annotations

import json
import logging
import os
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import azure.durable_functions as df
import azure.functions as func

app = df.DFApp(http_auth_level=func.AuthLevel.FUNCTION)
bp = df.Blueprint()
log = logging.getLogger("sample_app")

FLAKY_STATE: dict[str, int] = {}


def _record(name: str, value: Any) -> None:
    target = os.environ.get("SAMPLE_ACTIVITY_LOG")
    if target:
        with Path(target).open("a", encoding="utf-8") as handle:
            handle.write(f"{name}:{json.dumps(value, sort_keys=True)}\n")
            handle.flush()
            os.fsync(handle.fileno())


# ---- activities ------------------------------------------------------------------------------------------


@bp.activity_trigger(input_name="item")
def double(item: int) -> int:
    _record("double", item)
    log.info("doubling %s", item)
    return item * 2


@bp.activity_trigger(input_name="payload")
def slow_step(payload: dict[str, Any]) -> str:
    time.sleep(float(payload.get("seconds", 0.2)))
    _record("slow_step", payload["n"])
    return f"step-{payload['n']}"


@bp.activity_trigger(input_name="payload")
def flaky(payload: dict[str, Any]) -> str:
    key = payload["key"]
    FLAKY_STATE[key] = FLAKY_STATE.get(key, 0) + 1
    _record("flaky", {"key": key, "attempt": FLAKY_STATE[key]})
    if FLAKY_STATE[key] < payload["succeed_on"]:
        raise RuntimeError(f"transient failure {FLAKY_STATE[key]} of {key}")
    return f"{key} ok after {FLAKY_STATE[key]}"


@bp.activity_trigger(input_name="payload")
def echo(payload: Any) -> Any:
    _record("echo", payload)
    return payload


# ---- orchestrators ---------------------------------------------------------------------------------------


@bp.orchestration_trigger(context_name="context")
def fan_out(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    count = context.get_input()["count"]
    context.set_custom_status({"phase": "fanning out", "count": count})
    results = yield context.task_all([context.call_activity(double, i) for i in range(count)])
    context.set_custom_status({"phase": "done"})
    return sum(results)


@bp.orchestration_trigger(context_name="context")
def slow_fan_out(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    steps = context.get_input()
    calls = [context.call_activity("slow_step", {"n": n, "seconds": steps["seconds"]}) for n in range(steps["count"])]
    return (yield context.task_all(calls))


@bp.orchestration_trigger(context_name="context")
def sequence(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    steps = context.get_input()
    done = []
    for n in range(steps["count"]):
        done.append((yield context.call_activity("slow_step", {"n": n, "seconds": steps["seconds"]})))
        context.set_custom_status({"completed": n + 1})
    return done


@bp.orchestration_trigger(context_name="context")
def retrying(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    spec = context.get_input()
    options = df.RetryOptions(first_retry_interval_in_milliseconds=spec["first_ms"],
                              max_number_of_attempts=spec["attempts"])
    if "backoff" in spec:  # plain attributes: 1.7.0's RetryOptions.to_json never serialises them
        options.backoff_coefficient = spec["backoff"]  # type: ignore[attr-defined]
        options.max_retry_interval_in_milliseconds = spec["max_ms"]  # type: ignore[attr-defined]
    try:
        result = yield context.call_activity_with_retry("flaky", options, spec)
    except Exception as error:  # noqa: BLE001 - the SDK raises a bare Exception for a failed task
        return {"failed": str(error)}
    return {"ok": result, "at": context.current_utc_datetime.isoformat()}


@bp.orchestration_trigger(context_name="context")
def big_status(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    context.set_custom_status({"note": "x" * context.get_input()["chars"]})
    yield context.call_activity("echo", "after the status")
    return "done"


@bp.orchestration_trigger(context_name="context")
def waiter(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    days = context.get_input()["days"]
    started = context.current_utc_datetime
    yield context.create_timer(started + timedelta(days=days))
    return {"waited_days": (context.current_utc_datetime - started).total_seconds() / 86400}


@bp.orchestration_trigger(context_name="context")
def approval(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    context.set_custom_status("waiting for approval")
    deadline = context.current_utc_datetime + timedelta(hours=1)
    timeout = context.create_timer(deadline)
    answer = context.wait_for_external_event("Approval")
    winner = yield context.task_any([answer, timeout])
    if winner == answer:
        timeout.cancel()
        return {"approved": answer.result}
    return {"approved": None, "timed_out": True}


@bp.orchestration_trigger(context_name="context")
def parent(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    count = context.get_input()["children"]
    tasks = [context.call_sub_orchestrator("fan_out", {"count": 3}, f"{context.instance_id}-child-{i}")
             for i in range(count)]
    totals = yield context.task_all(tasks)
    retried = yield context.call_sub_orchestrator_with_retry(
        "retrying", df.RetryOptions(1000, 2), {"key": f"{context.instance_id}-sub", "succeed_on": 1,
                                               "first_ms": 1000, "attempts": 1})
    return {"totals": totals, "retried": retried}


@bp.orchestration_trigger(context_name="context")
def failing_child(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    yield context.call_activity("echo", "before failing")
    raise ValueError("child gave up")


@bp.orchestration_trigger(context_name="context")
def parent_of_failing(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    try:
        yield context.call_sub_orchestrator("failing_child", None)
    except Exception as error:  # noqa: BLE001 - the SDK raises a bare Exception for a failed task
        return {"caught": str(error)}
    return {"caught": None}


@bp.orchestration_trigger(context_name="context")
def counter(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    state = context.get_input()
    n = state["n"]
    yield context.call_activity("echo", {"generation": n})
    if n < state["until"]:
        context.continue_as_new({"n": n + 1, "until": state["until"]})
        return None
    return {"final": n}


@bp.orchestration_trigger(context_name="context")
def forever(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    yield context.wait_for_external_event("never")
    return "impossible"


@bp.orchestration_trigger(context_name="context")
def flaky_child(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    return (yield context.call_activity("flaky", context.get_input()))


@bp.orchestration_trigger(context_name="context")
def parent_retrying_child(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    spec = context.get_input()
    return (yield context.call_sub_orchestrator_with_retry(
        "flaky_child", df.RetryOptions(spec["first_ms"], spec["attempts"]), spec))


@bp.orchestration_trigger(context_name="context")
def calls_unknown(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    try:
        yield context.call_activity("no_such_activity", 1)
    except Exception as error:  # noqa: BLE001 - the SDK raises a bare Exception for a failed task
        return {"caught": str(error).splitlines()[0]}
    return {"caught": None}


@bp.orchestration_trigger(context_name="context")
def uses_entity(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    return (yield context.call_entity(df.EntityId("counter", "k"), "add", 1))


@bp.orchestration_trigger(context_name="context")
def echo_event(context: df.DurableOrchestrationContext):  # type: ignore[no-untyped-def]
    return (yield context.call_activity("echo", context.get_input()))


app.register_functions(bp)

# ---- triggers the host serves ----------------------------------------------------------------------------

STARTED_BY_EVENTS: list[str] = []
TIMER_FIRES: list[bool] = []


@app.route(route="sample/{name}", methods=["POST"])
@app.durable_client_input(client_name="client")
async def start_orchestration(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    name = req.route_params["name"]
    body = req.get_json() if req.get_body() else None
    instance_id = await client.start_new(name, req.params.get("id"), body)
    return client.create_check_status_response(req, instance_id)


@app.route(route="sample-status/{id}", methods=["GET"])
@app.durable_client_input(client_name="client")
async def read_status(req: func.HttpRequest, client: df.DurableOrchestrationClient) -> func.HttpResponse:
    status = await client.get_status(req.route_params["id"])
    body = {"status": status.runtime_status.value if status.runtime_status else None,
            "custom": status.custom_status, "output": status.output}
    return func.HttpResponse(json.dumps(body), mimetype="application/json")


@app.route(route="ping", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def ping(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({"pong": req.params.get("x"), "agent": req.headers.get("user-agent")}),
                             mimetype="application/json")


@app.event_grid_trigger(arg_name="event")
@app.durable_client_input(client_name="client")
async def on_resource_event(event: func.EventGridEvent, client: df.DurableOrchestrationClient) -> None:
    STARTED_BY_EVENTS.append(event.id)
    kind = getattr(event, "event_type", None) or getattr(event, "type", None)  # Event Grid or CloudEvents
    await client.start_new("echo_event", f"event-{event.id}", {"subject": event.subject, "type": kind})


@app.timer_trigger(schedule="%SAMPLE_AUDIT_SCHEDULE%", arg_name="timer", run_on_startup=False)
def audit_tick(timer: func.TimerRequest) -> None:
    TIMER_FIRES.append(timer.past_due)
    _record("audit_tick", {"past_due": timer.past_due})
