"""``python -m sandbox.durable instances [--db PATH] [--status S]`` and ``show ID [--db PATH]``.

Reads the runner's SQLite store directly; the app need not be loaded.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Final

from sandbox.durable import history as h
from sandbox.durable.runner import DEFAULT_DB_PATH
from sandbox.durable.store import DurableStore
from steward.cli_output import OUTPUTS, write_rows

INSTANCE_COLUMNS = ("instance", "name", "status", "created", "updated", "customStatus")


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _instances(store: DurableStore, status: str | None) -> list[str]:
    rows = [("INSTANCE", "NAME", "STATUS", "CREATED", "UPDATED", "CUSTOM STATUS")]
    for r in store.instances():
        if status and r.status.lower() != status.lower():
            continue
        rows.append((r.instance_id, r.name, r.status, r.created, r.updated, _short(r.custom_status or "")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]).rstrip()
            for row in rows]


def _event_line(event: dict[str, Any]) -> str:
    details = {k: v for k, v in event.items() if k not in ("EventType", "EventId", "IsPlayed", "Timestamp")
               and v is not None}
    event_id = f"#{event['EventId']}" if event["EventId"] >= 0 else ""
    return f"  {event['Timestamp']}  {h.type_name(event):<36} {event_id:<6} {_short(details, 90)}"


def app_correlation(input_text: str | None) -> str | None:
    """The correlation id the app carries in an instance's input: ARM's ``data.correlationId`` of the event that
    started it (``origin.correlationId``), or a teardown request's ``correlationId``. The store's own
    ``correlation_id`` is the host's invocation id (Azure: the invocation's operation id), another thing."""
    document = _parsed(input_text)
    if not isinstance(document, dict):
        return None
    origin = document.get("origin")
    value = (origin.get("correlationId") if isinstance(origin, dict) else None) or document.get("correlationId")
    return value if isinstance(value, str) and value else None


def _show(store: DurableStore, instance_id: str) -> list[str]:
    record = store.instance(instance_id)
    if record is None:
        raise SystemExit(f"no instance {instance_id!r} in {store.path}")
    lines = [
        f"instance:      {record.instance_id}",
        f"orchestrator:  {record.name}",
        f"status:        {record.status}",
        f"created:       {record.created}",
        f"updated:       {record.updated}",
        f"generation:    {record.generation} (execution {record.execution_id})",
        f"correlation:   {app_correlation(record.input) or '-'}  (the app's: the triggering event's ARM "
        "correlationId, or the request's x-correlation-id)",
        f"host invocation: {record.correlation_id}",
        f"parent:        {record.parent_instance_id or '-'}",
        f"input:         {_short(record.input or 'null', 100)}",
        f"custom status: {record.custom_status or 'null'}",
        f"output:        {_short(record.output or 'null', 100)}",
        "history:",
    ]
    lines.extend(_event_line(e) for e in store.history(instance_id))
    pending = store.inbox(instance_id)
    if pending:
        lines.append("waiting in inbox:")
        lines.extend(_event_line(e) for _, _, e in pending)
    return lines


def _instance_rows(store: DurableStore, status: str | None) -> list[dict[str, Any]]:
    return [{"instance": r.instance_id, "name": r.name, "status": r.status, "created": r.created,
             "updated": r.updated, "customStatus": _parsed(r.custom_status)}
            for r in store.instances() if not status or r.status.lower() == status.lower()]


def _parsed(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


#: ``instances show --output csv``: one row per history event, the fields every event kind may carry.
HISTORY_COLUMNS: Final = ("EventId", "EventType", "Timestamp", "Name", "TaskScheduledId", "TimerId", "FireAt",
                          "Input", "Result", "Reason", "Details")


def _show_document(store: DurableStore, instance_id: str) -> dict[str, Any]:
    """One instance in full (nothing cut off): for ``--output json``."""
    record = store.instance(instance_id)
    if record is None:
        raise SystemExit(f"no instance {instance_id!r} in {store.path}")
    return {
        "instance": record.instance_id, "name": record.name, "status": record.status, "created": record.created,
        "updated": record.updated, "generation": record.generation, "executionId": record.execution_id,
        "correlationId": app_correlation(record.input), "hostCorrelationId": record.correlation_id,
        "parent": record.parent_instance_id,
        "input": _parsed(record.input), "customStatus": _parsed(record.custom_status),
        "output": _parsed(record.output), "history": store.history(instance_id),
        "inbox": [event for _, _, event in store.inbox(instance_id)],
    }


def main(argv: list[str] | None = None, *, program: str = "python -m sandbox.durable") -> int:
    parser = argparse.ArgumentParser(prog=program, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    listing = sub.add_parser("instances", help="list orchestration instances",
                             epilog="example: steward instances --db var/durable.sqlite --status Failed --output csv")
    listing.add_argument("--db", default=DEFAULT_DB_PATH)
    listing.add_argument("--status", help="only instances with this runtime status")
    listing.add_argument("--output", choices=OUTPUTS, default="table", help="table (default), json or csv")
    show = sub.add_parser("show", help="one instance's history and custom status",
                          epilog="example: steward instances show audit-all --db var/durable.sqlite --output json")
    show.add_argument("instance_id")
    show.add_argument("--db", default=DEFAULT_DB_PATH)
    show.add_argument("--output", choices=OUTPUTS, default="table",
                      help="table (default; long values cut), json (everything) or csv (one row per history event)")
    args = parser.parse_args(argv)
    if not Path(args.db).exists():
        print(f"no runner store at {args.db}", file=sys.stderr)
        return 2
    store = DurableStore(args.db)
    try:
        if args.command == "instances" and args.output != "table":
            write_rows(sys.stdout, _instance_rows(store, args.status), INSTANCE_COLUMNS, args.output)
            return 0
        if args.command == "show" and args.output == "json":
            print(json.dumps(_show_document(store, args.instance_id), indent=2, default=str))
            return 0
        if args.command == "show" and args.output == "csv":
            history = [{**e, "EventType": h.type_name(e)}
                       for e in _show_document(store, args.instance_id)["history"]]
            write_rows(sys.stdout, history, HISTORY_COLUMNS, "csv")
            return 0
        lines = _instances(store, args.status) if args.command == "instances" else _show(store, args.instance_id)
    finally:
        store.close()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
