"""The report store on blob storage, against Azurite (installed from npm into ``var/azurite`` on first use and
started on a free loopback port by this module)."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from steward.domain.teardown import TeardownOutcome
from steward.teardown_report import BlobReportStore, build_report, render_html

REPO = Path(__file__).resolve().parents[3]
AZURITE_VERSION = "3.37.0"
PREFIX = REPO / "var" / "azurite"
BINARY = PREFIX / "node_modules" / ".bin" / "azurite-blob"
#: Azurite's documented development account (public, not a secret)
ACCOUNT = "devstoreaccount1"
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _azurite() -> Path:
    if BINARY.exists():
        return BINARY
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: cannot install Azurite")
    PREFIX.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--prefix", str(PREFIX), "--no-audit", "--no-fund", "--silent", f"azurite@{AZURITE_VERSION}"],
        check=True,
        timeout=600,
        capture_output=True,
    )
    return BINARY


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def blob_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = _azurite()
    port = _free_port()
    location = tmp_path_factory.mktemp("azurite")
    log = (location / "azurite.log").open("w")
    process = subprocess.Popen(
        [
            str(binary),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(location),
            "--silent",
            "--skipApiVersionCheck",
            "--loose",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Azurite did not start: {(location / 'azurite.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/{ACCOUNT}"
    finally:
        process.kill()  # its data lives in a temporary folder; a graceful stop waits for idle keep-alives
        process.wait(timeout=10)
        log.close()


def test_reports_are_stored_as_json_and_html_blobs(blob_endpoint: str) -> None:
    from azure.storage.blob import BlobServiceClient

    connection = f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};BlobEndpoint={blob_endpoint};"
    report = build_report(
        instance_id="teardown-rsv-1",
        request={"vaultId": "/subscriptions/s/v", "requestedBy": "alice"},
        outcome=TeardownOutcome.DELETED,
        reason="emptied and deleted",
        started_at=None,
        finished_at=None,
        plan=None,
        progress={"deleted": [{"type": "vault", "name": "v", "effect": "deleted"}]},
    )
    store = BlobReportStore("teardown-reports", connection_string=connection)
    stored = store.save("teardown-rsv-1", report)
    assert stored.json_url.endswith("/teardown-reports/teardown-rsv-1.json")
    again = store.save("teardown-rsv-1", report)  # overwrites, container already there
    assert again == stored
    container = BlobServiceClient.from_connection_string(connection).get_container_client("teardown-reports")
    saved = json.loads(container.download_blob("teardown-rsv-1.json").readall())
    assert saved == report
    page = container.get_blob_client("teardown-rsv-1.html")
    assert page.get_blob_properties().content_settings.content_type.startswith("text/html")
    assert page.download_blob().readall().decode() == render_html(report)
