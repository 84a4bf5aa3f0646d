"""copy_policy (issue 19) through the real SDK on the sandbox: a vault set's new vault gets the rule's policy from a
member, its settings as they are there and Azure's own count left to Azure; a body of no policy kind is refused."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError

from activities import protection as protection_activities
from steward import bootstrap
from steward.cloud.arm_cache import ArmCache
from steward.cloud.protection import RecoveryServicesProtection
from tests.integration.sandbox_rs.conftest import Estate, error_code

WEEKLY = {"backupManagementType": "AzureIaasVM", "instantRpRetentionRangeInDays": 3, "timeZone": "UTC",
          "schedulePolicy": {"schedulePolicyType": "SimpleSchedulePolicy", "scheduleRunFrequency": "Weekly",
                             "scheduleRunDays": ["Sunday"], "scheduleRunTimes": ["2024-01-01T03:00:00Z"]},
          "retentionPolicy": {"retentionPolicyType": "LongTermRetentionPolicy", "weeklySchedule": {
              "daysOfTheWeek": ["Sunday"], "retentionTimes": ["2024-01-01T03:00:00Z"],
              "retentionDuration": {"count": 12, "durationType": "Weeks"}}}}


def test_the_policy_is_copied_from_the_member_that_has_it_once(estate: Estate, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bootstrap, "clients", lambda: estate.clients)
    monkeypatch.setattr(bootstrap, "arm_cache", lambda: ArmCache(300))
    rg = estate.group()
    for name in ("rsv-weu-01", "rsv-weu-02", "rsv-weu-03"):
        estate.vault(rg, name)
    first, second, made = (estate.vault_id(rg, f"rsv-weu-0{n}") for n in (1, 2, 3))
    estate.rsb().protection_policies.create_or_update("rsv-weu-02", rg, "vm-weekly", {"properties": WEEKLY})
    changes_before = len(estate.provider.model.vault(made).policy_changes)
    activity = protection_activities.copy_policy
    run = activity._function.get_user_function() if hasattr(activity, "_function") else activity
    request = {"vault_id": made, "policy": "vm-weekly", "sources": [first, second]}
    assert run(request) == {"ok": True, "copied": True, "source": second}
    assert run(request) == {"ok": True, "copied": False}
    assert len(estate.provider.model.vault(made).policy_changes) == changes_before + 1  # one of its 50 a day
    copied = RecoveryServicesProtection(estate.clients).policy(made, "vm-weekly")
    assert copied is not None and copied["id"].lower() == f"{made}/backupPolicies/vm-weekly".lower()
    assert {k: v for k, v in copied["properties"].items() if k != "protectedItemsCount"} == WEEKLY
    missing = run({**request, "policy": "vm-nowhere"})
    assert missing["ok"] is False and missing["code"] == "PolicyNotFound"


def test_a_policy_of_no_kind_the_spec_knows_is_refused(estate: Estate) -> None:
    rg = estate.group()
    estate.vault(rg)
    with pytest.raises(HttpResponseError) as caught:
        estate.rsb().protection_policies.create_or_update(
            "rsv", rg, "odd", {"properties": {"backupManagementType": "AzureTapeDrive"}})
    assert caught.value.status_code == 400 and error_code(caught.value) == "BadRequest"
