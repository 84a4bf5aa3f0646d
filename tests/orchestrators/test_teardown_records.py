"""``teardown_vault`` and ``teardown_step_chunk`` read every activity result through the records of
``steward/domain/teardown/results.py`` (issue 16 step 4), and the activities write them. The keys did not change,
so a teardown in flight replays its history as before: ``data/teardown_history_before_records.json`` holds
histories recorded by the code that read the raw keys (a refused delete that is compensated, a Resource Guard
grant awaited, and a chunk that follows its operations: running, failed on Azure's side and sent again,
succeeded), replayed here on the new code. A result that is not its record now fails where it is read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from activities.teardown import limits_record
from orchestrators import teardown
from steward.domain.teardown import RequestSource, TeardownRequest
from steward.domain.teardown.results import OperationLook, Refusal, StepResult, TeardownLimits
from steward.settings import Settings
from tests.orchestrators.replay import EPOCH, nested, replay, replays_as_recorded
from tests.orchestrators.test_teardown import REQUESTER, RS_VAULT, FakeVault

DATA = json.loads((Path(__file__).parent / "data" / "teardown_history_before_records.json").read_text())


@pytest.mark.parametrize("case", sorted(DATA["orchestrations"]))
def test_a_teardown_history_recorded_before_the_records_replays_to_the_same_steps_and_output(case: str) -> None:
    recorded = DATA["orchestrations"][case]
    state = replays_as_recorded(getattr(teardown, recorded["orchestrator"]), recorded)
    assert state["output"] == recorded["output"]


def test_the_records_read_the_results_as_the_activities_wrote_them() -> None:
    refused = StepResult.from_record({"ok": False, "refusal": {"kind": "needs-security-approval", "code": "MUA",
                                                               "status": None, "message": "Resource Guard"},
                                      "target": {"type": "backupItem", "id": "/X/Item", "name": "i"}})
    assert refused.refused.kind == "needs-security-approval" and refused.target_id == "/x/item"
    assert StepResult.from_record({"ok": True, "effect": {"id": "/E"}}).target_id == "/e"
    look = OperationLook.from_record({"ok": True, "state": "failed", "message": "boom", "retryAfter": 60.0})
    assert (look.state, look.message, look.retry_after) == ("failed", "boom", 60.0)
    # a refusal keeps the keys it had: no code or status written where there was none
    assert Refusal(kind="refused", message="no").to_record() == {"kind": "refused", "message": "no"}
    assert TeardownLimits.from_record(limits_record(Settings.from_env({}))).four_eyes == 1


@pytest.mark.parametrize(("name", "answer", "field"), [
    ("teardown_limits", {"maxParallelWrites": "ten", "approvalTimeoutHours": 72, "waitChunkHours": 24},
     "maxParallelWrites"),
    ("teardown_mark_vault", {"ok": True, "effect": "written", "inherited": "softDelete"}, "inherited"),
    ("teardown_delete_vault", {"ok": True, "effect": "deleted"}, "effect"),
])
def test_a_result_that_is_not_its_record_fails_the_saga_where_it_is_read(name: str, answer: Any, field: str) -> None:
    vault = FakeVault()
    activities = {**vault.activities(), name: lambda payload: answer}
    request = TeardownRequest(vault_id=RS_VAULT, requested_by=REQUESTER, source=RequestSource.HTTP, dry_run=False,
                              correlation_id="corr-1", requested_at=EPOCH, approved_fingerprint=vault.fingerprint())
    result = replay(teardown.teardown_vault, request.to_record(), activities=activities,
                    subs={"teardown_step_chunk": nested(teardown.teardown_step_chunk, activities=activities)},
                    instance_id="td-1")
    assert result.status == "Completed", result.error
    assert result.output["outcome"] == "failed" and field in result.output["reason"], result.output
