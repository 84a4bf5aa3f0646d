"""The HTML report and the text table: content, charts, and no way for Azure values to inject markup."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from html.parser import HTMLParser

from steward.domain.audit import (
    VM_TYPE,
    AuditResult,
    InventoryGap,
    ProtectableResource,
    audit,
)
from steward.report import render_html, render_table
from steward.report.html import CSP
from tests.unit.audit.audit_estate_builders import NOW, SUB_A, healthy_estate, rid, rs_vault, rules
from tests.unit.audit.test_audit_result import messy_estate

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


class Elements(HTMLParser):
    """Collects start tags and their attributes, and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Elements:
    parser = Elements()
    parser.feed(page)
    return parser


def hostile_result() -> AuditResult:
    """Resource names, regions and gap reasons carrying markup (names and tags are user input in Azure)."""
    estate = healthy_estate()
    evil_vm = ProtectableResource(
        rid(SUB_A, "rg-app", VM_TYPE, 'vm"><script>alert(1)</script>'), VM_TYPE, HOSTILE, {"owner": HOSTILE}
    )
    return audit(
        replace(
            estate,
            resources=(*estate.resources, evil_vm),
            vaults=(*estate.vaults, rs_vault("rsv-</title><script>x</script>")),
            gaps=(InventoryGap(f"/subscriptions/{SUB_A}/resourceGroups/<u>rg</u>", HOSTILE),),
        ),
        rules(),
        NOW,
    )


def test_the_page_has_every_chart_and_section() -> None:
    before = audit(messy_estate(), rules(), NOW - timedelta(days=1))
    result = audit(messy_estate(), rules(), NOW, previous=before)
    page = parse(render_html(result))
    charts = {attrs.get("data-chart") for tag, attrs in page.tags if tag == "svg"}
    assert charts == {
        "coverage-by-subscription",
        "coverage-by-region",
        "coverage-by-type",
        "findings-by-severity",
        "trend",
    }
    ids = {attrs.get("id") for _, attrs in page.tags}
    assert {"summary", "charts", "findings", "resolved", "controls"} <= ids
    polylines = [attrs for tag, attrs in page.tags if tag == "polyline"]
    assert len(polylines) == 2 and all(len(str(a["points"]).split()) == 2 for a in polylines)
    text = "".join(page.text)
    for finding in result.findings:
        assert finding.resource_id in text


def test_no_value_from_azure_becomes_markup() -> None:
    page_text = render_html(hostile_result())
    page = parse(page_text)
    assert [t for t, _ in page.tags if t in {"script", "img", "iframe", "object", "u"}] == []
    assert not any(k.startswith("on") for _, attrs in page.tags for k in attrs)
    assert "<script" not in page_text.lower()
    # The hostile text is shown, as text.
    assert HOSTILE in "".join(page.text)


def test_the_page_forbids_scripts_and_network_by_policy() -> None:
    page = parse(render_html(audit(healthy_estate(), rules(), NOW)))
    [csp] = [a["content"] for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp == CSP
    assert "default-src 'none'" in CSP and "script-src" not in CSP
    urls = [v for _, attrs in page.tags for k, v in attrs.items() if k in {"src", "href"}]
    assert urls == []


def test_a_clean_estate_says_so() -> None:
    page = render_html(audit(healthy_estate(), rules(), NOW))
    assert "No findings: the estate matches the rules." in page
    assert "100%" in page


def test_the_table_lists_findings_and_coverage() -> None:
    result = audit(messy_estate(), rules(), NOW)
    text = render_table(result)
    first_line = text.splitlines()[0]
    assert re.match(r"Audit 2026-11-25 08:00 UTC: 7 resources in 2 subscriptions, coverage 71% \(5/7", first_line)
    for finding in result.findings:
        assert finding.control_id in text
    assert "northeurope" in text and "Microsoft.Storage/storageAccounts" in text


def test_the_table_strips_terminal_control_sequences() -> None:
    estate = healthy_estate()
    evil = ProtectableResource(rid(SUB_A, "rg", VM_TYPE, "vm\x1b[2J\x1b]0;pwned\x07"), VM_TYPE, "westeurope", {})
    text = render_table(audit(replace(estate, resources=(*estate.resources, evil)), rules(), NOW))
    assert "\x1b" not in text and "\x07" not in text
    assert "vm?[2J?]0;pwned?" in text


def test_the_checked_in_control_documentation_matches_the_registry() -> None:
    from pathlib import Path

    from steward.report.controls import controls_markdown

    checked_in = Path(__file__).resolve().parents[3] / "steward" / "report" / "CONTROLS.md"
    assert checked_in.read_text() == controls_markdown(), (
        "regenerate: python -m steward.report.controls > steward/report/CONTROLS.md"
    )
