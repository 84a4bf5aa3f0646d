"""New blob containers end to end (issue 19 item 2): containers created through ARM on the sandbox, the sandbox
raises their write events, the real app adds them to the vaulted backup instance of their storage account.
State is checked through the same SDK clients, never through the app."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from azure.mgmt.dataprotection.models import BaseBackupPolicyResource

from sandbox.estate import VAULTED_BLOB_POLICY, VAULTED_BLOBS_RULE, Estate
from steward import bootstrap
from steward.cloud.inventory import ArmEstateReader, read_estate
from steward.cloud.protection import BackupVaultProtection
from steward.domain.audit import audit
from steward.domain.blob_containers import OPERATIONAL_REASON, containers_of
from steward.domain.ids import ResourceId
from steward.rules_file import default_rules_text, load_rules
from tests.e2e.conftest import SUB1, Harness, start_harness

WEU = "westeurope"


def _rules() -> str:
    text = default_rules_text()
    head, rest = text.split("\nrules:\n", 1)
    return f"{head}\nrules:{VAULTED_BLOBS_RULE}{rest}"


@pytest.fixture
def h(tmp_path: Path) -> Iterator[Harness]:
    harness = start_harness(tmp_path, settings={"STEWARD_RULES": _rules()})
    try:
        yield harness
    finally:
        harness.stack.stop()
        bootstrap.reset()


def _vault(h: Harness, est: Estate) -> str:
    est.resource_group("rg-data", WEU)
    bv = est.backup_vault("rg-data", "bv-weu", WEU)
    h.clients.data_protection(SUB1).backup_policies.create_or_update(
        resource_group_name="rg-data", vault_name="bv-weu", backup_policy_name="blob-vaulted",
        parameters=BaseBackupPolicyResource(VAULTED_BLOB_POLICY))
    return bv


def _container(h: Harness, account: str, name: str) -> None:
    h.clients.resources(SUB1).resources.begin_create_or_update_by_id(
        f"{account}/blobServices/default/containers/{name}", api_version="2023-05-01", parameters={"properties": {}},
        polling_interval=h.clients.target.polling_interval).result()


def _listed(h: Harness, vault: str, account: str) -> list[str]:
    for instance in BackupVaultProtection(h.clients).instances(vault):
        if ResourceId.parse(instance["properties"]["dataSourceInfo"]["resourceID"]) == ResourceId.parse(account):
            return containers_of(instance)
    return []


def test_a_container_created_in_a_protected_account_is_backed_up_after_its_event(h: Harness) -> None:
    est = h.estate()
    vault = _vault(h, est)
    account = est.storage_account("rg-data", "stvaulted1", WEU, tags={"blob-tier": "vaulted"})
    # no container yet: Azure refuses a vaulted blob backup without one (UserErrorNoContainersSelectedForOperation,
    # docs/azure-facts.md), so the account is left as is until its first container (before: Protected, empty list)
    first = h.wait_outcome(account, "LeftAsIs", timeout=60)
    assert first["rule"] == "vaulted-blobs" and "no blob container to back up yet" in first["reason"]
    h.settle(60)
    assert _listed(h, vault, account) == []  # no container yet: nothing listed
    assert BackupVaultProtection(h.clients).instances(vault) == []

    _container(h, account, "logs")
    _container(h, account, "invoices")
    h.wait_for(lambda: set(_listed(h, vault, account)) == {"logs", "invoices"}, 60, "both containers listed")
    h.settle(60)
    added = [c for o in h.outcomes_for(account) for c in (o.get("details") or {}).get("added", [])]
    assert sorted(added) == ["invoices", "logs"]  # each added once, by a modification of the one instance
    assert len(BackupVaultProtection(h.clients).instances(vault)) == 1

    _container(h, account, "archive")  # later still: appended, nothing dropped (make-before-break)
    h.wait_for(lambda: _listed(h, vault, account) == ["invoices", "logs", "archive"]
               or _listed(h, vault, account) == ["logs", "invoices", "archive"], 60, "archive appended")


def test_operational_blob_backup_needs_nothing_and_the_outcome_says_so(h: Harness) -> None:
    est = h.estate()
    vault = _vault(h, est)
    account = est.storage_account("rg-data", "stoperational1", WEU)
    assert h.wait_outcome(account, "Protected", timeout=60)["rule"] == "storage-account-blobs"
    _container(h, account, "logs")
    outcome = h.wait_outcome(account, "LeftAsIs", timeout=60)
    assert outcome["reason"] == OPERATIONAL_REASON
    assert _listed(h, vault, account) == []


def test_the_101st_container_is_left_out_and_reported(h: Harness) -> None:
    est = h.estate()
    vault = _vault(h, est)
    account = est.storage_account("rg-data", "stvaulted2", WEU, tags={"blob-tier": "vaulted"})
    h.wait_outcome(account, "LeftAsIs", timeout=60)  # no container yet (UserErrorNoContainersSelectedForOperation)
    h.settle(60)
    with h.sandbox.events.unsubscribed():  # the containers arrive at once; one event then brings them all
        for i in range(101):
            _container(h, account, f"c{i:03d}")
    _container(h, account, "c101")
    outcome = h.wait_for(lambda: next((o for o in h.outcomes_for(account)
                                       if (o.get("details") or {}).get("leftOut")), None), 90, "the left-out outcome")
    assert outcome["status"] == "LeftAsIs"
    assert [e["container"] for e in outcome["details"]["leftOut"]] == ["c100", "c101"]
    assert "at most 100 containers" in outcome["reason"] and "c100" in outcome["reason"]
    assert len(_listed(h, vault, account)) == 100
    # the audit reports them too (BKP-007), read through the app's own ARM inventory adapter
    inventory = read_estate(ArmEstateReader(h.clients), [SUB1])
    result = audit(inventory, load_rules(_rules()), datetime.now(UTC))
    [finding] = [f for f in result.findings if f.control_id == "BKP-007"]
    assert finding.resource_id.lower() == account.lower()
    assert finding.details["leftOut"] == "c100, c101" and finding.details["reason"] == "limit"


def test_a_vaulted_account_is_protected_with_every_container_it_holds(h: Harness) -> None:
    """A rule that names no containers means every container found at protect time (DatastoreOptions)."""
    est = h.estate()
    vault = _vault(h, est)
    with h.sandbox.events.unsubscribed():  # an account older than the app, with its containers
        account = est.storage_account("rg-data", "stolder1", WEU, tags={"blob-tier": "vaulted"})
        for name in ("reports", "exports"):
            _container(h, account, name)
    est.storage_account("rg-data", "stolder1", WEU, tags={"blob-tier": "vaulted", "owner": "data"})  # a write
    assert h.wait_outcome(account, "Protected", timeout=60)["rule"] == "vaulted-blobs"
    assert _listed(h, vault, account) == ["exports", "reports"]


def test_azures_own_containers_are_left_out_of_the_vaulted_backup(h: Harness) -> None:
    """An account with its change feed on holds Azure's ``$blobchangefeed``; the app lists only the user's
    containers ($ containers but $root/$web are refused in a vaulted backup: docs/azure-facts.md). Before, the
    app listed it too and the protection failed."""
    est = h.estate()
    vault = _vault(h, est)
    with h.sandbox.events.unsubscribed():  # an account older than the app, change feed on, one container
        account = est.storage_account("rg-data", "stfeed1", WEU, tags={"blob-tier": "vaulted"})
        h.clients.resources(SUB1).resources.begin_create_or_update_by_id(
            f"{account}/blobServices/default", api_version="2023-05-01",
            parameters={"properties": {"changeFeed": {"enabled": True}}},
            polling_interval=h.clients.target.polling_interval).result()
        _container(h, account, "reports")
    est.storage_account("rg-data", "stfeed1", WEU, tags={"blob-tier": "vaulted", "owner": "data"})  # a write
    assert h.wait_outcome(account, "Protected", timeout=60)["rule"] == "vaulted-blobs"
    assert _listed(h, vault, account) == ["reports"]


def test_the_deployed_roles_suffice_to_add_a_container(h: Harness) -> None:
    """Production truth: from the container on, the sandbox checks the app identity's own RBAC against the roles
    infra/ gives it (Reader lists the containers, the custom role writes the backup instance; the account was
    empty, so its first container protects it, with the roles the vault identity needs)."""
    import dataclasses

    from steward.cloud.clients import CloudClients
    from tests.infra.deployed_roles import deploy_app_roles

    est = h.estate()
    vault = _vault(h, est)
    account = est.storage_account("rg-data", "stdeployed1", WEU, tags={"blob-tier": "vaulted"})
    h.wait_outcome(account, "LeftAsIs", timeout=60)  # no container yet: its first container protects it
    h.settle(60)
    app_principal = h.sandbox.config.default_principal_id
    deploy_app_roles(h.sandbox, app_principal, SUB1)
    h.sandbox.enforce_caller_rbac(app_principal)
    target = h.sandbox.cloud_target(principal_id="0bea7000-0000-4000-8000-0000000000aa")  # an operator, not the app
    operator = CloudClients(dataclasses.replace(target, polling_interval=0.05))
    _container(Harness(h.stack, operator), account, "ledger")
    outcome = h.wait_for(lambda: next((o for o in h.outcomes_for(account) if o["status"] not in ("Protected",
                                       "LeftAsIs") or (o.get("details") or {}).get("added")), None), 60,
                         "the container's outcome")
    assert outcome["status"] == "Protected" and outcome["details"]["added"] == ["ledger"], outcome
    assert _listed(h, vault, account) == ["ledger"]
