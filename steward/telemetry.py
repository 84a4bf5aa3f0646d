"""Metrics and traces for Application Insights, through OpenTelemetry; every metric is recorded here.

Five instruments, recorded from four activities (one call each):

=====================================  =========  ==========================================================
``steward.protection.outcomes``        counter    protection outcomes, by ``outcome`` (the status) and
                                                  ``resource_type``  (``publish_outcomes``)
``steward.protection.duration``        histogram  seconds from the resource's event to its ``Protected``
                                                  outcome (``publish_outcomes``)
``steward.coverage.percent``           gauge      share of the resources the rules require that are
                                                  protected, by ``subscription_id`` (``audit_evaluate``)
``steward.teardown.items_deleted``     counter    items a teardown deleted, by ``target_type``
                                                  (``teardown_record_report``)
``steward.drill.rto``                  histogram  seconds a drill's restore job took (its report's
                                                  ``rtoSeconds``), by ``workload`` and ``outcome``
                                                  (``drill_record``)
=====================================  =========  ==========================================================

In Azure, :func:`configure_from_env` turns on the Azure Monitor OpenTelemetry distro
(``azure-monitor-opentelemetry``) when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set: the metrics go to the
``customMetrics`` table and the ``steward`` log lines, with their ``correlation_id`` and ``instance_id``, to
``traces`` ("Enable Azure Monitor OpenTelemetry for Python applications", learn.microsoft.com
azure-monitor/app/opentelemetry-enable?tabs=python; ``configure_azure_monitor(connection_string=...,
credential=..., logger_name=...)``). With Entra-only ingestion (the template turns local auth off) the app's
identity signs the telemetry: ``APPLICATIONINSIGHTS_AUTHENTICATION_STRING`` = ``Authorization=AAD;ClientId=<id>``
names it. Without the connection string nothing is exported and recording costs next to nothing (the
OpenTelemetry API's no-op meter). Locally, :func:`use_in_memory` collects the same metrics for the demo summary
and the tests (the SDK's ``InMemoryMetricReader``; no network).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final

from opentelemetry import metrics

from steward.domain.kernel import read_time

if TYPE_CHECKING:
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

CONNECTION_STRING: Final = "APPLICATIONINSIGHTS_CONNECTION_STRING"
AUTHENTICATION_STRING: Final = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"
METER: Final = "backup_steward"
OUTCOMES: Final = "steward.protection.outcomes"
DURATION: Final = "steward.protection.duration"
COVERAGE: Final = "steward.coverage.percent"
ITEMS_DELETED: Final = "steward.teardown.items_deleted"
DRILL_RTO: Final = "steward.drill.rto"
#: The outcome whose time from event to outcome is the "time to protection".
PROTECTED: Final = "Protected"
#: Teardown report effects that deleted something (steward.domain.teardown.DELETING_EFFECTS).
DELETING_EFFECTS: Final = frozenset({"deleted", "unregistered", "removed", "soft-deleted"})

LOG = logging.getLogger("steward.telemetry")
_LOCK = threading.Lock()


class _Instruments:
    def __init__(self, meter: metrics.Meter) -> None:
        self.outcomes = meter.create_counter(OUTCOMES, unit="{outcome}", description="protection outcomes")
        self.duration = meter.create_histogram(
            DURATION, unit="s", description="time from a resource's event to its Protected outcome")
        self.coverage = meter.create_gauge(
            COVERAGE, unit="%", description="required resources that are protected, per subscription")
        self.items_deleted = meter.create_counter(
            ITEMS_DELETED, unit="{item}", description="items teardowns deleted")
        self.drill_rto = meter.create_histogram(
            DRILL_RTO, unit="s", description="time a restore drill's restore job took, start to end")


class _Registry:
    """Where metrics go now: a provider (None: the global one) and the instruments made from it."""

    def __init__(self) -> None:
        self.provider: metrics.MeterProvider | None = None
        self.instruments: _Instruments | None = None


_REGISTRY = _Registry()


def use_meter_provider(provider: metrics.MeterProvider | None) -> None:
    """Record to ``provider`` from now on (None: the global one, which the distro sets)."""
    with _LOCK:
        _REGISTRY.provider, _REGISTRY.instruments = provider, None


def use_in_memory() -> InMemoryMetricReader:
    """Collect every metric in memory (the demo's summary, tests) and return the reader."""
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    use_meter_provider(MeterProvider(metric_readers=[reader]))
    return reader


def _current() -> _Instruments:
    with _LOCK:
        if _REGISTRY.instruments is None:
            provider = _REGISTRY.provider or metrics.get_meter_provider()
            _REGISTRY.instruments = _Instruments(provider.get_meter(METER))
        return _REGISTRY.instruments


def _client_id(authentication: str | None) -> str | None:
    """The managed identity's client id in ``Authorization=AAD;ClientId=<id>`` (None: system-assigned)."""
    parts = dict(p.split("=", 1) for p in (authentication or "").split(";") if "=" in p)
    return parts.get("ClientId") or None


def configure_from_env(env: Mapping[str, str]) -> bool:
    """Turn on Azure Monitor export when ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set; True when on."""
    connection = (env.get(CONNECTION_STRING) or "").strip()
    if not connection:
        return False
    from azure.monitor.opentelemetry import configure_azure_monitor

    from steward.logs import ContextFilter

    credential = None
    authentication = env.get(AUTHENTICATION_STRING)
    if authentication and "aad" in authentication.lower():  # the one client factory builds the credential
        from steward.cloud.clients import managed_identity_credential

        credential = managed_identity_credential(_client_id(authentication))
    configure_azure_monitor(connection_string=connection, credential=credential, logger_name="steward")
    # the distro's handler exports log records as traces: give it the bound fields (correlation id, instance)
    for handler in logging.getLogger("steward").handlers:
        if not getattr(handler, "_steward", False):
            handler.addFilter(ContextFilter())
    use_meter_provider(None)
    LOG.info("Application Insights export on")
    return True


# ---- the recording points ------------------------------------------------------------------------------


def _resource_type(resource_id: str) -> str:
    parts = resource_id.split("/")
    try:
        index = [p.lower() for p in parts].index("providers")
        return f"{parts[index + 1]}/{parts[index + 2]}"
    except (ValueError, IndexError):
        return "unknown"


def record_protections(outcomes: Iterable[Mapping[str, Any]], since: str | None = None,
                       at: str | None = None) -> None:
    """Count outcome records (``ProtectionOutcome.to_record()``); a Protected one adds its time from ``since``
    (the triggering event's ISO time) to ``at`` (the orchestration's time of the outcome; default now) to the
    duration histogram."""
    instruments = _current()
    started = read_time(since)  # leniently: no zone is UTC, what does not parse adds no duration
    moment = read_time(at) or datetime.now(UTC)
    for outcome in outcomes:
        status = str(outcome.get("status") or "unknown")
        resource_type = _resource_type(str(outcome.get("resource_id") or outcome.get("resourceId") or ""))
        instruments.outcomes.add(1, {"outcome": status, "resource_type": resource_type})
        if status == PROTECTED and started is not None:
            instruments.duration.record(max(0.0, (moment - started).total_seconds()),
                                        {"resource_type": resource_type})


def record_coverage(by_subscription: Mapping[str, float]) -> None:
    """Coverage per subscription, as a ratio 0..1 (``CoverageCell.ratio``); recorded as a percentage."""
    instruments = _current()
    for subscription_id, ratio in by_subscription.items():
        instruments.coverage.set(round(100.0 * ratio, 2), {"subscription_id": subscription_id})


def record_teardown(report: Mapping[str, Any]) -> None:
    """Items a finished teardown deleted (its report's ``deleted`` effects), by ``target_type``."""
    instruments = _current()
    counts: dict[str, int] = {}
    for entry in report.get("deleted") or []:
        if isinstance(entry, Mapping) and str(entry.get("effect") or "deleted") in DELETING_EFFECTS:
            kind = str(entry.get("type") or "unknown")
            counts[kind] = counts.get(kind, 0) + 1
    for kind, count in counts.items():
        instruments.items_deleted.add(count, {"target_type": kind})


def record_drill(report: Mapping[str, Any]) -> None:
    """Each drilled resource's restore time (a drill report's result ``rtoSeconds``: the restore job's start to
    end), by ``workload`` and ``outcome``; a result without one (a dry run, a refused restore) records nothing."""
    instruments = _current()
    for result in report.get("results") or []:
        if not isinstance(result, Mapping):
            continue
        seconds = result.get("rtoSeconds")
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
            attributes = {"workload": str(result.get("workload") or "unknown"),
                          "outcome": str(result.get("outcome") or "unknown")}
            instruments.drill_rto.record(seconds, attributes)


# ---- reading (the demo summary, tests) -----------------------------------------------------------------


def snapshot(reader: InMemoryMetricReader) -> dict[str, list[tuple[dict[str, Any], Any]]]:
    """Every metric the reader holds: name -> [(attributes, point)], point a value (counter, gauge) or
    ``{"count", "sum", "max"}`` (histogram)."""
    out: dict[str, list[tuple[dict[str, Any], Any]]] = {}
    data = reader.get_metrics_data()
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    value: Any = getattr(point, "value", None)
                    if value is None:
                        value = {"count": point.count, "sum": point.sum, "max": point.max}  # type: ignore[union-attr]
                    out.setdefault(metric.name, []).append((dict(point.attributes or {}), value))
    return out


def summary_lines(reader: InMemoryMetricReader) -> list[str]:
    """The metrics as the demo prints them: what Application Insights would chart."""
    seen = snapshot(reader)
    lines = []
    outcomes: dict[str, int] = {}
    for attributes, value in seen.get(OUTCOMES, []):
        outcomes[str(attributes.get("outcome"))] = outcomes.get(str(attributes.get("outcome")), 0) + int(value)
    lines.append(f"{OUTCOMES}: " + (", ".join(f"{k} {v}" for k, v in sorted(outcomes.items())) or "none"))
    durations = [v for _, v in seen.get(DURATION, [])]
    count = sum(d["count"] for d in durations)
    if count:
        lines.append(f"{DURATION}: {count} protected, mean {sum(d['sum'] for d in durations) / count:.0f} s, "
                     f"max {max(d['max'] for d in durations):.0f} s")
    else:
        lines.append(f"{DURATION}: none")
    coverage = sorted((str(a.get("subscription_id")), v) for a, v in seen.get(COVERAGE, []))
    lines.append(f"{COVERAGE}: " + (", ".join(f"{s} {v:.1f}%" for s, v in coverage) or "none"))
    deleted = sum(int(v) for _, v in seen.get(ITEMS_DELETED, []))
    lines.append(f"{ITEMS_DELETED}: {deleted}")
    drilled = [v for _, v in seen.get(DRILL_RTO, [])]
    count = sum(d["count"] for d in drilled)
    if count:  # only when drills ran (issue 20 item 7: "drill RTO when drills exist")
        lines.append(f"{DRILL_RTO}: {count} drilled, mean {sum(d['sum'] for d in drilled) / count:.0f} s, "
                     f"max {max(d['max'] for d in drilled):.0f} s")
    return lines
