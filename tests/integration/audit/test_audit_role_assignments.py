"""CAP-003 on a sandbox estate: the subscription's role assignments read through the app's ARM inventory
(``RoleAssignments_ListForSubscription``, paged), counted at the subscription and below against Azure's 4,000, the
Backup vault identity's share named; a list the app's identity may not read leaves the control not assessed
(INV-001) and the rest of the audit standing."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from activities import audit as audit_activities
from sandbox.arm import ArmSandbox, PropagationConfig, SandboxConfig
from sandbox.arm.config import DEFAULT_SUBSCRIPTION, SECOND_SUBSCRIPTION
from sandbox.arm.providers.authorization_model import RoleAssignments, define_custom_role, seed_role_assignments
from sandbox.estate import Estate
from steward import bootstrap
from steward.cloud.clients import CloudClients
from steward.cloud.inventory import ArmEstateReader, read_estate, role_assignments_list
from steward.domain.audit import AuditResult, Finding, audit
from steward.domain.audit.inputs import AuditEvaluation, SubscriptionRead
from steward.report.store import LocalReportStore
from steward.rules_file import default_rules_text, load_rules
from steward.settings import ROLE_ASSIGNMENT_WARN_PERCENT, Settings

SUB, CALM = DEFAULT_SUBSCRIPTION, SECOND_SUBSCRIPTION
DISKS = "Microsoft.Compute/disks"


@dataclass
class Crowded:
    sandbox: ArmSandbox
    clients: CloudClients
    vault_principal: str
    seeded: list[str]


@pytest.fixture(scope="module")
def crowded() -> Iterator[Crowded]:
    """SUB: a Backup vault whose identity holds 2,000 role assignments on disks (as one protection per disk grants),
    1,199 other assignments on resource groups, and 300 above the subscription (the root): 3,199 count, one short
    of 80 % of 4,000. CALM: a handful."""
    sb = ArmSandbox(SandboxConfig(scale=3600.0, page_size=500, propagation=PropagationConfig(rbac_seconds=0))).start()
    try:
        clients = CloudClients(sb.cloud_target(polling_interval=0.01))
        estate = Estate(clients, SUB)
        estate.resource_group("rg-backup", "westeurope")
        vault_id = estate.backup_vault("rg-backup", "bv-weu", "westeurope")
        principal = str(sb.store.get(vault_id)["identity"]["principalId"])  # type: ignore[index]
        now = sb.clock.now()
        seeded = seed_role_assignments(sb.store, principal, "Disk Backup Reader", (
            f"/subscriptions/{SUB}/resourceGroups/rg-app{n % 40}/providers/{DISKS}/disk-{n:04d}" for n in range(2000)
        ), now)
        for n in range(1199):
            seed_role_assignments(sb.store, str(uuid.UUID(int=n + 1)), "Reader",
                                  [f"/subscriptions/{SUB}/resourceGroups/rg-team{n % 90}"], now)
        for n in range(300):
            seed_role_assignments(sb.store, str(uuid.UUID(int=10_000 + n)), "Reader", ["/"], now)
        calm = Estate(clients, CALM)
        calm.resource_group("rg-calm", "westeurope")
        seed_role_assignments(sb.store, str(uuid.uuid4()), "Reader", [f"/subscriptions/{CALM}/resourceGroups/rg-calm"],
                              now)
        yield Crowded(sb, clients, principal, seeded)
    finally:
        sb.stop()


def _audit(crowded: Crowded, clients: CloudClients | None = None) -> AuditResult:
    inventory = read_estate(ArmEstateReader(clients or crowded.clients), [SUB, CALM])
    return audit(inventory, load_rules(default_rules_text(), "defaults"), crowded.sandbox.clock.now())


def _cap003(result: AuditResult) -> list[Finding]:
    return [f for f in result.findings if f.control_id == "CAP-003"]


def test_one_short_of_the_threshold_is_silent_and_what_is_above_the_subscription_does_not_count(
    crowded: Crowded,
) -> None:
    inventory = read_estate(ArmEstateReader(crowded.clients), [SUB, CALM])
    counts = {c.subscription_id: c.total for c in inventory.role_assignments}
    assert counts == {SUB: 3199, CALM: 1}  # the 300 at the root are listed for SUB, and not counted
    assert _cap003(_audit(crowded)) == []


def test_at_the_threshold_the_subscription_is_reported_with_the_vault_identitys_share(crowded: Crowded) -> None:
    extra = seed_role_assignments(crowded.sandbox.store, crowded.vault_principal, "Disk Backup Reader",
                                  [f"/subscriptions/{SUB}/resourceGroups/rg-app0/providers/{DISKS}/disk-late"],
                                  crowded.sandbox.clock.now())
    try:
        [finding] = _cap003(_audit(crowded))
    finally:
        crowded.sandbox.store.delete(extra[0], with_children=False)
    assert finding.resource_id == f"/subscriptions/{SUB}"  # CALM, with one, is not reported
    assert finding.details["roleAssignments"] == "3200" and finding.details["vaultIdentityAssignments"] == "2001"
    assert finding.details["vaultIdentities"] == "1"
    assert "3,200 role assignments" in finding.why and "2,001 of them (63%)" in finding.why
    assert "protect.roleScope: resourceGroup" in finding.why


def test_a_list_the_identity_may_not_read_leaves_cap003_not_assessed_and_the_rest_of_the_audit_standing(
    crowded: Crowded,
) -> None:
    """An identity with every read but ``Microsoft.Authorization/roleAssignments/read``: ARM's 403 on the list is a
    gap of the list alone (INV-001 names it and says CAP-003 was not assessed); the vaults are still read."""
    sb = crowded.sandbox
    auditor = "0a0d1700-0000-4000-8000-0000000000a1"
    guid = str(uuid.uuid4())
    define_custom_role(sb.store, SUB, guid, "Reads all but role assignments", actions=["*/read"],
                       not_actions=["Microsoft.Authorization/roleAssignments/read"])
    seed_role_assignments(sb.store, auditor, "Reader", [f"/subscriptions/{CALM}"], sb.clock.now())
    sb.store.put({"id": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleAssignments/{uuid.uuid4()}",
                  "type": "Microsoft.Authorization/roleAssignments",
                  "properties": {"roleDefinitionId": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/"
                                 f"roleDefinitions/{guid}", "principalId": auditor,
                                 "principalType": "ServicePrincipal", "scope": f"/subscriptions/{SUB}"}})
    sb.enforce_caller_rbac(auditor)
    try:
        clients = CloudClients(sb.cloud_target(principal_id=auditor, polling_interval=0.01))
        inventory = read_estate(ArmEstateReader(clients), [SUB, CALM])
        result = _audit(crowded, clients)
    finally:
        sb.enforce_caller_rbac(auditor, enforce=False)
        for record in RoleAssignments(sb.store).all():
            if record["properties"].get("principalId") == auditor:
                sb.store.delete(record["id"], with_children=False)
    assert [v.name for v in inventory.vaults] == ["bv-weu"]  # the rest of SUB was read
    assert {c.subscription_id for c in inventory.role_assignments} == {CALM}
    [gap] = inventory.gaps
    assert gap.scope == role_assignments_list(SUB) and gap.reason.startswith("403 AuthorizationFailed: ")
    [finding] = [f for f in result.findings if f.control_id == "INV-001"]
    assert finding.resource_id == role_assignments_list(SUB)
    assert "CAP-003" in finding.why and "not assessed" in finding.why
    assert _cap003(result) == []


def test_the_deployed_reader_role_reads_the_list(crowded: Crowded) -> None:
    """infra/modules/target-access.bicep assigns Reader on each target subscription: its ``*/read`` carries
    ``Microsoft.Authorization/roleAssignments/read``, so no further role is needed (least privilege)."""
    from tests.infra.deployed_roles import deploy_app_roles

    sb = crowded.sandbox
    app = "0a0d1700-0000-4000-8000-0000000000a2"
    for sub in (SUB, CALM):
        deploy_app_roles(sb, app, sub)
    sb.enforce_caller_rbac(app)
    try:
        clients = CloudClients(sb.cloud_target(principal_id=app, polling_interval=0.01))
        inventory = read_estate(ArmEstateReader(clients), [SUB, CALM])
    finally:
        sb.enforce_caller_rbac(app, enforce=False)
        for record in RoleAssignments(sb.store).all():  # the next tests count SUB as the fixture left it
            if record["properties"].get("principalId") == app:
                sb.store.delete(record["id"], with_children=False)
    assert inventory.gaps == ()
    # the deployment's own assignments (Reader and the custom roles, on each subscription) count too
    assert {c.subscription_id: c.total for c in inventory.role_assignments}[CALM] > 1


def _activity(function: Any) -> Any:
    return function._function.get_user_function() if hasattr(function, "_function") else function


@pytest.mark.parametrize(("percent", "reported"), [(None, False), (79, True)])
def test_the_audit_activities_carry_the_count_and_the_configured_threshold(
    crowded: Crowded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, percent: int | None, reported: bool,
) -> None:
    """audit_read_subscription stores the count in the run's part, audit_evaluate judges it against
    STEWARD_ROLE_ASSIGNMENT_WARN_PERCENT: 3,199 of 4,000 is silent at the default 80 %, reported at 79 %."""
    env = {} if percent is None else {ROLE_ASSIGNMENT_WARN_PERCENT: str(percent)}
    monkeypatch.setattr(bootstrap, "clients", lambda: crowded.clients)
    monkeypatch.setattr(bootstrap, "report_store", lambda: LocalReportStore(tmp_path))
    monkeypatch.setattr(bootstrap, "settings", lambda: Settings.from_env(env))
    now = crowded.sandbox.clock.now()
    part = _activity(audit_activities.audit_read_subscription)(SubscriptionRead("run-ra", SUB, now).to_record())
    summary = _activity(audit_activities.audit_evaluate)(AuditEvaluation((part["part"],), now).to_record())
    stored = json.loads((tmp_path / summary["report"]).read_text())
    found = [f for f in stored["findings"] if f["control"] == "CAP-003"]
    assert bool(found) is reported
    if found:
        assert found[0]["details"]["thresholdPercent"] == "79" and found[0]["details"]["roleAssignments"] == "3199"


def test_at_the_limit_the_audit_and_the_sandboxs_refusal_agree(crowded: Crowded) -> None:
    """The app counts from the list, the sandbox refuses from its store (``count_in_subscription``): at 4,000 the
    audit says Azure refuses the next one, and the next grant is refused ``RoleAssignmentLimitExceeded``."""
    sb = crowded.sandbox
    extra = seed_role_assignments(sb.store, str(uuid.uuid4()), "Reader",
                                  [f"/subscriptions/{SUB}/resourceGroups/rg-full{n}" for n in range(801)],
                                  sb.clock.now())
    try:
        assert RoleAssignments(sb.store).count_in_subscription(SUB) == 4000
        [finding] = _cap003(_audit(crowded))
        assert finding.details["roleAssignments"] == "4000" and "refuses every new role assignment" in finding.why
        reader = (f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/"
                  "acdd72a7-3385-48ef-bd42-f606fba81ae7")
        with pytest.raises(HttpResponseError) as refused:
            crowded.clients.authorization(SUB).role_assignments.create(
                f"/subscriptions/{SUB}/resourceGroups/rg-backup", str(uuid.uuid4()), {"properties": {
                    "roleDefinitionId": reader,
                    "principalId": str(uuid.uuid4()), "principalType": "ServicePrincipal"}})
        assert refused.value.error.code == "RoleAssignmentLimitExceeded"
    finally:
        for assignment in extra:
            sb.store.delete(assignment, with_children=False)
