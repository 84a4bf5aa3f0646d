"""``teardown_vault`` and ``teardown_step_chunk`` replayed over built histories with fake activities over one
fake vault (``tests/orchestrators/replay.py``): the saga's main branches - dry run, gone, approved up front,
approval awaited / refused by a changed plan / expired / cancelled, a refusal that compensates, a Cancel while
running, a Resource Guard grant awaited - end with the outcome they should, after the effects they should."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from orchestrators import teardown
from steward.domain.teardown import (
    EVENT_APPROVE,
    EVENT_CANCEL,
    EVENT_SECURITY_APPROVAL,
    RequestSource,
    SoftDeleteState,
    TeardownRequest,
    VaultInventory,
    VaultKind,
    VaultSettings,
    plan_teardown,
)
from tests.orchestrators.replay import EPOCH, Replay, nested, replay
from tests.unit.teardown.teardown_strategies import RS_VAULT, item

REQUESTER = "11111111-1111-4111-8111-111111111111"
APPROVER = "22222222-2222-4222-8222-222222222222"


class FakeVault:
    """One Recovery Services vault (soft delete on, two VM items) and the teardown activities over it."""

    def __init__(self, *, exists: bool = True, four_eyes: bool = False) -> None:
        self.exists = exists
        self.tags: tuple[tuple[str, str], ...] = ()
        self.soft_delete = SoftDeleteState.ENABLED
        self.items = {i.id: i for i in (item("vm1"), item("vm2"))}
        self.refuse_delete: dict[str, Any] | None = None  # the refusal an item delete answers (once)
        self.limits = {"maxParallelWrites": 10, "approvalTimeoutHours": 72, "waitChunkHours": 24,
                       "fourEyes": int(four_eyes), "allowedPrincipals": []}
        self.inbox: list[tuple[str, Any]] = []
        self.cancel_on_setting = False
        self.effects: list[tuple[str, str]] = []
        self.marked: list[dict[str, Any]] = []
        self.unmarked = 0
        self.restored: list[dict[str, Any]] = []
        self.reports: list[dict[str, Any]] = []

    def inventory(self) -> VaultInventory:
        return VaultInventory(RS_VAULT, VaultKind.RECOVERY_SERVICES, exists=self.exists, location="westeurope",
                              tags=self.tags, settings=VaultSettings(soft_delete=self.soft_delete),
                              items=tuple(self.items.values()) if self.exists else ())

    def fingerprint(self) -> str:
        return plan_teardown(self.inventory(), EPOCH).fingerprint

    def set_setting(self, p: dict[str, Any]) -> dict[str, Any]:
        assert p["setting"] == "softDelete"
        self.soft_delete = SoftDeleteState(p["value"])
        self.effects.append(("set", f"softDelete={p['value']}"))
        if self.cancel_on_setting:
            self.inbox.append((EVENT_CANCEL, {"by": APPROVER}))  # a Cancel arrives while the effect runs
        return {"ok": True, "effect": {"type": "setting", "id": RS_VAULT, "name": "softDelete", "effect": "changed"}}

    def delete_item(self, p: dict[str, Any]) -> dict[str, Any]:
        target = p["target"]
        if self.refuse_delete is not None:
            refusal, self.refuse_delete = self.refuse_delete, None
            return {"ok": False, "refusal": refusal, "target": target}
        self.effects.append(("delete", target["name"]))
        del self.items[target["id"]]
        return {"ok": True, "effect": {"type": "backupItem", "id": target["id"], "name": target["name"],
                                       "effect": "deleted"}}

    def delete_vault(self, p: dict[str, Any]) -> dict[str, Any]:
        self.effects.append(("delete", "vault"))
        self.exists = False
        return {"ok": True, "effect": {"type": "vault", "id": RS_VAULT, "name": "vault-1", "effect": "deleted"}}

    def restore(self, p: dict[str, Any]) -> dict[str, Any]:
        self.restored.extend(p["changes"])
        for change in p["changes"]:
            self.soft_delete = SoftDeleteState(change["from"])
        return {"ok": True, "restored": [{"setting": c["setting"], "to": c["from"], "effect": "changed"}
                                         for c in p["changes"]]}

    def activities(self) -> dict[str, Any]:
        return {
            "teardown_limits": lambda p: self.limits,
            "teardown_inventory": lambda p: self.inventory().to_record(),
            "teardown_mark_vault": lambda p: self.marked.append(p) or {"ok": True, "effect": "written",
                                                                       "inherited": []},
            "teardown_unmark_vault": lambda p: setattr(self, "unmarked", self.unmarked + 1) or {"ok": True},
            "teardown_set_setting": self.set_setting,
            "teardown_delete_item": self.delete_item,
            "teardown_delete_vault": self.delete_vault,
            "teardown_restore_protections": self.restore,
            "teardown_record_report": lambda p: self.reports.append(p["report"]) or {
                "jsonUrl": f"https://store/{p['name']}.json", "htmlUrl": f"https://store/{p['name']}.html"},
        }

    def run(self, **request: Any) -> Replay:
        fields: dict[str, Any] = {"vault_id": RS_VAULT, "requested_by": REQUESTER, "source": RequestSource.HTTP,
                                  "dry_run": False, "correlation_id": "corr-1", "requested_at": EPOCH, **request}
        activities = self.activities()
        result = replay(teardown.teardown_vault, TeardownRequest(**fields).to_record(), activities=activities,
                        subs={"teardown_step_chunk": nested(teardown.teardown_step_chunk, activities=activities)},
                        events=self.inbox, instance_id="td-1")
        assert result.status == "Completed", result.error
        return result


def test_a_dry_run_plans_and_changes_nothing() -> None:
    vault = FakeVault()
    result = vault.run(dry_run=True)
    assert result.output["outcome"] == "planned"
    assert vault.effects == [] and vault.marked == []
    assert [r["outcome"] for r in vault.reports] == ["planned"]
    assert result.output["links"]["jsonUrl"] == "https://store/td-1.json"


def test_a_vault_that_is_gone_ends_already_gone() -> None:
    vault = FakeVault(exists=False)
    assert vault.run().output["outcome"] == "already-gone"
    assert vault.effects == []


def test_an_approved_plan_marks_the_vault_turns_soft_delete_off_deletes_the_items_then_the_vault() -> None:
    vault = FakeVault()
    result = vault.run(approved_fingerprint=vault.fingerprint())
    assert result.output["outcome"] == "deleted", result.output["reason"]
    assert vault.effects == [("set", "softDelete=Disabled"), ("delete", "vm;vm1"), ("delete", "vm;vm2"),
                             ("delete", "vault")]
    [marked] = vault.marked
    assert marked["changes"] == [{"setting": "softDelete", "from": "Enabled", "to": "Disabled"}]
    assert marked["instanceId"] == "td-1"
    assert vault.restored == [] and vault.unmarked == 0, "a deleted vault keeps no marker to remove"
    assert result.generations, "a step of several targets hands on to a fresh execution (continue as new)"
    assert [c.instance_id for c in result.calls if c.kind == "sub"] == ["td-1:0:delete-vm-items:0:0"]
    assert result.output["approvedBy"] == REQUESTER


def test_without_an_approval_the_saga_waits_for_one_then_runs() -> None:
    vault = FakeVault()
    vault.inbox.append((EVENT_APPROVE, {"fingerprint": vault.fingerprint(), "approvedBy": APPROVER}))
    result = vault.run()
    assert result.output["outcome"] == "deleted"
    assert result.output["approvedBy"] == APPROVER
    assert [r["outcome"] for r in vault.reports] == ["deleted"]


def test_an_approval_of_another_plan_than_the_vaults_current_one_deletes_nothing() -> None:
    vault = FakeVault()
    stale = replace(vault.inventory(), items=(item("vm1"),))
    vault.inbox.append((EVENT_APPROVE, {"fingerprint": plan_teardown(stale, EPOCH).fingerprint,
                                        "approvedBy": APPROVER}))
    result = vault.run()
    assert result.output["outcome"] == "replanned"
    assert vault.effects == [] and vault.marked == []


def test_four_eyes_refuses_the_requesters_own_approval_and_takes_another_principals() -> None:
    vault = FakeVault(four_eyes=True)
    vault.inbox += [(EVENT_APPROVE, {"fingerprint": vault.fingerprint(), "approvedBy": REQUESTER}),
                    (EVENT_APPROVE, {"fingerprint": vault.fingerprint(), "approvedBy": APPROVER})]
    result = vault.run()
    assert result.output["outcome"] == "deleted"
    assert result.output["approvedBy"] == APPROVER


def test_no_approval_within_the_timeout_expires_the_request() -> None:
    vault = FakeVault()
    result = vault.run()
    assert result.output["outcome"] == "approval-expired"
    assert result.now - EPOCH >= timedelta(hours=72)
    assert vault.effects == []


def test_a_cancel_while_awaiting_approval_ends_it_with_nothing_changed() -> None:
    vault = FakeVault()
    vault.inbox.append((EVENT_CANCEL, {"by": APPROVER}))
    result = vault.run()
    assert result.output["outcome"] == "cancelled"
    assert vault.effects == [] and vault.restored == []


def test_a_refused_delete_turns_soft_delete_back_on_and_removes_the_marker() -> None:
    vault = FakeVault()
    vault.refuse_delete = {"kind": "failed", "code": "UserErrorX", "message": "the delete failed"}
    result = vault.run(approved_fingerprint=vault.fingerprint())
    assert result.output["outcome"] == "failed" and "the delete failed" in result.output["reason"]
    assert vault.restored == [{"setting": "softDelete", "from": "Enabled", "to": "Disabled"}]
    assert vault.soft_delete is SoftDeleteState.ENABLED
    assert vault.unmarked == 1
    assert ("delete", "vault") not in vault.effects


def test_a_cancel_while_an_effect_runs_is_honoured_after_it_and_compensated() -> None:
    vault = FakeVault()
    vault.cancel_on_setting = True
    result = vault.run(approved_fingerprint=vault.fingerprint())
    assert result.output["outcome"] == "cancelled"
    assert vault.effects == [("set", "softDelete=Disabled")], "nothing starts after the Cancel"
    assert vault.soft_delete is SoftDeleteState.ENABLED and vault.unmarked == 1


def test_a_delete_that_needs_a_resource_guard_grant_waits_for_it_then_goes_on() -> None:
    vault = FakeVault()
    vault.refuse_delete = {"kind": "needs-security-approval", "code": "MUA", "message": "Resource Guard"}
    vault.inbox.append((EVENT_SECURITY_APPROVAL, {"by": APPROVER}))
    result = vault.run(approved_fingerprint=vault.fingerprint())
    assert result.output["outcome"] == "deleted"
    subs = [c.instance_id for c in result.calls if c.kind == "sub"]
    assert subs == ["td-1:0:delete-vm-items:0:0", "td-1:0:delete-vm-items:0:1"], "the refused targets go again"
    assert vault.inbox == []


def test_a_chunk_runs_its_targets_parallel_at_a_time_and_stops_at_the_first_refusal() -> None:
    vault = FakeVault()
    vault.items.update({i.id: i for i in (item("vm3"), item("vm4"), item("vm5"))})
    targets = [i.to_record() for i in vault.items.values()]
    vault.refuse_delete = None
    result = replay(teardown.teardown_step_chunk, {"vaultId": RS_VAULT, "activity": "teardown_delete_item",
                                                   "parallel": 2, "targets": targets},
                    activities=vault.activities())
    assert result.status == "Completed"
    assert [r["effect"]["name"] for r in result.output["results"]] == [t["name"] for t in targets]
    refusing = FakeVault()
    refusing.refuse_delete = {"kind": "failed", "code": "X", "message": "no"}
    result = replay(teardown.teardown_step_chunk, {"vaultId": RS_VAULT, "activity": "teardown_delete_item",
                                                   "parallel": 1, "targets": targets[:3]},
                    activities=refusing.activities())
    assert [r["ok"] for r in result.output["results"]] == [False]
    assert refusing.effects == [], "nothing more is started after a refusal"


TAG = "backup-steward:teardown"


def test_a_failed_delete_by_an_allowed_user_of_an_auto_tagged_vault_runs_its_own_plan() -> None:
    vault = FakeVault()
    vault.tags = ((TAG, "auto"),)
    vault.limits["allowedPrincipals"] = [REQUESTER]
    result = vault.run(source=RequestSource.EVENT, dry_run=True, opt_in_tag=TAG)
    assert result.output["outcome"] == "deleted"
    assert result.output["approvedBy"] == f"tag:{TAG}=auto"


def test_under_four_eyes_the_auto_tag_only_plans_for_another_principal_to_approve() -> None:
    vault = FakeVault(four_eyes=True)
    vault.tags = ((TAG, "auto"),)
    vault.limits["allowedPrincipals"] = [REQUESTER, APPROVER]
    result = vault.run(source=RequestSource.EVENT, dry_run=True, opt_in_tag=TAG)
    assert result.output["outcome"] == "planned" and "four eyes" in result.output["reason"]
    assert vault.effects == [] and vault.marked == []


def test_an_event_for_a_vault_without_the_opt_in_tag_is_refused() -> None:
    vault = FakeVault()
    result = vault.run(source=RequestSource.EVENT, dry_run=True, opt_in_tag=TAG)
    assert result.output["outcome"] == "refused" and vault.effects == []
