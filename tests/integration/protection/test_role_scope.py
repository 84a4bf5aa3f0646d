"""Role assignments of the Backup vault identity at the rule's ``roleScope``, on the real app and the sandbox.

Azure RBAC: "Azure supports up to 4000 role assignments per subscription ... fixed and cannot be increased"; past
it "No more role assignments can be created (code: RoleAssignmentLimitExceeded)" (MicrosoftDocs/azure-docs
``articles/role-based-access-control/troubleshoot-limits.md``). Least privilege (``roleScope: resource``, the
default) spends two assignments per protected disk; ``roleScope: resourceGroup`` (Microsoft's
``Set-AzDataProtectionMSIPermission -PermissionsScope ResourceGroup``) one per group, shared by its disks.

The real app (local host, Durable runner, every activity) on the discrete clock, RBAC propagation on (the
sandbox's 180 s): a shared assignment is made by the first protection of the group; the others find it
existing (their PUT is idempotent, or the worker's cache knows it) while it still propagates, and must not
spend refused validations (a POST from ARM's write bucket each) on it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from benchmarks.common import APP_PRINCIPAL, AppStack, start_app_stack, wait_until
from sandbox.arm import PropagationConfig
from sandbox.arm.config import DEFAULT_SUBSCRIPTION
from sandbox.estate import Estate

REGION = "westeurope"
#: validations Azure refuses while the first protection's new roles propagate (180 s): after 30, 60, 120 s
PROBE_REFUSALS = 3
#: the Backup vault ``_estate`` creates: a wider roleScope needs its vault named by id (review finding 2)
VAULT = (f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/rg-backup/providers/Microsoft.DataProtection/"
         "backupVaults/bv-weu")
RULES = f"""\
version: 1
rules:
  - name: disks
    match: {{types: [Microsoft.Compute/disks], resourceGroups: ["rg-shared"]}}
    protect: {{vault: {{id: {VAULT}, region: {REGION}}}, policy: disk-default, roleScope: resourceGroup}}
  - name: disks-subscription-wide
    match: {{types: [Microsoft.Compute/disks], resourceGroups: ["rg-wide-*"]}}
    protect: {{vault: {{id: {VAULT}, region: {REGION}}}, policy: disk-default, roleScope: subscription}}
  - name: least-privilege
    match: {{types: [Microsoft.Compute/disks]}}
    protect: {{vault: regional-default, policy: disk-default}}
  - name: servers
    match: {{types: [Microsoft.DBforPostgreSQL/flexibleServers]}}
    protect: {{vault: {{id: {VAULT}, region: {REGION}}}, roleScope: subscription}}
"""


def running_app(rbac_seconds: float) -> Iterator[AppStack]:
    """The real app on the discrete clock with these RULES and the sandbox's RBAC propagation at ``rbac_seconds``."""
    stack = start_app_stack(scale=20.0, seed=3, clock="discrete", throttle=False, latency=False,
                            settings={"STEWARD_RULES": RULES})
    stack.sandbox.configure_propagation(PropagationConfig(rbac_seconds=rbac_seconds))
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def app() -> Iterator[AppStack]:
    yield from running_app(180.0)


def _estate(app: AppStack) -> tuple[Estate, str]:
    estate = Estate(app.creator, DEFAULT_SUBSCRIPTION)
    estate.resource_group("rg-backup", REGION)
    vault = estate.backup_vault("rg-backup", "bv-weu", REGION)
    assert vault.lower() == VAULT.lower()
    return estate, vault


def _principal(app: AppStack, vault_id: str) -> str:
    found = app.sandbox.ctx.store.get(vault_id)
    return str(found["identity"]["principalId"])


def _assignments(app: AppStack, principal: str) -> list[dict[str, Any]]:
    from sandbox.arm.providers.authorization_model import RoleAssignments, guid_of_role_definition

    return [{"scope": r["properties"]["scope"], "role": guid_of_role_definition(r["properties"]["roleDefinitionId"])}
            for r in RoleAssignments(app.sandbox.ctx.store).all()
            if str(r["properties"]["principalId"]).lower() == principal.lower()]


def _outcomes(app: AppStack, ids: list[str], timeout: float = 120.0) -> dict[str, dict[str, Any]]:
    wanted = {i.lower() for i in ids}

    def done() -> dict[str, dict[str, Any]] | None:
        found = {str(p.data.get("resourceId", "")).lower(): dict(p.data) for p in app.log.outcomes()}
        return found if wanted <= set(found) else None

    found = wait_until(done, timeout, f"outcomes for {len(ids)} disks")
    app.settle(timeout)
    return {k: v for k, v in found.items() if k in wanted}


def _validations(app: AppStack, mark: int) -> int:
    return sum(1 for c in app.log.since(mark, APP_PRINCIPAL)
               if c.method == "POST" and c.path.lower().endswith("/validateforbackup"))


def test_disks_of_one_group_share_one_assignment_and_only_the_probe_is_refused(app: AppStack) -> None:
    estate, vault = _estate(app)
    estate.resource_group("rg-shared", REGION)
    app.settle()
    principal = _principal(app, vault)
    mark = app.log.mark()
    disks = 4
    ids = [estate.disk("rg-shared", f"disk-{i}", REGION) for i in range(disks)]  # events arrive within seconds

    outcomes = _outcomes(app, ids)
    assert [o["status"] for o in outcomes.values()] == ["Protected"] * disks, outcomes
    group = f"/subscriptions/{DEFAULT_SUBSCRIPTION}/resourceGroups/rg-shared"
    made = _assignments(app, principal)
    # one Disk Backup Reader at the group (not one per disk), one Disk Snapshot Contributor on the snapshot group
    assert Counter((a["scope"].lower(), a["role"]) for a in made) == Counter({
        (group.lower(), "3e5e47e6-65f7-47ef-90b5-e5dd4d455f24"): 1,
        (group.lower(), "7efff54f-a5b4-42b5-a1c5-5411624893ce"): 1,
    }), made
    # the later protections found the shared assignments still propagating and waited for them: no validation
    # of theirs was refused (each sent exactly one); only the first protection's probe was
    refused = _validations(app, mark) - disks
    assert 0 <= refused <= PROBE_REFUSALS, refused


def test_subscription_scope_assigns_the_servers_roles_once_on_the_subscription(app: AppStack) -> None:
    estate, vault = _estate(app)
    estate.resource_group("rg-db-1", REGION)
    estate.resource_group("rg-db-2", REGION)
    app.settle()
    principal = _principal(app, vault)
    ids = [estate.postgres("rg-db-1", "pg-one", REGION), estate.postgres("rg-db-2", "pg-two", REGION)]
    outcomes = _outcomes(app, ids)
    assert [o["status"] for o in outcomes.values()] == ["Protected"] * 2, outcomes
    whole = f"/subscriptions/{DEFAULT_SUBSCRIPTION}".lower()
    # the Long Term Retention Backup role and Reader, each once, on the subscription (both servers, both groups)
    assert Counter((a["scope"].lower(), a["role"]) for a in _assignments(app, principal)) == Counter({
        (whole, "c088a766-074b-43ba-90d4-1fb21feae531"): 1, (whole, "acdd72a7-3385-48ef-bd42-f606fba81ae7"): 1})


def test_subscription_scope_keeps_the_disks_snapshot_role_on_each_snapshot_group(app: AppStack) -> None:
    """Review finding 1: Disk Backup Reader once on the subscription, but Disk Snapshot Contributor (which also
    lists keys of, rewrites and deletes storage accounts) once per snapshot group, never on the subscription."""
    estate, vault = _estate(app)
    estate.resource_group("rg-wide-1", REGION)
    estate.resource_group("rg-wide-2", REGION)
    app.settle()
    principal = _principal(app, vault)
    ids = [estate.disk("rg-wide-1", "disk-w1", REGION), estate.disk("rg-wide-2", "disk-w2", REGION)]
    outcomes = _outcomes(app, ids)
    assert [o["status"] for o in outcomes.values()] == ["Protected"] * 2, outcomes
    whole = f"/subscriptions/{DEFAULT_SUBSCRIPTION}"
    assert Counter((a["scope"].lower(), a["role"]) for a in _assignments(app, principal)) == Counter({
        (whole.lower(), "3e5e47e6-65f7-47ef-90b5-e5dd4d455f24"): 1,
        (f"{whole}/resourceGroups/rg-wide-1".lower(), "7efff54f-a5b4-42b5-a1c5-5411624893ce"): 1,
        (f"{whole}/resourceGroups/rg-wide-2".lower(), "7efff54f-a5b4-42b5-a1c5-5411624893ce"): 1})


def test_a_grant_past_the_subscriptions_limit_ends_failed_naming_the_limit_and_the_fix(app: AppStack) -> None:
    from sandbox.arm.providers.authorization_model import RoleAssignments

    estate, vault = _estate(app)
    estate.resource_group("rg-many", REGION)
    app.settle()
    principal = _principal(app, vault)
    roles = RoleAssignments(app.sandbox.ctx.store)
    first = estate.disk("rg-many", "disk-a", REGION)
    assert _outcomes(app, [first])[first.lower()]["status"] == "Protected"
    # room for no assignment more: the next disk's Disk Backup Reader (on the disk) is refused
    app.sandbox.configure_role_assignment_limit(roles.count_in_subscription(DEFAULT_SUBSCRIPTION))
    before = len(_assignments(app, principal))
    mark = app.log.mark()
    second = estate.disk("rg-many", "disk-b", REGION)

    outcome = _outcomes(app, [second])[second.lower()]
    assert outcome["status"] == "Failed", outcome
    reason = outcome["reason"]
    assert "RoleAssignmentLimitExceeded" in reason and "4,000" in reason, reason
    assert "roleScope: resourceGroup" in reason and "'least-privilege'" in reason, reason
    calls = app.log.since(mark, APP_PRINCIPAL)
    # not retried: one refused PUT, no validation, no backup instance (nothing half made)
    puts = [c for c in calls if c.method == "PUT" and "/roleassignments/" in c.path.lower()]
    assert [c.status for c in puts] == [400], [(c.method, c.status, c.path) for c in calls]
    assert not [c for c in calls if "/backupinstances/" in c.path.lower() or c.path.lower().endswith(
        "/validateforbackup")], calls
    assert len(_assignments(app, principal)) == before
    instances = [str(i["id"]).lower() for i in app.sandbox.ctx.store.list(
        resource_type="Microsoft.DataProtection/backupVaults/backupInstances")]
    assert any("disk-a" in i for i in instances) and not any("disk-b" in i for i in instances), instances
