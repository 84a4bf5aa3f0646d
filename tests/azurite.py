"""Azurite, the Azure Storage emulator, for the tests that store reports in blob storage.

``make test`` installs it once (npm, into ``var/azurite``); a direct pytest run installs it the same way on
first use, so the blob-store tests run everywhere rather than skip.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Final

REPO: Final = Path(__file__).resolve().parents[1]
VERSION: Final = "3.37.0"  # keep in step with the Makefile's AZURITE_VERSION
PREFIX: Final = REPO / "var" / "azurite"
BINARY: Final = PREFIX / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT: Final = "devstoreaccount1"
#: Azurite's documented development account key (public, not a secret)
KEY: Final = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def binary() -> Path:
    """The azurite-blob executable, installed from npm into var/azurite when missing."""
    if BINARY.exists():
        return BINARY
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is needed to install Azurite for the blob-store tests (apt-get install npm)")
    PREFIX.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [npm, "install", "--prefix", str(PREFIX), "--no-audit", "--no-fund", "--silent", f"azurite@{VERSION}"],
        check=True,
        timeout=600,
        capture_output=True,
    )
    return BINARY


def connection_string(port: int) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={KEY};"
        f"BlobEndpoint=http://127.0.0.1:{port}/{ACCOUNT};"
    )


@contextmanager
def running(location: Path) -> Iterator[str]:
    """A fresh Azurite blob service on a free loopback port; yields its connection string."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    log_path = location / "azurite.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [str(binary()), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--location", str(location),
             "--silent", "--skipApiVersionCheck", "--loose", "--disableTelemetry"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 90  # node's start took over 30 s on a 2-core machine at load 8
            while True:
                with socket.socket() as probe:
                    if probe.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Azurite did not start (exit code {process.poll()}): {log_path.read_text()[-2000:]}"
                    )
                time.sleep(0.1)
            yield connection_string(port)
        finally:
            process.kill()  # its data lives in a temporary folder; a graceful stop waits for idle keep-alives
            process.wait(timeout=10)
