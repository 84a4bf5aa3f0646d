"""Review of issue 15 (h-rolescope): the regrant past the documented propagation bound ignores its own answer.

``_configure_backup_instance`` grants the roles again after 10 minutes of refused validations (a role the app
granted may have been removed meanwhile). When that regrant is refused ``RoleAssignmentLimitExceeded`` (the removed
assignment's place was taken: Azure's 4,000 per subscription, ``role-based-access-control/troubleshoot-limits.md``),
no retry helps, yet the protection keeps validating until the 30-minute deadline and ends saying RBAC propagation
ran out, not naming the limit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from tests.orchestrators.replay import EPOCH
from tests.orchestrators.test_protection import PENDING, Estate, _packaged_rules, protect  # noqa: F401

LIMIT = {"ok": False, "code": "RoleAssignmentLimitExceeded", "status": 400,
         "message": "No more role assignments can be created."}


def test_a_regrant_refused_at_the_limit_ends_the_protection_naming_the_limit() -> None:
    estate = Estate()
    estate.protect_results = [PENDING]  # the roles never apply: the assignment was removed
    fakes = estate.activities
    grants: list[Any] = []

    def answers() -> dict[str, Callable[[Any], Any]]:
        found = fakes()

        def grant(payload: Any) -> dict[str, Any]:
            grants.append(payload)
            if payload.get("fresh"):  # the regrant PUTs the removed assignment again: no room left
                return LIMIT
            return {"ok": True, "created": [g["role"] for g in payload["grants"]]}

        found["grant_vault_roles"] = grant
        return found

    estate.activities = answers  # type: ignore[method-assign]
    result = protect(estate)
    assert len(grants) == 2 and grants[1].get("fresh")
    assert result.output["status"] == "Failed"
    assert "RoleAssignmentLimitExceeded" in result.output["reason"], result.output["reason"]
    # it ends at the refused regrant (about 10 minutes in), not at the 30-minute deadline
    assert result.now - EPOCH < timedelta(minutes=15), result.now - EPOCH
