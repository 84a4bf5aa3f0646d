"""``make demo`` — the README's first command — end to end: the real app on the embedded sandbox protects the
new resources, re-protects a moved VM, keeps a deleted VM's points, has the audit bring the estate that predates
the app under protection, and tears down a vault holding every kind of content."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest

from steward import bootstrap


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_the_demo_runs_every_act_to_its_end(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from sandbox import demo

    steward_level = logging.getLogger("steward").level
    saved = dict(os.environ)  # the local stack exports the app's settings
    try:
        assert demo.main(["--state-dir", str(tmp_path)]) == 0
    finally:
        os.environ.clear()
        os.environ.update(saved)
        bootstrap.reset()
    text = capfd.readouterr().out
    assert logging.getLogger("steward").level == steward_level, "the demo gives the process its logging back"
    acts = re.findall(r"^== (\d)\.", text, flags=re.MULTILINE)
    assert acts == ["1", "2", "3", "4", "5", "6"], text[-3000:]
    assert re.search(r"rg-shop/vm-shop-web\s+Protected\s+rg-backup-weu/rsv-prod-weu", text)
    assert re.search(r"rg-shop/vm-scratch\s+OptedOut", text)
    assert "vm-shop-api: Reprotected (old item stopped, recovery points kept)" in text
    assert "vm-shop-web: Retained (protection stopped, recovery points kept)" in text
    # the audit finds what predates the app and, with remediation on, protects it
    assert re.search(r"critical BKP-001\s+rg-erp/vm-erp-legacy", text)
    assert re.search(r"rg-erp/vm-erp-legacy\s+Protected\s+rg-backup-weu/rsv-prod-weu", text)
    assert re.search(r"rg-erp/sterplegacy01\s+Protected\s+rg-backup-weu/bv-prod-weu", text)
    assert "teardown: deleted - the vault was emptied and deleted" in text
    assert (tmp_path / "reports" / "latest.html").exists()
    # the metrics Application Insights would chart, from the in-memory reader (issue 20 item 7)
    assert re.search(r"steward\.protection\.outcomes: .*Protected \d+", text), text[-2000:]
    assert re.search(r"steward\.protection\.duration: \d+ protected, mean [1-9]\d* s", text)
    assert re.search(r"steward\.coverage\.percent: [0-9a-f-]{36} \d+\.\d%", text)
    assert re.search(r"steward\.teardown\.items_deleted: [1-9]\d*", text)
    # the hint to read the Durable history runs outside an activated venv (the interpreter's path, -m steward.cli)
    assert re.search(r"Durable history: \S*python\S* -m steward\.cli instances --db ", text)
