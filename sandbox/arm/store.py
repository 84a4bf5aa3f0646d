"""The resource store: ARM resources as JSON records, keyed case-insensitively by id.

Thread-safe (one re-entrant lock; ``with store.transaction():`` for read-modify-write). Records are the
resource's ARM JSON (``id``, ``name``, ``type``, ``location``, ``tags``, ``properties``, and ``sku``/``kind``/
``identity``/``systemData``/``etag`` as given) plus a private dict per record for sandbox-only state that is
never sent to clients (e.g. soft-delete bookkeeping). Reads return deep copies: mutate, then ``put``.
"""

from __future__ import annotations

import builtins
import copy
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sandbox.arm.ids import id_key, parse_id


class ResourceStore:
    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._records: dict[str, dict[str, Any]] = {}
        self._private: dict[str, dict[str, Any]] = {}
        self.version = 0  # bumped on every change (snapshots, tests)

    @contextmanager
    def transaction(self) -> Iterator[ResourceStore]:
        """Hold the store lock across several calls (read-modify-write without a race)."""
        with self._lock:
            yield self

    # -- single records -------------------------------------------------------------------------
    def get(self, resource_id: str) -> dict[str, Any] | None:
        with self._lock:
            record = self._records.get(id_key(resource_id))
            return copy.deepcopy(record) if record is not None else None

    def exists(self, resource_id: str) -> bool:
        with self._lock:
            return id_key(resource_id) in self._records

    def put(self, resource: dict[str, Any], private: dict[str, Any] | None = None) -> dict[str, Any]:
        """Insert or replace ``resource`` (its ``id`` is the key). ``private`` replaces the private state when given.

        A replaced record keeps the id casing it was created with, as ARM does.
        """
        if "id" not in resource:
            raise ValueError("a stored resource needs an 'id'")
        with self._lock:
            key = id_key(resource["id"])
            existing = self._records.get(key)
            record = copy.deepcopy(resource)
            if existing is not None:
                record["id"] = existing["id"]
            self._records[key] = record
            if private is not None:
                self._private[key] = copy.deepcopy(private)
            else:
                self._private.setdefault(key, {})
            self.version += 1
            return copy.deepcopy(record)

    def delete(self, resource_id: str, *, with_children: bool = True) -> list[dict[str, Any]]:
        """Remove a record (and by default every record under it); returns what was removed, parent first."""
        with self._lock:
            key = id_key(resource_id)
            keys = [key] if key in self._records else []
            if with_children:
                keys += [k for k in self._records if k.startswith(key + "/")]
            removed = [self._records.pop(k) for k in keys]
            for k in keys:
                self._private.pop(k, None)
            if removed:
                self.version += 1
            return removed

    def private(self, resource_id: str) -> dict[str, Any]:
        """A copy of the record's private state ({} if none)."""
        with self._lock:
            return copy.deepcopy(self._private.get(id_key(resource_id), {}))

    def set_private(self, resource_id: str, state: dict[str, Any]) -> None:
        with self._lock:
            key = id_key(resource_id)
            if key not in self._records:
                raise KeyError(resource_id)
            self._private[key] = copy.deepcopy(state)
            self.version += 1

    # -- collections ----------------------------------------------------------------------------
    def children(
        self, parent_id: str, *, resource_type: str | None = None, direct: bool = False
    ) -> list[dict[str, Any]]:
        """Records under ``parent_id`` (by id prefix), optionally of one full type, sorted by id.

        ``direct=True`` keeps only immediate children (one type/name pair below the parent, or a top-level
        resource directly in a group when ``parent_id`` is a group).
        """
        prefix = id_key(parent_id) + "/"
        wanted = resource_type.lower() if resource_type else None
        with self._lock:
            found = []
            for key, record in self._records.items():
                if not key.startswith(prefix):
                    continue
                if wanted is not None and str(record.get("type", "")).lower() != wanted:
                    continue
                if direct:
                    parent = parse_id(record["id"]).parent
                    if parent is None or id_key(parent) != prefix[:-1]:
                        continue
                found.append(copy.deepcopy(record))
        return sorted(found, key=lambda r: id_key(r["id"]))

    def list(self, *, resource_type: str | None = None, subscription_id: str | None = None) -> list[dict[str, Any]]:
        """Every record (optionally of one type, in one subscription), sorted by id."""
        if subscription_id is not None:
            return self.children(f"/subscriptions/{subscription_id}", resource_type=resource_type)
        wanted = resource_type.lower() if resource_type else None
        with self._lock:
            found = [
                copy.deepcopy(r)
                for r in self._records.values()
                if wanted is None or str(r.get("type", "")).lower() == wanted
            ]
        return sorted(found, key=lambda r: id_key(r["id"]))

    def rekey(self, old_prefix: str, new_prefix: str) -> builtins.list[tuple[str, str]]:
        """Rewrite every id equal to or under ``old_prefix`` to start with ``new_prefix`` (moves).

        Returns (old id, new id) pairs. ``id`` fields are rewritten; other references are left as they were
        (Azure does not rewrite references held by other resources either).
        """
        old_key = id_key(old_prefix)
        moved: builtins.list[tuple[str, str]] = []
        with self._lock:
            keys = [k for k in self._records if k == old_key or k.startswith(old_key + "/")]
            for key in keys:
                record = self._records.pop(key)
                private = self._private.pop(key, {})
                old_id = record["id"]
                new_id = "/" + new_prefix.strip("/") + old_id.rstrip("/")[len(old_prefix.rstrip("/")) :]
                record["id"] = new_id
                new_key = id_key(new_id)
                self._records[new_key] = record
                self._private[new_key] = private
                moved.append((old_id, new_id))
            if moved:
                self.version += 1
        return moved

    # -- snapshots ------------------------------------------------------------------------------
    def dump(self) -> dict[str, Any]:
        with self._lock:
            return {
                "records": copy.deepcopy(list(self._records.values())),
                "private": {k: copy.deepcopy(v) for k, v in self._private.items() if v},
            }

    def load(self, snapshot: dict[str, Any]) -> None:
        with self._lock:
            self._records = {id_key(r["id"]): r for r in snapshot.get("records", [])}
            self._private = {k: v for k, v in snapshot.get("private", {}).items() if k in self._records}
            self.version += 1


def write_json_atomically(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w") as handle:
        json.dump(payload, handle, default=str)
    Path(tmp).replace(path)
