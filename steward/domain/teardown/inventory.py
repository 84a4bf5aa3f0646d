"""What a vault holds, as one activity read it: the step targets, their kinds and the inventory record."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Final, TypeAlias

from steward.domain.kernel import (
    ImmutabilityState,
    LenientEnum,
    SoftDeleteState,
    VaultKind,
    VaultRef,
    format_time,
    parse_time,
)
from steward.domain.records import Record
from steward.domain.teardown.codec import RECORD_VERSION, InvalidTeardownInput, record_str


class ItemKind(LenientEnum):
    VM = "vm"
    SQL = "sql"
    SAP_HANA = "sap-hana"
    AZURE_FILES = "azure-files"
    MARS = "mars"
    MABS = "mabs"
    DPM = "dpm"
    OTHER = "other"


class ItemState(LenientEnum):
    PROTECTED = "protected"
    STOPPED = "stopped"
    SOFT_DELETED = "soft-deleted"


class ContainerKind(LenientEnum):
    """``vm`` containers vanish with their items; the others are unregistered."""

    VM = "vm"
    VM_APP = "vm-app"
    STORAGE = "storage"
    MARS = "mars"
    MABS = "mabs"
    DPM = "dpm"
    OTHER = "other"


class SiteRecoveryKind(LenientEnum):
    REPLICATED_ITEM = "replicated-item"
    CONTAINER_MAPPING = "container-mapping"
    PROTECTION_CONTAINER = "protection-container"
    NETWORK_MAPPING = "network-mapping"
    FABRIC = "fabric"


@dataclass(frozen=True)
class VaultSettings(Record):
    """The security settings a teardown reads and may change. Backup vaults use ``soft_delete`` too."""

    soft_delete: SoftDeleteState = SoftDeleteState.DISABLED
    soft_delete_retention_days: int = 14
    enhanced_security: SoftDeleteState = SoftDeleteState.DISABLED
    immutability: ImmutabilityState = ImmutabilityState.DISABLED
    mua_enabled: bool = False
    resource_guard_id: str | None = None
    #: the Resource Guard's subscription answers the app's token with InvalidAuthenticationTokenTenant
    resource_guard_other_tenant: bool = field(default=False, metadata={"omit_default": True})


@dataclass(frozen=True)
class BackupItem(Record):
    """A protected item of a Recovery Services vault (any workload)."""

    id: str
    name: str
    fabric: str
    container: str
    kind: ItemKind
    state: ItemState
    source_resource_id: str | None = None
    item_type: str = ""  # the REST ``protectedItemType`` (needed to undelete)
    deferred_delete_at: datetime | None = None
    has_data: bool = True

    type_name: ClassVar[str] = "backupItem"


@dataclass(frozen=True)
class ProtectionContainer(Record):
    id: str
    name: str
    fabric: str
    kind: ContainerKind
    soft_deleted: bool = False

    type_name: ClassVar[str] = "container"


@dataclass(frozen=True)
class ProtectionIntent(Record):
    """An auto-protection intent (SQL in VM); disabled before SQL containers are unregistered."""

    id: str
    name: str
    fabric: str
    source_resource_id: str | None = None

    type_name: ClassVar[str] = "intent"


@dataclass(frozen=True)
class RegisteredServer(Record):
    """A MARS agent, MABS or DPM server registered to the vault (unregistering removes its items)."""

    id: str
    name: str
    kind: ContainerKind  # MARS | MABS | DPM
    container: str | None = None

    type_name: ClassVar[str] = "server"


@dataclass(frozen=True)
class SiteRecoveryObject(Record):
    id: str
    name: str
    kind: SiteRecoveryKind
    fabric: str
    parent: str | None = None  # replication container (items, mappings) or network (network mappings)

    type_name: ClassVar[str] = "siteRecovery"


@dataclass(frozen=True)
class PrivateEndpointConnection(Record):
    id: str
    name: str
    private_endpoint_id: str | None = None

    type_name: ClassVar[str] = "privateEndpointConnection"


@dataclass(frozen=True)
class BackupInstance(Record):
    """A Backup vault instance; soft-deleted ones carry their scheduled purge time."""

    id: str
    name: str
    datasource_type: str = field(metadata={"may_be_empty": True})  # ARM does not always say
    state: ItemState
    purge_at: datetime | None = None
    has_data: bool = True

    type_name: ClassVar[str] = "backupInstance"


@dataclass(frozen=True)
class BackupPolicy(Record):
    id: str
    name: str

    type_name: ClassVar[str] = "backupPolicy"


@dataclass(frozen=True)
class VaultObject(Record):
    """The vault itself as a step target (settings steps and the final delete)."""

    id: str
    name: str

    type_name: ClassVar[str] = "vault"


Target: TypeAlias = (
    BackupItem
    | ProtectionContainer
    | ProtectionIntent
    | RegisteredServer
    | SiteRecoveryObject
    | PrivateEndpointConnection
    | BackupInstance
    | BackupPolicy
    | VaultObject
)

_TARGET_TYPES: Final[dict[str, Any]] = {
    t.type_name: t
    for t in (
        BackupItem,
        ProtectionContainer,
        ProtectionIntent,
        RegisteredServer,
        SiteRecoveryObject,
        PrivateEndpointConnection,
        BackupInstance,
        BackupPolicy,
        VaultObject,
    )
}


def target_from_record(record: Mapping[str, Any]) -> Target:
    """Rebuild any target from its record (the ``type`` field says which)."""
    if not isinstance(record, Mapping):
        raise InvalidTeardownInput("a target record must be an object")
    kind = record.get("type")
    cls = _TARGET_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise InvalidTeardownInput(f"unknown target type {kind!r}")
    return cls.from_record(record)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class VaultInventory:
    """What a vault holds, as one activity read it. ``exists=False`` means the vault is already gone."""

    vault_id: str
    kind: VaultKind
    exists: bool = True
    location: str = ""
    tags: tuple[tuple[str, str], ...] = ()
    settings: VaultSettings = field(default_factory=VaultSettings)
    items: tuple[BackupItem, ...] = ()
    containers: tuple[ProtectionContainer, ...] = ()
    intents: tuple[ProtectionIntent, ...] = ()
    servers: tuple[RegisteredServer, ...] = ()
    site_recovery: tuple[SiteRecoveryObject, ...] = ()
    private_endpoints: tuple[PrivateEndpointConnection, ...] = ()
    instances: tuple[BackupInstance, ...] = ()
    policies: tuple[BackupPolicy, ...] = ()
    #: reads the caller was not allowed to make (operation names), i.e. a missing permission.
    access_denied: tuple[str, ...] = ()
    observed_at: datetime | None = None

    @property
    def vault(self) -> VaultRef:
        return VaultRef.parse(self.vault_id)

    def tag(self, name: str) -> str | None:
        for key, value in self.tags:
            if key.lower() == name.lower():
                return value
        return None

    def objects(self) -> tuple[Target, ...]:
        return (
            *self.items,
            *self.containers,
            *self.intents,
            *self.servers,
            *self.site_recovery,
            *self.private_endpoints,
            *self.instances,
            *self.policies,
        )

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.items:
            key = f"items.{item.kind.value}.{item.state.value}"
            counts[key] = counts.get(key, 0) + 1
        for container in self.containers:
            key = f"containers.{container.kind.value}"
            counts[key] = counts.get(key, 0) + 1
        for name, group in (
            ("intents", self.intents),
            ("servers", self.servers),
            ("siteRecovery", self.site_recovery),
            ("privateEndpointConnections", self.private_endpoints),
            ("policies", self.policies),
        ):
            if group:
                counts[name] = len(group)
        for instance in self.instances:
            key = f"instances.{instance.state.value}"
            counts[key] = counts.get(key, 0) + 1
        return dict(sorted(counts.items()))

    def to_record(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "vaultId": self.vault_id,
            "kind": self.kind.arm_type,
            "exists": self.exists,
            "location": self.location,
            "tags": dict(self.tags),
            "settings": self.settings.to_record(),
            "items": [o.to_record() for o in self.items],
            "containers": [o.to_record() for o in self.containers],
            "intents": [o.to_record() for o in self.intents],
            "servers": [o.to_record() for o in self.servers],
            "siteRecovery": [o.to_record() for o in self.site_recovery],
            "privateEndpointConnections": [o.to_record() for o in self.private_endpoints],
            "instances": [o.to_record() for o in self.instances],
            "policies": [o.to_record() for o in self.policies],
            "accessDenied": list(self.access_denied),
            "observedAt": format_time(self.observed_at),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> VaultInventory:
        if not isinstance(record, Mapping):
            raise InvalidTeardownInput("an inventory record must be an object")
        tags = record.get("tags") or {}
        if not isinstance(tags, Mapping):
            raise InvalidTeardownInput("inventory tags must be an object")

        def many(key: str, parse: Any) -> tuple[Any, ...]:
            values = record.get(key) or []
            if not isinstance(values, list):
                raise InvalidTeardownInput(f"inventory field {key!r} must be a list")
            return tuple(parse(v) for v in values)

        return cls(
            vault_id=record_str(record, "vaultId"),
            kind=VaultKind(str(record.get("kind"))),
            exists=bool(record.get("exists", True)),
            location=str(record.get("location") or ""),
            tags=tuple(sorted((str(k), str(v)) for k, v in tags.items())),
            settings=VaultSettings.from_record(record.get("settings") or {}),
            items=many("items", BackupItem.from_record),
            containers=many("containers", ProtectionContainer.from_record),
            intents=many("intents", ProtectionIntent.from_record),
            servers=many("servers", RegisteredServer.from_record),
            site_recovery=many("siteRecovery", SiteRecoveryObject.from_record),
            private_endpoints=many("privateEndpointConnections", PrivateEndpointConnection.from_record),
            instances=many("instances", BackupInstance.from_record),
            policies=many("policies", BackupPolicy.from_record),
            access_denied=tuple(str(a) for a in record.get("accessDenied") or []),
            observed_at=parse_time(record.get("observedAt")),
        )
