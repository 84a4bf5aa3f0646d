"""The teardown's record: the final report (JSON) and its HTML page, kept in the app's one report store.

``build_report`` (the :class:`TeardownReport` record) and ``render_html`` (of its record) are pure (the orchestrator
builds the report deterministically).
:func:`save_report` writes both through :class:`steward.report.store.ReportStore`, the store audit reports use
(blob storage when configured, else a local directory), as ``<name>.json`` and ``<name>.html``.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from steward.domain.teardown import TeardownOutcome
from steward.domain.teardown.results import ReportLinks, TeardownReport
from steward.report.store import CONTENT_TYPES, ReportStore, ReportStoreError

REPORT_VERSION: Final = 1
#: How the report's ``requestedBy`` was established, by request source: the HTTP caller the route verified, the
#: object id ARM signed into the event's claims, or what a custom event's sender wrote (not verified).
_REQUESTER_IDENTITY: Final = {
    "http": "verified: the HTTP caller, or the requester of the plan approved over HTTP",
    "event": "caller ARM named in the event's claims",
    "custom-event": "declared in a custom event (not verified)",
}


def build_report(
    *,
    instance_id: str,
    request: Mapping[str, Any],
    outcome: TeardownOutcome,
    reason: str,
    started_at: str | None,
    finished_at: str | None,
    plan: Mapping[str, Any] | None,
    progress: Mapping[str, Any] | None,
    remaining: Sequence[Mapping[str, Any]] = (),
    restored: Sequence[Mapping[str, Any]] = (),
    approved_by: str | None = None,
    confirmed_by: str | None = None,
) -> TeardownReport:
    """The one report record every teardown ends with (also the orchestration's output)."""
    progress = progress or {}
    return TeardownReport(
        version=REPORT_VERSION,
        instance_id=instance_id,
        vault_id=request.get("vaultId"),
        outcome=outcome,
        reason=reason,
        requested_by=request.get("requestedBy"),
        requester_identity=_REQUESTER_IDENTITY.get(str(request.get("source")), "unknown"),
        approved_by=approved_by,
        # four eyes on a custom-event request: the verified principal who confirmed it (the first approval)
        confirmed_by=confirmed_by,
        source=request.get("source"),
        correlation_id=request.get("correlationId"),
        requested_at=request.get("requestedAt"),
        started_at=started_at,
        finished_at=finished_at,
        dry_run=request.get("dryRun"),
        approved_fingerprint=request.get("approvedFingerprint"),
        fingerprint=(plan or {}).get("fingerprint"),
        plan=dict(plan) if plan else None,
        steps=tuple(progress.get("steps") or []),
        deleted=tuple(progress.get("deleted") or []),
        changed_settings=tuple(progress.get("changedSettings") or []),
        restored_settings=tuple(dict(r) for r in restored),
        remaining=tuple(dict(r) for r in remaining),
        last_error=progress.get("lastError"),
    )


_STYLE: Final = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem;color:#1b1f24;background:#fff}
h1{font-size:1.4rem;margin:0 0 .3rem}h2{font-size:1.1rem;margin:1.6rem 0 .5rem}
table{border-collapse:collapse;width:100%;margin:.4rem 0}th,td{border:1px solid #d0d7de;padding:.3rem .5rem;
text-align:left;vertical-align:top}th{background:#f6f8fa}code{font-size:12px;word-break:break-all}
.outcome{display:inline-block;padding:.15rem .6rem;border-radius:1rem;font-weight:600;background:#eef}
.deleted{background:#dafbe1}.blocked,.failed,.cancelled,.refused{background:#ffebe9}.planned,.replanned{background:#fff8c5}
.muted{color:#57606a}
"""


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[Any]], empty: str) -> str:
    if not rows:
        return f'<p class="muted">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def render_html(report: Mapping[str, Any]) -> str:
    """A self-contained page (no script, no network: inline style and a strict CSP)."""
    outcome = str(report.get("outcome") or "")
    plan = report.get("plan") or {}
    facts = [
        ("Vault", report.get("vaultId")),
        ("Requested by", report.get("requestedBy")),
        ("Requester identity", report.get("requesterIdentity")),
        ("Confirmed by", report.get("confirmedBy")),
        ("Approved by", report.get("approvedBy")),
        ("Source", report.get("source")),
        ("Requested at", report.get("requestedAt")),
        ("Started", report.get("startedAt")),
        ("Finished", report.get("finishedAt")),
        ("Plan fingerprint", report.get("fingerprint")),
        ("Approved fingerprint", report.get("approvedFingerprint")),
        ("Correlation id", report.get("correlationId")),
        ("Instance", report.get("instanceId")),
    ]
    facts_html = "".join(f"<tr><th>{_e(k)}</th><td><code>{_e(v)}</code></td></tr>" for k, v in facts)
    steps = [
        (
            s.get("kind"),
            s.get("done"),
            s.get("total"),
            s.get("failed"),
            s.get("outcome") or "not run",
            s.get("finishedAt"),
        )
        for s in report.get("steps") or []
    ]
    planned = [
        (s.get("kind"), s.get("count"), "yes" if s.get("destructive") else "no", s.get("waitUntil") or "")
        for s in plan.get("steps") or []
    ]
    blockers = [
        (b.get("kind"), b.get("reason"), b.get("actionNeeded"), b.get("until") or "")
        for b in plan.get("blockers") or []
    ]
    deleted = [
        (d.get("type"), d.get("name"), d.get("effect"), d.get("purgeAt") or "", d.get("id"))
        for d in report.get("deleted") or []
    ]
    remaining = [(r.get("type"), r.get("name"), r.get("reason"), r.get("id")) for r in report.get("remaining") or []]
    settings = [(c.get("setting"), c.get("from"), c.get("to")) for c in report.get("changedSettings") or []]
    restored = [(c.get("setting"), c.get("to"), c.get("effect")) for c in report.get("restoredSettings") or []]
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta http-equiv=Content-Security-Policy content=\"default-src 'none'; style-src 'unsafe-inline'\">"
        f"<title>Teardown report - {_e(report.get('vaultId'))}</title><style>{_STYLE}</style></head><body>"
        f'<h1>Vault teardown report</h1><p><span class="outcome {_e(outcome)}">{_e(outcome)}</span> '
        f"{_e(report.get('reason'))}</p>"
        f"<table>{facts_html}</table>"
        "<h2>Blockers</h2>"
        + _table(("kind", "reason", "action needed", "until"), blockers, "None.")
        + "<h2>Plan</h2>"
        + _table(("step", "targets", "destructive", "wait until"), planned, "No step planned.")
        + "<h2>Progress</h2>"
        + _table(("step", "done", "total", "failed", "outcome", "finished"), steps, "Nothing ran.")
        + "<h2>Settings turned off</h2>"
        + _table(("setting", "from", "to"), settings, "None.")
        + "<h2>Settings restored</h2>"
        + _table(("setting", "value", "effect"), restored, "None.")
        + "<h2>Deleted, removed or unregistered</h2>"
        + _table(("type", "name", "effect", "purge at", "id"), deleted, "Nothing.")
        + "<h2>What remains, and why</h2>"
        + _table(("type", "name", "reason", "id"), remaining, "Nothing remains.")
        + (f"<h2>Last error</h2><p><code>{_e(report.get('lastError'))}</code></p>" if report.get("lastError") else "")
        + "</body></html>"
    )


def _safe_name(name: str) -> str:
    cleaned = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in name)[:200]
    if not cleaned.strip(".-"):
        raise ReportStoreError(f"{name!r} is not usable as a report name")
    return cleaned


def save_report(store: ReportStore, name: str, report: Mapping[str, Any]) -> ReportLinks:
    """Write the report as ``<name>.json`` and ``<name>.html`` (overwriting: the activity may run again)."""
    base = _safe_name(name)
    json_name, html_name = f"{base}.json", f"{base}.html"
    store.put(json_name, json.dumps(report, indent=2, sort_keys=True).encode("utf-8"), CONTENT_TYPES[".json"])
    store.put(html_name, render_html(report).encode("utf-8"), CONTENT_TYPES[".html"])
    return ReportLinks(json_url=store.url(json_name), html_url=store.url(html_name))
