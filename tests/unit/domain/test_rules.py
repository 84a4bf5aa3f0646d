"""Protection rules: loading with line-and-field errors, routing (first match, opt-out, region and one-vault
rules), choosing among the vaults found, records, and property tests."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.domain.errors import InvalidRecord
from steward.domain.ids import ResourceId
from steward.domain.rules import (
    MAX_RULES_BYTES,
    AmbiguousVaults,
    BlobTier,
    ExplicitVault,
    InvalidRules,
    MatchCondition,
    NoVault,
    OnDelete,
    OptOut,
    OptOutBasis,
    Protect,
    ProtectionRule,
    ProtectionSpec,
    RegionalDefaultVault,
    RequiredVaultSettings,
    ResourceFacts,
    RuleSet,
    TagCondition,
    Unsupported,
    VaultCandidate,
    VaultChosen,
    choose_vault,
    decision_from_record,
    route,
)
from steward.domain.rules.loading import SUPPORTED_TYPES
from steward.domain.workloads import VaultKind, workload_for
from steward.rules_file import (
    default_rules_text,
    load_configured_rules,
    load_rules,
    read_rules_file,
    rules_schema,
    schema_text,
)

SUB = "11111111-1111-1111-1111-111111111111"
SUB2 = "22222222-2222-2222-2222-222222222222"
VM_TYPE = "Microsoft.Compute/virtualMachines"


def rid(kind: str, name: str, *, sub: str = SUB, group: str = "rg-app") -> ResourceId:
    return ResourceId.parse(f"/subscriptions/{sub}/resourceGroups/{group}/providers/{kind}/{name}")


def facts(kind: str = VM_TYPE, name: str = "vm1", *, location: str = "westeurope", **kw: Any) -> ResourceFacts:
    tags = kw.pop("tags", {})
    return ResourceFacts(rid(kind, name, **kw), location, tags)


def vault(kind: VaultKind, name: str, *, sub: str = SUB, location: str = "westeurope", **tags: str) -> VaultCandidate:
    full_type = (
        "Microsoft.RecoveryServices/vaults"
        if kind is VaultKind.RECOVERY_SERVICES
        else ("Microsoft.DataProtection/backupVaults")
    )
    return VaultCandidate(rid(full_type, name, sub=sub, group="rg-backup"), location, tags)


DEFAULTS = load_rules(default_rules_text(), "default_rules.yaml")


def problems_of(text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(InvalidRules) as caught:
        load_rules(text, "rules.yaml")
    assert "rules.yaml" in str(caught.value)
    return [(p.line, p.field, p.message) for p in caught.value.problems]


# ---- the default rules --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource_type", "vault_kind", "policy"),
    [
        (VM_TYPE, VaultKind.RECOVERY_SERVICES, "DefaultPolicy"),
        ("Microsoft.Compute/disks", VaultKind.BACKUP, "disk-default"),
        ("Microsoft.Storage/storageAccounts", VaultKind.BACKUP, "blob-default"),
        ("Microsoft.DBforPostgreSQL/flexibleServers", VaultKind.BACKUP, "postgres-flex-default"),
    ],
)
def test_default_rules_protect_every_supported_type_in_its_own_region_and_subscription(
    resource_type: str, vault_kind: VaultKind, policy: str
) -> None:
    decision = route(facts(resource_type, "r1", location="West Europe", sub=SUB2), DEFAULTS)
    assert isinstance(decision, Protect)
    assert decision.vault == RegionalDefaultVault(vault_kind, SUB2, "westeurope")
    assert decision.policy == policy
    workload = workload_for(resource_type)
    assert workload is not None and workload.default_policy == policy
    assert decision.on_delete is OnDelete.RETAIN


def test_default_disk_snapshots_go_to_the_disks_own_group_and_blobs_are_operational() -> None:
    disk = route(facts("Microsoft.Compute/disks", "d1", group="rg-disks"), DEFAULTS)
    assert isinstance(disk, Protect)
    assert disk.datastore.snapshot_resource_group == ResourceId.parse(f"/subscriptions/{SUB}/resourceGroups/rg-disks")
    blob = route(facts("Microsoft.Storage/storageAccounts", "st1"), DEFAULTS)
    assert isinstance(blob, Protect)
    assert blob.datastore.blob_tier is BlobTier.OPERATIONAL


def test_the_opt_out_tag_wins_and_unsupported_types_are_reported() -> None:
    tagged = route(facts(tags={"Backup-Steward:Opt-Out": "TRUE"}), DEFAULTS)
    assert isinstance(tagged, OptOut)
    assert "opt-out" in tagged.reason
    not_true = route(facts(tags={"backup-steward:opt-out": "false"}), DEFAULTS)
    assert isinstance(not_true, Protect)
    web = route(facts("Microsoft.Web/sites", "app"), DEFAULTS)
    assert isinstance(web, Unsupported)
    assert "Microsoft.Web/sites" in web.reason


def test_the_loader_validates_with_the_one_packaged_schema_file() -> None:
    # the schema lives in one file (steward/domain/rules.schema.json); the loader is handed what it says
    assert json.loads(schema_text()) == rules_schema().document
    # what the file allows as resource types is what the loader supports, in either case, and nothing else
    allowed = rules_schema().document["$defs"]["match"]["properties"]["types"]["items"]["enum"]
    assert sorted(allowed) == sorted([*SUPPORTED_TYPES, *(t.lower() for t in SUPPORTED_TYPES)])
    assert {t.lower() for t in SUPPORTED_TYPES} == {w.resource_type.lower() for w in map(workload_for, SUPPORTED_TYPES)}


# ---- matching -------------------------------------------------------------------------------------------

MATCHING = f"""\
version: 1
rules:
  - name: dev-out
    match:
      tags: {{env: dev}}
    optOut: dev resources are rebuilt, not restored
  - name: fin-prod-vms
    match:
      types: [Microsoft.Compute/virtualMachines]
      resourceGroups: ["rg-fin-*"]
      subscriptions: ["{SUB}"]
      regions: [West Europe]
      tags: {{owner: {{exists: true}}, temporary: {{absent: true}}}}
    protect:
      vault:
        id: /subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/rsv-fin
        region: westeurope
      policy: Fin-Daily
      rpoHours: 12
      onDelete: leave
      requiredVaultSettings: {{softDelete: AlwaysON, immutability: Locked, crossRegionRestore: true}}
  - name: central-backup-vault
    match:
      types: [Microsoft.Compute/disks, Microsoft.Storage/storageAccounts]
    protect:
      vault: {{regionalDefault: {{subscription: "{SUB2}"}}}}
      datastore: {{snapshotResourceGroup: rg-snapshots, blobTier: vaulted, blobContainers: [data, logs-2024]}}
  - name: everything-else
    protect: {{vault: regional-default}}
"""


def test_a_rule_matches_only_when_every_condition_holds() -> None:
    rules = load_rules(MATCHING, "matching.yaml")
    good = facts(group="RG-FIN-01", tags={"Owner": "ana"})
    decision = route(good, rules)
    assert isinstance(decision, Protect)
    assert decision.rule == "fin-prod-vms"
    assert decision.policy == "Fin-Daily"
    assert decision.rpo_hours == 12
    assert decision.on_delete is OnDelete.LEAVE
    assert decision.required_settings == RequiredVaultSettings("AlwaysOn", "Locked", True)
    for variant in (
        facts(group="rg-hr-01", tags={"owner": "ana"}),
        facts(group="rg-fin-01", tags={}),
        facts(group="rg-fin-01", tags={"owner": "ana", "temporary": "yes"}),
        facts(group="rg-fin-01", tags={"owner": "ana"}, location="northeurope"),
    ):
        other = route(variant, rules)
        assert isinstance(other, Protect)
        assert other.rule == "everything-else", variant


def test_first_match_wins_so_an_early_opt_out_beats_a_later_protect() -> None:
    rules = load_rules(MATCHING, "matching.yaml")
    decision = route(facts(group="rg-fin-01", tags={"owner": "ana", "env": "dev"}), rules)
    assert decision == OptOut(
        decision.resource_id, "dev resources are rebuilt, not restored", "dev-out", OptOutBasis.RULE
    )


def test_backup_vault_targets_may_sit_in_another_subscription_with_datastore_options() -> None:
    rules = load_rules(MATCHING, "matching.yaml")
    decision = route(facts("Microsoft.Storage/storageAccounts", "st1"), rules)
    assert isinstance(decision, Protect)
    assert decision.vault == RegionalDefaultVault(VaultKind.BACKUP, SUB2, "westeurope")
    assert decision.datastore.blob_tier is BlobTier.VAULTED
    assert decision.datastore.blob_containers == ("data", "logs-2024")
    disk = route(facts("Microsoft.Compute/disks", "d1"), rules)
    assert isinstance(disk, Protect)
    # the snapshot group lives in the disk's subscription, whatever the vault's
    assert disk.datastore.snapshot_resource_group == ResourceId.parse(
        f"/subscriptions/{SUB}/resourceGroups/rg-snapshots"
    )


def test_no_matching_rule_means_not_covered() -> None:
    rules = load_rules(
        "version: 1\nrules:\n  - name: only-vms\n    match: {types: [Microsoft.Compute/virtualMachines]}\n"
        "    protect: {vault: regional-default}\n",
        "r.yaml",
    )
    decision = route(facts("Microsoft.Compute/disks", "d1"), rules)
    assert isinstance(decision, OptOut)
    assert decision.rule is None and "no rule" in decision.reason


# ---- region and one-vault rules -------------------------------------------------------------------------


def explicit_rules(vault_id: str, region: str, types: str = "") -> RuleSet:
    match = f"\n    match: {{types: [{types}]}}" if types else ""
    return load_rules(
        f"version: 1\nrules:\n  - name: pinned{match}\n"
        f"    protect: {{vault: {{id: '{vault_id}', region: {region}}}}}\n",
        "pinned.yaml",
    )


RSV = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/rsv"
RSV_OTHER_SUB = RSV.replace(SUB, SUB2)
BV_OTHER_SUB = f"/subscriptions/{SUB2}/resourceGroups/rg-backup/providers/Microsoft.DataProtection/backupVaults/bv"


def test_an_explicit_vault_in_another_region_is_refused_at_decision_time() -> None:
    decision = route(facts(location="northeurope"), explicit_rules(RSV, "westeurope"))
    assert isinstance(decision, Unsupported)
    assert decision.rule == "pinned"
    assert "region westeurope" in decision.reason and "northeurope" in decision.reason


def test_a_recovery_services_vault_in_another_subscription_is_refused_for_a_vm() -> None:
    decision = route(facts(), explicit_rules(RSV_OTHER_SUB, "westeurope"))
    assert isinstance(decision, Unsupported)
    assert "cross-subscription" in decision.reason
    selector = load_rules(
        f"version: 1\nrules:\n  - name: central\n"
        f"    protect: {{vault: {{regionalDefault: {{subscription: '{SUB2}'}}}}}}\n",
        "c.yaml",
    )
    assert isinstance(route(facts(), selector), Unsupported)
    assert isinstance(route(facts("Microsoft.Compute/disks", "d"), selector), Protect)


def test_a_backup_vault_in_another_subscription_but_same_region_is_accepted() -> None:
    decision = route(facts("Microsoft.Compute/disks", "d1"), explicit_rules(BV_OTHER_SUB, "westeurope"))
    assert isinstance(decision, Protect)
    assert decision.vault == ExplicitVault(ResourceId.parse(BV_OTHER_SUB), "westeurope")


def test_a_vault_of_the_wrong_kind_is_refused_at_decision_and_at_load_time() -> None:
    decision = route(facts("Microsoft.Compute/disks", "d1"), explicit_rules(RSV, "westeurope"))
    assert isinstance(decision, Unsupported)
    assert "needs" not in decision.reason and "Backup vault" in decision.reason
    with pytest.raises(InvalidRules) as caught:
        explicit_rules(RSV, "westeurope", types="Microsoft.Compute/disks")
    (problem,) = caught.value.problems
    assert problem.line == 5
    assert problem.field == "rules[0].protect.vault.id"
    assert "needs a Backup vault" in problem.message


# ---- choosing the vault ---------------------------------------------------------------------------------------


def protect_vm(**kw: Any) -> Protect:
    decision = route(facts(**kw), DEFAULTS)
    assert isinstance(decision, Protect)
    return decision


def test_the_tagged_default_vault_of_the_region_is_chosen() -> None:
    chosen = choose_vault(
        protect_vm(),
        [
            vault(VaultKind.RECOVERY_SERVICES, "a"),
            vault(VaultKind.RECOVERY_SERVICES, "b", **{"backup-steward:default": "true"}),
            vault(VaultKind.RECOVERY_SERVICES, "c", location="northeurope", **{"backup-steward:default": "true"}),
            vault(VaultKind.BACKUP, "d", **{"backup-steward:default": "true"}),
        ],
    )
    assert isinstance(chosen, VaultChosen)
    assert chosen.vault_id.name == "b"


def test_the_only_vault_of_the_region_is_chosen_without_a_tag() -> None:
    chosen = choose_vault(
        protect_vm(),
        [vault(VaultKind.RECOVERY_SERVICES, "a"), vault(VaultKind.RECOVERY_SERVICES, "z", location="eastus")],
    )
    assert isinstance(chosen, VaultChosen) and chosen.vault_id.name == "a"


def test_several_untagged_vaults_are_ambiguous_and_none_is_no_vault() -> None:
    vaults = [vault(VaultKind.RECOVERY_SERVICES, "b"), vault(VaultKind.RECOVERY_SERVICES, "a")]
    ambiguous = choose_vault(protect_vm(), vaults)
    assert isinstance(ambiguous, AmbiguousVaults)
    assert [v.name for v in ambiguous.candidates] == ["a", "b"]
    tagged_twice = choose_vault(
        protect_vm(), [vault(VaultKind.RECOVERY_SERVICES, n, **{"backup-steward:default": "true"}) for n in "ab"]
    )
    assert isinstance(tagged_twice, AmbiguousVaults) and "tag exactly one" in tagged_twice.reason
    none = choose_vault(protect_vm(), [vault(VaultKind.RECOVERY_SERVICES, "x", sub=SUB2)])
    assert isinstance(none, NoVault)
    assert (none.vault_kind, none.subscription_id, none.region) == (VaultKind.RECOVERY_SERVICES, SUB, "westeurope")


def test_an_explicit_vault_must_exist_and_really_be_in_the_declared_region() -> None:
    decision = route(facts(), explicit_rules(RSV, "westeurope"))
    assert isinstance(decision, Protect)
    assert isinstance(choose_vault(decision, []), NoVault)
    moved = VaultCandidate(ResourceId.parse(RSV), "northeurope")
    refused = choose_vault(decision, [moved])
    assert isinstance(refused, NoVault) and "northeurope" in refused.reason
    right = choose_vault(
        decision,
        [VaultCandidate(ResourceId.parse(RSV.upper().replace("/SUBSCRIPTIONS/", "/subscriptions/")), "West Europe")],
    )
    assert isinstance(right, VaultChosen)


# ---- loading errors -----------------------------------------------------------------------------------------


def test_unknown_fields_are_named_with_their_line() -> None:
    text = "version: 1\nrules:\n  - name: a\n    protect:\n      vault: regional-default\n      polcy: x\n"
    assert problems_of(text) == [
        (
            6,
            "rules[0].protect.polcy",
            "unknown field 'polcy'; allowed here: datastore, onDelete, policy, requiredVaultSettings, roleScope, "
            "rpoHours, vault",
        )
    ]


def test_yaml_booleans_where_strings_belong_get_a_hint() -> None:
    text = "version: 1\nrules:\n  - name: a\n    match:\n      tags:\n        critical: yes\n    optOut: x\n"
    (problem,) = problems_of(text)
    assert problem[0] == 6
    assert problem[1] == "rules[0].match.tags.critical"
    assert "tag condition" in problem[2]
    text = "version: 1\nrules:\n  - name: a\n    protect: {vault: regional-default, policy: 12}\n"
    (problem,) = problems_of(text)
    assert problem[:2] == (4, "rules[0].protect.policy")
    assert "quote it" in problem[2]


PROTECT_A = "version: 1\nrules:\n  - name: a\n    protect:\n      vault: regional-default\n"


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        ("rules: []\n", 1, "", "'version' is missing"),
        ("version: 1\nrules:\n  - name: a\n", 3, "rules[0]", "exactly one of 'protect' or 'optOut'"),
        (
            "version: 1\nrules:\n  - name: a\n    optOut: x\n    protect: {vault: regional-default}\n",
            3,
            "rules[0]",
            "exactly one",
        ),
        (
            "version: 1\nrules:\n  - name: a\n    protect: {vault: nearest}\n",
            4,
            "rules[0].protect.vault",
            "regional-default",
        ),
        (
            "version: 1\nrules:\n  - name: a\n    protect: {vault: {id: '/subscriptions/x/../y', region: w}}\n",
            4,
            "rules[0].protect.vault.id",
            "traversal",
        ),
        (
            "version: 1\nrules:\n  - name: a\n    protect: {vault: {id: '/subscriptions/"
            + SUB
            + "/resourceGroups/r', region: w}}\n",
            4,
            "rules[0].protect.vault.id",
            "not a Recovery Services vault",
        ),
        (
            "version: 1\nrules:\n  - name: a\n    match: {types: [Microsoft.Web/sites]}\n    optOut: x\n",
            4,
            "rules[0].match.types[0]",
            "is not one of",
        ),
        (
            "version: 1\nrules:\n  - name: a\n    match: {subscriptions: [nope]}\n    optOut: x\n",
            4,
            "rules[0].match.subscriptions[0]",
            "expected form",
        ),
        (
            "version: 1\nrules:\n  - name: a\n    optOut: x\n  - name: A\n    optOut: y\n",
            5,
            "rules[1].name",
            "used twice (first on line 3)",
        ),
        ("version: 1\nversion: 1\nrules: []\n", 2, "version", "duplicate key"),
        ("version: 1\n1: x\nrules: []\n", 2, "", "plain string"),
        ("version: 1\nrules:\n  - &a {name: a, optOut: x}\n  - *a\n", 4, "", "aliases"),
        ("version: 1\nrules:\n  - name: a\n    optOut: [unclosed\n", 5, "", "not valid YAML"),
        ("", 1, "", "empty"),
        ("version: 2\nrules: [{name: a, optOut: x}]\n", 1, "version", "1 was expected"),
        (
            PROTECT_A + "      datastore: {blobContainers: [Bad_Name]}\n",
            6,
            "rules[0].protect.datastore.blobContainers[0]",
            "not a blob container name",
        ),
        (
            PROTECT_A + "      datastore: {snapshotResourceGroup: '..'}\n",
            6,
            "rules[0].protect.datastore.snapshotResourceGroup",
            "traversal",
        ),
        (
            PROTECT_A + "      rpoHours: 0\n",
            6,
            "rules[0].protect.rpoHours",
            "minimum",
        ),
        ("- just a list\n", 1, "", "must be a mapping"),
    ],
)
def test_bad_documents_name_the_line_and_the_field(text: str, line: int, field: str, message: str) -> None:
    found = problems_of(text)
    assert any(p_line == line and p_field == field and message in p_message for p_line, p_field, p_message in found), (
        found
    )


def test_every_problem_is_reported_together() -> None:
    text = (
        "version: 1\nrules:\n  - name: a\n    bogus: 1\n    optOut: x\n"
        "  - name: b\n    protect: {vault: regional-default, onDelete: purge}\n"
    )
    found = problems_of(text)
    assert [(line, field) for line, field, _ in found] == [(4, "rules[0].bogus"), (7, "rules[1].protect.onDelete")]


def test_json_documents_are_accepted_and_their_errors_have_lines_too() -> None:
    document = {"version": 1, "rules": [{"name": "all", "protect": {"vault": "regional-default"}}]}
    assert isinstance(route(facts(), load_rules(json.dumps(document, indent=2), "r.json")), Protect)
    document["rules"][0]["protect"]["policy"] = 5  # type: ignore[index]
    with pytest.raises(InvalidRules) as caught:
        load_rules(json.dumps(document, indent=2), "r.json")
    assert caught.value.problems[0].line == 8


def test_deeply_nested_documents_are_refused_without_exhausting_the_stack() -> None:
    for text in ("[" * 5000 + "]" * 5000, "version: 1\nrules: " + "{a: " * 100 + "1" + "}" * 100):
        with pytest.raises(InvalidRules, match="nested deeper than 32 levels"):
            load_rules(text, "deep.yaml")


def test_oversized_documents_and_unreadable_files_are_refused(tmp_path: Any) -> None:
    with pytest.raises(InvalidRules, match="larger than"):
        load_rules("#" * (MAX_RULES_BYTES + 1), "big.yaml")
    with pytest.raises(InvalidRules, match="cannot read the rules file"):
        read_rules_file(tmp_path / "missing.yaml")
    with pytest.raises(InvalidRules, match="cannot read the rules file"):
        read_rules_file("bad\x00name.yaml")
    binary = tmp_path / "rules.bin"
    binary.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(InvalidRules, match="not UTF-8"):
        read_rules_file(binary)


def test_configured_rules_come_from_a_file_inline_text_or_the_defaults(tmp_path: Any) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("version: 1\noptOutTag: skip-me\nrules: [{name: from-file, optOut: skipped}]\n")
    from_file = load_configured_rules(str(path), "ignored", vault_default_tag="is-default")
    assert from_file.rules[0].name == "from-file" and from_file.source == str(path)
    assert from_file.opt_out_tag == "skip-me" and from_file.vault_default_tag == "is-default"
    inline = load_configured_rules(None, "version: 1\nrules: [{name: inline, optOut: skipped}]\n", opt_out_tag="x")
    assert inline.rules[0].name == "inline" and inline.opt_out_tag == "x"
    assert load_configured_rules(None, None).rules == DEFAULTS.rules


# ---- records -----------------------------------------------------------------------------------------------------


def test_decision_records_keep_the_shape_the_hand_written_records_had() -> None:
    """decide_protection's output is in the history of running orchestrations: the records codec writes a
    decision exactly as the hand-written ``to_record`` did (keys, order, values) and reads those records back."""
    vm = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/virtualMachines/vm1"
    disk = f"/subscriptions/{SUB}/resourceGroups/rg-app/providers/Microsoft.Compute/disks/d1"
    written_before = [
        {
            "kind": "protect",
            "resourceId": vm,
            "resourceType": "Microsoft.Compute/virtualMachines",
            "vaultKind": "RecoveryServices",
            "vault": {"kind": "explicit", "vaultId": RSV, "region": "westeurope"},
            "policy": "DefaultPolicy",
            "datastore": {"snapshotResourceGroup": None, "blobTier": None, "blobContainers": []},
            "onDelete": "retain",
            "rpoHours": 24,
            "requiredSettings": {"softDelete": "AlwaysOn", "immutability": None, "crossRegionRestore": True},
            "rule": "vms",
        },
        {
            "kind": "protect",
            "resourceId": disk,
            "resourceType": "Microsoft.Compute/disks",
            "vaultKind": "Backup",
            "vault": {
                "kind": "regional-default",
                "vaultKind": "Backup",
                "subscriptionId": SUB,
                "region": "westeurope",
                "defaultTag": "backup-steward:default",
            },
            "policy": "disk-default",
            "datastore": {
                "snapshotResourceGroup": f"/subscriptions/{SUB}/resourceGroups/rg-app",
                "blobTier": "vaulted",
                "blobContainers": ["a", "b"],
            },
            "onDelete": "leave",
            "rpoHours": 4,
            "requiredSettings": {"softDelete": None, "immutability": None, "crossRegionRestore": None},
            "rule": "disks",
        },
        {"kind": "opt-out", "resourceId": vm, "reason": "tagged", "rule": None, "basis": "tag"},
        {"kind": "opt-out", "resourceId": vm, "reason": "before the split", "rule": "r"},
        {"kind": "unsupported", "resourceId": vm, "reason": "not supported", "rule": None},
    ]
    for record in written_before:
        again = decision_from_record(record).to_record()
        assert again == record and list(again) == list(record)


def test_decisions_round_trip_through_json_records() -> None:
    rules = load_rules(MATCHING, "m.yaml")
    decisions = [
        route(facts(group="rg-fin-1", tags={"owner": "x"}), rules),
        route(facts("Microsoft.Storage/storageAccounts", "st"), rules),
        route(facts("Microsoft.Compute/disks", "d"), rules),
        route(facts(tags={"env": "dev"}), rules),
        route(facts("Microsoft.Web/sites", "w"), rules),
    ]
    for decision in decisions:
        assert decision_from_record(json.loads(json.dumps(decision.to_record()))) == decision
    for bad in (
        None,
        {"kind": "protect"},
        {"kind": "x", "resourceId": str(decisions[0].resource_id)},
        {**decisions[0].to_record(), "vault": {"kind": "nope"}},
        {**decisions[0].to_record(), "onDelete": "purge"},
    ):
        with pytest.raises(InvalidRecord):
            decision_from_record(bad)
    facts_record = facts(tags={"a": "b"}).to_record()
    assert ResourceFacts.from_record(facts_record) == facts(tags={"a": "b"})


def test_required_settings_report_what_a_vault_lacks() -> None:
    required = RequiredVaultSettings("AlwaysOn", "Unlocked", True)
    assert required.shortfalls("AlwaysON", "Locked", True) == []
    assert len(required.shortfalls("Enabled", "Disabled", False)) == 3
    assert RequiredVaultSettings("On").shortfalls("AlwaysOn", None, None) == []
    assert RequiredVaultSettings("On").shortfalls("Disabled", None, None) == ["soft delete must be on, is Disabled"]


def test_resource_facts_refuse_a_type_or_subscription_that_is_not_the_ids() -> None:
    with pytest.raises(ValueError, match="type"):
        ResourceFacts(rid(VM_TYPE, "v"), "westeurope", {}, type="Microsoft.Compute/disks")
    with pytest.raises(ValueError, match="subscription"):
        ResourceFacts(rid(VM_TYPE, "v"), "westeurope", {}, subscription=SUB2)


# ---- properties -----------------------------------------------------------------------------------------------

_types = st.sampled_from(
    [
        VM_TYPE,
        "Microsoft.Compute/disks",
        "Microsoft.Storage/storageAccounts",
        "Microsoft.DBforPostgreSQL/flexibleServers",
        "Microsoft.Web/sites",
    ]
)
_regions = st.sampled_from(["westeurope", "northeurope", "eastus"])
_subs = st.sampled_from([SUB, SUB2])
_groups = st.sampled_from(["rg-a", "rg-b", "RG-fin-1"])
_tag_names = st.sampled_from(["env", "owner", "backup-steward:opt-out"])
_tag_values = st.sampled_from(["true", "dev", "prod"])


@st.composite
def resource_facts(draw: st.DrawFn) -> ResourceFacts:
    kind = draw(_types)
    return ResourceFacts(
        rid(kind, "r1", sub=draw(_subs), group=draw(_groups)),
        draw(_regions),
        draw(st.dictionaries(_tag_names, _tag_values, max_size=3)),
    )


@st.composite
def match_conditions(draw: st.DrawFn) -> MatchCondition:
    maybe = lambda s: st.none() | st.frozensets(s, min_size=1, max_size=2)  # noqa: E731
    types = draw(maybe(_types.map(str.lower)))
    return MatchCondition(
        types=types,
        tags=tuple(draw(st.lists(st.builds(TagCondition, _tag_names, st.none() | _tag_values), max_size=2))),
        resource_groups=draw(st.none() | st.tuples(st.sampled_from(["rg-*", "*fin*", "rg-a"]))),
        subscriptions=draw(maybe(_subs.map(str.lower))),
        regions=draw(maybe(_regions)),
    )


_SPEC = ProtectionSpec("regional-default", None, None, None, None, (), OnDelete.RETAIN, None, RequiredVaultSettings())


@st.composite
def rule_sets(draw: st.DrawFn) -> RuleSet:
    conditions = draw(st.lists(match_conditions(), min_size=1, max_size=5))
    rules = tuple(
        ProtectionRule(f"r{i}", cond, _SPEC)
        if draw(st.booleans())
        else ProtectionRule(f"r{i}", cond, None, f"why r{i}")
        for i, cond in enumerate(conditions)
    )
    return RuleSet(rules)


@settings(deadline=None)
@given(resource_facts(), rule_sets())
def test_the_first_matching_rule_decides(resource: ResourceFacts, rules: RuleSet) -> None:
    decision = route(resource, rules)
    opted_out = any(v.lower() == "true" for v in resource.tag_values("backup-steward:opt-out"))
    supported = workload_for(resource.type) is not None
    first = next((r for r in rules.rules if r.match.holds(resource)), None)
    if opted_out:
        assert isinstance(decision, OptOut) and decision.rule is None
    elif not supported:
        assert isinstance(decision, Unsupported)
    elif first is None:
        assert isinstance(decision, OptOut) and decision.rule is None
    else:
        assert decision.rule == first.name  # type: ignore[union-attr]
        assert isinstance(decision, Protect if first.protect is not None else OptOut)


@settings(deadline=None)
@given(resource_facts(), rule_sets())
def test_the_opt_out_tag_always_wins(resource: ResourceFacts, rules: RuleSet) -> None:
    tagged = ResourceFacts(resource.id, resource.location, {**resource.tags, "BACKUP-STEWARD:OPT-OUT": "True"})
    assert isinstance(route(tagged, rules), OptOut)


_vault_candidates = st.builds(
    lambda kind, name, sub, region, default: vault(
        kind, name, sub=sub, location=region, **({"backup-steward:default": "true"} if default else {})
    ),
    st.sampled_from(list(VaultKind)),
    st.sampled_from(["v1", "v2", "v3"]),
    _subs,
    _regions,
    st.booleans(),
)


@settings(deadline=None)
@given(resource_facts(), st.lists(_vault_candidates, max_size=8))
def test_the_chosen_vault_is_never_of_another_kind_region_or_for_vms_subscription(
    resource: ResourceFacts, candidates: list[VaultCandidate]
) -> None:
    decision = route(resource, DEFAULTS)
    if not isinstance(decision, Protect):
        return
    choice = choose_vault(decision, candidates)
    if isinstance(choice, VaultChosen):
        # the same id may be listed twice with conflicting facts: the choice must rest on a record that qualifies
        assert any(
            c.id == choice.vault_id and c.region == resource.region and c.vault_kind is decision.vault_kind
            for c in candidates
        )
        chosen = next(c for c in candidates if c.id == choice.vault_id and c.region == resource.region)
        assert chosen.vault_kind is decision.vault_kind
        if decision.vault_kind is VaultKind.RECOVERY_SERVICES:
            assert chosen.id.subscription_id == resource.subscription
    elif isinstance(choice, AmbiguousVaults):
        assert len(choice.candidates) > 1
        assert len(set(choice.candidates)) == len(choice.candidates)
        for candidate_id in choice.candidates:
            assert any(c.id == candidate_id and c.region == resource.region for c in candidates)


_yaml_text = st.text(string.printable, max_size=300)


@settings(max_examples=200, deadline=None)
@given(_yaml_text)
def test_arbitrary_text_loads_or_raises_invalid_rules(text: str) -> None:
    try:
        load_rules(text, "fuzz.yaml")
    except InvalidRules as error:
        assert error.problems
        assert all(p.source == "fuzz.yaml" for p in error.problems)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-3, 3) | st.sampled_from(["regional-default", "x", VM_TYPE, SUB, "retain"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                ["name", "match", "protect", "vault", "types", "tags", "optOut", "policy", "id", "region", "datastore"]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=15,
)


@settings(max_examples=200, deadline=None)
@given(_json_values)
def test_arbitrary_rule_shaped_documents_load_or_raise_invalid_rules(rules: Any) -> None:
    text = yaml.safe_dump({"version": 1, "rules": rules})
    try:
        loaded = load_rules(text, "fuzz.yaml")
    except InvalidRules as error:
        assert all(p.line is None or p.line >= 1 for p in error.problems)
    else:
        route(facts(), loaded)
