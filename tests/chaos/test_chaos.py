"""The chaos run at small size (``make chaos`` runs the full one): faults, duplicated and reordered events and
SIGKILLs of the app's process, then the independent checker. Nothing lost, duplicated or deleted by mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.chaos.scenario import SIZES, render, run


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_small_chaos_run_loses_duplicates_and_deletes_nothing(tmp_path: Path) -> None:
    figures = run("small", seed=9, workdir=tmp_path)
    print(render(figures))
    verdict = figures["checker"]
    assert figures["kills"] == SIZES["small"].kills, figures["killer_error"]
    assert figures["faults_injected"]["total"] > 0.05 * figures["arm_requests"], figures["faults_injected"]
    assert figures["events"]["delivery_failures_retried"] > 0, "no delivery ever met a dead host"
    assert figures["lost"] == 0, verdict["lost_ids"]
    assert figures["duplicated_protections"] == 0, verdict["duplicated_ids"]
    assert figures["unintended_deletions"] == 0, verdict["unintended_examples"]
    assert not verdict["wrong_vault"] and not verdict["protected_against_rules"], verdict
    assert not verdict["stuck"], verdict["stuck"]
    assert figures["teardown"]["outcome"] in {"deleted", "waiting", "blocked"}, figures["teardown"]
    assert all(not t["problem"] for t in verdict["teardowns"].values()), verdict["teardowns"]
    assert figures["converged"], verdict
