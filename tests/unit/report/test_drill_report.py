"""The drill report (issue 17 item 4): JSON and one HTML page in the audit's look (its CSP and style), the RTO per
resource type over every recorded drill, written through the report store; hostile text stays text."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from steward.report.drills import MAX_HISTORY, RTO_HISTORY, add_to_history, render_drill_html, save_drill_report
from steward.report.html import CSP, PAGE_CSS
from steward.report.store import LocalReportStore

SUB = "00000000-0000-4000-8000-000000000001"
VM = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm-1"
DISK = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/disks/disk-1"


def report(drill_id: str, started: str, vm_rto: float | None, disk_rto: float | None, **extra: Any) -> dict[str, Any]:
    def result(resource_id: str, workload: str, rto: float | None, outcome: str) -> dict[str, Any]:
        return {"resourceId": resource_id, "workload": workload, "rule": "r", "outcome": outcome,
                "created": ["a", "b"], "deleted": ["a", "b"], "left": [], "rtoSeconds": rto,
                "recoveryPoint": {"id": "rp", "time": started, "ageSeconds": 3600.0},
                "validation": {"passed": True, "problems": [], "checked": 1}}
    results = [result(VM, "virtualMachine", vm_rto, "Succeeded"), result(DISK, "disk", disk_rto, "RestoreFailed")]
    return {"id": drill_id, "startedAt": started, "endedAt": started, "dryRun": False, "results": results,
            "outcomes": {"Succeeded": 1, "RestoreFailed": 1}, "waiting": [], **extra}


def test_the_page_has_the_audits_look_and_an_rto_line_per_type_over_the_drills(tmp_path: Path) -> None:
    store = LocalReportStore(tmp_path)
    save_drill_report(store, report("drill-a", "2026-01-01T00:00:00+00:00", 1800.0, 600.0))
    saved = save_drill_report(store, report("drill-b", "2026-01-08T00:00:00+00:00", 2400.0, None))
    page = (tmp_path / "drills" / "drill-b.html").read_text()
    assert saved.html_url.endswith("drills/drill-b.html") and json.loads((tmp_path / "drills/drill-b.json").read_text())
    assert f'content="{CSP}"' in page and PAGE_CSS in page and "<script" not in page
    lines = dict(re.findall(r'class="rto" data-series="([^"]+)" points="([^"]+)"', page))
    assert set(lines) == {"virtualMachine", "disk"}
    assert len(lines["virtualMachine"].split()) == 2, "both drills' VM restores are on the line"
    assert len(lines["disk"].split()) == 1, "a restore without a measured RTO is not a point"
    history = json.loads((tmp_path / RTO_HISTORY).read_text())["samples"]
    assert [(s["drillId"], s["workload"], s["rtoSeconds"]) for s in history] == [
        ("drill-a", "virtualMachine", 1800.0), ("drill-a", "disk", 600.0), ("drill-b", "virtualMachine", 2400.0)]
    assert "40.0 min" in page and "RestoreFailed" in page


def test_a_drill_recorded_twice_is_in_the_history_once_and_the_history_is_bounded() -> None:
    once = add_to_history(None, report("drill-a", "2026-01-01T00:00:00+00:00", 60.0, 60.0))
    assert add_to_history(once, report("drill-a", "2026-01-01T00:00:00+00:00", 60.0, 60.0)) == once
    big = {"samples": [{"drillId": f"d{i}", "at": f"2025-01-01T00:00:{i % 60:02d}+00:00", "workload": "disk",
                        "rtoSeconds": 1.0} for i in range(MAX_HISTORY)]}
    grown = add_to_history(big, report("drill-new", "2026-01-01T00:00:00+00:00", 5.0, None))
    assert len(grown["samples"]) == MAX_HISTORY and grown["samples"][-1]["drillId"] == "drill-new"


def test_hostile_text_in_a_result_stays_text_and_the_hook_answer_is_shown() -> None:
    hostile = report("drill-x", "2026-01-01T00:00:00+00:00", 60.0, None)
    hostile["results"][0]["userValidation"] = {"result": "fail", "detail": "<script>alert(1)</script>"}
    hostile["results"][1]["reason"] = '"><img src=x onerror=alert(1)>'
    hostile["results"][1]["workload"] = "</text><script>x</script>"
    page = render_drill_html(hostile, add_to_history(None, hostile))
    assert "<script" not in page and "<img" not in page
    assert "fail: &lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_a_dry_run_says_nothing_was_drilled_and_draws_an_empty_chart() -> None:
    page = render_drill_html({"id": "drill-d", "startedAt": "s", "results": [], "dryRun": True}, None)
    assert "Nothing was drilled" in page and "no restore measured yet" in page and "dry run" in page
