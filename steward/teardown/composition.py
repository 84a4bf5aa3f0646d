"""Where the teardown's activities and HTTP routes get their adapters: from the shared composition root
(``steward.bootstrap``, which reads the settings once and caches the SDK clients), or injected by local runs
and tests with :func:`use`. Nothing is cached here, so a ``bootstrap.reset()`` is followed at once."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from steward.cloud.publisher import NullPublisher, OutcomePublisher
from steward.cloud.teardown_ops import TeardownOps
from steward.report.store import ReportStore, store_for
from steward.settings import Settings

_LOCK = threading.Lock()
_overrides: dict[str, Any] = {}


def use(
    *,
    ops: TeardownOps | None = None,
    settings: Settings | None = None,
    report_store: ReportStore | None = None,
    publisher: OutcomePublisher | None = None,
) -> None:
    """Inject adapters (None removes an injection)."""
    with _LOCK:
        for key, value in (("ops", ops), ("settings", settings), ("store", report_store), ("publisher", publisher)):
            if value is None:
                _overrides.pop(key, None)
            else:
                _overrides[key] = value


def _get(key: str, build: Any) -> Any:
    with _LOCK:
        if key in _overrides:
            return _overrides[key]
    return build()


def settings() -> Settings:
    def build() -> Settings:
        from steward import bootstrap

        return bootstrap.settings()

    result: Settings = _get("settings", build)
    return result


def ops() -> TeardownOps:
    def build() -> TeardownOps:
        from steward import bootstrap

        return TeardownOps(bootstrap.clients())

    result: TeardownOps = _get("ops", build)
    return result


def report_store() -> ReportStore:
    def build() -> ReportStore:
        from steward import bootstrap

        # the audit's precedence: blob storage when configured, else STEWARD_REPORTS_DIR, else var/reports
        current = settings()
        return store_for(
            account_url=current.reports_account_url,
            connection_string=current.reports_connection_string,
            container=current.reports_container,
            credential=bootstrap.clients().credential if current.reports_account_url else None,
            local_directory=Path(current.reports_dir) if current.reports_dir else None,
        )

    result: ReportStore = _get("store", build)
    return result


def publisher() -> OutcomePublisher:
    def build() -> OutcomePublisher:
        try:
            from steward import bootstrap

            return bootstrap.publisher()
        except Exception:  # noqa: BLE001 - no publisher configured is not a teardown failure
            return NullPublisher()

    result: OutcomePublisher = _get("publisher", build)
    return result
