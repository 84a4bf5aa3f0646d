"""The blob report store against Azurite (the local Azure Storage emulator) with the real azure-storage-blob
client. Azurite comes from npm (``npm install --prefix var/azurite azurite@3.35.0``); without it this test
is skipped and says so."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from steward.report.store import BlobReportStore, ReportStore, load_latest, save_result, store_for

REPO = Path(__file__).resolve().parents[3]
#: Azurite's public, documented development account key.
KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _binary() -> str | None:
    local = REPO / "var" / "azurite" / "node_modules" / ".bin" / "azurite-blob"
    return str(local) if local.exists() else shutil.which("azurite-blob")


@pytest.fixture(scope="module")
def connection_string(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = _binary()
    if binary is None:
        pytest.skip("Azurite is not installed (npm install --prefix var/azurite azurite@3.35.0)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    process = subprocess.Popen(
        [
            binary,
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--silent",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--inMemoryPersistence",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=tmp_path_factory.mktemp("azurite"),
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and process.poll() is None:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        assert process.poll() is None, f"Azurite exited with {process.returncode}"
        yield (
            f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


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
