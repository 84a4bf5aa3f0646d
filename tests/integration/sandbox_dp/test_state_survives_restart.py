"""Vaults, instances, soft-deleted instances and role assignments live in the store, so a stopped and restarted
sandbox (``state_file``) still has them, and soft-delete retention keeps counting on the restored clock."""

from __future__ import annotations

import uuid
from pathlib import Path

from sandbox.arm import ArmSandbox, PropagationConfig, SandboxConfig
from steward.cloud.clients import CloudClients

from .conftest import DISK, PROVIDERS, SCALE, SUBSCRIPTIONS, Estate, protected_disk


def start(state: Path) -> ArmSandbox:
    return ArmSandbox(SandboxConfig(scale=SCALE, providers=PROVIDERS, subscriptions=SUBSCRIPTIONS,
                                    state_file=state, propagation=PropagationConfig(rbac_seconds=0))).start()


def test_a_restarted_sandbox_keeps_the_backup_estate(tmp_path: Path) -> None:
    state = tmp_path / "sandbox.json"
    first = start(state)
    try:
        estate = Estate(first, CloudClients(first.cloud_target()), uuid.uuid4().hex[:8])
        protected = protected_disk(estate)
        v = protected.vault
        estate.dp.backup_instances.begin_delete(v.rg, v.name, "bi").result()
    finally:
        first.stop()

    second = start(state)
    try:
        estate = Estate(second, CloudClients(second.cloud_target()), estate.tag)
        assert estate.dp.backup_vaults.get(v.rg, v.name).identity.principal_id == v.principal_id
        assert [d.name for d in estate.dp.deleted_backup_instances.list(v.rg, v.name)] == ["bi"]
        held = list(estate.auth.role_assignments.list_for_scope(protected.disk, filter="atScope()"))
        assert [a.principal_id for a in held] == [v.principal_id]
        # the datasource may be protected again here, and the old instance still purges on time
        v.estate = estate
        v.protect("again", v.instance_body(protected.disk, DISK, protected.policy_id, protected.snapshot_group))
        second.advance(15 * 86400)
        assert list(estate.dp.deleted_backup_instances.list(v.rg, v.name)) == []
    finally:
        second.stop()
