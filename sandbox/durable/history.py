"""History events in the JSON shape the Functions host hands the Python worker.

Field names follow DurableTask's history events (``EventType``, ``EventId``, ``IsPlayed``, ``Timestamp``
plus the event's own fields), which is what ``azure.durable_functions.models.history.HistoryEvent``
reads. Payloads (``Input``, ``Result``) are JSON text, as the extension stores them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from azure.durable_functions.models.history import HistoryEventType as T

TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def parse_timestamp(text: str) -> datetime:
    return datetime.strptime(text, TIMESTAMP_FORMAT).replace(tzinfo=UTC)


def event(kind: T, when: datetime, event_id: int = -1, **fields: Any) -> dict[str, Any]:
    return {"EventType": int(kind), "EventId": event_id, "IsPlayed": False, "Timestamp": timestamp(when),
            **fields}


def orchestrator_started(when: datetime) -> dict[str, Any]:
    return event(T.ORCHESTRATOR_STARTED, when)


def orchestrator_completed(when: datetime) -> dict[str, Any]:
    return event(T.ORCHESTRATOR_COMPLETED, when)


def execution_started(when: datetime, name: str, instance_id: str, execution_id: str, input_text: str | None,
                      *, parent: dict[str, Any] | None = None, correlation_id: str | None = None) -> dict[str, Any]:
    return event(T.EXECUTION_STARTED, when, Name=name, Input=input_text, Version="",
                 OrchestrationInstance={"InstanceId": instance_id, "ExecutionId": execution_id},
                 ParentInstance=parent, Correlation=correlation_id)


def task_scheduled(when: datetime, task_id: int, name: str, input_text: str | None) -> dict[str, Any]:
    return event(T.TASK_SCHEDULED, when, task_id, Name=name, Input=input_text)


def task_completed(when: datetime, task_id: int, result_text: str | None) -> dict[str, Any]:
    return event(T.TASK_COMPLETED, when, TaskScheduledId=task_id, Result=result_text)


def task_failed(when: datetime, task_id: int, reason: str, details: str) -> dict[str, Any]:
    return event(T.TASK_FAILED, when, TaskScheduledId=task_id, Reason=reason, Details=details)


def timer_created(when: datetime, timer_id: int, fire_at: datetime) -> dict[str, Any]:
    return event(T.TIMER_CREATED, when, timer_id, FireAt=timestamp(fire_at))


def timer_fired(when: datetime, timer_id: int, fire_at: str) -> dict[str, Any]:
    return event(T.TIMER_FIRED, when, TimerId=timer_id, FireAt=fire_at)


def sub_orchestration_created(when: datetime, task_id: int, name: str, instance_id: str,
                              input_text: str | None) -> dict[str, Any]:
    return event(T.SUB_ORCHESTRATION_INSTANCE_CREATED, when, task_id, Name=name, InstanceId=instance_id,
                 Input=input_text)


def sub_orchestration_completed(when: datetime, task_id: int, result_text: str | None) -> dict[str, Any]:
    return event(T.SUB_ORCHESTRATION_INSTANCE_COMPLETED, when, TaskScheduledId=task_id, Result=result_text)


def sub_orchestration_failed(when: datetime, task_id: int, reason: str, details: str) -> dict[str, Any]:
    return event(T.SUB_ORCHESTRATION_INSTANCE_FAILED, when, TaskScheduledId=task_id, Reason=reason,
                 Details=details)


def event_raised(when: datetime, name: str, input_text: str | None) -> dict[str, Any]:
    return event(T.EVENT_RAISED, when, Name=name, Input=input_text)


def execution_completed(when: datetime, status: str, result_text: str | None) -> dict[str, Any]:
    return event(T.EXECUTION_COMPLETED, when, OrchestrationStatus=status, Result=result_text)


def execution_terminated(when: datetime, reason: str) -> dict[str, Any]:
    return event(T.EXECUTION_TERMINATED, when, Input=reason)


def type_name(event_json: dict[str, Any]) -> str:
    """``TaskScheduled`` for an event of type 4: the names the DF HTTP API shows."""
    words = T(event_json["EventType"]).name.split("_")
    return "".join(w.capitalize() for w in words)
