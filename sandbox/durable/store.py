"""SQLite persistence of the runner: instances, their history, and the work that is still owed to them.

Every state change of an instance is one transaction: an orchestrator step appends its episode to the
history, consumes the inbox events it replayed and records the work it scheduled (activities, timers,
sub-orchestrations); an activity completion deletes the activity row and puts the completion in the
instance's inbox. A killed process therefore restarts from the last commit: activities that completed
are in the history or the inbox and never run again; activities that had not completed run again.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    instance_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT,
    output TEXT,
    custom_status TEXT,
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    parent_instance_id TEXT,
    parent_execution_id TEXT,
    parent_task_id INTEGER,
    correlation_id TEXT,
    generation INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS history (
    instance_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    event TEXT NOT NULL,
    PRIMARY KEY (instance_id, seq)
);
CREATE TABLE IF NOT EXISTS inbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT,
    event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS inbox_instance ON inbox (instance_id);
CREATE TABLE IF NOT EXISTS activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    task_id INTEGER NOT NULL,
    name TEXT NOT NULL,
    input TEXT
);
CREATE INDEX IF NOT EXISTS activities_instance ON activities (instance_id);
CREATE TABLE IF NOT EXISTS timers (
    instance_id TEXT NOT NULL,
    execution_id TEXT NOT NULL,
    timer_id INTEGER NOT NULL,
    fire_at TEXT NOT NULL,
    PRIMARY KEY (instance_id, execution_id, timer_id)
);
CREATE INDEX IF NOT EXISTS timers_fire_at ON timers (fire_at);
"""

TERMINAL = ("Completed", "Failed", "Terminated")


@dataclass(frozen=True)
class InstanceRecord:
    instance_id: str
    name: str
    execution_id: str
    status: str
    input: str | None
    output: str | None
    custom_status: str | None
    created: str
    updated: str
    parent_instance_id: str | None
    parent_execution_id: str | None
    parent_task_id: int | None
    correlation_id: str | None
    generation: int

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL


@dataclass(frozen=True)
class ActivityWork:
    row_id: int
    instance_id: str
    execution_id: str
    task_id: int
    name: str
    input: str | None


@dataclass(frozen=True)
class TimerWork:
    instance_id: str
    execution_id: str
    timer_id: int
    fire_at: str


class DurableStore:
    """A thread-safe SQLite store; ``transaction()`` gives one atomic unit of work."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        if self.path != ":memory:":
            self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=FULL")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return list(self._conn.execute(sql, args))

    # ---- reads -------------------------------------------------------------------------------------------

    def instance(self, instance_id: str) -> InstanceRecord | None:
        rows = self._query("SELECT * FROM instances WHERE instance_id = ?", (instance_id,))
        return InstanceRecord(**dict(rows[0])) if rows else None

    def instances(self) -> list[InstanceRecord]:
        return [InstanceRecord(**dict(r)) for r in self._query("SELECT * FROM instances ORDER BY created")]

    def history(self, instance_id: str) -> list[dict[str, Any]]:
        rows = self._query("SELECT event FROM history WHERE instance_id = ? ORDER BY seq", (instance_id,))
        return [json.loads(r["event"]) for r in rows]

    def inbox(self, instance_id: str) -> list[tuple[int, str | None, dict[str, Any]]]:
        rows = self._query("SELECT id, execution_id, event FROM inbox WHERE instance_id = ? ORDER BY id",
                           (instance_id,))
        return [(r["id"], r["execution_id"], json.loads(r["event"])) for r in rows]

    def instances_with_inbox(self) -> list[str]:
        return [r["instance_id"] for r in self._query("SELECT DISTINCT instance_id FROM inbox ORDER BY id")]

    def has_inbox(self) -> bool:
        return bool(self._query("SELECT 1 FROM inbox LIMIT 1"))

    def pending_activities(self, after: int = 0) -> list[ActivityWork]:
        """Activity rows not completed, oldest first; ``after``: only rows with a greater id (ids only grow:
        AUTOINCREMENT, and every insert commits under this store's one connection and lock)."""
        rows = self._query("SELECT id AS row_id, instance_id, execution_id, task_id, name, input "
                           "FROM activities WHERE id > ? ORDER BY id", (after,))
        return [ActivityWork(**dict(r)) for r in rows]

    def activity_count(self) -> int:
        return int(self._query("SELECT COUNT(*) AS n FROM activities")[0]["n"])

    def activity_pending(self, row_id: int) -> bool:
        return bool(self._query("SELECT 1 FROM activities WHERE id = ?", (row_id,)))

    def in_flight(self, instance_id: str) -> int:
        rows = self._query("SELECT COUNT(*) AS n FROM activities WHERE instance_id = ?", (instance_id,))
        return int(rows[0]["n"])

    def timers(self, due_by: str | None = None) -> list[TimerWork]:
        """Timers in firing order; ``due_by``: only those firing at or before that ``history.timestamp`` text
        (fixed-width UTC text, so text order is time order)."""
        if due_by is None:
            rows = self._query("SELECT instance_id, execution_id, timer_id, fire_at FROM timers ORDER BY fire_at")
        else:
            rows = self._query("SELECT instance_id, execution_id, timer_id, fire_at FROM timers "
                               "WHERE fire_at <= ? ORDER BY fire_at", (due_by,))
        return [TimerWork(**dict(r)) for r in rows]

    def next_timer(self) -> str | None:
        """The earliest ``fire_at`` of any timer (an index lookup), or None."""
        rows = self._query("SELECT MIN(fire_at) AS fire_at FROM timers")
        return rows[0]["fire_at"] if rows else None

    # ---- writes (inside a transaction) -------------------------------------------------------------------

    @staticmethod
    def put_instance(conn: sqlite3.Connection, record: InstanceRecord) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO instances VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (record.instance_id, record.name, record.execution_id, record.status, record.input, record.output,
             record.custom_status, record.created, record.updated, record.parent_instance_id,
             record.parent_execution_id, record.parent_task_id, record.correlation_id, record.generation),
        )

    @staticmethod
    def append_history(conn: sqlite3.Connection, instance_id: str, events: list[dict[str, Any]]) -> None:
        row = conn.execute("SELECT COALESCE(MAX(seq), -1) FROM history WHERE instance_id = ?",
                           (instance_id,)).fetchone()
        start = int(row[0]) + 1
        conn.executemany("INSERT INTO history VALUES (?,?,?)",
                         [(instance_id, start + i, json.dumps(e)) for i, e in enumerate(events)])

    @staticmethod
    def enqueue(conn: sqlite3.Connection, instance_id: str, execution_id: str | None,
                event: dict[str, Any]) -> None:
        conn.execute("INSERT INTO inbox (instance_id, execution_id, event) VALUES (?,?,?)",
                     (instance_id, execution_id, json.dumps(event)))

    @staticmethod
    def clear_instance_work(conn: sqlite3.Connection, instance_id: str, *, history: bool) -> None:
        conn.execute("DELETE FROM inbox WHERE instance_id = ?", (instance_id,))
        conn.execute("DELETE FROM activities WHERE instance_id = ?", (instance_id,))
        conn.execute("DELETE FROM timers WHERE instance_id = ?", (instance_id,))
        if history:
            conn.execute("DELETE FROM history WHERE instance_id = ?", (instance_id,))
