"""``drills/leftovers.json`` is shared: every drill that could not delete something records it there and the
audit's reconciler removes what it deleted. Two drills recording at once must not lose one's update: the write is
conditional (ETag, ``If-Match`` / ``If-None-Match: *``; Microsoft, "Specifying conditional headers for Blob service
operations") and read again on a lost race (412 / 409). Against Azurite (the Azure Storage emulator) with the real
azure-storage-blob client, through the real ``drill_record`` activity and the audit's ``drill_reconcile_leftovers``.

The store's first read of the index is held at a barrier until both recorders have read it, so both start from the
same version: the read-then-put of the code before this change lost the first recorder's entries here every time.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from steward import bootstrap
from steward.cloud.publisher import MemoryPublisher
from steward.domain import drill_flow
from steward.report.store import BlobReportStore, ReportStore, store_for, update
from tests import azurite

LEFTOVERS = drill_flow.LEFTOVERS_BLOB


@pytest.fixture(scope="module")
def connection_string(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with azurite.running(tmp_path_factory.mktemp("azurite")) as connection:
        yield connection


class BarrierOnFirstRead:
    """The blob store, whose first read of ``name`` in each thread waits until ``parties`` threads have read it."""

    def __init__(self, inner: ReportStore, name: str, parties: int) -> None:
        self.inner, self.name = inner, name
        self.barrier = threading.Barrier(parties, timeout=30)
        self.seen = threading.local()
        self.conditional_writes = 0
        self.lost = 0
        self.lock = threading.Lock()

    def _hold(self, name: str) -> None:
        if name == self.name and not getattr(self.seen, "read", False):
            self.seen.read = True
            self.barrier.wait()

    def get(self, name: str) -> bytes | None:
        data = self.inner.get(name)
        self._hold(name)
        return data

    def get_versioned(self, name: str) -> tuple[bytes | None, str | None]:
        answer = self.inner.get_versioned(name)
        self._hold(name)
        return answer

    def put(self, name: str, data: bytes, content_type: str) -> None:
        self.inner.put(name, data, content_type)

    def put_if(self, name: str, data: bytes, content_type: str, *, version: str | None) -> bool:
        written = self.inner.put_if(name, data, content_type, version=version)
        if name == self.name:
            with self.lock:
                self.conditional_writes += 1
                self.lost += not written
        return written

    def url(self, name: str) -> str:
        return self.inner.url(name)


def report(drill_id: str, left: list[str]) -> dict[str, Any]:
    source = f"/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/disks/{drill_id}"
    return {"id": drill_id, "startedAt": "2026-12-01T00:00:00+00:00", "endedAt": "2026-12-01T01:00:00+00:00",
            "results": [{"resourceId": source,
                         "workload": "disk", "rule": "r", "outcome": "Succeeded", "rtoSeconds": 900.0,
                         "created": left, "deleted": [], "left": left, "lifetimeSeconds": 3600}]}


def blob_store(connection: str, container: str) -> BlobReportStore:
    store = store_for(account_url=None, connection_string=connection, container=container)
    assert isinstance(store, BlobReportStore)
    return store


def test_two_drills_recording_leftovers_at_once_both_land(connection_string: str) -> None:
    from activities.drill import drill_record

    inner = blob_store(connection_string, "drills-race")
    store = BarrierOnFirstRead(inner, LEFTOVERS, parties=2)
    bootstrap.use(report_store=store, publisher=MemoryPublisher())
    try:
        reports = [report("drill-a", ["/disk-a1", "/disk-a2"]), report("drill-b", ["/disk-b1"])]
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(lambda r: drill_record({"report": r}), reports))
    finally:
        bootstrap.use()
    index = json.loads(inner.get(LEFTOVERS) or b"{}")
    assert sorted((e["drillId"], tuple(e["ids"])) for e in index["entries"]) == [
        ("drill-a", ("/disk-a1", "/disk-a2")), ("drill-b", ("/disk-b1",))]
    # both started from "no index": one created it (If-None-Match: *), the other lost (409), read again, won
    assert store.lost == 1 and store.conditional_writes == 3
    # the RTO history both drills share kept both samples as well
    history = json.loads(inner.get("drills/rto-history.json") or b"{}")
    assert sorted(s["drillId"] for s in history["samples"]) == ["drill-a", "drill-b"]


def test_a_drill_recording_while_the_reconciler_rewrites_the_index_keeps_its_entry(connection_string: str) -> None:
    """The reconciler removes what it deleted from the index as it is at its write, not as it read it: here a
    drill records a leftover just after the reconciler read the index (the store runs that drill's update inside
    the reconciler's first read); the code before this change wrote its stale copy back and lost it."""
    import activities.audit as audit_activities
    from activities.audit import drill_reconcile_leftovers

    inner = blob_store(connection_string, "drills-reconcile")
    old = drill_flow.add_leftovers(None, report("drill-old", ["/gone-disk"]))
    inner.put(LEFTOVERS, json.dumps(old).encode(), "application/json")

    def record_meanwhile() -> None:
        update(inner, LEFTOVERS, lambda current: json.dumps(drill_flow.add_leftovers(
            json.loads(current) if current else None, report("drill-new", ["/new-disk"]))).encode(),
            "application/json")

    class RecorderInTheGap(BarrierOnFirstRead):
        def _hold(self, name: str) -> None:
            if name == self.name and not getattr(self.seen, "read", False):
                self.seen.read = True
                record_meanwhile()

    class NothingExists:
        def tags_of(self, resource_id: str) -> None:
            return None

    store = RecorderInTheGap(inner, LEFTOVERS, parties=1)
    original = audit_activities.DrillOps
    audit_activities.DrillOps = lambda _clients: NothingExists()  # type: ignore[assignment,misc,return-value]
    bootstrap.use(report_store=store, publisher=MemoryPublisher())
    try:
        reconciled = drill_reconcile_leftovers({"now": "2026-12-02T00:00:00+00:00"})
    finally:
        audit_activities.DrillOps = original  # type: ignore[misc]
        bootstrap.use()
    assert reconciled["leftovers"] == [{"id": "/gone-disk", "drillId": "drill-old",
                                        "expiredAt": "2026-12-01T01:00:00+00:00", "effect": "gone"}]
    index = json.loads(inner.get(LEFTOVERS) or b"{}")
    assert [(e["drillId"], e["ids"]) for e in index["entries"]] == [("drill-new", ["/new-disk"])]


def test_put_if_on_azurite_answers_the_versions_azure_does(connection_string: str, tmp_path: Path) -> None:
    store = blob_store(connection_string, "drills-versions")
    assert store.get_versioned("x.json") == (None, None)
    assert store.put_if("x.json", b"1", "application/json", version=None)
    assert not store.put_if("x.json", b"2", "application/json", version=None), "If-None-Match: * on an existing blob"
    data, version = store.get_versioned("x.json")
    assert data == b"1" and version
    assert store.put_if("x.json", b"2", "application/json", version=version)
    assert not store.put_if("x.json", b"3", "application/json", version=version), "If-Match on a stale ETag"
    assert store.get("x.json") == b"2"
