"""Conditional writes of the local report store and ``update``, the read-modify-write that loses no update: the
local directory store's version is the content's hash, its compare-and-replace runs under an exclusive ``flock``
(the blob store's, against Azurite: tests/integration/drills/test_leftovers_concurrency.py)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from steward.report.store import ConflictingWrites, LocalReportStore, update


def test_put_if_writes_only_over_the_version_it_read(tmp_path: Path) -> None:
    store = LocalReportStore(tmp_path)
    assert store.get_versioned("a/x.json") == (None, None)
    assert store.put_if("a/x.json", b"1", "application/json", version=None)
    assert not store.put_if("a/x.json", b"2", "application/json", version=None), "it exists now"
    data, version = store.get_versioned("a/x.json")
    assert data == b"1" and version
    assert store.put_if("a/x.json", b"2", "application/json", version=version)
    assert not store.put_if("a/x.json", b"3", "application/json", version=version), "a stale version"
    assert store.get("a/x.json") == b"2"


def test_update_from_many_threads_loses_no_update(tmp_path: Path) -> None:
    store = LocalReportStore(tmp_path)

    def add(value: int) -> None:
        update(store, "list.json", lambda current: json.dumps(
            [*(json.loads(current) if current else []), value]).encode(), "application/json", attempts=200)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(add, range(40)))
    assert sorted(json.loads(store.get("list.json") or b"[]")) == list(range(40))


def test_update_reads_again_after_a_lost_race_and_gives_up_after_its_attempts(tmp_path: Path) -> None:
    store = LocalReportStore(tmp_path)
    calls: list[bytes | None] = []

    def racing(current: bytes | None) -> bytes:
        calls.append(current)
        if len(calls) == 1:  # another writer lands between this read and this write
            store.put("n.json", b"[0]", "application/json")
        return json.dumps([*(json.loads(current) if current else []), 1]).encode()

    assert update(store, "n.json", racing, "application/json") == b"[0, 1]"
    assert calls == [None, b"[0]"]
    assert update(store, "n.json", lambda current: current, "application/json") == b"[0, 1]", "no change: no write"

    def always_late(current: bytes | None) -> bytes:
        store.put("n.json", (current or b"") + b" ", "application/json")
        return b"[]"

    with pytest.raises(ConflictingWrites):
        update(store, "n.json", always_late, "application/json", attempts=3)
