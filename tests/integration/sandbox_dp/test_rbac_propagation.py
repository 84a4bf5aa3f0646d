"""RBAC propagation: a new role assignment grants its role only minutes after it was made (issue #13 item 2).

Source: MicrosoftDocs/azure-docs ``articles/role-based-access-control/troubleshooting.md`` ("role assignment
changes ... can take up to 10 minutes to take effect"). Checks made before see the old permissions:
``validateForBackup`` and the instance PUT fail ``UserErrorMissingRequiredPermissions`` meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from azure.core.exceptions import HttpResponseError

from sandbox.arm.config import PropagationConfig
from sandbox.arm.server import ArmSandbox

from .conftest import DISK, PG, Estate, error_code, make_vault

#: long in Azure time because this module runs its clock at one real second = one Azure hour
DELAY = 6 * 3600.0


@pytest.fixture
def propagating(sandbox: ArmSandbox) -> Iterator[ArmSandbox]:
    sandbox.configure_propagation(PropagationConfig(rbac_seconds=DELAY))
    try:
        yield sandbox
    finally:
        sandbox.configure_propagation(PropagationConfig(rbac_seconds=0))


def test_a_new_assignment_grants_only_after_the_propagation_delay(estate: Estate, propagating: ArmSandbox) -> None:
    rg, snap = estate.group("prop"), estate.group("propsnap")
    vault = make_vault(estate, rg)
    disk = estate.datasource(rg, DISK, "disk1")
    body = vault.instance_body(disk, DISK, vault.policy(DISK), estate.group_id(snap))
    vault.grant("Disk Backup Reader", disk)
    vault.grant("Disk Snapshot Contributor", estate.group_id(snap))

    # the assignments exist (listed at once) but do not grant yet
    listed = list(estate.auth.role_assignments.list_for_scope(disk, filter=f"principalId eq '{vault.principal_id}'"))
    assert listed
    with pytest.raises(HttpResponseError) as early:
        vault.validate(body)
    assert error_code(early.value) == "UserErrorMissingRequiredPermissions"
    with pytest.raises(HttpResponseError) as create_early:
        vault.protect("early", body)
    assert "UserErrorMissingRequiredPermissions" in str(create_early.value)

    propagating.advance(DELAY)
    assert vault.validate(body).object_type == "OperationJobExtendedInfo"


def test_zero_delay_grants_at_once(estate: Estate, sandbox: ArmSandbox) -> None:
    sandbox.configure_propagation(PropagationConfig(rbac_seconds=0))
    rg = estate.group("prop0")
    vault = make_vault(estate, rg)
    server = estate.datasource(rg, PG, "pg1")
    body = vault.instance_body(server, PG, vault.policy(PG))
    vault.grant("PostgreSQL Flexible Server Long Term Retention Backup Role", server)
    vault.grant("Reader", estate.group_id(rg))
    assert vault.validate(body).object_type == "OperationJobExtendedInfo"
