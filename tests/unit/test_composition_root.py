"""What the composition root (``steward.bootstrap``) builds from the one ``Settings``: the report store audits
and teardowns share, and injections that reach the whole app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from steward import bootstrap
from steward.report.store import BlobReportStore, LocalReportStore
from steward.settings import Settings
from tests import azurite

#: Azurite's development account on a port nothing listens on: nothing connects while the store is built.
AZURITE = azurite.connection_string(10000)


@pytest.fixture(autouse=True)
def _no_injection() -> Iterator[None]:
    yield
    bootstrap.use()


def test_teardown_reports_go_where_audit_reports_go_by_default() -> None:
    bootstrap.use(settings=Settings())
    store = bootstrap.report_store()
    assert isinstance(store, LocalReportStore) and store.directory == Path("var") / "reports"


def test_the_reports_directory_setting_is_used_when_no_blob_storage_is_configured(tmp_path: Path) -> None:
    bootstrap.use(settings=Settings(reports_dir=str(tmp_path)))
    store = bootstrap.report_store()
    assert isinstance(store, LocalReportStore) and store.directory == tmp_path


def test_configured_blob_storage_wins_over_the_local_directory(tmp_path: Path) -> None:
    """The audit's precedence (``steward.report.store.store_for``): blob storage first."""
    bootstrap.use(
        settings=Settings(
            reports_dir=str(tmp_path), reports_connection_string=AZURITE, reports_container="steward-reports"
        )
    )
    store = bootstrap.report_store()
    assert isinstance(store, BlobReportStore)
    assert store.url("t-1.json") == "http://127.0.0.1:10000/devstoreaccount1/steward-reports/t-1.json"


def test_injected_settings_are_the_whole_apps_until_removed(monkeypatch: pytest.MonkeyPatch) -> None:
    from steward.cloud.publisher import MemoryPublisher, NullPublisher

    monkeypatch.delenv("STEWARD_EVENTS_TOPIC_ENDPOINT", raising=False)
    monkeypatch.setenv("STEWARD_MAX_PARALLEL_WRITES", "5")
    bootstrap.reset()
    injected = Settings(arm_endpoint="https://arm.example", max_parallel_writes=3, teardown_four_eyes=False)
    events = MemoryPublisher()
    bootstrap.use(settings=injected, publisher=events)
    bootstrap.reset()  # a reset forgets what was built from the environment, not what was injected
    assert bootstrap.settings() is injected
    assert bootstrap.publisher() is events and bootstrap.publisher_or_null() is events
    assert bootstrap.clients().target.arm_endpoint == "https://arm.example"  # built from the injected settings
    bootstrap.use()
    assert bootstrap.settings().max_parallel_writes == 5
    assert isinstance(bootstrap.publisher(), NullPublisher)
    bootstrap.reset()


def test_each_modelled_app_instance_builds_its_own_clients_pacer_and_arm_cache() -> None:
    """Scale-out (issue 15 item 4): the local runner makes each of its worker groups one app instance
    (``enter_instance``); like separate processes, they share no clients, ARM pacer or ARM cache. A thread that
    entered no instance (Azure: the one process) keeps the process-wide ones."""
    import threading

    bootstrap.use(settings=Settings(arm_endpoint="https://arm.example"))
    seen: dict[str, tuple[object, object, object]] = {}

    def as_instance(index: int | None, name: str) -> None:
        if index is not None:
            bootstrap.enter_instance(index)
        clients = bootstrap.clients()
        assert bootstrap.clients() is clients  # built once per instance
        seen[name] = (clients, clients.pacer, bootstrap.arm_cache())

    for index, name in ((0, "a"), (1, "b"), (1, "b-again"), (None, "process")):
        thread = threading.Thread(target=as_instance, args=(index, name))
        thread.start()
        thread.join()
    as_instance(None, "main")
    assert seen["b"] == seen["b-again"]  # the same instance in another thread: the same state
    assert seen["process"] == seen["main"]
    for part in range(3):
        assert len({id(seen[name][part]) for name in ("a", "b", "main")}) == 3, part
    assert seen["a"][0].target.pacing_instance == "instance-0"  # type: ignore[attr-defined]
    assert seen["main"][0].target.pacing_instance == ""  # type: ignore[attr-defined]
