"""Least privilege, checked: the custom roles, the README's activity table and the app's activities agree;
the grantor role can assign exactly the roles ``steward/domain/workloads.py`` gives Backup vault identities;
every role assignment in the templates is justified by a comment."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from pathlib import Path

from steward.domain import workloads
from tests.infra.templates import (
    INFRA,
    MAIN,
    MODULES,
    all_resources,
    app_catalog,
    bicep_files,
    body,
    parse,
    resources,
)

ROLES = MODULES / "role-definitions.bicep"
ACCESS = MODULES / "target-access.bicep"
README = INFRA / "README.md"
_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ACTION = re.compile(r"`(Microsoft\.[A-Za-z]+/[^`\s]+)`")


def _role_actions() -> dict[str, list[str]]:
    out = {}
    for name, entry in resources(ROLES, "Microsoft.Authorization/roleDefinitions"):
        permissions = body(entry)["properties"]["permissions"]
        assert len(permissions) == 1
        actions = permissions[0]["actions"]
        assert all(isinstance(a, str) for a in actions)
        assert permissions[0]["dataActions"] == [], f"{name} must not grant data actions"
        out[name] = actions
    return out


def _granted(action: str) -> bool:
    patterns = [a.lower() for actions in _role_actions().values() for a in actions]
    return any(fnmatch.fnmatchcase(action.lower(), p) for p in patterns)


def _activity_table() -> dict[str, str]:
    text = README.read_text()
    section = text.split("### Permissions by activity", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        match = re.match(r"\|\s*`([a-z_]+)`\s*\|(.*)\|\s*$", line)
        if match:
            assert match.group(1) not in rows, f"activity {match.group(1)} listed twice"
            rows[match.group(1)] = match.group(2)
    return rows


def _activities() -> set[str]:
    return {f.name for f in app_catalog().activities}


def test_every_activity_has_a_row_in_the_readme_table() -> None:
    table = _activity_table()
    assert _activities() <= set(table), f"activities missing from infra/README.md: {sorted(_activities() - set(table))}"
    assert set(table) <= _activities(), f"rows for activities the app lacks: {sorted(set(table) - _activities())}"


def test_every_permission_in_the_table_is_granted() -> None:
    for activity, cell in _activity_table().items():
        for action in _ACTION.findall(cell):
            assert _granted(action), f"{activity} needs {action}, which no custom role grants"


def test_every_granted_write_is_needed_by_an_activity() -> None:
    """No custom-role action beyond reads without an activity that needs it."""
    needed = {a.lower() for cell in _activity_table().values() for a in _ACTION.findall(cell)}
    for role, actions in _role_actions().items():
        for action in actions:
            if action.endswith("/read"):
                continue
            assert "*" not in action, f"{role}: wildcard {action} grants more than the activities call"
            assert action.lower() in needed, f"{role} grants {action}, which no activity in the README table needs"


def test_reads_wildcards_stay_within_the_backup_providers() -> None:
    for role, actions in _role_actions().items():
        for action in actions:
            if "*" in action:
                assert action in {"Microsoft.RecoveryServices/*/read", "Microsoft.DataProtection/*/read"}, role


def test_grantor_role_can_only_write_role_assignments() -> None:
    assert _role_actions()["vaultIdentityGrantor"] == ["Microsoft.Authorization/roleAssignments/write"]
    others = [a for r, acts in _role_actions().items() if r != "vaultIdentityGrantor" for a in acts]
    assert not [a for a in others if a.lower().startswith("microsoft.authorization/")]


def test_grant_condition_names_exactly_the_vault_identity_roles() -> None:
    doc = parse(ACCESS)
    listed = doc["variables"]["vaultIdentityRoleIds"]["value"]
    assert all(_GUID.fullmatch(g) for g in listed)
    expected = {r.role_definition_guid for w in workloads.WORKLOADS.values() for r in w.roles}
    assert set(listed) == expected
    condition = doc["variables"]["grantCondition"]["value"]
    assert "ActionMatches{\\'Microsoft.Authorization/roleAssignments/write\\'}" in condition
    request = "@Request[Microsoft.Authorization/roleAssignments"
    assert f"{request}:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals" in condition
    assert "${join(grantableRoleIds, ', ')}" in condition
    # restore drills add the vault identity's restore rights, and only with the Drill role (enableDrills)
    drill_roles = doc["variables"]["drillVaultIdentityRoleIds"]["value"]
    assert set(drill_roles) == {r.role_definition_guid for roles in workloads.RESTORE_ROLES.values() for r in roles}
    grantable = doc["variables"]["grantableRoleIds"]["value"]["operator"]["operands"]
    assert grantable["condition"] == {"function": {"type": "empty", "parameters": {"item_to_test": "drillRoleGuid"}}}
    assert grantable["true_value"] == "vaultIdentityRoleIds"
    assert "drillVaultIdentityRoleIds" in str(grantable["false_value"])
    assert f"{request}:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {{\\'ServicePrincipal\\'}}" in condition
    grantor = next(body(e) for n, e in resources(ACCESS) if n == "grantorAssignment")
    assert grantor["properties"]["condition"] == "grantCondition"
    assert grantor["properties"]["conditionVersion"] == "2.0"


def test_access_assigns_reader_operator_grantor_and_optional_creator_and_teardown() -> None:
    assignments = {n: body(e)["properties"] for n, e in resources(ACCESS, "Microsoft.Authorization/roleAssignments")}
    assert set(assignments) == {
        "readerAssignment", "operatorAssignment", "grantorAssignment", "creatorAssignment", "teardownAssignment",
        "drillAssignment",
    }
    conditioned = [n for n, p in assignments.items() if "condition" in p]
    assert conditioned == ["grantorAssignment"]


def test_role_definition_guids_are_well_formed() -> None:
    for path in bicep_files():
        for guid in re.findall(r"'([0-9a-fA-F-]{30,40})'", path.read_text()):
            assert _GUID.fullmatch(guid), f"{path.name}: malformed GUID {guid!r}"


def _declarations(path: Path) -> Iterator[tuple[int, list[str]]]:
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"resource \w+ 'Microsoft\.Authorization/roleAssignments@", line):
            yield number + 1, lines[max(0, number - 3) : number]


def test_every_role_assignment_is_justified_in_a_comment() -> None:
    seen = 0
    for path in bicep_files():
        for line, above in _declarations(path):
            seen += 1
            assert any(x.lstrip().startswith("//") for x in above), f"{path.name}:{line}: no comment says why"
            assert any("Scope" in x or "scope" in x for x in above), f"{path.name}:{line}: the comment names no scope"
    assert seen == len(list(all_resources("Microsoft.Authorization/roleAssignments")))


# ---- issue 14: protection cannot delete; teardown is a separate, optional role; the grant is pinned ---------

#: What deletes backup data or turns a vault's protections off: any delete, the Resource Guard unlock (MUA),
#: Site Recovery's remove, the vault settings writes (soft delete, enhanced security, immutability) and the vault
#: writes through which the same settings change.
_WEAKENING = {
    "microsoft.recoveryservices/vaults/backupconfig/write",
    "microsoft.recoveryservices/vaults/write",
    "microsoft.dataprotection/backupvaults/write",
    "microsoft.recoveryservices/vaults/backupresourceguardproxies/unlockdelete/action",
    "microsoft.dataprotection/backupvaults/backupresourceguardproxies/unlockdelete/action",
    "microsoft.recoveryservices/vaults/replicationfabrics/replicationprotectioncontainers/remove/action",
}


def _destructive(action: str) -> bool:
    lowered = action.lower()
    return lowered.endswith(("/delete", "/*")) or lowered in _WEAKENING


def _condition_of(path: Path, symbol: str) -> object:
    entry = (parse(path).get("resources") or {})[symbol]
    return entry["config"].get("condition")


def test_the_protection_role_can_neither_delete_nor_weaken_backup_data() -> None:
    operator = _role_actions()["operator"]
    assert [a for a in operator if _destructive(a)] == [], "the Operator role is assigned for protection alone"
    for needed in (  # protection keeps what it needs; stopping protection keeping the data is a PUT or an action
        "Microsoft.RecoveryServices/Vaults/backupFabrics/protectionContainers/protectedItems/write",
        "Microsoft.DataProtection/backupVaults/backupInstances/write",
        "Microsoft.DataProtection/backupVaults/backupInstances/stopProtection/action",
    ):
        assert needed in operator
    creator = _role_actions()["vaultCreator"]
    assert [a for a in creator if a.lower().endswith("/delete") or "backupconfig" in a.lower()] == []


def test_every_destructive_permission_of_a_teardown_activity_is_in_the_teardown_role_only() -> None:
    teardown = {a.lower() for a in _role_actions()["teardown"]}
    table = _activity_table()
    destructive = {a.lower() for row, cell in table.items() if row.startswith("teardown_")
                   for a in _ACTION.findall(cell) if _destructive(a)}
    assert destructive, "the table lists the teardown's deletes"
    assert destructive <= teardown, f"missing from the Teardown role: {sorted(destructive - teardown)}"
    # besides deletes and weakening: undelete, and the teardown's marker tag on the vault (crash-proof compensation)
    marker = {"microsoft.resources/tags/read", "microsoft.resources/tags/write"}
    assert all(_destructive(a) or "undelete" in a or a in marker for a in teardown), (
        "the Teardown role holds only teardown rights"
    )
    for role, actions in _role_actions().items():
        if role not in {"teardown", "vaultCreator", "drill"}:
            assert not [a for a in actions if _destructive(a)], f"{role} holds a destructive action"
    # the Drill role deletes only what drills restore (disks, staging accounts), never backup data
    drill = [a.lower() for a in _role_actions()["drill"] if _destructive(a)]
    assert drill == ["microsoft.compute/disks/delete", "microsoft.storage/storageaccounts/delete"]


def test_the_teardown_role_exists_and_is_assigned_only_when_teardown_is_enabled() -> None:
    main = parse(MAIN)
    assert main["parameters"]["enableTeardown"]["default"] is False, "a default deployment cannot delete vaults"
    assert _condition_of(ROLES, "teardown") == "enableTeardown"
    output = parse(ROLES)["outputs"]["teardownRoleGuid"]["value"]["operator"]["operands"]
    assert output["condition"] == "enableTeardown" and output["false_value"] == ""
    def empty(name: str) -> dict[str, object]:
        return {"function": {"type": "empty", "parameters": {"item_to_test": name}}}

    # subscription-wide only when the role exists and no resource group narrows it ...
    assert _condition_of(ACCESS, "teardownAssignment") == {"operator": {"type": "and", "operands": {
        "operand_1": {"operator": {"type": "not", "operands": {"bool_value": empty("teardownRoleGuid")}}},
        "operand_2": empty("teardownResourceGroups")}}}
    # ... else on each named group, and on none without the role
    access = parse(ACCESS)
    groups = access["modules"]["teardownGroupAccess"]["config"]["loop_type"]["detail"]["array_name"]
    assert access["variables"][groups]["value"] == {"operator": {"type": "conditional", "operands": {
        "condition": empty("teardownRoleGuid"), "true_value": [], "false_value": "teardownResourceGroups"}}}
    assert access["parameters"]["teardownRoleGuid"]["default"] == ""
    assert access["parameters"]["teardownResourceGroups"]["default"] == []
    group_module = MODULES / "teardown-group-access.bicep"
    group_assignments = list(resources(group_module, "Microsoft.Authorization/roleAssignments"))
    assert len(group_assignments) == 1
    assert "teardownRoleGuid" in str(body(group_assignments[0][1])["properties"]["roleDefinitionId"])
    roles_module = next(e for e in main["modules"].values() if e["detail"]["path"] == "modules/role-definitions.bicep")
    assert body(roles_module)["params"]["enableTeardown"] == "enableTeardown"
    access = next(e for e in main["modules"].values() if e["detail"]["path"] == "modules/target-access.bicep")
    passed = str(body(access)["params"]["teardownRoleGuid"])
    assert "'roles'" in passed and "'teardownRoleGuid'" in passed, "main passes the roles module's output"


def test_the_grant_condition_pins_the_principal_type_excludes_the_app_and_can_pin_the_vault_identities() -> None:
    doc = parse(ACCESS)
    condition = doc["variables"]["grantCondition"]["value"]
    request = "@Request[Microsoft.Authorization/roleAssignments"
    # the app's identity can never be the grantee: it would give itself Disk Backup Reader (disk export)
    assert f"{request}:PrincipalId] ForAnyOfAllValues:GuidNotEquals {{${{principalId}}}}" in condition
    assert condition.endswith("${principalPin}))"), "the optional principal pin is part of the same AND"
    pin = doc["variables"]["principalPin"]["value"]["operator"]["operands"]
    empty_list = {"function": {"type": "empty", "parameters": {"item_to_test": "vaultIdentityPrincipalIds"}}}
    assert pin["condition"] == empty_list
    assert pin["true_value"] == ""
    assert pin["false_value"] == (
        f" AND {request}:PrincipalId] ForAnyOfAnyValues:GuidEquals {{${{join(vaultIdentityPrincipalIds, ', ')}}}}"
    )
    assert doc["parameters"]["vaultIdentityPrincipalIds"]["default"] == []
    access = next(e for e in parse(MAIN)["modules"].values() if e["detail"]["path"] == "modules/target-access.bicep")
    assert body(access)["params"]["vaultIdentityPrincipalIds"] == "vaultIdentityPrincipalIds"


# ---- issue 17: restore drills need their own role, defined and assigned only with enableDrills -------------


def test_the_drill_role_exists_and_is_assigned_only_when_drills_are_enabled() -> None:
    main = parse(MAIN)
    assert main["parameters"]["enableDrills"]["default"] is False, "a default deployment restores nothing"
    assert _condition_of(ROLES, "drill") == "enableDrills"
    output = parse(ROLES)["outputs"]["drillRoleGuid"]["value"]["operator"]["operands"]
    assert output["condition"] == "enableDrills" and output["false_value"] == ""
    assert _condition_of(ACCESS, "drillAssignment") == {"operator": {"type": "not", "operands": {"bool_value": {
        "function": {"type": "empty", "parameters": {"item_to_test": "drillRoleGuid"}}}}}}
    assert parse(ACCESS)["parameters"]["drillRoleGuid"]["default"] == ""
    roles_module = next(e for e in main["modules"].values() if e["detail"]["path"] == "modules/role-definitions.bicep")
    assert body(roles_module)["params"]["enableDrills"] == "enableDrills"
    access = next(e for e in main["modules"].values() if e["detail"]["path"] == "modules/target-access.bicep")
    passed = str(body(access)["params"]["drillRoleGuid"])
    assert "'roles'" in passed and "'drillRoleGuid'" in passed, "main passes the roles module's output"


def test_every_write_of_a_drill_activity_is_in_the_drill_role() -> None:
    """What a drill writes (the drill_* rows, besides the Operator's VM write and the Grantor's assignment) comes
    from the Drill role alone, so a deployment without enableDrills cannot restore anything."""
    drill = {a.lower() for a in _role_actions()["drill"]}
    operator = {a.lower() for a in _role_actions()["operator"]}
    needed = {a.lower() for row, cell in _activity_table().items() if row.startswith("drill_")
              for a in _ACTION.findall(cell) if not a.endswith("/read")}
    elsewhere = {"microsoft.compute/virtualmachines/write",  # the Operator's (a VM restore's linked check)
                 "microsoft.authorization/roleassignments/write"}  # the conditioned Grantor's (drill_grant)
    assert needed - elsewhere <= drill, sorted(needed - drill)
    assert not (drill & operator), f"the Operator role already grants {sorted(drill & operator)}"
    assert all(a.split("/")[0] in {"microsoft.resources", "microsoft.storage", "microsoft.compute",
                                   "microsoft.recoveryservices", "microsoft.dataprotection"} for a in drill)
