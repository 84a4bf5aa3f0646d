"""The blob report store against Azurite (the local Azure Storage emulator) with the real azure-storage-blob
client. Azurite comes from npm (``npm install --prefix var/azurite azurite@3.35.0``); without it this test
is skipped and says so."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from steward.report.store import BlobReportStore, ReportStore, load_latest, save_result, store_for
from tests import azurite

REPO = Path(__file__).resolve().parents[3]
#: Azurite's public, documented development account key.
@pytest.fixture(scope="module")
def connection_string(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with azurite.running(tmp_path_factory.mktemp("azurite")) as connection:
        yield connection


def test_blob_store_round_trip_on_azurite(connection_string: str) -> None:
    from datetime import UTC, datetime

    from steward.domain.audit import EstateInventory, Expectation, UniformExpectations, audit

    store: ReportStore = store_for(account_url=None, connection_string=connection_string, container="reports-test")
    assert isinstance(store, BlobReportStore)
    assert store.get("latest.json") is None  # container created lazily; a missing blob is None
    result = audit(
        EstateInventory(("s",)), UniformExpectations(Expectation(True, "r")), datetime(2026, 11, 25, tzinfo=UTC)
    )
    saved = save_result(store, result)
    assert store.get(saved.html_name) is not None
    loaded = load_latest(store)
    assert loaded is not None and loaded.generated_at == result.generated_at
    from azure.storage.blob import BlobServiceClient

    blob = BlobServiceClient.from_connection_string(connection_string).get_blob_client("reports-test", "latest.html")
    assert blob.get_blob_properties().content_settings.content_type == "text/html; charset=utf-8"
