"""``add_blob_containers`` replayed over built histories (issue 19 item 2): append only, re-read while containers
keep coming, a refused modification leaves the list as it was."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from orchestrators import protection
from steward.domain import operations, protection_flow
from steward.domain.protection import ProtectionRef
from steward.rules_file import load_rules
from tests.orchestrators.replay import EPOCH, Replay, replay

SUB = "00000000-0000-4000-8000-000000000001"
ACCOUNT = f"/subscriptions/{SUB}/resourceGroups/rg-data/providers/Microsoft.Storage/storageAccounts/stdata1"
BV = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.DataProtection/backupVaults/bv-weu"
INSTANCE = f"{BV}/backupInstances/stdata1-bi"
#: an intent's origin as EventOrigin.to_record writes it (the orchestrator reads its input as a typed intent)
ORIGIN = {"correlationId": "corr-1", "eventId": "ev-1", "eventType": "Microsoft.Resources.ResourceWriteSuccess",
          "eventTime": "2026-01-05T08:59:00+00:00", "schema": "EventGrid"}
RULES = load_rules("""version: 1
rules:
  - name: vaulted-blobs
    match: {types: [Microsoft.Storage/storageAccounts], tags: {tier: vaulted}}
    protect: {vault: regional-default, policy: blob-vaulted, datastore: {blobTier: vaulted}}
  - name: operational-blobs
    match: {types: [Microsoft.Storage/storageAccounts]}
    protect: {vault: regional-default, policy: blob-default, datastore: {blobTier: operational}}
""")


class Estate:
    def __init__(self, tags: dict[str, str] | None = None) -> None:
        self.tags = {"tier": "vaulted"} if tags is None else tags
        self.listed = ["logs"]
        self.account: list[list[str]] = [["logs", "invoices"]]  # the account's containers, one answer per read
        self.puts: list[list[str]] = []
        self.put_result: dict[str, Any] | None = None
        self.published: list[dict[str, Any]] = []

    def instance(self) -> dict[str, Any]:
        return {"id": INSTANCE, "properties": {
            "objectType": "BackupInstance", "dataSourceInfo": {"resourceID": ACCOUNT},
            "policyInfo": {"policyId": f"{BV}/backupPolicies/blob-vaulted", "policyParameters": {
                "backupDatasourceParametersList": [
                    {"objectType": "BlobBackupDatasourceParameters", "containersList": list(self.listed)}]}}}}

    def put(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self.put_result is not None:
            return self.put_result
        assert payload["containers"][: len(self.listed)] == self.listed  # never drops, never reorders
        self.puts.append(payload["containers"])
        self.listed = list(payload["containers"])
        return {"ok": True, "instance": self.instance()}

    def activities(self) -> dict[str, Any]:
        ref = ProtectionRef(vault_id=BV, item_id=INSTANCE, source_id=ACCOUNT, kind="Backup", state="Protected")
        return {
            "describe_resource": lambda p: {"id": ACCOUNT, "type": "Microsoft.Storage/storageAccounts",
                                            "location": "westeurope", "tags": self.tags},
            "decide_protection": lambda p: protection_flow.decide(p["facts"], RULES).to_record(),
            "find_protections": lambda p: [ref.to_record()],
            "blob_container_state": lambda p: {
                "ok": True, "instance": self.instance(),
                "containers": self.account.pop(0) if len(self.account) > 1 else self.account[0]},
            "set_blob_containers": self.put,
            "publish_outcomes": lambda p: self.published.extend(p["outcomes"]) or {"published": 1},
        }


def run(estate: Estate) -> Replay:
    result = replay(protection.add_blob_containers,
                    {"kind": "container", "resourceId": ACCOUNT, "containerId": f"{ACCOUNT}/blobServices/default/"
                     "containers/invoices", "origin": ORIGIN}, activities=estate.activities())
    assert result.status == "Completed", result.error
    return result


def test_the_new_container_is_appended_by_a_modification_of_the_instance() -> None:
    estate = Estate()
    result = run(estate)
    assert estate.puts == [["logs", "invoices"]]
    assert result.output["status"] == "Protected" and result.output["details"]["added"] == ["invoices"]
    assert result.output["itemId"] == INSTANCE and result.output["rule"] == "vaulted-blobs"
    assert [o["status"] for o in estate.published] == ["Protected"]


def test_a_container_created_while_the_run_puts_is_picked_up_by_the_next_round() -> None:
    estate = Estate()
    estate.account = [["logs", "invoices"], ["logs", "invoices", "scratch"], ["logs", "invoices", "scratch"]]
    result = run(estate)
    assert estate.puts == [["logs", "invoices"], ["logs", "invoices", "scratch"]]
    assert result.output["details"]["added"] == ["invoices", "scratch"]
    assert result.names().count("blob_container_state") == 3


def test_a_refused_modification_fails_and_says_the_list_is_unchanged() -> None:
    estate = Estate()
    estate.put_result = {"ok": False, "code": "UserErrorMaxContainersLimitExceeded", "message": "too many"}
    result = run(estate)
    assert result.output["status"] == "Failed" and "container list is unchanged" in result.output["reason"]
    assert estate.listed == ["logs"]


def test_operational_backup_needs_nothing_and_reads_no_instance() -> None:
    estate = Estate(tags={})
    result = run(estate)
    assert result.output["status"] == "LeftAsIs" and "operational blob backup covers every container" in \
        result.output["reason"]
    assert "blob_container_state" not in result.names() and estate.puts == []


class FollowedEstate(Estate):
    """``set_blob_containers`` starts the PUT and returns (issue 15 item 1); ``backup_operation_status`` looks at the
    operation, and at its end reads the instance back."""

    def __init__(self) -> None:
        super().__init__()
        self.looks: list[dict[str, Any]] = []
        self.states = ["InProgress", "Succeeded"]

    def put(self, payload: dict[str, Any]) -> dict[str, Any]:
        done = super().put(payload)
        if not done["ok"]:
            return done
        return operations.OperationStarted(step=operations.Step.INSTANCE, operation="https://arm/op/1",
                                           retry_after=60).to_record()

    def activities(self) -> dict[str, Any]:
        fakes = super().activities()

        def look(payload: dict[str, Any]) -> dict[str, Any]:
            self.looks.append(payload)
            status = self.states.pop(0) if len(self.states) > 1 else self.states[0]
            ended = status != "InProgress"
            return operations.OperationState(status=status, instance=self.instance() if ended else {}).to_record()

        fakes["backup_operation_status"] = look
        return fakes


def test_the_modification_is_followed_on_durable_timers_and_the_instance_read_back_at_its_end() -> None:
    estate = FollowedEstate()
    result = run(estate)
    assert result.output["status"] == "Protected" and result.output["details"]["added"] == ["invoices"]
    assert result.names().count("backup_operation_status") == 2
    assert {look["name"] for look in estate.looks} == {INSTANCE.rsplit("/", 1)[-1]}  # the instance protecting it
    assert result.now - EPOCH >= timedelta(seconds=2 * 60)  # two looks, each after the Retry-After


def test_a_modification_whose_instance_reads_back_failed_fails() -> None:
    estate = FollowedEstate()
    estate.states = ["Failed"]
    result = run(estate)
    assert result.output["status"] == "Failed", result.output


class UnprotectedEstate(Estate):
    """No instance protects the account yet: an empty account's protection was left as is (Azure refuses a vaulted
    blob backup without a container, UserErrorNoContainersSelectedForOperation), so its first container protects
    it here."""

    def __init__(self, protect_result: dict[str, Any]) -> None:
        super().__init__()
        self.listed = []
        self.account = [["invoices"]]
        self.protect_result = protect_result
        self.protect_calls: list[dict[str, Any]] = []

    def protect(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.protect_calls.append(payload)
        if self.protect_result.get("ok"):
            self.listed = ["invoices"]  # the protection listed what the account held
        return self.protect_result

    def activities(self) -> dict[str, Any]:
        answers = super().activities()
        answers.update({
            "find_protections": lambda p: [],
            "find_vaults": lambda p: [{"id": BV, "kind": "Backup", "location": "westeurope",
                                       "tags": {"backup-steward:default": "true"}, "principal_id": "p-1",
                                       "tenant_id": None}] if p["kind"] == "Backup" else [],
            "grant_vault_roles": lambda p: {"ok": True, "created": []},
            "protect_in_backup_vault": self.protect,
        })
        return answers


def test_an_account_no_instance_covers_is_protected_by_its_first_container() -> None:
    estate = UnprotectedEstate({"ok": True, "instance": {"id": INSTANCE}, "created": True})
    result = run(estate)
    assert len(estate.protect_calls) == 1 and estate.puts == []  # protected with its containers, no modification
    assert result.output["status"] == "Protected" and result.output["details"]["added"] == ["invoices"]
    assert result.output["itemId"] == INSTANCE and [o["status"] for o in estate.published] == ["Protected"]


def test_an_account_with_no_listable_container_is_left_as_is_again() -> None:
    estate = UnprotectedEstate({"ok": False, "code": protection_flow.NO_CONTAINERS_YET,
                                "message": protection_flow.NO_CONTAINERS_REASON})
    result = run(estate)
    assert result.output["status"] == "LeftAsIs" and "no blob container to back up yet" in result.output["reason"]
    assert "blob_container_state" not in result.names() and estate.puts == []
