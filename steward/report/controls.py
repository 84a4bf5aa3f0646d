"""The control registry as Markdown, for the README (``steward/report/CONTROLS.md`` is generated from it and a
test keeps the two in step: ``python -m steward.report.controls > steward/report/CONTROLS.md``)."""

from __future__ import annotations

from steward.domain.audit import CONTROLS


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def controls_markdown() -> str:
    lines = [
        "# Audit controls",
        "",
        "Declared once in `steward/domain/audit/controls.py` (`CONTROLS`); each has a test that triggers it and",
        "one that does not (`tests/unit/audit/test_audit_controls.py`). Finding ids are `<control>-<16 hex>`,",
        "stable across runs for the same control and resource.",
        "",
        "| id | severity | control | what it checks | fix |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {c.id} | {c.severity.value} | {_cell(c.title)} | {_cell(c.description)} | {_cell(c.fix)} |"
        for c in CONTROLS.values()
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(controls_markdown(), end="")
