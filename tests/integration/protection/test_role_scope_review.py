"""Review of issue 15 (h-rolescope): findings proved on the real app and the sandbox.

Microsoft's own tooling does not spend a role assignment on a role the vault identity already holds above the
scope: ``Set-AzDataProtectionMSIPermission`` skips a datasource role held at the resource, its resource group or the
subscription (Azure/azure-powershell ``src/DataProtection/DataProtection.Autorest/custom/Cmdlets/Platform/Vault/
Set-AzDataProtectionMSIPermission.ps1``: ``$_.Scope -eq $DatasourceRoleScope -or $_.Scope -eq $ResourceRG -or
$_.Scope -eq $SubscriptionName``), and ``az dataprotection backup-instance update-msi-permissions`` lists the
principal's assignments with ``include_inherited=True`` before creating one (Azure/azure-cli-extensions
``src/dataprotection/azext_dataprotection/manual/custom.py``). Past Azure's 4,000 role assignments per subscription
(``role-based-access-control/troubleshoot-limits.md``) that difference decides whether a protection can succeed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from benchmarks.common import AppStack
from sandbox.arm.config import DEFAULT_SUBSCRIPTION
from tests.integration.protection.test_role_scope import (
    REGION,
    _assignments,
    _estate,
    _outcomes,
    _principal,
    running_app,
)

DISK_BACKUP_READER = "3e5e47e6-65f7-47ef-90b5-e5dd4d455f24"
DISK_SNAPSHOT_CONTRIBUTOR = "7efff54f-a5b4-42b5-a1c5-5411624893ce"


@pytest.fixture
def app() -> Iterator[AppStack]:
    """The real app on the discrete clock with test_role_scope's rules; RBAC propagation off (not what is shown)."""
    yield from running_app(0.0)


def test_roles_held_on_the_subscription_need_no_new_assignment_at_the_limit(app: AppStack) -> None:
    from sandbox.arm.providers.authorization_model import RoleAssignments

    estate, vault = _estate(app)
    estate.resource_group("rg-held", REGION)
    app.settle()
    principal = _principal(app, vault)
    roles = RoleAssignments(app.sandbox.ctx.store)
    whole = f"/subscriptions/{DEFAULT_SUBSCRIPTION}"
    # the operator gave the vault identity its disk roles once, on the subscription (as Microsoft's
    # Set-AzDataProtectionMSIPermission -PermissionsScope Subscription does), an hour ago
    for guid in (DISK_BACKUP_READER, DISK_SNAPSHOT_CONTRIBUTOR):
        roles.create(whole, str(uuid.uuid4()), {
            "roleDefinitionId": f"{whole}/providers/Microsoft.Authorization/roleDefinitions/{guid}",
            "principalId": principal, "principalType": "ServicePrincipal"},
            now=datetime.now(UTC) - timedelta(hours=1), created_by=None)
    # the subscription is full (other teams' assignments): no room for one more
    app.sandbox.configure_role_assignment_limit(roles.count_in_subscription(DEFAULT_SUBSCRIPTION))
    before = len(_assignments(app, principal))
    disk = estate.disk("rg-held", "disk-held", REGION)

    outcome = _outcomes(app, [disk])[disk.lower()]
    # the vault identity can already read and snapshot the disk: nothing needs assigning, the disk can be protected
    assert outcome["status"] == "Protected", outcome["reason"]
    assert len(_assignments(app, principal)) == before


def test_a_grant_refused_at_the_limit_keeps_the_assignment_it_made_first_and_says_so(app: AppStack) -> None:
    """Review finding 5, resolved by saying so rather than deleting: the grants are sequential, and Azure answers a
    role assignment's create and an idempotent re-create alike (201; docs/azure-facts.md), so the app cannot prove
    the assignment it PUT before the refusal is its own and not one another protection of the same disk relies
    on. It stays (taking the slot it took) and the outcome names it; nothing else is left (no validation, no
    instance)."""
    from sandbox.arm.providers.authorization_model import RoleAssignments

    estate, vault = _estate(app)
    estate.resource_group("rg-half", REGION)
    app.settle()
    principal = _principal(app, vault)
    roles = RoleAssignments(app.sandbox.ctx.store)
    # room for exactly one assignment more; a disk of a new group needs two (Disk Backup Reader on the disk, Disk
    # Snapshot Contributor on its group, the default snapshot resource group)
    app.sandbox.configure_role_assignment_limit(roles.count_in_subscription(DEFAULT_SUBSCRIPTION) + 1)
    before = _assignments(app, principal)
    disk = estate.disk("rg-half", "disk-half", REGION)

    outcome = _outcomes(app, [disk])[disk.lower()]
    assert outcome["status"] == "Failed" and "RoleAssignmentLimitExceeded" in outcome["reason"], outcome
    # the Disk Backup Reader PUT first stays, and the outcome says so
    assert [a for a in _assignments(app, principal) if a not in before] == [
        {"scope": disk, "role": DISK_BACKUP_READER}]
    assert "stay (Disk Backup Reader)" in outcome["reason"], outcome["reason"]
    instances = [str(i["id"]).lower() for i in app.sandbox.ctx.store.list(
        resource_type="Microsoft.DataProtection/backupVaults/backupInstances")]
    assert not any("disk-half" in i for i in instances), instances
