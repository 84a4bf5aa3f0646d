"""The auto-protection activities' inputs as records of the one record codec (``steward/domain/records.py``).

``orchestrators/protection.py`` builds each activity's input as one of these records and the activity in
``activities/protection.py`` reads it back through the codec: camelCase keys (``resourceId``, ``vaultId`` ...).
Before these records the orchestrations sent snake_case dicts (``resource_id``, ``vault_id``, ``subscription_id``,
``principal_id``, ``role_definition_guid`` ...). Inputs already queued in a task hub when the app is deployed, and
the inputs an orchestration in flight schedules again while it replays, keep those keys: the codec still reads a
field's snake_case key when its camelCase key is absent, for one release
(``tests/orchestrators/test_activity_input_history.py`` feeds the inputs recorded before the change,
``tests/orchestrators/data/activity_inputs_before_records.json``, to these records and to the activities).

Wire-shaped parts (a backup instance's PUT body, an instance as Azure answered it) travel inside them as Azure
writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from steward.domain.kernel import VaultKind
from steward.domain.protection import ProtectionOutcome, ProtectionRef
from steward.domain.protection_results import ResourceRecord
from steward.domain.records import Record
from steward.domain.rules import Protect

__all__ = [
    "BackupInstanceRequest",
    "BlobContainerChange",
    "BlobContainersAt",
    "FactsToDecide",
    "OperationWatch",
    "OutcomesToPublish",
    "PolicyCopy",
    "RbacSettleNote",
    "ResourceAt",
    "ResourceListing",
    "RoleGrant",
    "RoleGrants",
    "StopRetaining",
    "SubscriptionsQuery",
    "VaultAt",
    "VaultIdentity",
    "VaultLoadsQuery",
    "VaultSearch",
    "VaultToCreate",
    "VmInVault",
]

#: a field left out of the record while it has its default (a request that does not use it)
_UNLESS_SET: Final = {"omit_default": True}


@dataclass(frozen=True)
class ResourceAt(Record):
    """A resource, and where it lives when that matters: ``describe_resource`` (its id alone) and
    ``vm_backup_status`` (the VM and its region)."""

    resource_id: str
    region: str = field(default="", metadata=_UNLESS_SET)


@dataclass(frozen=True)
class FactsToDecide(Record):
    """``decide_protection``: the resource's facts to route through the rules."""

    facts: ResourceRecord


@dataclass(frozen=True)
class VaultSearch(Record):
    """``find_vaults``: the vaults of one kind in a subscription and region."""

    kind: VaultKind
    subscription_id: str
    region: str


@dataclass(frozen=True)
class VaultToCreate(Record):
    """``create_vault``: the region's default vault (a :class:`VaultSearch`'s fields), or a vault set's next vault
    (``resource_group``, ``name``, the set's ``tags``), with the settings the rule requires (``always_on`` soft
    delete, ``immutable``)."""

    kind: VaultKind
    subscription_id: str
    region: str
    resource_group: str = field(default="", metadata=_UNLESS_SET)
    name: str = field(default="", metadata=_UNLESS_SET)
    tags: Mapping[str, str] = field(default_factory=dict, metadata=_UNLESS_SET)
    always_on: bool = field(default=False, metadata=_UNLESS_SET)
    immutable: bool = field(default=False, metadata=_UNLESS_SET)


@dataclass(frozen=True)
class VaultLoadsQuery(Record):
    """``vault_loads``: what each of a vault set's members protects now (from the ARM cache unless ``fresh``); with
    the ``decision``, the worker counts the vault the same pure choice takes (``refused``: vaults Azure refused as
    full in this protection)."""

    kind: VaultKind
    vault_ids: tuple[str, ...]
    fresh: bool = False
    decision: Protect | None = None
    refused: tuple[str, ...] = ()


@dataclass(frozen=True)
class PolicyCopy(Record):
    """``copy_policy``: give ``vault_id`` the rule's ``policy`` from the first of ``sources`` that has it (Recovery
    Services when a record names no kind)."""

    vault_id: str
    policy: str
    kind: VaultKind = VaultKind.RECOVERY_SERVICES
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class OperationWatch(Record):
    """One look at an Azure operation: ``vault_operation_status`` (a Recovery Services vault's), ``backup_operation_
    status`` (a Backup vault's, of ``step``; once it ended the instance ``name``, else the app's name for
    ``resource_id``) and ``vault_creation_status`` (``vault_id``'s creation; ``operation`` "" reads the vault).
    """

    vault_id: str
    operation: str = ""
    resource_id: str = field(default="", metadata=_UNLESS_SET)
    step: str = field(default="", metadata=_UNLESS_SET)
    name: str = field(default="", metadata=_UNLESS_SET)


@dataclass(frozen=True)
class VaultAt(Record):
    """A vault: ``vault_region``, ``refresh_vm_containers``, ``create_vault_policies``."""

    vault_id: str


@dataclass(frozen=True)
class VmInVault(Record):
    """A VM and a Recovery Services vault: ``read_vm_item``; with the rule's ``policy``, ``begin_vm_protection``;
    with Azure's ``operation`` too, ``vm_protection_status``."""

    resource_id: str
    vault_id: str
    policy: str = field(default="", metadata=_UNLESS_SET)
    operation: str = field(default="", metadata=_UNLESS_SET)


@dataclass(frozen=True)
class RoleGrant(Record):
    """One role assignment a Backup vault's identity needs: the role's name, its definition's GUID, the scope."""

    role: str
    role_definition_guid: str
    scope: str


@dataclass(frozen=True)
class RoleGrants(Record):
    """``grant_vault_roles``: the vault identity's ``grants``; ``fresh``: PUT them again past the worker's cache."""

    principal_id: str
    grants: tuple[RoleGrant, ...] = ()
    fresh: bool = field(default=False, metadata=_UNLESS_SET)


@dataclass(frozen=True)
class VaultIdentity(Record):
    """``rbac_settle_state``: what this worker knows of how long the roles of this vault identity take to apply."""

    principal_id: str


@dataclass(frozen=True)
class RbacSettleNote(Record):
    """``note_rbac_settle``: how long the vault identity's new role assignments took to apply (``seconds``; None: the
    probe ended without finding out)."""

    principal_id: str
    seconds: float | None = None


@dataclass(frozen=True)
class BackupInstanceRequest(Record):
    """``protect_in_backup_vault`` (validate, then the instance) and ``begin_backup_instance`` (the validated
    ``body``, and the failure it ``repaired`` when it configures a failed instance again)."""

    resource_id: str
    vault_id: str
    policy: str
    facts: ResourceRecord
    decision: Protect
    rule: str | None = None
    body: Mapping[str, Any] = field(default_factory=dict, metadata=_UNLESS_SET)
    repaired: Mapping[str, Any] = field(default_factory=dict, metadata=_UNLESS_SET)


@dataclass(frozen=True)
class SubscriptionsQuery(Record):
    """``find_protections`` (in ``regions`` when named) and ``list_vaults``: in these subscriptions."""

    subscription_ids: tuple[str, ...]
    regions: tuple[str, ...] = field(default=(), metadata=_UNLESS_SET)


@dataclass(frozen=True)
class ResourceListing(Record):
    """``list_resources``: the resources of ``types`` under ``scope`` (a subscription or resource group id)."""

    scope: str
    types: tuple[str, ...]


@dataclass(frozen=True)
class StopRetaining(Record):
    """``stop_protection_retain``: the protection to stop, its recovery points kept."""

    protection: ProtectionRef


@dataclass(frozen=True)
class BlobContainersAt(Record):
    """``blob_container_state``: a vaulted blob protection (instance ``name`` in ``vault_id``) and its account."""

    vault_id: str
    name: str
    account_id: str


@dataclass(frozen=True)
class BlobContainerChange(Record):
    """``set_blob_containers``: the backup instance as read, and the containers it is to list."""

    vault_id: str
    name: str
    account_id: str
    instance: Mapping[str, Any]
    containers: tuple[str, ...]


@dataclass(frozen=True)
class OutcomesToPublish(Record):
    """``publish_outcomes``: the outcomes, the instance that decided them; ``since`` (the triggering event's time)
    and ``at`` (the orchestration's time of the outcome) time a protection."""

    outcomes: tuple[ProtectionOutcome, ...]
    instance_id: str | None = None
    since: str | None = field(default=None, metadata=_UNLESS_SET)
    at: str | None = field(default=None, metadata=_UNLESS_SET)
