"""grant_vault_roles' answer when the adapter's grants say something the sandbox never answers (Azure documents a
``createdOn`` in every role assignment PUT's answer, ``role-based-access-control/role-assignments-rest.md``): a PUT
whose answer gave no time made its assignment now, and must not hide behind an older time (review finding 7). The
SDK-facing paths run on the sandbox: tests/integration/sandbox_dp/test_role_grants.py."""

from __future__ import annotations

from typing import Any

import pytest

from activities import protection as protection_activities
from steward import bootstrap
from steward.cloud.arm_cache import ArmCache
from steward.cloud.errors import AzureRefusal
from steward.cloud.protection import RoleGranted

SUB = "00000000-0000-4000-8000-000000000001"
GROUP = f"/subscriptions/{SUB}/resourceGroups/rg-app"
DISK = f"{GROUP}/providers/Microsoft.Compute/disks/data-1"
PRINCIPAL = "11111111-1111-4111-8111-111111111111"
READER, SNAPSHOT = "3e5e47e6-65f7-47ef-90b5-e5dd4d455f24", "7efff54f-a5b4-42b5-a1c5-5411624893ce"
REQUEST = {"principal_id": PRINCIPAL, "grants": [
    {"role": "Disk Backup Reader", "role_definition_guid": READER, "scope": DISK},
    {"role": "Disk Snapshot Contributor", "role_definition_guid": SNAPSHOT, "scope": GROUP}]}


def _grant(monkeypatch: pytest.MonkeyPatch, answers: dict[str, RoleGranted | AzureRefusal]) -> dict[str, Any]:
    monkeypatch.setattr(bootstrap, "clients", lambda: None)
    monkeypatch.setattr(bootstrap, "arm_cache", lambda: ArmCache(300))

    def grant_role(self: Any, principal_id: str, guid: str, scope: str) -> RoleGranted:
        answer = answers[guid]
        if isinstance(answer, AzureRefusal):
            raise answer
        return answer

    monkeypatch.setattr(protection_activities.BackupVaultProtection, "grant_role", grant_role)
    activity = protection_activities.grant_vault_roles
    run = activity._function.get_user_function() if hasattr(activity, "_function") else activity
    result: dict[str, Any] = run(REQUEST)
    return result


def test_a_put_without_a_time_counts_as_made_now_not_as_an_older_assignments_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = _grant(monkeypatch, {READER: RoleGranted(put=True, created_on=None),
                                  SNAPSHOT: RoleGranted(put=False, created_on="2026-01-01T00:00:00Z")})
    assert result["ok"] and result["created"] == ["Disk Backup Reader"]
    assert result["created_on"] is None  # protection_flow.rbac_fresh: the wait counts from the grant's own time
    timed = _grant(monkeypatch, {READER: RoleGranted(put=True, created_on="2026-01-01T00:05:00Z"),
                                 SNAPSHOT: RoleGranted(put=False, created_on="2026-01-01T00:00:00Z")})
    assert timed["created_on"] == "2026-01-01T00:05:00Z"  # the newest, when every PUT said when


def test_a_refusal_after_a_put_names_the_role_it_made_which_stays(monkeypatch: pytest.MonkeyPatch) -> None:
    limit = AzureRefusal("No more role assignments can be created.", status=400, code="RoleAssignmentLimitExceeded")
    result = _grant(monkeypatch, {READER: RoleGranted(put=True, created_on="2026-01-01T00:00:00Z"), SNAPSHOT: limit})
    assert result["ok"] is False and result["code"] == "RoleAssignmentLimitExceeded"
    assert result["created"] == ["Disk Backup Reader"]
