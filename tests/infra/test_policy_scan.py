"""checkov's policy scan of the Bicep templates passes: zero failed checks, zero parsing errors, and every
skip is an inline ``#checkov:skip=CKV_...: reason`` that matches a check checkov actually ran (no stale or
unexplained skip).

checkov runs offline from its own virtual environment (``scripts/infra-check.sh`` installs it pinned into
``var/checkov`` on first use; see the script for why it cannot share ``.venv``).
"""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from tests.infra.templates import INFRA, REPO, bicep_files, checkov_skips

SCRIPT = REPO / "scripts" / "infra-check.sh"
MIN_REASON = 20


@cache
def _report() -> dict[str, Any]:
    done = subprocess.run(
        ["bash", str(SCRIPT), "--json"], capture_output=True, text=True, timeout=900, check=False, cwd=REPO
    )
    assert done.returncode == 0, f"checkov did not run (exit {done.returncode}):\n{done.stderr[-3000:]}"
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    bicep = [r for r in reports if r.get("check_type") == "bicep"]
    assert len(bicep) == 1, f"expected one bicep report, got {[r.get('check_type') for r in reports]}"
    return bicep[0]


def _relative(file_path: str) -> str:
    """checkov names files relative to the scanned directory with a leading slash ("/modules/x.bicep")."""
    path = Path(file_path)
    return str(path.relative_to(INFRA)) if path.is_relative_to(INFRA) else file_path.lstrip("/")


@pytest.mark.timeout(900)
def test_checkov_passes_with_zero_failed_checks() -> None:
    report = _report()
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert not failed, "checkov failed checks:\n" + "\n".join(failed)
    assert summary["failed"] == 0
    assert summary["parsing_errors"] == 0, f"checkov could not parse: {report['results'].get('parsing_errors')}"
    assert summary["passed"] > 0
    assert summary["resource_count"] > 0


@pytest.mark.timeout(900)
def test_checkov_scanned_every_template_with_resources() -> None:
    results = _report()["results"]
    scanned = {_relative(c["file_path"]) for kind in ("passed_checks", "skipped_checks") for c in results[kind]}
    # Files checkov has policies for: it knows no policy for role definitions/assignments only, identity, etc.
    expected = {"modules/function-app.bicep", "modules/storage.bicep", "modules/topics.bicep"}
    assert expected <= scanned, f"checkov did not evaluate {sorted(expected - scanned)}"


@pytest.mark.timeout(900)
def test_every_skip_is_justified_inline_and_used() -> None:
    skipped = Counter((_relative(c["file_path"]), c["check_id"]) for c in _report()["results"]["skipped_checks"])
    inline: Counter[tuple[str, str]] = Counter()
    for path in bicep_files():
        for check_id, reason in checkov_skips(path):
            assert len(reason) >= MIN_REASON, f"{path.name}: skip of {check_id} needs a reason, got {reason!r}"
            inline[(str(path.relative_to(INFRA)), check_id)] += 1
    assert skipped == inline, (
        f"skips checkov applied but nobody wrote: {sorted((skipped - inline).elements())}; "
        f"skip comments for checks that did not run: {sorted((inline - skipped).elements())}"
    )
