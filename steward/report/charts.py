"""Inline SVG charts, drawn by hand: no library, no script, no network.

Each chart is one ``<svg>`` element carrying ``data-chart="<name>"`` (what tests and readers look for), a
``<title>`` for assistive technology, and only escaped text.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Final

SEVERITY_COLOURS: Final = {
    "critical": "#8b0000",
    "high": "#d9480f",
    "medium": "#e6a700",
    "low": "#1c7ed6",
    "info": "#868e96",
}
GOOD: Final = "#2f9e44"
BAD: Final = "#e03131"
TRACK: Final = "#e9ecef"
FONT: Final = "font-family:system-ui,-apple-system,'Segoe UI',sans-serif;font-size:12px"


def _text(value: object) -> str:
    return escape(str(value), quote=True)


def _label(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class CoverageBar:
    label: str
    protected: int
    required: int

    @property
    def ratio(self) -> float:
        return self.protected / self.required if self.required else 1.0


def coverage_bars(name: str, title: str, bars: Sequence[CoverageBar], *, width: int = 600) -> str:
    """Horizontal bars: share of the required resources that are protected, per slice."""
    row, label_w, pad = 22, 270, 8
    bar_w = width - label_w - 110
    height = pad * 2 + row * max(len(bars), 1) + 18
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" data-chart="{_text(name)}" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" style="{FONT}">',
        f"<title>{_text(title)}</title>",
        f'<text x="0" y="12" font-weight="600">{_text(title)}</text>',
    ]
    if not bars:
        parts.append(f'<text x="0" y="{pad + 28}" fill="#868e96">no resources</text>')
    for index, bar in enumerate(bars):
        y = 18 + pad + index * row
        filled = round(bar_w * bar.ratio)
        colour = GOOD if bar.ratio >= 1 else (BAD if bar.ratio < 0.8 else SEVERITY_COLOURS["medium"])
        parts += [
            f'<text x="0" y="{y + 13}"><title>{_text(bar.label)}</title>{_text(_label(bar.label))}</text>',
            f'<rect x="{label_w}" y="{y + 2}" width="{bar_w}" height="14" rx="3" fill="{TRACK}"/>',
            f'<rect class="bar" x="{label_w}" y="{y + 2}" width="{filled}" height="14" rx="3" fill="{colour}"/>',
            f'<text x="{label_w + bar_w + 6}" y="{y + 13}">{bar.ratio:.0%} ({bar.protected}/{bar.required})</text>',
        ]
    parts.append("</svg>")
    return "".join(parts)


def severity_columns(counts: dict[str, int], *, width: int = 360, height: int = 180) -> str:
    """Columns of finding counts per severity, worst on the left."""
    names = list(SEVERITY_COLOURS)
    top = max([*counts.values(), 1])
    plot_h, base = height - 50, height - 24
    col_w = (width - 20) / len(names)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" data-chart="findings-by-severity" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" style="{FONT}">',
        "<title>Findings by severity</title>",
        '<text x="0" y="12" font-weight="600">Findings by severity</text>',
    ]
    for index, name in enumerate(names):
        value = int(counts.get(name, 0))
        h = round(plot_h * value / top)
        x = 10 + index * col_w
        parts += [
            f'<rect class="bar" x="{x + 8:.1f}" y="{base - h}" width="{col_w - 16:.1f}" height="{h}" '
            f'fill="{SEVERITY_COLOURS[name]}"><title>{name}: {value}</title></rect>',
            f'<text x="{x + col_w / 2:.1f}" y="{base - h - 4}" text-anchor="middle">{value}</text>',
            f'<text x="{x + col_w / 2:.1f}" y="{height - 8}" text-anchor="middle">{name}</text>',
        ]
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class TrendSample:
    at: datetime
    coverage_ratio: float
    findings: int


def trend_lines(samples: Sequence[TrendSample], *, width: int = 560, height: int = 200) -> str:
    """Coverage (%, left axis, green) and open findings (right axis, red) over the stored runs."""
    left, right, top, bottom = 40, 40, 24, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    most = max([s.findings for s in samples] + [1])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" data-chart="trend" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" style="{FONT}">',
        "<title>Coverage and findings over the previous runs</title>",
        '<text x="0" y="12" font-weight="600">Trend</text>',
        f'<text x="{left + 50}" y="12" fill="{GOOD}">coverage %</text>',
        f'<text x="{left + 140}" y="12" fill="{BAD}">findings</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#adb5bd"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">100</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
        f'<text x="{left + plot_w + 4}" y="{top + 4}">{most}</text>',
    ]
    if not samples:
        parts.append("</svg>")
        return "".join(parts)

    def x_at(index: int) -> float:
        return left + (plot_w * index / (len(samples) - 1) if len(samples) > 1 else plot_w / 2)

    cover = [(x_at(i), top + plot_h * (1 - s.coverage_ratio)) for i, s in enumerate(samples)]
    found = [(x_at(i), top + plot_h * (1 - s.findings / most)) for i, s in enumerate(samples)]
    for points, colour, cls in ((cover, GOOD, "coverage"), (found, BAD, "findings")):
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline class="{cls}" points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in points]
    first, last = samples[0].at, samples[-1].at
    parts += [
        f'<text x="{left}" y="{height - 8}">{first:%Y-%m-%d}</text>',
        f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end">{last:%Y-%m-%d %H:%M}</text>',
        "</svg>",
    ]
    return "".join(parts)


#: one colour per drilled workload type in the RTO chart (in this order; more types cycle)
SERIES_COLOURS: Final = ("#1971c2", "#2f9e44", "#e8590c", "#9c36b5", "#0c8599")


@dataclass(frozen=True)
class RtoSample:
    at: datetime
    seconds: float


def rto_lines(series: Mapping[str, Sequence[RtoSample]], *, width: int = 560, height: int = 220) -> str:
    """Measured restore time (the restore job's duration, minutes, left axis) per workload type over time: one
    polyline per type (``class="rto"``, ``data-series="<type>"``), points placed by time across every series."""
    left, right, top, bottom = 48, 16, 40, 30
    plot_w, plot_h = width - left - right, height - top - bottom
    samples = [s for points in series.values() for s in points]
    most = max([s.seconds / 60 for s in samples] + [1.0])
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" data-chart="rto" role="img" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" style="{FONT}">',
        "<title>Measured restore time (RTO) per resource type over the drills</title>",
        '<text x="0" y="12" font-weight="600">RTO per type (minutes)</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#adb5bd"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end">{most:.0f}</text>',
        f'<text x="{left - 4}" y="{top + plot_h}" text-anchor="end">0</text>',
    ]
    for index, name in enumerate(sorted(series)):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        parts.append(f'<text x="{left + 110 * index}" y="28" fill="{colour}">{_text(_label(name, 18))}</text>')
    if not samples:
        parts.append(f'<text x="{left + 8}" y="{top + plot_h / 2:.0f}" fill="#868e96">no restore measured yet</text>')
        parts.append("</svg>")
        return "".join(parts)
    first, last = min(s.at for s in samples), max(s.at for s in samples)
    span = (last - first).total_seconds()

    def x_at(moment: datetime) -> float:
        return left + (plot_w * (moment - first).total_seconds() / span if span > 0 else plot_w / 2)

    for index, name in enumerate(sorted(series)):
        colour = SERIES_COLOURS[index % len(SERIES_COLOURS)]
        points = [(x_at(s.at), top + plot_h * (1 - s.seconds / 60 / most)) for s in sorted(series[name],
                                                                                              key=lambda s: s.at)]
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
        parts.append(f'<polyline class="rto" data-series="{_text(name)}" points="{path}" fill="none" '
                     f'stroke="{colour}" stroke-width="2"/>')
        parts += [f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"/>' for x, y in points]
    parts += [
        f'<text x="{left}" y="{height - 8}">{first:%Y-%m-%d}</text>',
        f'<text x="{left + plot_w}" y="{height - 8}" text-anchor="end">{last:%Y-%m-%d %H:%M}</text>',
        "</svg>",
    ]
    return "".join(parts)
