"""The report store on blob storage, against Azurite (installed from npm into ``var/azurite`` on first use and
started on a free loopback port by this module)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from steward.domain.teardown import TeardownOutcome
from steward.report.store import BlobReportStore, store_for
from steward.report.teardown import build_report, render_html, save_report
from tests import azurite


@pytest.fixture(scope="module")
def blob_connection(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with azurite.running(tmp_path_factory.mktemp("azurite")) as connection:
        yield connection


def test_reports_are_stored_as_json_and_html_blobs(blob_connection: str) -> None:
    from azure.storage.blob import BlobServiceClient

    connection = blob_connection
    report = build_report(
        instance_id="teardown-rsv-1",
        request={"vaultId": "/subscriptions/s/v", "requestedBy": "alice"},
        outcome=TeardownOutcome.DELETED,
        reason="emptied and deleted",
        started_at=None,
        finished_at=None,
        plan=None,
        progress={"deleted": [{"type": "vault", "name": "v", "effect": "deleted"}]},
    ).to_record()
    store = store_for(account_url=None, connection_string=connection, container="teardown-reports")
    assert isinstance(store, BlobReportStore)  # the audit's store: teardown reports take the same precedence
    stored = save_report(store, "teardown-rsv-1", report)
    assert stored.json_url.endswith("/teardown-reports/teardown-rsv-1.json")
    again = save_report(store, "teardown-rsv-1", report)  # overwrites, container already there
    assert again == stored
    container = BlobServiceClient.from_connection_string(connection).get_container_client("teardown-reports")
    saved = json.loads(container.download_blob("teardown-rsv-1.json").readall())
    assert saved == report
    page = container.get_blob_client("teardown-rsv-1.html")
    assert page.get_blob_properties().content_settings.content_type.startswith("text/html")
    assert page.download_blob().readall().decode() == render_html(report)
