"""Where reports are kept (audits and teardowns): one port, a blob-storage adapter (Azure Storage / Azurite)
and a local directory adapter (the CLI's default and the fallback when no storage is configured).

Layout in the store: ``latest.json`` and ``latest.html`` (what ``GET /api/audits/latest[.html]`` serves, and
the ``previous`` of the next run), plus ``runs/<UTC timestamp>.json|.html`` for history; a teardown's report is
``<instance>.json|.html`` (``steward.report.teardown``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

from steward.domain.audit import AuditResult, InvalidPreviousResult
from steward.domain.errors import StewardError
from steward.report.html import render_html

LATEST_JSON: Final = "latest.json"
LATEST_HTML: Final = "latest.html"
CONTENT_TYPES: Final = {".json": "application/json", ".html": "text/html; charset=utf-8"}


class ReportStoreError(StewardError):
    """Root of report-store errors."""


class ConflictingWrites(ReportStoreError):
    """A conditional update lost to other writers more times than it tries (see :func:`update`)."""


class ReportStore(Protocol):
    def put(self, name: str, data: bytes, content_type: str) -> None: ...

    def get(self, name: str) -> bytes | None:
        """The stored bytes, or None when there is no such report."""
        ...

    def get_versioned(self, name: str) -> tuple[bytes | None, str | None]:
        """The stored bytes and their version (an ETag), or ``(None, None)`` when there is no such report."""
        ...

    def put_if(self, name: str, data: bytes, content_type: str, *, version: str | None) -> bool:
        """Write only if the stored version is still ``version`` (None: only if nothing is stored). False when
        another writer got there first (blob storage answers 412 to ``If-Match``, 409 to ``If-None-Match: *``)."""
        ...

    def url(self, name: str) -> str:
        """Where the report ``name`` is read from (a ``file:`` URI or the blob's URL)."""
        ...


def _check_name(name: str) -> str:
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in {"", ".", ".."} for p in parts):
        raise ReportStoreError(f"invalid report name {name!r}")
    return name


class LocalReportStore:
    """Reports as files under one directory."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def put(self, name: str, data: bytes, content_type: str) -> None:
        path = self.directory / _check_name(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_bytes(data)
        temporary.replace(path)

    def get(self, name: str) -> bytes | None:
        path = self.directory / _check_name(name)
        return path.read_bytes() if path.is_file() else None

    @staticmethod
    def _version(data: bytes | None) -> str | None:
        return None if data is None else '"' + hashlib.sha256(data).hexdigest()[:32] + '"'

    def get_versioned(self, name: str) -> tuple[bytes | None, str | None]:
        data = self.get(name)
        return data, self._version(data)

    def put_if(self, name: str, data: bytes, content_type: str, *, version: str | None) -> bool:
        """Compare and replace under an exclusive ``flock`` of a lock file beside the report (threads and
        processes of one machine; the version is the content's hash, so an equal rewrite is no change)."""
        path = self.directory / _check_name(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.with_name(f".{path.name}.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                if self._version(self.get(name)) != version:
                    return False
                self.put(name, data, content_type)
                return True
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def url(self, name: str) -> str:
        return (self.directory / _check_name(name)).resolve().as_uri()


class BlobReportStore:
    """Reports as blobs in one container (created on first write)."""

    def __init__(self, container: Any) -> None:
        self._container = container  # azure.storage.blob.ContainerClient
        self._ready = False

    @classmethod
    def from_settings(
        cls, *, account_url: str | None, connection_string: str | None, container: str, credential: Any = None
    ) -> BlobReportStore:
        from steward.cloud.clients import blob_service

        if not (connection_string or account_url):
            raise ReportStoreError("blob report storage needs an account URL or a connection string")
        service = blob_service(account_url=account_url, connection_string=connection_string, credential=credential)
        return cls(service.get_container_client(container))

    def _ensure_container(self) -> None:
        from azure.core.exceptions import ResourceExistsError

        if self._ready:
            return
        with contextlib.suppress(ResourceExistsError):
            self._container.create_container()
        self._ready = True

    def put(self, name: str, data: bytes, content_type: str) -> None:
        from azure.storage.blob import ContentSettings

        self._ensure_container()
        self._container.upload_blob(
            _check_name(name), data, overwrite=True, content_settings=ContentSettings(content_type=content_type)
        )

    def get(self, name: str) -> bytes | None:
        return self.get_versioned(name)[0]

    def get_versioned(self, name: str) -> tuple[bytes | None, str | None]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            downloader = self._container.download_blob(_check_name(name))
            return bytes(downloader.readall()), str(downloader.properties.etag)
        except ResourceNotFoundError:
            return None, None

    def put_if(self, name: str, data: bytes, content_type: str, *, version: str | None) -> bool:
        """Put Blob with ``If-Match: <version>``, or ``If-None-Match: *`` when ``version`` is None (Microsoft:
        "Specifying conditional headers for Blob service operations", learn.microsoft.com/rest/api/storageservices/
        specifying-conditional-headers-for-blob-service-operations). A lost race is 412 Precondition Failed
        (ResourceModifiedError) or, for ``*``, 409 BlobAlreadyExists (ResourceExistsError): False."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
        from azure.storage.blob import ContentSettings

        self._ensure_container()
        condition: dict[str, Any] = ({"match_condition": MatchConditions.IfMissing} if version is None else
                                     {"match_condition": MatchConditions.IfNotModified, "etag": version})
        try:
            self._container.get_blob_client(_check_name(name)).upload_blob(
                data, overwrite=True, content_settings=ContentSettings(content_type=content_type), **condition)
        except (ResourceModifiedError, ResourceExistsError):
            return False
        return True

    def url(self, name: str) -> str:
        return str(self._container.get_blob_client(_check_name(name)).url)


#: how often :func:`update` reads again and retries after losing to another writer
UPDATE_ATTEMPTS: Final = 10


def update(
    store: ReportStore, name: str, change: Callable[[bytes | None], bytes | None], content_type: str, *,
    attempts: int = UPDATE_ATTEMPTS,
) -> bytes | None:
    """Read-modify-write ``name`` without losing another writer's update: read it with its version, ``change``
    the bytes (None: leave it as it is), write only if the version is unchanged, and on a lost race (412) read
    and change again. Returns what is stored after the write. ``change`` must be a pure function of what it is
    given: it runs once per attempt. ConflictingWrites after ``attempts`` lost races."""
    for _ in range(attempts):
        current, version = store.get_versioned(name)
        changed = change(current)
        if changed is None or changed == current:
            return current
        if store.put_if(name, changed, content_type, version=version):
            return changed
    raise ConflictingWrites(f"{name}: {attempts} conditional writes lost to other writers")


@dataclass(frozen=True)
class SavedReport:
    json_name: str
    html_name: str


def save_result(store: ReportStore, result: AuditResult) -> SavedReport:
    """Write the run under ``runs/`` and as ``latest``; returns the run's names."""
    stamp = result.generated_at.strftime("%Y%m%dT%H%M%SZ")
    document = json.dumps(result.to_json(), indent=1, sort_keys=False).encode("utf-8")
    page = render_html(result).encode("utf-8")
    saved = SavedReport(f"runs/{stamp}.json", f"runs/{stamp}.html")
    store.put(saved.json_name, document, CONTENT_TYPES[".json"])
    store.put(saved.html_name, page, CONTENT_TYPES[".html"])
    store.put(LATEST_JSON, document, CONTENT_TYPES[".json"])
    store.put(LATEST_HTML, page, CONTENT_TYPES[".html"])
    return saved


def load_latest(store: ReportStore) -> AuditResult | None:
    """The latest stored run, or None when there is none or it cannot be read (a new trend starts)."""
    data = store.get(LATEST_JSON)
    if data is None:
        return None
    try:
        return AuditResult.from_json(json.loads(data))
    except (ValueError, InvalidPreviousResult):
        return None


#: Where reports go when no blob storage is configured (relative to the working directory).
DEFAULT_LOCAL_DIRECTORY: Final = Path("var") / "reports"


def store_for(
    *,
    account_url: str | None,
    connection_string: str | None,
    container: str,
    credential: Any = None,
    local_directory: Path | None = None,
) -> ReportStore:
    """Blob storage when configured (connection string, e.g. Azurite, or account URL + identity); else a
    local directory."""
    if connection_string or account_url:
        return BlobReportStore.from_settings(
            account_url=account_url, connection_string=connection_string, container=container, credential=credential
        )
    return LocalReportStore(local_directory or DEFAULT_LOCAL_DIRECTORY)
