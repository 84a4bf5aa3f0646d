"""Drill rules (issue 17 item 1): the ``drills`` section loads with line-and-field errors, the first matching
drill rule applies, and ``steward rules explain`` shows it."""

from __future__ import annotations

import io
import json
from datetime import timedelta
from pathlib import Path

import pytest

from steward import rules_cli
from steward.domain.drill_rules import first_drill, format_duration, parse_duration
from steward.domain.drills import PointChoice
from steward.domain.rules import InvalidRules
from steward.rules_file import load_rules

SUB = "11111111-1111-1111-1111-111111111111"
VM = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm1"

DOC = """version: 1
rules:
  - name: vms
    match: {types: [Microsoft.Compute/virtualMachines]}
    protect: {vault: regional-default, policy: DefaultPolicy}
  - name: disks
    match: {types: [Microsoft.Compute/disks]}
    protect: {vault: regional-default, policy: disk-default}
drills:
  - name: prod-vms
    match: {types: [Microsoft.Compute/virtualMachines], tags: {env: prod}, rules: [vms]}
    every: P7D
    share: 0.25
    minimum: 2
    recoveryPoint: {random: {window: P3D}}
    resourceGroup: drill-{region}-{subscription}
    lifetime: PT6H
    budgets: {maxConcurrent: 3, maxRestoredGb: 256}
  - name: everything
    every: P30D
"""


def test_a_drills_section_loads_every_field() -> None:
    rules = load_rules(DOC, "r.yaml")
    prod, everything = rules.drills
    assert prod.name == "prod-vms" and prod.line == 10 and prod.every == timedelta(days=7)
    assert prod.budget.share == 0.25 and prod.budget.minimum == 2 and prod.budget.max_concurrent == 3
    assert prod.budget.max_restored_gb == 256.0
    assert prod.point is PointChoice.RANDOM and prod.window == timedelta(days=3)
    assert prod.lifetime == timedelta(hours=6)
    assert prod.group_for("westeurope", SUB) == f"drill-westeurope-{SUB}"
    # defaults: every matching resource each run, latest point, a group per region, six hours
    assert everything.budget.share == 1.0 and everything.point is PointChoice.LATEST and everything.window is None
    assert everything.group_for("northeurope", SUB) == "backup-steward-drill-northeurope"


def test_the_first_matching_drill_applies_and_only_to_protected_resources() -> None:
    drills = load_rules(DOC, "r.yaml").drills
    vm = "Microsoft.Compute/virtualMachines"
    assert first_drill(drills, vm, {"ENV": "prod"}, "vms").name == "prod-vms"  # type: ignore[union-attr]
    assert first_drill(drills, vm, {"env": "dev"}, "vms").name == "everything"  # type: ignore[union-attr]
    assert first_drill(drills, vm, {"env": "prod"}, "disks").name == "everything"  # type: ignore[union-attr]
    assert first_drill(drills, vm, {"env": "prod"}, None) is None


@pytest.mark.parametrize(
    ("drill", "line", "field", "message"),
    [
        ("  - name: d\n    every: 7 days\n", 11, "drills[0].every", "ISO 8601 duration"),
        ("  - name: d\n    every: P1Y\n", 11, "drills[0].every", "ISO 8601 duration"),
        ("  - name: d\n    every: PT5M\n", 11, "drills[0].every", "between PT1H and P366D"),
        ("  - name: d\n    every: P1D\n    lifetime: P30D\n", 12, "drills[0].lifetime", "at most P7D"),
        ("  - name: d\n    every: P1D\n    share: 0\n", 12, "drills[0].share", "0"),
        ("  - name: d\n    every: P1D\n    recoveryPoint: oldest\n", 12, "drills[0].recoveryPoint", "'latest' or"),
        ("  - name: d\n    every: P1D\n    recoveryPoint: {random: {window: soon}}\n", 12,
         "drills[0].recoveryPoint", "{random: {window: <ISO 8601 duration"),
        ("  - name: d\n    every: P1D\n    match: {rules: [nope]}\n", 12, "drills[0].match.rules[0]",
         "no protection rule named 'nope'"),
        ("  - name: d\n    every: P1D\n    match: {types: [Microsoft.Web/sites]}\n", 12, "drills[0].match.types[0]",
         "not a type Backup Steward protects"),
        ("  - name: d\n    every: P1D\n    resourceGroup: drill-{zone}\n", 12, "drills[0].resourceGroup",
         "only {region} and {subscription}"),
        ("  - name: d\n    every: P1D\n    budgets: {maxConcurrent: 0}\n", 12, "drills[0].budgets.maxConcurrent",
         "minimum"),
        ("  - name: d\n    every: P1D\n    frequency: daily\n", 12, "drills[0].frequency", "unknown field"),
        ("  - name: d\n", 10, "drills[0]", "'every' is missing"),
        ("  - name: d\n    every: P1D\n    validationHook: {timeout: soon}\n", 12,
         "drills[0].validationHook.timeout", "ISO 8601 duration"),
        ("  - name: d\n    every: P1D\n    lifetime: P2D\n    validationHook: {timeout: P1D}\n", 13,
         "drills[0].validationHook.timeout", "at most PT12H"),
        ("  - name: d\n    every: P1D\n    lifetime: PT2H\n    validationHook: {timeout: PT3H}\n", 13,
         "drills[0].validationHook.timeout", "not be longer than the drill's lifetime"),
        ("  - name: d\n    every: P1D\n    validationHook: {wait: PT1H}\n", 12, "drills[0].validationHook.wait",
         "unknown field"),
        ("  - name: d\n    every: P1D\n  - name: D\n    every: P2D\n", 12, "drills[1].name", "used twice"),
    ],
)
def test_bad_drill_rules_name_line_and_field(drill: str, line: int, field: str, message: str) -> None:
    text = DOC.split("drills:\n", maxsplit=1)[0] + "drills:\n" + drill
    with pytest.raises(InvalidRules) as caught:
        load_rules(text, "r.yaml")
    found = [(p.line, p.field, p.message) for p in caught.value.problems]
    assert any(p[0] == line and p[1] == field and message in p[2] for p in found), found


def test_the_validation_hook_is_off_unless_named_and_waits_an_hour_unless_told() -> None:
    head = DOC.split("drills:\n", maxsplit=1)[0] + "drills:\n"
    hooked = load_rules(head + "  - name: a\n    every: P1D\n    validationHook: {}\n"
                        "  - name: b\n    every: P1D\n    validationHook: {timeout: PT30M}\n", "r.yaml").drills
    assert [d.validation_timeout for d in hooked] == [timedelta(hours=1), timedelta(minutes=30)]
    assert hooked[1].to_record()["validationHook"] == {"timeout": "PT30M"}
    assert all(d.validation_timeout is None for d in load_rules(DOC, "r.yaml").drills)


def test_durations_round_trip() -> None:
    assert parse_duration("P1W") == timedelta(days=7)
    assert parse_duration("P1DT12H30M") == timedelta(days=1, hours=12, minutes=30)
    assert format_duration(timedelta(days=1, hours=12, minutes=30)) == "P1DT12H30M"
    for bad in ("P", "PT", "P0D", "1D", "P1.5D", "PT1H2D"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_rules_explain_shows_the_drill_that_applies(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(DOC)
    out = io.StringIO()
    code = rules_cli.main(["explain", VM, "--location", "West Europe", "--rules", str(path), "--tag", "env=prod"],
                          out=out, err=io.StringIO(), env={})
    assert code == rules_cli.EXIT_OK
    assert (f"drill:  'prod-vms' (line 10) every P7D, recovery point random within P3D, into "
            f"drill-westeurope-{SUB}, restored resources live PT6H") in out.getvalue()
    out = io.StringIO()
    rules_cli.main(["explain", VM, "--location", "westeurope", "--rules", str(path), "--output", "json"],
                   out=out, err=io.StringIO(), env={})
    assert json.loads(out.getvalue())["drill"]["name"] == "everything"


def test_without_drill_rules_explain_says_none(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(DOC.split("drills:\n", maxsplit=1)[0])
    out = io.StringIO()
    rules_cli.main(["explain", VM, "--location", "westeurope", "--rules", str(path)], out=out, err=io.StringIO(),
                   env={})
    assert "drill:  none (no drill rule matches)" in out.getvalue()


def test_what_lives_in_a_drill_group_is_never_protected() -> None:
    """A drill's staging account and restored disks raise resource events like any write: protecting them would
    leave a backup instance (and its recovery points) behind every drill."""
    from steward.domain.ids import ResourceId
    from steward.domain.rules import OptOut, Protect, ResourceFacts, route
    from steward.rules_file import default_rules_text

    rules = load_rules(default_rules_text() + "\ndrills:\n  - name: weekly\n    every: P7D\n", "r.yaml")
    sub = "00000000-0000-4000-8000-000000000001"
    staging = f"/subscriptions/{sub}/resourceGroups/backup-steward-drill-westeurope/providers/Microsoft.Storage/" \
              "storageAccounts/bsdrill1"
    decision = route(ResourceFacts(ResourceId.parse(staging), "westeurope"), rules)
    assert isinstance(decision, OptOut) and "drill group" in decision.reason
    elsewhere = staging.replace("backup-steward-drill-westeurope", "rg-app")
    assert isinstance(route(ResourceFacts(ResourceId.parse(elsewhere), "westeurope"), rules), Protect)
    other_region = ResourceFacts(ResourceId.parse(staging), "northeurope")  # not that region's drill group
    assert isinstance(route(other_region, rules), Protect)


def test_a_vm_or_server_in_a_drill_group_is_routed_as_any_other() -> None:
    """Drills make only disks and storage accounts (a VM restores as disks, a PostgreSQL server as files into the
    drill's account: steward/domain/drill_flow.py). A VM or a server someone put in a group named as the drill
    group (the app's own or a same-named one) is a customer's, not a drill's: before, routing opted it out by the
    group's name alone, so it was never protected and the audit counted it as opted out."""
    from steward.domain.ids import ResourceId
    from steward.domain.rules import OptOut, Protect, ResourceFacts, route
    from steward.rules_file import default_rules_text

    rules = load_rules(default_rules_text() + "\ndrills:\n  - name: weekly\n    every: P7D\n", "r.yaml")
    group = "/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/backup-steward-drill-westeurope"
    vm = f"{group}/providers/Microsoft.Compute/virtualMachines/someone-put-a-vm-here"
    server = f"{group}/providers/Microsoft.DBforPostgreSQL/flexibleServers/orders"
    for made_elsewhere in (vm, server):
        decision = route(ResourceFacts(ResourceId.parse(made_elsewhere), "westeurope"), rules)
        assert isinstance(decision, Protect), (made_elsewhere, decision)
    disk = f"{group}/providers/Microsoft.Compute/disks/data-drill-0123456789"
    assert isinstance(route(ResourceFacts(ResourceId.parse(disk), "westeurope"), rules), OptOut)
