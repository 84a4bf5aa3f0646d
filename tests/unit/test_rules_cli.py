"""``steward rules check|explain|schema``: validate a rules document and see, rule by rule, what it decides for
a resource that need not exist yet; exit codes for pipelines."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from steward import rules_cli
from steward.rules_file import schema_text
from steward.settings import RULES, RULES_PATH

SUB = "00000000-0000-4000-8000-000000000001"
VM = f"/subscriptions/{SUB}/resourceGroups/rg-fin-1/providers/Microsoft.Compute/virtualMachines/vm-ledger"
DISK = f"/subscriptions/{SUB}/resourceGroups/rg-fin-1/providers/Microsoft.Compute/disks/data"
RULES_TEXT = f"""\
version: 1
rules:
  - name: dev-out
    match:
      tags: {{env: dev}}
    optOut: dev resources are rebuilt, not restored
  - name: fin-vms
    match:
      types: [Microsoft.Compute/virtualMachines]
      resourceGroups: ["rg-fin-*"]
    protect:
      vault:
        id: /subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/rsv-fin
        region: westeurope
      policy: Fin-Daily
      rpoHours: 12
  - name: everything-else
    protect: {{vault: regional-default}}
"""


def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = rules_cli.main(list(argv), out=out, err=err, env=env or {})
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def rules_file(tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES_TEXT)
    return path


def test_check_lists_the_rules_of_a_valid_document(rules_file: Path) -> None:
    code, out, _ = run("check", str(rules_file))
    assert code == 0
    assert f"{rules_file}: valid, 3 rule(s)" in out
    assert "dev-out" in out and "tag env=dev" in out and "opt out (dev resources are rebuilt" in out
    assert "fin-vms" in out and "group rg-fin-*" in out and "protect in rsv-fin, Fin-Daily" in out


def test_check_refuses_an_invalid_document_naming_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(RULES_TEXT.replace("rpoHours: 12", "rpoHours: twelve"))
    code, out, err = run("check", str(bad))
    assert code == 1 and out == ""
    assert f"{bad}:16" in err and "rpoHours" in err


def test_without_a_file_check_reads_the_configured_rules_then_the_packaged_ones(rules_file: Path) -> None:
    assert "valid, 3 rule(s)" in run("check", env={RULES_PATH: str(rules_file)})[1]
    assert "STEWARD_RULES: valid, 3 rule(s)" in run("check", env={RULES: RULES_TEXT})[1]
    assert "default_rules.yaml: valid, 4 rule(s)" in run("check")[1]


def test_explain_walks_the_rules_in_order_to_the_one_that_decides(rules_file: Path) -> None:
    code, out, _ = run("explain", VM, "--location", "West Europe", "--rules", str(rules_file), "--tag", "env=prod")
    assert code == 0
    assert "rule 'dev-out' (line 3): does not match" in out
    assert "rule 'fin-vms' (line 7): matches" in out
    assert "everything-else" not in out
    assert "=> PROTECT by rule 'fin-vms'" in out and "rsv-fin" in out and "Fin-Daily" in out and "12 h" in out


def test_explain_says_not_protected_with_exit_1_and_json_carries_the_decision(rules_file: Path) -> None:
    code, out, _ = run("explain", VM, "--location", "westeurope", "--rules", str(rules_file), "--tag", "env=dev",
                       "--json")
    assert code == 1
    result = json.loads(out)
    assert result["decision"] == {"kind": "opt-out", "resourceId": VM, "reason": "dev resources are rebuilt, not "
                                  "restored", "rule": "dev-out", "basis": "rule"}
    assert result["trace"] == [{"rule": "dev-out", "line": 3, "matched": True}]


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        (["--tag", "backup-steward:opt-out=true"], "tagged backup-steward:opt-out=true"),
        (["--attached-to", VM], "covered by the VM's backup"),
    ],
)
def test_decisions_made_before_the_rules_show_no_rule_trace(rules_file: Path, extra: list[str], reason: str) -> None:
    code, out, _ = run("explain", DISK, "--location", "westeurope", "--rules", str(rules_file), *extra)
    assert code == 1
    assert "decided before the rules are read" in out and reason in out
    assert "rule '" not in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["explain", "not-an-id", "--location", "westeurope"], "must start with '/subscriptions/'"),
        (["explain", VM, "--location", "westeurope", "--tag", "novalue"], "--tag takes KEY=VALUE"),
    ],
)
def test_a_bad_resource_or_tag_exits_2_saying_why(argv: list[str], message: str) -> None:
    code, out, err = run(*argv)
    assert (code, out) == (2, "")
    assert message in err


@pytest.mark.parametrize("argv", [["explain", VM], ["frobnicate"], []])
def test_bad_usage_exits_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert run(*argv)[0] == 2
    assert "usage: steward rules" in capsys.readouterr().err  # argparse's own message


def test_schema_prints_the_json_schema() -> None:
    code, out, _ = run("schema")
    assert code == 0 and json.loads(out) == json.loads(schema_text())


# ---- --output table|json|csv, as on every steward command (issue 20 item 8) ----------------------------


def test_check_prints_json_and_csv(rules_file: Path) -> None:
    code, out, _ = run("check", str(rules_file), "--output", "json")
    assert code == rules_cli.EXIT_OK
    document = json.loads(out)
    assert [r["name"] for r in document["rules"]] == ["dev-out", "fin-vms", "everything-else"]
    assert document["rules"][0]["then"] == "opt out (dev resources are rebuilt, not restored)"
    code, out, _ = run("check", str(rules_file), "--output", "csv")
    lines = out.splitlines()
    assert lines[0] == "index,name,line,when,then" and lines[2].startswith("2,fin-vms,")


def test_explain_prints_json_and_one_csv_row(rules_file: Path) -> None:
    code, out, _ = run("explain", VM, "--location", "westeurope", "--rules", str(rules_file), "--output", "json")
    assert code == rules_cli.EXIT_OK and json.loads(out)["decision"]["rule"] == "fin-vms"
    code, out, _ = run("explain", VM, "--location", "westeurope", "--rules", str(rules_file), "--output", "csv")
    header, row = out.splitlines()
    assert header == "resource,type,region,decision,rule,reason,vault,policy"
    assert row.startswith(f"{VM},Microsoft.Compute/virtualMachines,westeurope,protect,fin-vms,,")
    assert row.endswith(",Fin-Daily")


def test_every_subcommand_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("check", "explain", "schema"):
        assert rules_cli.main([command, "--help"]) == rules_cli.EXIT_OK
        assert "example: steward rules " + command in capsys.readouterr().out


def test_check_and_explain_name_a_vault_set(tmp_path: Path) -> None:
    path = tmp_path / "sets.yaml"
    path.write_text("version: 1\nrules:\n  - name: vms\n    protect: {vault: {vaultSet: {namePrefix: rsv-weu-}}}\n")
    assert "protect in the vault set rsv-weu-*" in run("check", str(path))[1]
    code, out, _ = run("explain", VM, "--location", "westeurope", "--rules", str(path))
    assert code == 0
    assert "the vault set of RecoveryServices vaults named rsv-weu-* in westeurope" in out
    assert "below 90% full" in out


BV = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.DataProtection/backupVaults/bv-weu"


def test_check_and_explain_show_where_the_backup_vault_roles_go(tmp_path: Path) -> None:
    path = tmp_path / "scoped.yaml"
    path.write_text("version: 1\nrules:\n  - name: disks\n    match: {types: [Microsoft.Compute/disks]}\n"
                    f"    protect: {{vault: {{id: {BV}, region: westeurope}}, roleScope: resourceGroup}}\n"
                    "  - name: rest\n    protect: {vault: regional-default}\n")
    listed = run("check", str(path))[1]
    assert "vault roles per resource group" in listed
    assert listed.count("vault roles per") == 1  # the default (resource) is not repeated on every rule
    code, out, _ = run("explain", DISK, "--location", "westeurope", "--rules", str(path))
    assert code == 0 and "roles:  2 role assignments for the vault identity (shared; roleScope resourceGroup)" in out
    code, out, _ = run("explain", DISK.replace("/disks/data", "/disks/other").replace("Compute/disks",
                       "Storage/storageAccounts"), "--location", "westeurope", "--rules", str(path))
    assert code == 0
    assert "roles:  1 role assignment for the vault identity (its own; roleScope resource, least privilege)" in out
    code, out, _ = run("explain", VM, "--location", "westeurope", "--rules", str(path))
    assert code == 0 and "roles:" not in out  # a Recovery Services vault needs no role assignments


@pytest.mark.parametrize(("scope", "summary", "reader", "snapshots"), [
    ("", "2 role assignments for the vault identity (1 its own, 1 shared; roleScope resource, least privilege)",
     "on the resource itself", "on resource group rg-fin-1"),
    (", roleScope: resourceGroup", "2 role assignments for the vault identity (shared; roleScope resourceGroup)",
     "on resource group rg-fin-1", "on resource group rg-fin-1"),
    (", roleScope: subscription", "2 role assignments for the vault identity (shared; roleScope subscription)",
     f"on subscription {SUB}", "on resource group rg-fin-1"),
])
def test_explain_counts_a_disks_two_roles_and_says_where_each_goes(
    tmp_path: Path, scope: str, summary: str, reader: str, snapshots: str
) -> None:
    """Review finding 10: a disk needs two assignments (Disk Backup Reader, Disk Snapshot Contributor), not "one
    per resource"; under roleScope subscription the snapshot role stays on the snapshot group (finding 1)."""
    path = tmp_path / "disks.yaml"
    path.write_text(f"version: 1\nrules:\n  - name: disks\n    protect: {{vault: {{id: {BV}, region: westeurope}}"
                    f"{scope}}}\n")
    code, out, _ = run("explain", DISK, "--location", "westeurope", "--rules", str(path))
    assert code == 0
    assert f"roles:  {summary}" in out, out
    assert f"Disk Backup Reader {reader}" in out and f"Disk Snapshot Contributor {snapshots}" in out, out
    code, out, _ = run("explain", DISK, "--location", "westeurope", "--rules", str(path), "--json")
    roles = json.loads(out)["roles"]
    assert [r["role"] for r in roles] == ["Disk Backup Reader", "Disk Snapshot Contributor"]
    assert roles[1]["scope"] == f"/subscriptions/{SUB}/resourceGroups/rg-fin-1"
