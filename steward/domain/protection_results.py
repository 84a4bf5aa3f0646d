"""The auto-protection activities' results as records of the one record codec (``steward/domain/records.py``).

Each activity builds its result as one of these records and the orchestration (and the
``steward/domain/protection_flow.py`` helpers it hands them to) reads it back through the codec: camelCase keys.
Before these records the activities wrote snake_case keys (``dataclasses.asdict``: ``managed_by``,
``provisioning_state``, ``principal_id``, ``retry_after``, ``subscription_ids`` ...); an orchestration in flight
holds such results in its history, and the codec still reads them for one release
(``tests/orchestrators/test_activity_result_history.py`` replays histories recorded before the change).

Wire-shaped parts Azure answered (a protected item, a backup instance) travel inside them as Azure wrote them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from steward.domain.kernel import VaultKind, normalise_region
from steward.domain.records import Record

__all__ = ["ResourceRecord", "StewardScope", "VaultRecord", "VmProtectionBegun"]

#: a field left out of the record while it has its default: each kind of result keeps the keys it had
_UNLESS_SET: Final = {"omit_default": True}


@dataclass(frozen=True)
class ResourceRecord(Record):
    """``describe_resource``'s result (None when the resource is gone) and each entry of ``list_resources``: what
    routing and the orchestrations need to know about a resource (a partial record reads: what needs the id
    parses it)."""

    id: str = field(metadata={"may_be_empty": True})
    type: str = field(default="", metadata={"may_be_empty": True})
    location: str = field(default="", metadata={"may_be_empty": True})
    tags: Mapping[str, str] = field(default_factory=dict)
    #: stable identity that survives moves: VM ``vmId``, disk ``uniqueId``; name for globally unique names
    identity: str = ""
    #: the VM a managed disk is attached to (ARM's ``managedBy``), if any
    managed_by: str = ""
    #: when this incarnation was created (a resource deleted and re-created under one id gets a new one)
    created_at: str = ""
    #: ARM's ``properties.provisioningState`` ("" when the type shows none): Creating / Updating / Failed / ...
    provisioning_state: str = ""


@dataclass(frozen=True)
class VaultRecord(Record):
    """A vault as ``find_vaults``, ``list_vaults`` and ``create_vault`` answer it: its id, kind, region, tags and
    its managed identity (principal and tenant; None without one)."""

    id: str
    kind: VaultKind | None = None  # always written by the activities; None only in a record without it
    location: str = field(default="", metadata={"may_be_empty": True})
    tags: Mapping[str, str] = field(default_factory=dict)
    principal_id: str | None = None
    tenant_id: str | None = None
    #: its soft delete and immutability states as ARM spells them (``securitySettings``); None: not read (a record
    #: written before the vault sets looked at them)
    soft_delete: str | None = None
    immutability: str | None = None

    @classmethod
    def from_arm(cls, body: Mapping[str, Any], kind: VaultKind) -> VaultRecord:
        """The record of a vault as ARM answers it (a GET or a PUT's body)."""
        identity = body.get("identity") or {}
        security = (body.get("properties") or {}).get("securitySettings") or {}
        soft = security.get("softDeleteSettings") or {}
        return cls(
            id=str(body["id"]),
            kind=VaultKind(kind),
            location=normalise_region(str(body.get("location", ""))),
            tags={str(k): str(v) for k, v in (body.get("tags") or {}).items()},
            principal_id=identity.get("principalId"),
            tenant_id=identity.get("tenantId"),
            # Recovery Services: softDeleteSettings.softDeleteState; Backup vault: softDeleteSettings.state (both specs)
            soft_delete=str(soft.get("softDeleteState") or soft.get("state") or "") or None,
            immutability=str((security.get("immutabilitySettings") or {}).get("state") or "Disabled"),
        )


@dataclass(frozen=True)
class StewardScope(Record):
    """``steward_scope``'s result: the managed subscriptions the app can act on, each one's tenant, and those whose
    tenant no longer accepts the app's token (moved to another tenant)."""

    subscription_ids: tuple[str, ...] = ()
    tenants: Mapping[str, str] = field(default_factory=dict)
    unreachable: tuple[str, ...] = ()


@dataclass(frozen=True)
class VmProtectionBegun(Record):
    """``begin_vm_protection``'s result: Azure accepted the protected item's PUT (``operation`` to follow, after
    ``retry_after`` seconds when Azure's ``Retry-After`` named them), or an item already protects the VM
    (``done``, the ``item`` as Azure answered it), or a refusal (``ok`` false: ``code``, ``message``, the HTTP
    ``status``)."""

    ok: bool
    done: bool = field(default=False, metadata=_UNLESS_SET)
    operation: str = field(default="", metadata=_UNLESS_SET)
    retry_after: int | None = field(default=None, metadata=_UNLESS_SET)
    item: Mapping[str, Any] = field(default_factory=dict, metadata=_UNLESS_SET)
    code: str = field(default="", metadata=_UNLESS_SET)
    message: str = field(default="", metadata=_UNLESS_SET)
    status: int | None = field(default=None, metadata=_UNLESS_SET)
