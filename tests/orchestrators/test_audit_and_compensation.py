"""``audit_estate`` and ``reconcile_teardowns`` replayed over built histories with fake activities
(``tests/orchestrators/replay.py``). The audit's fan-out against the local runner stays in
``tests/integration/audit/test_audit_orchestration.py``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from orchestrators import audit, compensation, retrying
from steward.domain.compensation import TeardownMarker
from steward.domain.teardown import format_time
from tests.orchestrators.replay import EPOCH, Replay, nested, replay

SUBS = [f"00000000-0000-4000-8000-{i:012d}" for i in range(1, 12)]
VMS = "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/virtualMachines"


class AuditFakes:
    def __init__(self, remediate: list[str] | None = None) -> None:
        self.remediate = remediate or []
        self.fail_once: set[str] = set()
        self.failed: set[str] = set()
        self.evaluated: list[dict[str, Any]] = []
        #: what the drill reconciler reports (issue 17): passed on to the evaluation as DRL-003 material
        self.leftovers: list[dict[str, Any]] = []

    def read(self, request: dict[str, Any]) -> dict[str, Any]:
        sub = request["subscriptionId"]
        if sub in self.fail_once and sub not in self.failed:
            self.failed.add(sub)
            raise RuntimeError("429 Too Many Requests")
        return {"subscription_id": sub, "part": f"work/{request['run']}/{sub}.json", "gaps": int(sub == SUBS[0])}

    def activities(self) -> dict[str, Any]:
        return {
            "audit_scope": lambda p: {"subscriptions": p.get("subscriptions") or SUBS},
            "audit_read_subscription": self.read,
            "audit_evaluate": lambda p: self.evaluated.append(p) or {"report": "runs/r.json", "findings": 2},
            "audit_publish_findings": lambda p: {"events": 2},
            "drill_reconcile_leftovers": lambda p: {"leftovers": self.leftovers},
            "audit_remediation_plan": lambda p: {"enabled": bool(self.remediate), "limit": 20,
                                                 "protect": self.remediate, "deferred": 1, "needsPerson": []},
        }


def run_audit(fakes: AuditFakes, request: dict[str, Any], subs: dict[str, Any] | None = None) -> Replay:
    activities = fakes.activities()
    # each subscription's read retries in its own sub-orchestration (orchestrators/retrying.py): the real one
    children = {retrying.BACKOFF_CALL: nested(retrying.backoff_call, activities=activities), **(subs or {})}
    result = replay(audit.audit_estate, request, activities=activities, subs=children, instance_id="audit-all")
    assert result.status == "Completed", result.error
    return result


def test_the_audit_reads_every_subscription_retries_a_transient_failure_and_evaluates_every_part() -> None:
    fakes = AuditFakes()
    fakes.fail_once = {SUBS[2]}
    result = run_audit(fakes, {})
    assert result.output["subscriptions"] == len(SUBS) and result.output["inventoryGaps"] == 1
    reads = [c.input["input"] for c in result.calls if c.name == retrying.BACKOFF_CALL]
    assert [r["subscriptionId"] for r in reads] == SUBS, "one retrying child per subscription"
    assert fakes.failed == {SUBS[2]}, "the transient failure happened and was retried"
    assert {r["run"] for r in reads} == {f"audit-all-{EPOCH:%Y%m%dT%H%M%S}"}
    [evaluated] = fakes.evaluated
    assert [p.rsplit("/", 1)[1] for p in evaluated["parts"]] == [f"{s}.json" for s in SUBS]
    assert evaluated["interruptedTeardowns"] == []
    assert result.output["remediation"] == {"enabled": False, "limit": 20, "started": 0, "outcomes": {},
                                            "deferred": 1, "needsPerson": []}


def test_every_audit_reconciles_drill_leftovers_before_the_inventory_and_evaluates_what_it_did() -> None:
    fakes = AuditFakes()
    fakes.leftovers = [{"id": f"{VMS}-drill/disk", "drillId": "drill-a", "expiredAt": "x", "effect": "deleted"}]
    result = run_audit(fakes, {})
    names = result.names()
    assert names.index("drill_reconcile_leftovers") < names.index(retrying.BACKOFF_CALL)
    [call] = [c for c in result.calls if c.name == "drill_reconcile_leftovers"]
    assert call.input == {"now": EPOCH.isoformat()}
    [evaluated] = fakes.evaluated
    assert evaluated["drillLeftovers"] == fakes.leftovers and result.output["drillLeftovers"] == 1


def test_remediation_starts_one_protection_per_planned_resource_and_counts_their_outcomes() -> None:
    fakes = AuditFakes([f"{VMS}/vm-{i}" for i in range(3)] + [f"{VMS}/vm-far"])
    result = run_audit(fakes, {"subscriptions": SUBS[:1]},
                       subs={"protect_resource": lambda p, child: {
                           "status": "NoVault" if p["resourceId"].endswith("far") else "Protected"}})
    assert result.output["remediation"]["started"] == 4
    assert result.output["remediation"]["outcomes"] == {"NoVault": 1, "Protected": 3}
    children = [c for c in result.calls if c.name == "protect_resource"]
    assert [c.instance_id for c in children] == [f"audit-all:remediate:{EPOCH:%Y%m%dT%H%M%S}:{i}" for i in range(4)]
    assert all(c.input["origin"]["eventType"] == audit.REMEDIATION_EVENT_TYPE for c in children)


def test_a_snapshot_of_running_teardowns_reconciles_first_and_feeds_the_evaluation() -> None:
    fakes = AuditFakes()
    old = TeardownMarker("td-lost", EPOCH - timedelta(hours=2), (("softDelete", "Enabled"),)).encode()
    vault = "/subscriptions/s/resourceGroups/g/providers/Microsoft.RecoveryServices/vaults/v"
    reconciler = nested(compensation.reconcile_teardowns, activities={
        "teardown_find_marked_vaults": lambda p: {"markers": [{"vaultId": vault, "marker": old}], "gaps": []},
        "teardown_reconcile_vault": lambda p: {"vaultId": p["vaultId"], "action": "restored"},
    })
    snapshot = {"snapshotAt": format_time(EPOCH), "live": []}
    result = run_audit(fakes, {"subscriptions": SUBS[:2], "teardowns": snapshot},
                       subs={"reconcile_teardowns": reconciler})
    assert result.names()[:2] == ["audit_scope", "reconcile_teardowns"]
    [evaluated] = fakes.evaluated
    assert evaluated["interruptedTeardowns"] == [{"vaultId": vault, "action": "restored"}]


# ---- reconcile_teardowns --------------------------------------------------------------------------------------

V1 = "/subscriptions/s/resourceGroups/g/providers/Microsoft.RecoveryServices/vaults/v1"
V2 = "/subscriptions/s/resourceGroups/g/providers/Microsoft.RecoveryServices/vaults/v2"
V3 = "/subscriptions/s/resourceGroups/g/providers/Microsoft.RecoveryServices/vaults/v3"


def reconcile(snapshot: dict[str, Any] | None) -> tuple[Replay, list[dict[str, Any]]]:
    hour_ago = EPOCH - timedelta(hours=1)
    markers = [
        {"vaultId": V1, "marker": TeardownMarker("td-lost", hour_ago, (("softDelete", "Enabled"),)).encode()},
        {"vaultId": V2, "marker": TeardownMarker("td-live", hour_ago, ()).encode()},
        {"vaultId": V3, "marker": "not a marker"},
    ]
    restored: list[dict[str, Any]] = []
    result = replay(compensation.reconcile_teardowns, {"teardowns": snapshot, "subscriptions": ["s"]}, activities={
        "teardown_find_marked_vaults": lambda p: {"markers": markers, "gaps": ["s2"]},
        "teardown_reconcile_vault": lambda p: restored.append(p) or {"vaultId": p["vaultId"], "action": "restored"},
    })
    assert result.status == "Completed", result.error
    return result, restored


def test_a_marker_whose_teardown_no_longer_runs_is_restored_and_the_others_left() -> None:
    result, restored = reconcile({"snapshotAt": format_time(EPOCH), "live": ["td-live"]})
    assert [r["vaultId"] for r in restored] == [V1]
    assert result.output["reconciled"] == [{"vaultId": V1, "action": "restored"}]
    assert {d["vaultId"]: d["action"] for d in result.output["left"]} == {V2: "leave", V3: "unreadable"}
    assert result.output["gaps"] == ["s2"]


def test_without_a_snapshot_of_running_teardowns_nothing_is_restored() -> None:
    result, restored = reconcile(None)
    assert restored == [] and result.output["reconciled"] == []
    assert {d["action"] for d in result.output["left"]} == {"leave"}
    assert result.names() == ["teardown_find_marked_vaults"]


def test_a_marker_younger_than_the_skew_waits_for_the_next_run() -> None:
    result, restored = reconcile({"snapshotAt": format_time(EPOCH - timedelta(hours=1, minutes=-1)), "live": []})
    assert restored == []
    assert {d["vaultId"]: d["action"] for d in result.output["left"]}[V1] == "leave"


# ---- backoff_call (orchestrators/retrying.py) ----------------------------------------------------------------


def test_backoff_call_retries_a_failing_activity_on_durable_timers_then_gives_up() -> None:
    attempts: list[Any] = []

    def flaky(payload: Any) -> Any:
        attempts.append(payload)
        if len(attempts) < 3:
            raise RuntimeError("503 Service Unavailable")
        return {"ok": True}

    policy = audit.RETRY.to_record()
    result = replay(retrying.backoff_call, {"activity": "flaky", "policy": policy, "input": {"n": 1}},
                    activities={"flaky": flaky})
    assert result.status == "Completed" and result.output == {"ok": True}
    assert attempts == [{"n": 1}] * 3
    assert result.now - EPOCH >= audit.RETRY.delay(1) + audit.RETRY.delay(2), "waited on durable timers"

    def down(payload: Any) -> Any:
        raise RuntimeError("503 Service Unavailable")

    failed = replay(retrying.backoff_call, {"activity": "down", "policy": policy, "input": None},
                    activities={"down": down})
    assert failed.status == "Failed" and "503" in (failed.error or "")
    assert failed.names() == ["down"] * audit.RETRY.max_attempts
