"""The drill report (issue 17 item 4): the drill's JSON (``drills/<id>.json``) and one self-contained HTML page
(``drills/<id>.html``) in the audit report's look (``steward.report.html``'s style and CSP, ``charts``), with the
measured RTO per resource type over every recorded drill; the history behind the chart is
``drills/rto-history.json``. All written through the one ReportStore. Pure but for ``save_drill_report``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any, Final

from steward.domain.kernel import require_time
from steward.report.charts import RtoSample, rto_lines
from steward.report.html import CSP, PAGE_CSS
from steward.report.store import ReportStore, update

RTO_HISTORY: Final = "drills/rto-history.json"
#: samples kept in the history (the oldest go first)
MAX_HISTORY: Final = 5000
#: result rows listed in the page; the JSON keeps them all
MAX_ROWS: Final = 2000


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def add_to_history(history: Mapping[str, Any] | None, report: Mapping[str, Any]) -> dict[str, Any]:
    """The RTO history with this drill's measured restores added (each result with ``rtoSeconds``), oldest first,
    at most :data:`MAX_HISTORY`; a drill already in it is not added twice (a retried record activity)."""
    samples = [dict(s) for s in (history or {}).get("samples") or []]
    if any(s.get("drillId") == report["id"] for s in samples):
        return {"samples": samples}
    for result in report.get("results") or []:
        if result.get("rtoSeconds") is None:
            continue
        samples.append({"drillId": report["id"], "at": report["startedAt"], "workload": result.get("workload"),
                        "resourceId": result.get("resourceId"), "outcome": result.get("outcome"),
                        "rtoSeconds": float(result["rtoSeconds"])})
    samples.sort(key=lambda s: str(s["at"]))
    return {"samples": samples[-MAX_HISTORY:]}


def rto_series(history: Mapping[str, Any] | None) -> dict[str, list[RtoSample]]:
    """``{workload: [(when, seconds)]}`` from the history, for the chart."""
    series: dict[str, list[RtoSample]] = {}
    for sample in (history or {}).get("samples") or []:
        series.setdefault(str(sample.get("workload")), []).append(
            RtoSample(require_time(str(sample["at"])), float(sample["rtoSeconds"])))
    return series


def _minutes(seconds: Any) -> str:
    return "—" if seconds is None else f"{float(seconds) / 60:.1f} min"


def _checks(result: Mapping[str, Any]) -> str:
    validation = result.get("validation")
    return "—" if not validation else "passed" if validation.get("passed") else "failed"


def _user(result: Mapping[str, Any]) -> str:
    user = result.get("userValidation")
    if not user:
        return "—"
    detail = f": {user['detail']}" if user.get("detail") else ""
    return f"{user.get('result')}{detail}"


def render_drill_html(report: Mapping[str, Any], history: Mapping[str, Any] | None,
                      *, title: str = "Backup Steward — restore drill") -> str:
    """The whole page as text (UTF-8): summary cards, the RTO chart, a row per drilled resource."""
    results: Sequence[Mapping[str, Any]] = report.get("results") or []
    outcomes: Mapping[str, int] = report.get("outcomes") or {}
    measured = [float(r["rtoSeconds"]) for r in results if r.get("rtoSeconds") is not None]
    cards = [
        ("Drilled", str(len(results)), f"{len(report.get('waiting') or [])} waiting"),
        ("Succeeded", str(outcomes.get("Succeeded", 0)), "restored, validated, deleted"),
        ("Not proven", str(len(results) - outcomes.get("Succeeded", 0)), "any other outcome"),
        ("Longest RTO", _minutes(max(measured) if measured else None), "restore job duration"),
        ("Left behind", str(sum(len(r.get("left") or []) for r in results)), "ids the reconciler will delete"),
    ]
    cards_html = "".join(
        f'<div class="card">{_e(name)}<b>{_e(value)}</b><span class="note">{_e(note)}</span></div>'
        for name, value, note in cards
    )
    rows = "".join(
        f'<tr><td class="id">{_e(r.get("resourceId"))}</td><td>{_e(r.get("workload"))}</td>'
        f'<td class="outcome">{_e(r.get("outcome"))}</td><td>{_e(_minutes(r.get("rtoSeconds")))}</td>'
        f'<td>{_e(_minutes((r.get("recoveryPoint") or {}).get("ageSeconds")))}</td>'
        f'<td>{_e(_checks(r))}</td><td>{_e(_user(r))}</td>'
        f'<td>{len(r.get("created") or [])} / {len(r.get("deleted") or [])} / {len(r.get("left") or [])}</td>'
        f'<td>{_e(r.get("reason") or (r.get("error") or {}).get("message") or "")}</td></tr>'
        for r in results[:MAX_ROWS]
    )
    more = (f'<p class="note">{len(results) - MAX_ROWS} more in the JSON report.</p>'
            if len(results) > MAX_ROWS else "")
    table = (
        '<table id="results"><thead><tr><th>Resource</th><th>Type</th><th>Outcome</th><th>RTO</th>'
        "<th>Recovery point age</th><th>Checks</th><th>Validation hook</th><th>Created / deleted / left</th>"
        f"<th>Reason</th></tr></thead><tbody>{rows}</tbody></table>{more}"
        if results else '<p class="note">Nothing was drilled (a dry run, or nothing due).</p>'
    )
    chart = f'<figure>{rto_lines(rto_series(history))}</figure>'
    counts = ", ".join(f"{_e(k)} {_e(v)}" for k, v in sorted(outcomes.items())) or "no results"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{PAGE_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f'<p class="meta">{_e(report["id"])} · started {_e(report.get("startedAt"))} · ended '
        f'{_e(report.get("endedAt"))} · {counts}{" · dry run" if report.get("dryRun") else ""}</p>'
        f'<section class="cards" id="summary">{cards_html}</section>'
        f'<h2>RTO per type over time</h2><section class="charts" id="charts">{chart}</section>'
        f'<h2>Resources</h2><section id="resources">{table}</section>'
        "</body></html>\n"
    )


@dataclass(frozen=True)
class SavedDrillReport:
    json_url: str
    html_url: str


def save_drill_report(store: ReportStore, report: Mapping[str, Any]) -> SavedDrillReport:
    """``drills/<id>.json``, the RTO history with this drill in it, and ``drills/<id>.html`` drawn from both."""
    name = f"drills/{report['id']}"
    store.put(f"{name}.json", json.dumps(report).encode(), "application/json")
    stored = update(store, RTO_HISTORY, lambda current: json.dumps(
        add_to_history(json.loads(current) if current else None, report)).encode(), "application/json")
    history = json.loads(stored) if stored else {"samples": []}
    store.put(f"{name}.html", render_drill_html(report, history).encode(), "text/html; charset=utf-8")
    return SavedDrillReport(store.url(f"{name}.json"), store.url(f"{name}.html"))
