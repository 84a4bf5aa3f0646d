"""Least privilege, checked: the custom roles, the README's activity table and the app's activities agree;
the grantor role can assign exactly the roles ``steward/domain/workloads.py`` gives Backup vault identities;
every role assignment in the templates is justified by a comment."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterator
from pathlib import Path

from steward.domain import workloads
from tests.infra.templates import INFRA, MODULES, all_resources, app_catalog, bicep_files, body, parse, resources

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
    assert "${join(vaultIdentityRoleIds, ', ')}" in condition
    assert f"{request}:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase" in condition
    grantor = next(body(e) for n, e in resources(ACCESS) if n == "grantorAssignment")
    assert grantor["properties"]["condition"] == "grantCondition"
    assert grantor["properties"]["conditionVersion"] == "2.0"


def test_access_assigns_reader_operator_grantor_and_optional_creator() -> None:
    assignments = {n: body(e)["properties"] for n, e in resources(ACCESS, "Microsoft.Authorization/roleAssignments")}
    assert set(assignments) == {"readerAssignment", "operatorAssignment", "grantorAssignment", "creatorAssignment"}
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
