"""``make demo`` — the README's first command — end to end: the real app on the embedded sandbox protects the
new resources, re-protects a moved VM, keeps a deleted VM's points, adds a new blob container to its account's
vaulted backup and reports the 101st left out, has the audit bring the estate that predates the app under
protection, runs a restore drill whose validation hook answers pass, and tears down a vault holding every kind of
content with the ``steward teardown`` CLI."""

from __future__ import annotations

import json
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
    assert acts == ["1", "2", "3", "4", "5", "6", "7", "8"], text[-3000:]
    assert re.search(r"rg-shop/vm-shop-web\s+Protected\s+rg-backup-weu/rsv-prod-weu", text)
    assert re.search(r"rg-shop/vm-scratch\s+OptedOut", text)
    assert "vm-shop-api: Reprotected (old item stopped, recovery points kept)" in text
    assert "vm-shop-web: Retained (protection stopped, recovery points kept)" in text
    # the audit finds what predates the app and, with remediation on, protects it
    assert re.search(r"critical BKP-001\s+rg-erp/vm-erp-legacy", text)
    assert re.search(r"rg-erp/vm-erp-legacy\s+Protected\s+rg-backup-weu/rsv-prod-weu", text)
    assert re.search(r"rg-erp/sterplegacy01\s+Protected\s+rg-backup-weu/bv-prod-weu", text)
    # new blob containers (issue 19 item 2): the container's event grows the instance's list; the 101st is left out
    assert re.search(r"rg-shop/stshopdocs01 \(tagged blob-tier=vaulted\): LeftAsIs by rule vaulted-blobs in "
                     r"rg-backup-weu/bv-prod-weu; containers listed: none yet", text), text
    assert "container invoices created -> Protected: the backup instance's list grows from none to invoices" in text
    assert "container c100 created, the account's 101st -> LeftAsIs: 99 added, the list holds 100" in text
    assert re.search(r"left out c100: vaulted blob backup covers at most 100 containers per storage account", text)
    assert re.search(r"medium\s+BKP-007\s+rg-shop/stshopdocs01", text), "the audit reports the one left out too"
    # the restore drill (issue 17): restore, the hook's pass, cleanup, the report
    for name in ("rg-erp/vm-erp-legacy", "rg-shop/disk-shop-data", "rg-shop/pg-shop-weu"):
        assert re.search(rf"hook: RestoreReady for {name}: (\d+)/\1 restored object\(s\) read back through ARM -> "
                         r"pass", text), text[-4000:]
        assert re.search(rf"{name.split('/')[1]}\s+Succeeded\s+[1-9]\d*\.\d", text), "steward drill status"
    point = r"min \(from a \d+ h old point\)"
    assert re.search(rf"measured RTO \(restore job, Azure time\): virtualMachine [1-9]\d* {point}, disk [1-9]\d* "
                     rf"{point}, postgresqlFlexibleServer [1-9]\d* {point}", text), text[-3000:]
    assert re.search(r"cleanup: [1-9]\d* object\(s\) the drill created deleted; carrying its tag now: 0", text)
    [page] = re.findall(r"drill report: (\S+\.html)", text)
    drill = json.loads(Path(page).with_suffix(".json").read_text())
    assert Path(page).exists() and Path(page).parent == tmp_path / "reports" / "drills"
    assert [(r["outcome"], r["userValidation"]["result"], r["left"]) for r in drill["results"]] == [
        ("Succeeded", "pass", [])] * 3, json.dumps(drill["results"])[:2000]
    assert {r["userValidation"]["by"] for r in drill["results"]} == {demo.HOOK}
    # the teardown through the CLI (issue 19 item 3): plan, approve the printed fingerprint, status
    assert "$ steward teardown plan $VAULT" in text
    assert "$ steward teardown approve $VAULT --fingerprint sha256:" in text
    assert re.search(r"teardown-rsv-legacy-\S+-run-\S+\s+Completed\s+finished\s+deleted\s+sha256:", text), text[-3000:]
    assert "teardown: deleted - the vault was emptied and deleted" in text
    [run] = (tmp_path / "reports").glob("teardown-rsv-legacy-*-run-*.json")
    ran = json.loads(run.read_text())
    assert (ran["source"], ran["requestedBy"], ran["approvedBy"]) == ("http", demo.OPERATOR, demo.OPERATOR)
    assert (tmp_path / "reports" / "latest.html").exists()
    # the metrics Application Insights would chart, from the in-memory reader (issue 20 item 7)
    assert re.search(r"steward\.protection\.outcomes: .*Protected \d+", text), text[-2000:]
    assert re.search(r"steward\.protection\.duration: \d+ protected, mean [1-9]\d* s", text)
    assert re.search(r"steward\.coverage\.percent: [0-9a-f-]{36} \d+\.\d%", text)
    assert re.search(r"steward\.teardown\.items_deleted: [1-9]\d*", text)
    assert re.search(r"steward\.drill\.rto: 3 drilled, mean [1-9]\d* s", text)
    # the hint to read the Durable history runs outside an activated venv (the interpreter's path, -m steward.cli)
    assert re.search(r"Durable history: \S*python\S* -m steward\.cli instances --db ", text)
