"""Plain-text tables for a terminal. Values from Azure are stripped of control characters (a tag value
carrying an ANSI escape must not repaint the operator's terminal)."""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence

from steward.domain.audit import AuditResult, CoverageCell


def clean(value: object, limit: int | None = None) -> str:
    """One line of printable text: control and format characters become '?', then cut to ``limit``."""
    text = "".join("?" if unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp"} else ch for ch in str(value))
    if limit is not None and len(text) > limit:
        return text[: max(limit - 1, 0)] + "…"
    return text


def grid(headers: Sequence[str], rows: Sequence[Sequence[object]], *, limits: Sequence[int | None] = ()) -> str:
    cells = [[clean(v, limits[i] if i < len(limits) else None) for i, v in enumerate(row)] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in cells]) for i, h in enumerate(headers)]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()
    rule = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join([line, rule, *body])


def _coverage_rows(cells: Mapping[str, CoverageCell]) -> list[list[object]]:
    return [
        [name, c.resources, c.required, c.required_protected, f"{c.ratio:.0%}"] for name, c in sorted(cells.items())
    ]


def render_table(result: AuditResult, *, why_width: int = 70) -> str:
    total = result.coverage.total
    severity = ", ".join(f"{k} {v}" for k, v in result.by_severity().items())
    out = [
        f"Audit {result.generated_at:%Y-%m-%d %H:%M UTC}: {total.resources} resources in "
        f"{len(result.subscriptions)} subscriptions, coverage {total.ratio:.0%} "
        f"({total.required_protected}/{total.required} required)",
        f"Findings: {len(result.findings)} ({severity}); {len(result.new_finding_ids)} new, "
        f"{len(result.resolved)} resolved",
        "",
    ]
    headers = ["", "resources", "required", "protected", "coverage"]
    for title, cells in (
        ("subscription", result.coverage.by_subscription),
        ("region", result.coverage.by_region),
        ("type", result.coverage.by_type),
    ):
        out += [grid([title, *headers[1:]], _coverage_rows(cells)), ""]
    if result.findings:
        rows = [
            [f.severity.value, f.control_id, "*" if f.id in result.new_finding_ids else "", f.resource_id, f.why]
            for f in result.findings
        ]
        out.append(
            grid(["severity", "control", "new", "resource", "why"], rows, limits=[None, None, None, None, why_width])
        )
    else:
        out.append("No findings.")
    return "\n".join(out) + "\n"
