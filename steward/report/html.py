"""The audit as one self-contained HTML page: inline CSS, inline SVG charts, no script, no network."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from html import escape
from typing import Final

from steward.domain.audit import CONTROLS, AuditResult, CoverageCell, Finding, Severity
from steward.report.charts import (
    SEVERITY_COLOURS,
    CoverageBar,
    TrendSample,
    coverage_bars,
    severity_columns,
    trend_lines,
)

#: Findings listed in the page; the rest are counted and left to the JSON output.
MAX_ROWS: Final = 2000

#: No script, no fetch, no frame, no form: the page can only show what is in it.
CSP: Final = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"

_CSS: Final = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:24px;color:#212529;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #dee2e6}
.meta{color:#495057;font-size:13px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{border:1px solid #dee2e6;border-radius:6px;padding:10px 14px;min-width:110px}
.card b{display:block;font-size:22px}
.charts{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{border-bottom:1px solid #e9ecef;padding:5px 6px;text-align:left;vertical-align:top}
th{background:#f8f9fa}
td.id{font-family:ui-monospace,monospace;font-size:12px;word-break:break-all}
.sev{color:#fff;border-radius:3px;padding:1px 6px;font-size:12px;white-space:nowrap}
.new{background:#1971c2;color:#fff;border-radius:3px;padding:0 4px;font-size:11px;margin-left:4px}
.note{color:#868e96;font-size:13px}
"""

#: the page style every report shares (the audit's; the drill report reuses it)
PAGE_CSS: Final = _CSS


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _badge(severity: Severity) -> str:
    return f'<span class="sev" style="background:{SEVERITY_COLOURS[severity.value]}">{_e(severity.value)}</span>'


def _bars(cells: Mapping[str, CoverageCell]) -> list[CoverageBar]:
    return [CoverageBar(name, cell.required_protected, cell.required) for name, cell in sorted(cells.items())]


def _finding_rows(findings: Sequence[Finding], new_ids: Iterable[str] = ()) -> str:
    fresh = set(new_ids)
    rows = []
    for finding in findings[:MAX_ROWS]:
        new = '<span class="new">new</span>' if finding.id in fresh else ""
        details = "; ".join(f"{_e(k)}: {_e(v)}" for k, v in sorted(finding.details.items()))
        rows.append(
            "<tr>"
            f"<td>{_badge(finding.severity)}{new}</td>"
            f'<td title="{_e(finding.control.title)}">{_e(finding.control_id)}</td>'
            f'<td class="id">{_e(finding.resource_id)}</td>'
            f"<td>{_e(finding.why)}<div class=note>{details}</div></td>"
            f"<td>{_e(finding.fix)}</td>"
            "</tr>"
        )
    more = len(findings) - MAX_ROWS
    tail = f'<p class="note">{more} more findings are in the JSON output.</p>' if more > 0 else ""
    head = "<tr><th>Severity</th><th>Control</th><th>Resource</th><th>Why</th><th>Fix</th></tr>"
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>{tail}"


def render_html(result: AuditResult, *, title: str = "Backup Steward — estate audit") -> str:
    """The whole page as text (UTF-8)."""
    by_severity = result.by_severity()
    total = result.coverage.total
    cards = [
        ("Coverage", f"{total.ratio:.0%}", f"{total.required_protected} of {total.required} required"),
        ("Resources", str(total.resources), f"{len(result.subscriptions)} subscriptions"),
        ("Findings", str(len(result.findings)), f"{len(result.new_finding_ids)} new, {len(result.resolved)} resolved"),
        *[(s.value.capitalize(), str(by_severity[s.value]), "findings") for s in Severity],
    ]
    cards_html = "".join(
        f'<div class="card">{_e(name)}<b>{_e(value)}</b><span class="note">{_e(note)}</span></div>'
        for name, value, note in cards
    )
    trend = [TrendSample(p.generated_at, p.coverage_ratio, sum(p.findings_by_severity.values())) for p in result.trend]
    charts = "".join(
        f"<figure>{svg}</figure>"
        for svg in (
            coverage_bars(
                "coverage-by-subscription", "Coverage by subscription", _bars(result.coverage.by_subscription)
            ),
            coverage_bars("coverage-by-region", "Coverage by region", _bars(result.coverage.by_region)),
            coverage_bars("coverage-by-type", "Coverage by resource type", _bars(result.coverage.by_type)),
            severity_columns(by_severity),
            trend_lines(trend),
        )
    )
    controls = "".join(
        f"<tr><td>{_e(c.id)}</td><td>{_badge(c.severity)}</td><td><b>{_e(c.title)}</b><br>{_e(c.description)}</td>"
        f"<td>{_e(c.fix)}</td></tr>"
        for c in CONTROLS.values()
    )
    resolved = (
        _finding_rows(result.resolved) if result.resolved else '<p class="note">Nothing resolved since last run.</p>'
    )
    findings = (
        _finding_rows(result.findings, result.new_finding_ids)
        if result.findings
        else '<p class="note">No findings: the estate matches the rules.</p>'
    )
    counts = ", ".join(f"{_e(k)} {_e(v)}" for k, v in sorted(result.counts.items()))
    generated = result.generated_at.strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)}</h1>"
        f'<p class="meta">Generated {_e(generated)} · {counts} · schema {_e(result.to_json()["schemaVersion"])}</p>'
        f'<section class="cards" id="summary">{cards_html}</section>'
        f'<h2>Charts</h2><section class="charts" id="charts">{charts}</section>'
        f'<h2>Findings</h2><section id="findings">{findings}</section>'
        f'<h2>Resolved since the previous run</h2><section id="resolved">{resolved}</section>'
        "<h2>Controls</h2>"
        '<table id="controls"><thead><tr><th>Id</th><th>Severity</th><th>Control</th><th>Fix</th></tr></thead>'
        f"<tbody>{controls}</tbody></table>"
        "</body></html>\n"
    )
