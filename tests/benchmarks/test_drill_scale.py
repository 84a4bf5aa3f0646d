"""Smoke test of the drill benchmark at a tiny size (so it cannot rot): one drill of a VM, a disk and a PostgreSQL
server through the real app on the discrete clock. Its figures must respect what Azure's REST API and the
sandbox's model make impossible to beat, and the drill must leave nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import drill_scale


def test_a_tiny_drill_benchmark_runs_and_its_figures_hold(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "drill_scale.json"
    status = drill_scale.main(["--resources", "3", "--seed", "5", "--output", str(output)])

    assert status == 0, capsys.readouterr().out
    result = json.loads(output.read_text())
    assert result["runtime_status"] == "Completed" and result["outcomes"] == {"Succeeded": 3}
    assert result["clock"] == "discrete" and result["watchdog_reports"] == 0
    assert result["left_by_report"] == 0 and result["tagged_resources_remaining"] == []
    # no client can use fewer requests than the REST minimum, nor finish before the restore jobs it ran one after
    # another (VM 3,600 s, disk 900 s, PostgreSQL 2,700 s in the sandbox's model)
    assert result["requests"]["total"] >= result["minimum"]["total"]
    assert result["sum_of_restore_jobs_seconds"] == 3600 + 900 + 2700
    assert result["azure_seconds"] >= result["sum_of_restore_jobs_seconds"]
    assert result["requests"]["throttled_429"] == 0
    for kind, figures in result["types"].items():
        assert figures["resources"] == 1, kind
        assert figures["minimum_total"] == sum(r["count"] for r in figures["minimum_reasons"]), kind
    # a running job is looked at ever less often: a 1-hour VM restore in 14 looks (a fixed minute: 60)
    assert result["types"]["vm"]["job_polls_per_resource"] <= 15
    assert "Drill of 3 resources" in capsys.readouterr().out
