"""Smoke test of the remediation benchmark at a tiny size (so it cannot rot): an estate that predates the app is
brought under protection by one audit, every resource exactly once, without a 429, at both fan-outs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import remediation


def test_tiny_onboarding_protects_everything_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "remediation.json"
    status = remediation.main(["--vms", "6", "--disks", "2", "--fan-outs", "2", "8", "--scale", "200",
                               "--output", str(output)])
    assert status == 0
    runs = json.loads(output.read_text())["runs"]
    assert [r["fan_out"] for r in runs] == [2, 8]
    for run in runs:
        assert run["audit_status"] == "Completed"
        assert run["exactly_once"] == {"resources": 8, "protected_once": 8, "several": 0, "none": 0}
        assert run["remediation"]["started"] == 8 and run["remediation"]["outcomes"] == {"Protected": 8}
        assert sum(run["app_throttled_429"].values()) == 0
    # four batches of two take longer than one batch of eight: the fan-out is what the run measures
    assert runs[0]["elapsed_virtual_seconds"] > runs[1]["elapsed_virtual_seconds"]
    assert "Onboarding an estate that predates the app" in capsys.readouterr().out
