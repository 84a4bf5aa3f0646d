"""``steward why RESOURCE_ID`` (alias ``steward explain``) on the local stack (``make local``): one answer from the
latest outcome in the Durable store, the latest audit report and the rules together (issue 20 item 3).

The stack runs as ``make local`` runs it (seeded estate, stable keys, state in ``var/``); the resources are made
through the sandbox's ARM, so its events reach the app, and the audit is started over HTTP as an operator would."""

from __future__ import annotations

import io
import json
import ssl
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from sandbox.arm.config import DEFAULT_SUBSCRIPTION
from sandbox.estate import Estate
from steward.cloud.clients import CloudClients, CloudTarget
from steward.why_cli import main as why
from tests.e2e.test_local_playground import Running, restore_env  # noqa: F401  (the fixture)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
WEU, EUS = "westeurope", "eastus"


def _ask(state: Path, resource_id: str, *extra: str, program: str = "steward why") -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = why([resource_id, "--state-dir", str(state), *extra], program=program, stdout=out, stderr=err)
    assert code in (0, 1), err.getvalue()
    return code, out.getvalue()


def _answer(state: Path, resource_id: str) -> tuple[int, dict[str, Any]]:
    code, text = _ask(state, resource_id, "--output", "json")
    return code, json.loads(text)


def _until_outcome(state: Path, resource_id: str, timeout: float = 120) -> tuple[int, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        code, document = _answer(state, resource_id)
        if document["outcome"] is not None or time.monotonic() > deadline:
            return code, document
        time.sleep(0.5)


def _clients(stack_file: dict[str, Any]) -> CloudClients:
    arm = stack_file["arm"]
    return CloudClients(CloudTarget(arm_endpoint=arm["endpoint"], credential_kind="sandbox",
                                    sandbox_token_url=arm["token_url"], ca_bundle=arm["ca_bundle"],
                                    polling_interval=0.05))


def _audit(stack_file: dict[str, Any], reports: Path) -> None:
    from sandbox.playground import mint_token

    context = ssl.create_default_context(cafile=stack_file["arm"]["ca_bundle"])
    request = urllib.request.Request(
        f"{stack_file['api']}/audits", data=b"", method="POST",
        headers={"x-functions-key": stack_file["keys"]["function"],
                 "Authorization": f"Bearer {mint_token(stack_file)}"})
    with urllib.request.urlopen(request, context=context if stack_file["api"].startswith("https") else None,
                                timeout=30) as answer:
        assert answer.status == 202
    deadline = time.monotonic() + 120
    while not (reports / "latest.json").exists():
        assert time.monotonic() < deadline, "no audit report stored"
        time.sleep(0.5)


def test_why_answers_from_the_outcome_the_audit_and_the_rules(
    tmp_path: Path, restore_env: None, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("STEWARD_REPORTS_DIR", raising=False)
    state = tmp_path / "var"
    with Running(state):
        stack_file = json.loads((state / "local" / "stack.json").read_text())
        clients = _clients(stack_file)
        estate = Estate(clients, DEFAULT_SUBSCRIPTION)
        estate.resource_group("rg-why", WEU)
        estate.resource_group("rg-why-eus", EUS)
        web = estate.vm("rg-why", "vm-why-web", WEU)
        scratch = estate.vm("rg-why", "vm-why-scratch", WEU, tags={"backup-steward:opt-out": "true"})
        lab = estate.vm("rg-why-eus", "vm-why-lab", EUS)  # no vault in eastus and none is created

        code, protected = _until_outcome(state, web)
        assert protected["outcome"]["status"] in {"Protected", "AlreadyProtected"}, protected
        assert code == 0 and protected["protected"] is True
        assert protected["outcome"]["instance"].startswith("protect:")
        assert protected["outcome"]["vaultId"].lower() == stack_file["estate"]["rsv-weu"].lower()
        assert protected["rules"]["decision"] == "protect" and protected["rules"]["facts"]["from"].startswith("ARM")

        # one correlation id for the instance: ARM's data.correlationId of the event, in the outcome, in the
        # instance as `steward instances show` names it, and in the outcome's log line (with its instance id)
        shown = io.StringIO()
        monkeypatch.setattr("sys.stdout", shown)
        from sandbox.durable.__main__ import main as instances

        assert instances(["show", protected["outcome"]["instance"], "--db", str(state / "durable.sqlite"),
                          "--output", "json"]) in (0, None)
        monkeypatch.undo()
        instance = json.loads(shown.getvalue())
        assert instance["correlationId"] == protected["outcome"]["correlationId"]
        assert instance["input"]["origin"]["correlationId"] == instance["correlationId"]
        [line] = [r for r in caplog.records if r.getMessage().startswith("protection outcome")
                  and getattr(r, "resource_id", None) == web]
        assert getattr(line, "instance_id", None) == protected["outcome"]["instance"]
        assert getattr(line, "correlation_id", None) == instance["correlationId"]
        assert line.getMessage() == (f"protection outcome {protected['outcome']['status']}: - (rule "
                                     f"{protected['outcome']['rule']}) {web}")

        code, opted = _until_outcome(state, scratch)
        assert code == 1 and opted["outcome"]["status"] == "OptedOut"
        assert opted["rules"]["expected"] == "OptedOut" and "opt-out" in opted["why"]

        code, novault = _until_outcome(state, lab)
        assert code == 1 and novault["outcome"]["status"] == "NoVault", novault
        assert novault["why"].startswith("NoVault: ") and "(rule " in novault["why"]

        # the VM's OS disk: covered by the VM's backup, its own outcome (it was "OptedOut")
        read = clients.resources(DEFAULT_SUBSCRIPTION).resources.get_by_id(web, api_version="2024-07-01")
        disk = read.properties["storageProfile"]["osDisk"]["managedDisk"]["id"]
        code, covered = _until_outcome(state, disk)
        assert code == 1 and covered["outcome"]["status"] == "CoveredByVm", covered
        assert covered["rules"]["expected"] == "CoveredByVm" and covered["rules"]["facts"]["attachedTo"]

        # the VM from before the app: no outcome, the audit's finding and the rules say why
        erp = stack_file["estate"]["vm-erp"]
        code, before_audit = _answer(state, erp)
        assert code == 1 and before_audit["outcome"] is None and before_audit["audit"] is None
        assert "the rules would protect it" in before_audit["why"]
        _audit(stack_file, state / "local" / "reports")
        code, audited = _answer(state, erp)
        assert code == 1, audited
        assert [f["control"] for f in audited["audit"]["findings"]] == ["BKP-001"], audited["audit"]
        assert "BKP-001" in audited["why"] and "the rules would protect it" in audited["why"]
        code, clean = _answer(state, web)
        assert clean["audit"]["findings"] == [] and "finds nothing wrong" in clean["why"]

        # the table, and the alias
        code, table = _ask(state, lab, program="steward explain")
        assert code == 1
        assert "outcome" in table and "NoVault" in table and "rules" in table and "audit" in table


def test_why_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    from steward.cli import main as steward

    for command in ("why", "explain"):
        with pytest.raises(SystemExit) as done:
            steward([command, "--help"])
        assert done.value.code == 0
        usage = capsys.readouterr().out
        assert usage.startswith(f"usage: steward {command} ") and "example" in usage and "--output" in usage
