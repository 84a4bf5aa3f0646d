"""Auto-protection end to end: resources created through ARM on the sandbox, the sandbox raises the events,
the real app protects them. State is checked through the same SDK clients, never through the app."""

from __future__ import annotations

from pathlib import Path

from sandbox.arm.config import EventDeliveryConfig
from sandbox.host.local import OUTCOME_TOPIC
from steward.cloud.protection import BackupVaultProtection, RecoveryServicesProtection
from steward.domain.ids import ResourceId
from tests.e2e.conftest import SUB1, SUB2, Harness, start_harness

WEU, NEU = "westeurope", "northeurope"


def _instances_for(h: Harness, vault_id: str, resource_id: str) -> list[dict]:
    return [
        i
        for i in BackupVaultProtection(h.clients).instances(vault_id)
        if ResourceId.parse(i["properties"]["dataSourceInfo"]["resourceID"]) == ResourceId.parse(resource_id)
    ]


def _role_assignments(h: Harness, scope: str, principal_id: str) -> set[str]:
    sub = ResourceId.parse(scope).subscription_id
    client = h.clients.authorization(sub)
    return {
        a.role_definition_id.rsplit("/", 1)[-1]
        for a in client.role_assignments.list_for_scope(scope, filter=f"principalId eq '{principal_id}'")
    }


def test_every_supported_type_ends_protected_in_the_vault_of_its_region(harness: Harness) -> None:
    h = harness
    est = h.estate()
    est.resource_group("rg-app", WEU)
    rsv = est.recovery_services_vault("rg-app", "rsv-weu", WEU)
    bv = est.backup_vault("rg-app", "bv-weu", WEU)
    est.resource_group("rg-neu", NEU)
    rsv_neu = est.recovery_services_vault("rg-neu", "rsv-neu", NEU)

    vm = est.vm("rg-app", "vm-web", WEU)
    disk = est.disk("rg-app", "data-disk", WEU)
    account = est.storage_account("rg-app", "stappweu1", WEU)
    server = est.postgres("rg-app", "pg-app-weu", WEU)
    vm_neu = est.vm("rg-neu", "vm-neu", NEU)

    for rid in (vm, disk, account, server, vm_neu):
        assert h.wait_outcome(rid, "Protected")["resourceId"].lower() == rid.lower()
    # the published shape the README documents: dataVersion 2.0, camelCase keys
    published = [e for e in h.sandbox.events.topic_events(OUTCOME_TOPIC)
                 if str(e.get("eventType", "")).startswith("BackupSteward.Protection.")]
    assert published and {e["dataVersion"] for e in published} == {"2.0"}
    assert all({"resourceId", "vaultId", "correlationId"} <= set(e["data"]) for e in published)

    rs = RecoveryServicesProtection(h.clients)
    item = rs.vm_item(rsv, vm)
    assert item is not None and item["properties"]["protectionState"] in {"IRPending", "Protected"}
    assert rs.vm_item(rsv_neu, vm) is None  # never the vault of another region
    assert rs.vm_item(rsv_neu, vm_neu) is not None
    assert h.wait_outcome(vm_neu, "Protected")["vaultId"].lower() == rsv_neu.lower()

    principal = h.clients.data_protection(SUB1).backup_vaults.get(
        resource_group_name="rg-app", vault_name="bv-weu").identity.principal_id
    for rid in (disk, account, server):
        assert len(_instances_for(h, bv, rid)) == 1, rid
    # least privilege: each role on the narrowest scope Azure documents for the workload
    assert "3e5e47e6-65f7-47ef-90b5-e5dd4d455f24" in _role_assignments(h, disk, principal)  # Disk Backup Reader
    assert "e5e2a7ff-d759-4cd2-bb51-3152d37e2eb1" in _role_assignments(h, account, principal)
    assert "c088a766-074b-43ba-90d4-1fb21feae531" in _role_assignments(h, server, principal)


def test_opt_out_tag_and_missing_regional_vault_leave_resources_unprotected(harness: Harness) -> None:
    h = harness
    est = h.estate()
    est.resource_group("rg-app", WEU)
    rsv = est.recovery_services_vault("rg-app", "rsv-weu", WEU)
    est.resource_group("rg-neu", NEU)

    opted_out = est.vm("rg-app", "vm-scratch", WEU, tags={"backup-steward:opt-out": "true"})
    lonely = est.vm("rg-neu", "vm-lonely", NEU)  # no vault in northeurope: the westeurope one must not be used

    assert h.wait_outcome(opted_out)["status"] == "OptedOut"
    outcome = h.wait_outcome(lonely)
    assert outcome["status"] == "NoVault"
    rs = RecoveryServicesProtection(h.clients)
    assert rs.vm_item(rsv, opted_out) is None
    assert rs.vm_item(rsv, lonely) is None
    assert rs.backup_status(lonely, NEU)["protectionStatus"] == "NotProtected"


def test_vm_protected_in_another_vault_is_a_conflict_never_moved(harness: Harness) -> None:
    h = harness
    est = h.estate()
    est.resource_group("rg-app", WEU)
    other = est.recovery_services_vault("rg-app", "rsv-team", WEU, default=False)
    est.recovery_services_vault("rg-app", "rsv-weu", WEU)  # the default one
    rs = RecoveryServicesProtection(h.clients)
    vm = est.vm("rg-app", "vm-owned", WEU, tags={"backup-steward:opt-out": "true"})
    h.wait_outcome(vm, "OptedOut")
    policy = rs.policy_id(other, "DefaultPolicy")
    assert policy is not None
    rs.enable_vm(other, vm, policy)  # a team protected it themselves

    # the opt-out tag is removed: the VM is written again, the app re-evaluates
    est.vm("rg-app", "vm-owned", WEU, tags={})
    outcome = h.wait_outcome(vm, "Conflict")
    assert other.lower() in outcome["reason"].lower()
    assert rs.backup_status(vm, WEU)["vaultId"].lower() == other.lower()


def test_deleted_vm_keeps_its_recovery_points(harness: Harness) -> None:
    h = harness
    est = h.estate()
    est.resource_group("rg-app", WEU)
    rsv = est.recovery_services_vault("rg-app", "rsv-weu", WEU)
    vm = est.vm("rg-app", "vm-temp", WEU)
    h.wait_outcome(vm, "Protected")
    h.settle()

    est.delete(vm)
    outcome = h.wait_outcome(vm, "Retained")
    assert outcome["vaultId"].lower() == rsv.lower()
    item = RecoveryServicesProtection(h.clients).vm_item(rsv, vm)
    assert item is not None, "backup data must never be deleted on the deletion path"
    assert item["properties"]["protectionState"] == "ProtectionStopped"
    assert not item["properties"].get("isScheduledForDeferredDelete")


def test_vm_moved_across_groups_and_subscriptions_is_reprotected_make_before_break(harness: Harness) -> None:
    h = harness
    est1, est2 = h.estate(SUB1), h.estate(SUB2)
    est1.resource_group("rg-a", WEU)
    est1.resource_group("rg-b", WEU)
    rsv1 = est1.recovery_services_vault("rg-a", "rsv-weu", WEU)
    est2.resource_group("rg-c", WEU)
    rsv2 = est2.recovery_services_vault("rg-c", "rsv-weu-2", WEU)
    vm = est1.vm("rg-a", "vm-move", WEU)
    h.wait_outcome(vm, "Protected")
    h.settle()
    rs = RecoveryServicesProtection(h.clients)

    # across resource groups, same subscription
    moved = est1.rid("rg-b", "Microsoft.Compute/virtualMachines", "vm-move")
    est1.move("rg-a", [vm], f"/subscriptions/{SUB1}/resourceGroups/rg-b")
    lineage = h.wait_outcome(moved, "Reprotected")
    assert lineage["previousResourceId"].lower() == vm.lower()
    assert lineage["vaultId"].lower() == rsv1.lower()
    old_item = rs.vm_item(rsv1, vm)
    assert old_item is not None and old_item["properties"]["protectionState"] == "ProtectionStopped"
    new_item = rs.vm_item(rsv1, moved)
    assert new_item is not None and new_item["properties"]["protectionState"] in {"IRPending", "Protected"}
    h.settle()

    # across subscriptions: protected anew in the vault of the new subscription
    moved2 = est2.rid("rg-c", "Microsoft.Compute/virtualMachines", "vm-move")
    est1.move("rg-b", [moved], f"/subscriptions/{SUB2}/resourceGroups/rg-c")
    lineage2 = h.wait_outcome(moved2, "Reprotected")
    assert lineage2["vaultId"].lower() == rsv2.lower()
    assert lineage2["previousVaultId"].lower() == rsv1.lower()
    assert rs.vm_item(rsv2, moved2) is not None
    assert rs.vm_item(rsv1, moved) is not None  # old points kept in the old vault


def test_duplicated_and_reordered_deliveries_converge_to_one_protection(tmp_path: Path) -> None:
    h = start_harness(tmp_path, delivery=EventDeliveryConfig(seed=7, duplicate_probability=0.9,
                                                             reorder_jitter_seconds=120))
    try:
        est = h.estate()
        est.resource_group("rg-app", WEU)
        rsv = est.recovery_services_vault("rg-app", "rsv-weu", WEU)
        bv = est.backup_vault("rg-app", "bv-weu", WEU)
        vms = [est.vm("rg-app", f"vm-{i}", WEU) for i in range(4)]
        disks = [est.disk("rg-app", f"disk-{i}", WEU) for i in range(3)]
        for rid in vms + disks:
            h.wait_outcome(rid)
        h.settle()
        rs = RecoveryServicesProtection(h.clients)
        items = rs.vm_items(rsv)
        assert sorted(i["properties"]["sourceResourceId"].lower() for i in items) == sorted(v.lower() for v in vms)
        for disk in disks:
            assert len(_instances_for(h, bv, disk)) == 1
        for rid in vms + disks:
            statuses = {o["status"] for o in h.outcomes_for(rid)}
            assert statuses <= {"Protected", "AlreadyProtected"}, statuses
    finally:
        h.stack.stop()


def test_a_missing_regional_vault_is_created_with_secure_defaults_when_allowed(tmp_path: Path) -> None:
    h = start_harness(tmp_path, settings={"STEWARD_AUTO_CREATE_VAULTS": "true"})
    try:
        est = h.estate()
        est.resource_group("rg-app", NEU)
        vm = est.vm("rg-app", "vm-first", NEU)
        disk = est.disk("rg-app", "disk-first", NEU)
        vm_outcome = h.wait_outcome(vm, "Protected")
        disk_outcome = h.wait_outcome(disk, "Protected")
        vault = h.clients.recovery_services(SUB1).vaults.get(
            resource_group_name="rg-backup-steward-northeurope", vault_name="rsv-steward-northeurope")
        assert vm_outcome["vaultId"].lower() == vault.id.lower()
        soft_delete = vault.properties.security_settings.soft_delete_settings
        assert soft_delete.soft_delete_state == "Enabled" and soft_delete.enhanced_security_state == "Enabled"
        assert vault.location == NEU and vault.tags["backup-steward:default"] == "true"
        assert "/backupVaults/bv-steward-northeurope" in disk_outcome["vaultId"]
    finally:
        h.stack.stop()


def test_a_subscription_moved_to_another_tenant_is_flagged_for_its_vaults_rbac(harness: Harness) -> None:
    from sandbox.arm.config import OTHER_TENANT

    h = harness
    est1, est2 = h.estate(SUB1), h.estate(SUB2)
    est2.resource_group("rg-dev", WEU)
    est2.recovery_services_vault("rg-dev", "rsv-dev", WEU)
    est1.resource_group("rg-a", WEU)
    est1.resource_group("rg-b", WEU)
    est1.recovery_services_vault("rg-a", "rsv-weu", WEU)
    vm = est1.vm("rg-a", "vm-1", WEU)
    h.wait_outcome(vm, "Protected")
    h.settle()

    h.sandbox.move_subscription(SUB2, OTHER_TENANT)
    est1.move("rg-a", [vm], f"/subscriptions/{SUB1}/resourceGroups/rg-b")
    flag = h.wait_outcome(f"/subscriptions/{SUB2}", "VaultTenantChanged")
    assert "role assignments" in flag["reason"]
    # the subscription still in the app's tenant is reconciled as usual
    h.wait_outcome(est1.rid("rg-b", "Microsoft.Compute/virtualMachines", "vm-1"), "Reprotected")


# ---- issue #13: Azure's eventual consistency (VM readiness and discovery, RBAC propagation) --------------------


def _protect_histories(h: Harness, resource_id: str) -> list[list[str]]:
    """Event type names of every protect_resource orchestration run for ``resource_id``."""
    from sandbox.durable.history import type_name

    runner = h.stack.runner
    assert runner is not None
    found = []
    for record in runner.query():
        status = runner.status(record.instance_id)
        if status["name"] == "protect_resource" and str((status["input"] or {}).get("resourceId", "")).lower() == (
            resource_id.lower()
        ):
            found.append([type_name(e) for e in runner.history(record.instance_id)])
    return found


def _vm_create_started(h: Harness, group: str, name: str) -> str:
    """Start a VM create through ARM without waiting for it (its write event may come while it is Creating)."""
    est = h.estate()
    rid = est.rid(group, "Microsoft.Compute/virtualMachines", name)
    h.clients.resources(SUB1).resources.begin_create_or_update_by_id(
        rid, api_version="2024-07-01", parameters={
            "location": WEU, "properties": {"hardwareProfile": {"vmSize": "Standard_D2s_v5"},
                                            "storageProfile": {"osDisk": {"createOption": "FromImage"}}}},
        polling_interval=h.clients.target.polling_interval,
    )
    return rid


def test_a_vm_still_creating_when_its_event_arrives_is_protected_once_it_succeeded(tmp_path: Path) -> None:
    from sandbox.arm import PropagationConfig
    from sandbox.arm.providers.compute import vm_provisioning

    h = start_harness(tmp_path)
    try:
        # the write event comes at accept (inferred) and the vault must discover the VM first (inferred)
        h.sandbox.configure_propagation(PropagationConfig(vm_write_event_on_accept=True, vm_discovery=True))
        vm_provisioning(h.sandbox).create_seconds = 20 * 60.0  # 20 Azure minutes = 2 real seconds
        est = h.estate()
        est.resource_group("rg-app", WEU)
        rsv = est.recovery_services_vault("rg-app", "rsv-weu", WEU)
        vm = _vm_create_started(h, "rg-app", "vm-slow")

        outcome = h.wait_outcome(vm, timeout=60)
        assert outcome["status"] == "Protected", outcome
        item = RecoveryServicesProtection(h.clients).vm_item(rsv, vm)
        assert item is not None and item["properties"]["protectionState"] in {"IRPending", "Protected"}
        assert [o["status"] for o in h.outcomes_for(vm)] == ["Protected"]  # never a Failed first
        assert any("TimerCreated" in history for history in _protect_histories(h, vm))
    finally:
        h.stack.stop()


def test_a_vm_whose_create_failed_is_not_protected_and_the_outcome_says_why(tmp_path: Path) -> None:
    from sandbox.arm import PropagationConfig
    from sandbox.arm.providers.compute import vm_provisioning

    h = start_harness(tmp_path)
    try:
        h.sandbox.configure_propagation(PropagationConfig(vm_write_event_on_accept=True))
        vm_provisioning(h.sandbox).create_seconds = 10 * 60.0
        vm_provisioning(h.sandbox).fail_create("vm-broken")
        est = h.estate()
        est.resource_group("rg-app", WEU)
        rsv = est.recovery_services_vault("rg-app", "rsv-weu", WEU)
        vm = _vm_create_started(h, "rg-app", "vm-broken")

        outcome = h.wait_outcome(vm, timeout=60)
        assert outcome["status"] == "Failed", outcome
        assert "provisioningState Failed" in outcome["reason"]
        h.settle(timeout=60)
        assert RecoveryServicesProtection(h.clients).vm_item(rsv, vm) is None
    finally:
        h.stack.stop()


def test_an_undiscovered_vm_is_refreshed_for_and_protected_on_retry(tmp_path: Path) -> None:
    from sandbox.arm import PropagationConfig

    h = start_harness(tmp_path)
    try:
        h.sandbox.configure_propagation(PropagationConfig(vm_discovery=True))
        est = h.estate()
        est.resource_group("rg-app", WEU)
        rsv = est.recovery_services_vault("rg-app", "rsv-weu", WEU)
        vm = est.vm("rg-app", "vm-new", WEU)

        outcome = h.wait_outcome(vm, timeout=60)
        assert outcome["status"] == "Protected", outcome
        assert RecoveryServicesProtection(h.clients).vm_item(rsv, vm) is not None
    finally:
        h.stack.stop()


def test_backup_vault_protection_waits_out_rbac_propagation_on_durable_timers(tmp_path: Path) -> None:
    from sandbox.arm import PropagationConfig

    h = start_harness(tmp_path)
    try:
        h.sandbox.configure_propagation(PropagationConfig(rbac_seconds=5 * 60.0))
        est = h.estate()
        est.resource_group("rg-app", WEU)
        bv = est.backup_vault("rg-app", "bv-weu", WEU)
        disk = est.disk("rg-app", "data-disk", WEU)
        account = est.storage_account("rg-app", "stappweu1", WEU)
        server = est.postgres("rg-app", "pg-app-weu", WEU)

        for rid in (disk, account, server):
            outcome = h.wait_outcome(rid, timeout=60)
            assert outcome["status"] == "Protected", outcome
            assert len(_instances_for(h, bv, rid)) == 1, rid
            assert any("TimerCreated" in history for history in _protect_histories(h, rid)), rid
    finally:
        h.stack.stop()


def test_rbac_propagation_longer_than_the_deadline_ends_failed_with_the_reason(tmp_path: Path) -> None:
    from sandbox.arm import PropagationConfig

    h = start_harness(tmp_path)
    try:
        h.sandbox.configure_propagation(PropagationConfig(rbac_seconds=6 * 3600.0))
        est = h.estate()
        est.resource_group("rg-app", WEU)
        bv = est.backup_vault("rg-app", "bv-weu", WEU)
        disk = est.disk("rg-app", "data-disk", WEU)

        outcome = h.wait_outcome(disk, timeout=60)
        assert outcome["status"] == "Failed", outcome
        assert "UserErrorMissingRequiredPermissions" in outcome["reason"]
        assert "role assignments" in outcome["reason"]
        h.settle(timeout=60)
        live = [i for i in _instances_for(h, bv, disk)
                if i["properties"].get("currentProtectionState") != "ConfiguringProtectionFailed"]
        assert live == []
    finally:
        h.stack.stop()


def _failing_configurations(tmp_path: Path, count: int, failure: str) -> Harness:
    from sandbox.arm import PropagationConfig
    from sandbox.arm.config import FaultConfig

    h = start_harness(tmp_path)
    h.sandbox.configure_propagation(PropagationConfig(rbac_seconds=0))
    h.sandbox.configure_faults(FaultConfig(fail_backup_configurations=count, backup_configuration_failure=failure))
    return h


def test_a_backup_instance_whose_configuration_failed_is_validated_and_put_again(tmp_path: Path) -> None:
    """ConfiguringProtectionFailed protects nothing: the app configures the instance again and says so (on the
    previous code the retry found the failed instance and published AlreadyProtected)."""
    h = _failing_configurations(tmp_path, 1, "ConfiguringProtectionFailed")
    try:
        est = h.estate()
        est.resource_group("rg-app", WEU)
        bv = est.backup_vault("rg-app", "bv-weu", WEU)
        disk = est.disk("rg-app", "data-disk", WEU)

        outcome = h.wait_outcome(disk, timeout=60)
        assert outcome["status"] == "Protected", outcome
        assert "ConfiguringProtectionFailed" in outcome["reason"], outcome
        assert "PUT again 1 time(s)" in outcome["reason"], outcome
        assert [f["state"] for f in outcome["details"]["reconfigured"]] == ["ConfiguringProtectionFailed"]
        (instance,) = _instances_for(h, bv, disk)
        assert instance["properties"]["protectionStatus"]["status"] == "ProtectionConfigured"
        assert instance["id"].lower() == str(outcome["itemId"]).lower()
    finally:
        h.stack.stop()


def test_a_backup_instance_in_protection_error_with_a_user_error_is_synced_by_azure_not_put_again(
        tmp_path: Path) -> None:
    """ProtectionError with a UserError code: Azure's remedy is POST .../sync ("retry last failed operation"),
    which Microsoft's Azure Service Operator calls for exactly that state and code. The app syncs the instance
    (syncType Default) instead of PUTting it again; on the previous code it was PUT again."""
    h = _failing_configurations(tmp_path, 1, "ProtectionError")
    try:
        est = h.estate()
        est.resource_group("rg-app", WEU)
        bv = est.backup_vault("rg-app", "bv-weu", WEU)
        disk = est.disk("rg-app", "data-disk", WEU)

        outcome = h.wait_outcome(disk, timeout=60)
        assert outcome["status"] == "Protected", outcome
        assert "synced by Azure (POST .../sync) 1 time(s)" in outcome["reason"], outcome
        assert outcome["details"]["remedies"] == ["sync"]
        (instance,) = _instances_for(h, bv, disk)
        assert instance["properties"]["protectionStatus"]["status"] == "ProtectionConfigured"
        raised = [(e["eventType"], e["data"]["operationName"]) for e in h.sandbox.events.raised
                  if e["subject"].lower().startswith(instance["id"].lower())]
        assert ("Microsoft.Resources.ResourceActionSuccess",
                "Microsoft.DataProtection/backupVaults/backupInstances/sync/action") in raised
        writes = [r for r in raised if r[1].endswith("backupInstances/write")]
        assert len(writes) == 1, raised  # the first configuration only: no re-PUT
    finally:
        h.stack.stop()


def test_a_backup_instance_in_protection_error_is_put_again_and_fails_once_the_bound_is_reached(
        tmp_path: Path) -> None:
    """ProtectionError after a successful PUT is no protection either; the re-PUTs are bounded and the outcome
    names the state and Azure's error (on the previous code: Protected)."""
    attempts = 3  # protection_flow.BV_CONFIGURE_ATTEMPTS (checked last: the old code has no such bound)
    h = _failing_configurations(tmp_path, attempts, "ProtectionError")
    try:
        est = h.estate()
        est.resource_group("rg-app", WEU)
        bv = est.backup_vault("rg-app", "bv-weu", WEU)
        account = est.storage_account("rg-app", "stappweu1", WEU)

        outcome = h.wait_outcome(account, timeout=60)
        assert outcome["status"] == "Failed", outcome
        assert "ProtectionError" in outcome["reason"] and "UserErrorBackupConfigurationFailed" in outcome["reason"]
        assert f"at most {attempts} configurations" in outcome["reason"], outcome
        assert len(outcome["details"]["reconfigured"]) == attempts - 1
        (instance,) = _instances_for(h, bv, account)
        assert instance["properties"]["currentProtectionState"] == "ProtectionError"
        from steward.domain import protection_flow

        assert attempts == protection_flow.BV_CONFIGURE_ATTEMPTS
    finally:
        h.stack.stop()
