"""A vault the app creates (``STEWARD_AUTO_CREATE_VAULTS``: a region's default vault, a vault set's next vault) is
followed on durable timers like the backup instance PUT (issue 15 item 1): ``create_vault`` PUTs it and returns at
once, the orchestrator waits the operation's ``Retry-After`` (10 s in S-DP 2025-07-01 ``PutBackupVault.json``) on a
durable timer and looks (``vault_creation_status``); the look that sees its end reads the vault back and that read
is verified against the body sent (``operations.after_vault``); a Backup vault then gets its default policies
(``create_vault_policies``). Replayed over built histories with fake activities (``tests/orchestrators/replay.py``);
a ``create_vault`` result recorded by the code that waited inside the activity still reads as final."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from orchestrators import protection
from steward.domain import operations, vault_defaults
from tests.orchestrators.replay import replay
from tests.orchestrators.test_backup_operations import waits
from tests.orchestrators.test_protection import BV, ORIGIN, VM, Estate, protect, vault
from tests.orchestrators.test_vault_sets import SET, SetEstate

TAGS = {"backup-steward:default": "true", "backup-steward:created-by": "backup-steward"}
SENT = vault_defaults.backup_vault_body("westeurope", TAGS)


def read_back(vault_id: str = BV, sent: dict[str, Any] = SENT, **changes: Any) -> dict[str, Any]:
    """The vault as its GET answers once created as ``sent`` (``changes`` replace top-level keys)."""
    body = {**sent, "id": vault_id, "name": vault_id.rsplit("/", 1)[-1],
            "identity": {"type": "SystemAssigned", "principalId": "p-new", "tenantId": "t-1"},
            "properties": {**sent["properties"], "provisioningState": "Succeeded"}}
    return {**body, **changes}


def started(vault_id: str = BV, sent: dict[str, Any] = SENT, retry_after: int = 10,
            operation: str = "https://arm/op/vault") -> dict[str, Any]:
    return operations.OperationStarted(
        step=operations.Step.VAULT, operation=operation, retry_after=retry_after, body=sent,
        instance={"id": vault_id, "properties": {"provisioningState": "Provisioning"}}).to_record()


def state(status: str, retry_after: int = 0, **extra: Any) -> dict[str, Any]:
    return operations.OperationState(status=status, retry_after=retry_after, **extra).to_record()


class Creating(Estate):
    """No vault in the region: ``create_vault`` starts one; each list answers one call after another (the last
    repeats)."""

    def __init__(self) -> None:
        super().__init__()
        self.vaults = []
        self.create_results = [started()]
        self.creation_states = [state("InProgress", retry_after=10), state("Succeeded", instance=read_back())]
        self.policies: list[dict[str, Any]] = [{"ok": True, "policies": list(vault_defaults.BACKUP_VAULT_POLICIES)}]

    def activities(self) -> dict[str, Callable[[Any], Any]]:
        fakes = super().activities()

        def look(payload: dict[str, Any]) -> Any:
            assert payload["vaultId"] == BV and payload["step"] == "vault"
            assert payload["operation"] == self.create_results[0]["operation"]
            return self._next(self.creation_states)

        fakes["create_vault"] = lambda p: self._next(self.create_results)
        fakes["vault_creation_status"] = look
        fakes["create_vault_policies"] = lambda p: self._next(self.policies)
        return fakes


def test_a_backup_vault_created_is_followed_on_durable_timers_verified_then_given_its_policies() -> None:
    estate = Creating()
    result = protect(estate)
    assert result.output["status"] == "Protected" and result.output["vaultId"] == BV
    assert result.names()[:8] == ["describe_resource", "decide_protection", "find_vaults", "create_vault",
                                  "vault_creation_status", "vault_creation_status", "create_vault_policies",
                                  "grant_vault_roles"]
    assert result.inputs("create_vault_policies") == [{"vaultId": BV}]
    # the roles go to the identity the vault read back with (its principal exists only once it is created)
    assert result.inputs("grant_vault_roles")[0]["principalId"] == "p-new"
    # two looks 10 s apart (Azure's Retry-After), none sooner; the rest are the backup instance's
    assert waits(result)[:2] == [10, 10]


def test_a_vault_that_reads_back_other_than_created_is_not_used() -> None:
    estate = Creating()
    weak = read_back(properties={**SENT["properties"], "provisioningState": "Succeeded",
                                 "securitySettings": {"softDeleteSettings": {"state": "Off",
                                                                             "retentionDurationInDays": 14}}})
    estate.creation_states = [state("Succeeded", instance=weak)]
    result = protect(estate)
    assert result.output["status"] == "NoVault"
    assert "create_vault_policies" not in result.names() and "grant_vault_roles" not in result.names()


def test_a_vault_put_refused_at_its_end_protects_nothing() -> None:
    estate = Creating()
    estate.creation_states = [state("Failed", error={"code": "BackupVaultLimitReached", "message": "full"})]
    result = protect(estate)
    assert result.output["status"] == "NoVault"
    assert result.names().count("create_vault") == 1 and "create_vault_policies" not in result.names()


def test_a_vault_put_that_failed_on_azures_side_is_sent_again_a_bounded_number_of_times() -> None:
    estate = Creating()
    broken = state("Failed", error={"code": "InternalServerError", "message": "oops"})
    estate.creation_states = [broken, state("Succeeded", instance=read_back())]
    result = protect(estate)
    assert result.output["status"] == "Protected"
    assert result.names().count("create_vault") == 2

    estate = Creating()
    estate.creation_states = [broken]
    result = protect(estate)
    assert result.output["status"] == "NoVault"
    assert result.names().count("create_vault") == operations.STARTS


def test_a_vault_put_that_never_ends_is_given_up_after_the_window() -> None:
    estate = Creating()
    estate.create_results = [started(retry_after=60)]
    estate.creation_states = [state("InProgress", retry_after=60)]
    result = protect(estate)
    assert result.output["status"] == "NoVault"
    assert result.names().count("vault_creation_status") == operations.WINDOW_SECONDS // 60
    assert sum(waits(result)) == operations.WINDOW_SECONDS


def test_a_vault_put_that_names_no_operation_is_watched_by_the_vaults_own_state() -> None:
    """Azure named no status URL but the vault is still provisioning: the look GETs the vault (the activity reads
    its ``provisioningState``) every default wait, not once."""
    estate = Creating()
    estate.create_results = [started(operation="", retry_after=0)]
    estate.creation_states = [state("InProgress"), state("Succeeded", instance=read_back())]
    result = protect(estate)
    assert result.output["status"] == "Protected"
    assert result.names().count("vault_creation_status") == 2
    assert waits(result)[:2] == [operations.DEFAULT_WAIT_SECONDS] * 2


def test_a_create_vault_result_recorded_before_the_vault_was_followed_here_still_reads() -> None:
    """A history recorded by the code that waited inside the activity: its ``create_vault`` result is final."""
    estate = Creating()
    estate.create_results = [{"ok": True, "vault": vault(BV, tags={"backup-steward:default": "true"})}]
    result = protect(estate)
    assert result.output["status"] == "Protected" and result.output["vaultId"] == BV
    assert "vault_creation_status" not in result.names() and "create_vault_policies" not in result.names()


def test_a_vault_sets_next_vault_is_followed_the_same_way() -> None:
    made = f"{SET}03"
    sent = vault_defaults.recovery_services_vault_body("westeurope", {"backup-steward:created-by": "backup-steward"})
    estate = SetEstate({f"{SET}01": 950, f"{SET}02": 901})
    activities = estate.activities()
    estate.ledger.grows = True  # STEWARD_AUTO_CREATE_VAULTS: the set grows rather than reserve past its threshold
    looks: list[dict[str, Any]] = []
    answers = [state("InProgress", retry_after=10), state("Succeeded", instance=read_back(made, sent))]
    activities["create_vault"] = lambda p: started(made, sent)
    activities["vault_creation_status"] = lambda p: looks.append(p) or answers.pop(0)
    result = replay(protection.protect_resource, {"kind": "protect", "resourceId": VM, "origin": ORIGIN},
                    activities=activities)
    assert result.status == "Completed", result.error
    assert result.output["status"] == "Protected" and result.output["vaultId"] == made
    assert [p["vaultId"] for p in looks] == [made, made]
    assert "create_vault_policies" not in result.names()  # a Recovery Services vault's policies are Azure's
