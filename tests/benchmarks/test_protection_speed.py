"""Smoke test of the protection-speed benchmark at a tiny size (so it cannot rot): it must run end to end on
the sandbox and its figures must respect what the REST API and the sandbox's model make impossible to beat."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import protection_speed


def test_tiny_run_produces_consistent_figures(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "protection_speed.json"
    status = protection_speed.main([
        "--per-type", "1", "--vms", "4", "--scale", "200", "--burst-scale", "200", "--seed", "3",
        "--output", str(output),
    ])

    assert status == 0
    result = json.loads(output.read_text())
    summary = result["latency"]["summary"]
    assert set(summary) == {"vm", "disk", "storage", "postgres"}
    for key, figures in summary.items():
        assert figures["protected"] == figures["resources"] == 1, key
        # no client can be faster than the modelled latencies and LRO durations, nor use fewer requests
        assert figures["event_to_verified_seconds"]["p50"] >= figures["minimum"]["modelled_floor_seconds"], key
        assert figures["event_to_outcome_seconds"]["p50"] >= figures["event_to_verified_seconds"]["p50"], key
        for kind, minimum in figures["minimum"]["per_resource"].items():
            assert figures["requests_per_resource"][kind] >= minimum, (key, kind)
    burst = result["burst"]
    assert burst["resources"] == 4 and burst["type"] == "vm"
    assert burst["exactly_once"]["every_resource_protected"] is True
    assert burst["exactly_once"]["resources_with_one_item"] == 4
    assert burst["app"]["writes_per_resource"] >= 2  # backupStatus POST + protected item PUT
    assert 0 < burst["fraction_of_write_refill"] < 1
    assert burst["elapsed_virtual_seconds"] > 90  # a VM's create operation alone is modelled at 90 s
    assert "Burst: 4 creations of vm" in capsys.readouterr().out


def test_a_burst_on_four_app_instances_protects_every_vm_once(tmp_path: Path) -> None:
    """Scale-out modelled (issue 15 item 4): four instances, each with its own activity slots and ARM pacer,
    over one task hub, on the discrete clock: every VM is protected once, no work is done twice, all four take
    work, and their pacers together draw no 429."""
    output = tmp_path / "protection_speed.json"
    status = protection_speed.main([
        "--skip-latency", "--vms", "12", "--clock", "discrete", "--instances", "4", "--seed", "3",
        "--output", str(output),
    ])

    assert status == 0
    burst = json.loads(output.read_text())["burst"]
    assert burst["instances"] == 4
    assert burst["activity_slots"] == 4 * 8  # host.json's maxConcurrentActivityFunctions per instance
    once = burst["exactly_once"]
    assert once["every_resource_protected"] is True and once["resources_with_one_item"] == 12
    assert once["successful_item_puts"] == 12 and once["items_put_more_than_once"] == 0
    assert once["resources_with_several_outcomes"] == 0
    assert set(burst["activities_by_instance"]) == {"0", "1", "2", "3"}
    assert sum(burst["app"]["throttled_429"].values()) == 0


@pytest.mark.parametrize("kind", ["disk", "mixed"])
def test_a_burst_of_other_types_protects_each_resource_once_without_429s(tmp_path: Path, kind: str) -> None:
    """``--type`` (issue 15): a burst of Backup-vault resources (or the four types in turn) is protected each
    exactly once - one backup instance or protected item naming it, one successful PUT, one outcome - with no
    429 to the app, and its rate is reported against the binding bucket of that type's minimum request mix."""
    output = tmp_path / "protection_speed.json"
    status = protection_speed.main([
        "--skip-latency", "--vms", "8", "--type", kind, "--clock", "discrete", "--instances", "2", "--seed", "3",
        "--output", str(output),
    ])

    assert status == 0
    burst = json.loads(output.read_text())["burst"]
    assert burst["type"] == kind and burst["resources"] == 8
    once = burst["exactly_once"]
    assert once["every_resource_protected"] is True and once["resources_with_one_item"] == 8
    assert once["successful_item_puts"] == 8 and once["items_put_more_than_once"] == 0
    assert once["resources_with_several_outcomes"] == 0 and once["resources_without_outcome"] == 0
    assert once["outcome_statuses"] == {"Protected": 8}
    assert sum(burst["app"]["throttled_429"].values()) == 0
    bucket = burst["binding_bucket"]
    assert bucket["binding"] == "writes"
    # disk: 1 role PUT + validateForBackup + instance PUT per disk, the snapshot group's role once (over 8);
    # mixed: VM 2, disk and PostgreSQL 3 + a group role over 2 each, storage 3
    expected = 10 / 3.125 if kind == "disk" else 10 / (sum((2, 3.5, 3, 3.5)) / 4)
    assert bucket["protections_per_second"] == pytest.approx(expected, abs=0.01)
    if kind == "mixed":
        assert bucket["types"] == {"vm": 2, "disk": 2, "storage": 2, "postgres": 2}
    assert 0 < burst["app_mix_fraction_of_binding_bucket"] <= 1.0  # no client needs fewer than the minimum
    if kind == "disk":  # roleScope resource: a Disk Backup Reader per disk, the snapshot group's role once
        assert burst["vault_identity_role_assignments"] == {"total": 9, "resource": 8, "resourceGroup": 1}
    # new role assignments: the window cannot beat the propagation floor (a lower bound for any client)
    floor = burst["propagation_floor"]
    # 2 writes x 8 fit the 200 tokens: 180 s + 60 s after the last creation event (a PostgreSQL server's comes ~300 s
    # after the others: its create operation)
    assert floor["rbac_seconds"] == 180.0 and floor["seconds"] >= 180.0 + 60.0
    assert floor["seconds"] < 260.0 if kind == "disk" else floor["seconds"] > 500.0
    assert burst["protection_window_virtual_seconds"] >= floor["seconds"]
    assert 0 < burst["window_fraction_of_propagation_floor"] <= 1.0


def test_the_propagation_floor_is_the_write_bucket_after_the_roles_apply() -> None:
    """1,000 Backup-vault resources with new role assignments: 180 s before any validation can pass, then 2,000
    writes of which the bucket holds 200 (180 s at 10/s), then the last instance's 60-s operation."""
    floor = protection_speed.propagation_floor(1000, 180.0)
    assert floor["seconds"] == pytest.approx(180 + (2000 - 200) / 10 + 60)
    assert protection_speed.propagation_floor(1000, 30.0)["seconds"] == pytest.approx(30 + 180 + 60)


@pytest.mark.parametrize("role_scope", ["resourceGroup", "subscription"])
def test_the_role_scoped_rules_name_the_bursts_backup_vault_by_id(role_scope: str) -> None:
    """A roleScope other than resource is refused at load without a vault named by id (review finding 2): every
    Backup-vault rule names the burst's vault; the VM rule keeps its regional default."""
    from steward.rules_file import load_rules

    vault = ("/subscriptions/00000000-0000-4000-8000-000000000001/resourceGroups/rg-burst/providers/"
             "Microsoft.DataProtection/backupVaults/bv-burst")
    rules = load_rules(protection_speed.rules_with_role_scope(role_scope, vault), "bench")
    specs = {r.name: r.protect for r in rules.rules if r.protect is not None}
    assert specs["virtual-machines"].vault == "regional-default"
    scoped = [s for name, s in specs.items() if name != "virtual-machines"]
    assert len(scoped) == 3 and all(s.role_scope == role_scope for s in scoped)
    assert {str(getattr(s.vault, "vault_id", "")) for s in scoped} == {vault}


def test_a_warm_group_scoped_burst_is_refused_no_validation_and_holds_two_assignments(tmp_path: Path) -> None:
    """``--role-scope resourceGroup --warm`` (issue 15): the vault identity's roles are on the group and older than
    the propagation bound, so no validation is refused (one per disk), the disks share the group's two assignments
    (Disk Backup Reader, Disk Snapshot Contributor) instead of one each, and the minimum mix is 2 writes per disk:
    the read bucket binds."""
    output = tmp_path / "protection_speed.json"
    status = protection_speed.main([
        "--skip-latency", "--vms", "8", "--type", "disk", "--clock", "discrete", "--instances", "2", "--seed", "3",
        "--role-scope", "resourceGroup", "--warm", "--output", str(output),
    ])

    assert status == 0
    burst = json.loads(output.read_text())["burst"]
    assert burst["role_scope"] == "resourceGroup"
    assert [w["status"] for w in burst["warm_up"]] == ["Protected"]
    once = burst["exactly_once"]
    assert once["every_resource_protected"] is True and once["successful_item_puts"] == 8
    assert burst["app"]["validations_per_backup_vault_resource"] == 1.0
    assert burst["vault_identity_role_assignments"] == {"total": 2, "resourceGroup": 2}
    assert burst["propagation_floor"] is None
    bucket = burst["binding_bucket"]
    # 2 writes per disk (validateForBackup, the instance PUT; the group's two roles once, over 8) and 6 reads
    # (the resource, 3 looks at the validation each after its Retry-After, 1 at the instance's operation, the
    # verifying GET): the read bucket binds at 25 / 6
    assert bucket["binding"] == "reads" and bucket["protections_per_second"] == pytest.approx(25 / 6, abs=0.01)
    assert bucket["minimum_per_resource"]["write"] < 1.5
    assert sum(burst["app"]["throttled_429"].values()) == 0
    # a late creation event (a PostgreSQL server's comes after its 300-s create): its grant, the propagation and its
    # instance's operation still follow it
    late = protection_speed.propagation_floor(1000, 180.0, last_event_after=390.0)
    assert late["seconds"] == pytest.approx(390 + 180 + 60) and "last creation event" in late["reason"]
