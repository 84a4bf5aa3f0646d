"""What the composition root builds from the one ``Settings``: the report store audits and teardowns share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from steward.report.store import BlobReportStore, LocalReportStore
from steward.settings import Settings
from steward.teardown import composition
from tests import azurite

#: Azurite's development account on a port nothing listens on: nothing connects while the store is built.
AZURITE = azurite.connection_string(10000)


@pytest.fixture(autouse=True)
def _no_injection() -> Iterator[None]:
    yield
    composition.use()


def test_teardown_reports_go_where_audit_reports_go_by_default() -> None:
    composition.use(settings=Settings())
    store = composition.report_store()
    assert isinstance(store, LocalReportStore) and store.directory == Path("var") / "reports"


def test_the_reports_directory_setting_is_used_when_no_blob_storage_is_configured(tmp_path: Path) -> None:
    composition.use(settings=Settings(reports_dir=str(tmp_path)))
    store = composition.report_store()
    assert isinstance(store, LocalReportStore) and store.directory == tmp_path


def test_configured_blob_storage_wins_over_the_local_directory(tmp_path: Path) -> None:
    """The audit's precedence (``steward.report.store.store_for``): blob storage first."""
    composition.use(settings=Settings(reports_dir=str(tmp_path), reports_connection_string=AZURITE,
                                      reports_container="steward-reports"))
    store = composition.report_store()
    assert isinstance(store, BlobReportStore)
    assert store.url("t-1.json") == "http://127.0.0.1:10000/devstoreaccount1/steward-reports/t-1.json"
