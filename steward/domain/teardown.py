"""The vault teardown saga's pure core: inventory, plan, fingerprint, next decision, request parsing.

A teardown empties a vault in the documented order (``docs``: azure-backup-brief §2, the official
"delete a Recovery Services vault" script and the portal procedure) and then deletes it. This module decides;
the orchestrator (``orchestrators/teardown.py``) walks what it decides and activities act.

Everything here is pure (no SDK import, no I/O, no clock, no env) and every record that crosses the durable
boundary has ``to_record()`` / ``from_record()`` with JSON-safe values. Record field names are a contract:
running orchestrations keep them in their history, so never rename one without a migration.

Decisions pinned here:

* **Blocked plans are not executable.** ``Locked`` immutability with backup data, or a permission the
  inventory could not use, makes the plan ``blocked``: it lists no step at all, so nothing destructive can run.
* **Waiting is not failing.** ``AlwaysON`` soft delete (or enhanced security) cannot be turned off; every item
  deleted then stays soft-deleted until its ``deferredDeleteTimeInUTC``. The plan then contains an
  ``await-purge`` step with the date, and the saga sleeps until it.
* **MUA needs a person.** With multi-user authorization on, the settings changes need a Resource Guard grant:
  the plan says so (``needs-security-approval``) and the saga parks until ``SecurityApprovalGranted``.
* **The fingerprint** is sha256 over a canonical form of the inventory: objects sorted, ARM ids lower-cased
  (ARM ids are case-insensitive), the observation time left out. Reordering does not change it; any change to
  a setting, object, state or purge date does.
* **A failed vault delete from Event Grid** (a user tried to delete a non-empty vault) starts a teardown only
  for a vault carrying the opt-in tag, and only from the subscription's system topic; it plans and stops
  (``dry_run``) unless the tag's value is ``auto`` AND the deleting user (``data.claims`` object id, as ARM
  signs it) is an allowed principal, in which case the saga approves its own fresh plan. A destructive step
  never runs on a guess.
* **Custom events are requests, never approvals.** ``BackupSteward.Teardown.Requested`` is accepted only from
  the configured requests topic and from an allowed requester; it plans and waits for an approval over HTTP.
  A fingerprint it carries is ignored. The orchestrator takes an approved fingerprint only from an HTTP
  request or from the approval event (:func:`request_approval`).
* **Four eyes** (a setting): the approver must differ from the requester (:func:`approval_refusal`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, ClassVar, Final, TypeAlias, TypeVar, cast, get_type_hints

from steward.domain.errors import InvalidValue
from steward.domain.kernel import (
    ImmutabilityState,
    LenientEnum,
    SoftDeleteState,
    VaultKind,
    VaultRef,
    format_time,
    parse_time,
)

__all__ = [
    "ALWAYS_ON_WAIT_REASON",
    "AUTO_TAG_VALUE",
    "DEFAULT_OPT_IN_TAG",
    "EVENT_APPROVE",
    "EVENT_CANCEL",
    "EVENT_SECURITY_APPROVAL",
    "ApprovalVerdict",
    "BackupInstance",
    "BackupItem",
    "BackupPolicy",
    "Blocker",
    "BlockerKind",
    "ContainerKind",
    "ImmutabilityState",
    "InvalidTeardownInput",
    "ItemKind",
    "ItemState",
    "NextAction",
    "PrivateEndpointConnection",
    "ProtectionContainer",
    "ProtectionIntent",
    "RegisteredServer",
    "RequestSource",
    "SettingChange",
    "SiteRecoveryKind",
    "SiteRecoveryObject",
    "SoftDeleteState",
    "StepKind",
    "StepOutcome",
    "TeardownOutcome",
    "TeardownPlan",
    "TeardownProgress",
    "TeardownRequest",
    "TeardownStep",
    "VaultInventory",
    "VaultKind",
    "VaultRef",
    "VaultSettings",
    "approval_refusal",
    "decide_next",
    "format_time",
    "instance_id_for",
    "inventory_fingerprint",
    "judge_approval",
    "parse_time",
    "plan_teardown",
    "purge_wait_until",
    "remaining_contents",
    "request_approval",
    "target_from_record",
    "teardown_request_from_event",
]

#: Tag a vault must carry before an Event Grid event may start its teardown (name configurable).
DEFAULT_OPT_IN_TAG: Final = "backup-steward:teardown"
#: Opt-in tag value that lets an event-started teardown run its own fresh plan without a human approval.
AUTO_TAG_VALUE: Final = "auto"
#: External events the saga waits for.
EVENT_APPROVE: Final = "TeardownApproved"
EVENT_CANCEL: Final = "Cancel"
EVENT_SECURITY_APPROVAL: Final = "SecurityApprovalGranted"
#: Custom Event Grid event type that requests a teardown.
CUSTOM_EVENT_TYPE: Final = "BackupSteward.Teardown.Requested"
#: Prefix of a requester known only by its application id (an ARM event whose claims carry no object id), so
#: that an app id is never compared with the allowed principals' object ids.
APP_ID_PREFIX: Final = "app:"
FAILED_DELETE_EVENT_TYPE: Final = "Microsoft.Resources.ResourceDeleteFailure"
ALWAYS_ON_WAIT_REASON: Final = (
    "soft delete is AlwaysON: deleted items stay soft-deleted until their purge date and cannot be purged sooner"
)

RECORD_VERSION: Final = 1


#: A teardown request, event or record is malformed; the message says what is wrong. The shared kernel's error
#: (a vault id, a time or a state it could not read), under the teardown's name.
InvalidTeardownInput = InvalidValue


# --------------------------------------------------------------------------------------------- time


def _req_time(value: datetime) -> str:
    text = format_time(value)
    assert text is not None
    return text


# --------------------------------------------------------------------------------------------- vault id

# --------------------------------------------------------------------------------------------- enums


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


class RequestSource(LenientEnum):
    HTTP = "http"
    EVENT = "event"
    CUSTOM_EVENT = "custom-event"


# --------------------------------------------------------------------------------------------- inventory


def _str(record: Mapping[str, Any], key: str, *, optional: bool = False) -> Any:
    value = record.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or (not value and not optional):
        raise InvalidTeardownInput(f"field {key!r} must be a non-empty string (got {value!r})")
    return value


# --------------------------------------------------------------------------------------------- records

_RecordT = TypeVar("_RecordT", bound="_FlatRecord")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@dataclass(frozen=True)
class _Codec:
    """How one dataclass field crosses the durable boundary."""

    name: str
    key: str
    hint: Any
    default: Any  # dataclasses.MISSING when the field is required
    may_be_empty: bool = False  # a required string that may be "" (or absent from older records)
    omit_default: bool = False  # left out of the record while it has its default (a field added later)

    def dump(self, value: Any) -> Any:
        if isinstance(value, StrEnum):
            return value.value
        if isinstance(value, datetime) or self.hint == datetime | None:
            return format_time(value)
        return value

    def load(self, record: Mapping[str, Any]) -> Any:
        required = self.default is MISSING
        hint = self.hint
        if isinstance(hint, type) and issubclass(hint, LenientEnum):
            return hint.parse(record.get(self.key, None if required else self.default.value))
        if hint == datetime | None:
            return parse_time(record.get(self.key))
        if hint is str:
            if required and not self.may_be_empty:
                return _str(record, self.key)
            return str(record.get(self.key) or ("" if required else self.default))
        if hint == str | None:
            return _str(record, self.key, optional=True)
        if hint is bool:
            return bool(record.get(self.key, self.default))
        if hint is int:
            value = record.get(self.key, self.default)
            if isinstance(value, bool) or not isinstance(value, int | str):
                raise InvalidTeardownInput(f"field {self.key!r} must be an integer (got {value!r})")
            return int(value)
        raise TypeError(f"no record codec for {self.name}: {hint!r}")  # a programming error, caught by tests


class _FlatRecord:
    """``to_record``/``from_record`` derived from the dataclass fields, for records whose fields are strings,
    booleans, integers, lenient enums and times: keys are the camelCase field names (a contract, see the module
    docstring), enums travel by value, times as ISO 8601; a field without a default must be present (a string
    non-empty). A class with a ``type_name`` writes it first as ``type`` (the targets of steps)."""

    type_name: ClassVar[str | None] = None

    @classmethod
    def _codecs(cls) -> tuple[_Codec, ...]:
        cached: tuple[_Codec, ...] | None = cls.__dict__.get("_codecs_cache")
        if cached is None:
            hints = get_type_hints(cls)
            cached = tuple(
                _Codec(
                    f.name,
                    _camel(f.name),
                    hints[f.name],
                    f.default,
                    bool(f.metadata.get("may_be_empty")),
                    bool(f.metadata.get("omit_default")),
                )
                for f in fields(cast(Any, cls))
            )
            cls._codecs_cache = cached  # type: ignore[attr-defined]
        return cached

    def to_record(self) -> dict[str, Any]:
        record: dict[str, Any] = {"type": self.type_name} if self.type_name else {}
        for codec in self._codecs():
            value = getattr(self, codec.name)
            if codec.omit_default and value == codec.default:
                continue  # older records (and fingerprints) stay as they were
            record[codec.key] = codec.dump(value)
        return record

    @classmethod
    def from_record(cls: type[_RecordT], record: Mapping[str, Any]) -> _RecordT:
        values = {codec.name: codec.load(record) for codec in cls._codecs()}
        return cast(_RecordT, cast(Any, cls)(**values))


@dataclass(frozen=True)
class VaultSettings(_FlatRecord):
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
class BackupItem(_FlatRecord):
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
class ProtectionContainer(_FlatRecord):
    id: str
    name: str
    fabric: str
    kind: ContainerKind
    soft_deleted: bool = False

    type_name: ClassVar[str] = "container"



@dataclass(frozen=True)
class ProtectionIntent(_FlatRecord):
    """An auto-protection intent (SQL in VM); disabled before SQL containers are unregistered."""

    id: str
    name: str
    fabric: str
    source_resource_id: str | None = None

    type_name: ClassVar[str] = "intent"



@dataclass(frozen=True)
class RegisteredServer(_FlatRecord):
    """A MARS agent, MABS or DPM server registered to the vault (unregistering removes its items)."""

    id: str
    name: str
    kind: ContainerKind  # MARS | MABS | DPM
    container: str | None = None

    type_name: ClassVar[str] = "server"



@dataclass(frozen=True)
class SiteRecoveryObject(_FlatRecord):
    id: str
    name: str
    kind: SiteRecoveryKind
    fabric: str
    parent: str | None = None  # replication container (items, mappings) or network (network mappings)

    type_name: ClassVar[str] = "siteRecovery"



@dataclass(frozen=True)
class PrivateEndpointConnection(_FlatRecord):
    id: str
    name: str
    private_endpoint_id: str | None = None

    type_name: ClassVar[str] = "privateEndpointConnection"



@dataclass(frozen=True)
class BackupInstance(_FlatRecord):
    """A Backup vault instance; soft-deleted ones carry their scheduled purge time."""

    id: str
    name: str
    datasource_type: str = field(metadata={"may_be_empty": True})  # ARM does not always say
    state: ItemState
    purge_at: datetime | None = None
    has_data: bool = True

    type_name: ClassVar[str] = "backupInstance"



@dataclass(frozen=True)
class BackupPolicy(_FlatRecord):
    id: str
    name: str

    type_name: ClassVar[str] = "backupPolicy"



@dataclass(frozen=True)
class VaultObject(_FlatRecord):
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
            vault_id=_str(record, "vaultId"),
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


# --------------------------------------------------------------------------------------------- fingerprint


def _canonical(value: Any) -> Any:
    """Lower-case ARM ids, sort lists of records, drop nothing else."""
    if isinstance(value, Mapping):
        return {k: (v.lower() if k in _ID_FIELDS and isinstance(v, str) else _canonical(v)) for k, v in value.items()}
    if isinstance(value, list):
        canon = [_canonical(v) for v in value]
        return sorted(canon, key=lambda v: json.dumps(v, sort_keys=True))
    return value


_ID_FIELDS: Final = frozenset(
    {"id", "vaultId", "sourceResourceId", "privateEndpointId", "resourceGuardId", "fabric", "container", "parent"}
)


def inventory_fingerprint(inventory: VaultInventory) -> str:
    """``sha256:<hex>`` over the canonical inventory (order-independent; observation time excluded)."""
    record = inventory.to_record()
    record.pop("observedAt", None)
    record["tags"] = {k.lower(): v for k, v in sorted(record["tags"].items())}
    payload = json.dumps(_canonical(record), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(payload.encode()).hexdigest()


def fingerprints_match(approved: str | None, current: str) -> bool:
    """An approval matches with or without the ``sha256:`` prefix, in any case."""
    if not approved:
        return False
    a = approved.strip().lower().removeprefix("sha256:")
    return a == current.lower().removeprefix("sha256:")


# --------------------------------------------------------------------------------------------- plan


class StepKind(StrEnum):
    """Every step a teardown can have. The order of the ``*_ORDER`` tuples below is the documented one."""

    DISABLE_SOFT_DELETE = "disable-soft-delete"
    DISABLE_ENHANCED_SECURITY = "disable-enhanced-security"
    DISABLE_IMMUTABILITY = "disable-immutability"
    UNDELETE_ITEMS = "undelete-items"
    DELETE_VM_ITEMS = "delete-vm-items"
    DELETE_SQL_ITEMS = "delete-sql-items"
    DISABLE_PROTECTION_INTENTS = "disable-protection-intents"
    UNREGISTER_SQL_CONTAINERS = "unregister-sql-containers"
    DELETE_SAP_HANA_ITEMS = "delete-sap-hana-items"
    UNREGISTER_SAP_HANA_CONTAINERS = "unregister-sap-hana-containers"
    DELETE_AZURE_FILES_ITEMS = "delete-azure-files-items"
    UNREGISTER_STORAGE_CONTAINERS = "unregister-storage-containers"
    DELETE_OTHER_ITEMS = "delete-other-items"
    UNREGISTER_MARS_SERVERS = "unregister-mars-servers"
    UNREGISTER_BACKUP_SERVERS = "unregister-backup-servers"
    REMOVE_REPLICATED_ITEMS = "remove-replicated-items"
    REMOVE_CONTAINER_MAPPINGS = "remove-container-mappings"
    REMOVE_REPLICATION_CONTAINERS = "remove-replication-containers"
    REMOVE_NETWORK_MAPPINGS = "remove-network-mappings"
    REMOVE_FABRICS = "remove-fabrics"
    REMOVE_PRIVATE_ENDPOINTS = "remove-private-endpoint-connections"
    UNDELETE_INSTANCES = "undelete-instances"
    STOP_INSTANCES = "stop-instances"
    DELETE_INSTANCES = "delete-instances"
    DELETE_POLICIES = "delete-policies"
    AWAIT_PURGE = "await-purge"
    VERIFY_EMPTY = "verify-empty"
    DELETE_VAULT = "delete-vault"


#: D-script order (azure-backup-brief §2) with the portal's undelete/re-delete; hybrid servers after workloads.
RECOVERY_SERVICES_ORDER: Final = (
    StepKind.DISABLE_SOFT_DELETE,
    StepKind.DISABLE_ENHANCED_SECURITY,
    StepKind.DISABLE_IMMUTABILITY,
    StepKind.UNDELETE_ITEMS,
    StepKind.DELETE_VM_ITEMS,
    StepKind.DELETE_SQL_ITEMS,
    StepKind.DISABLE_PROTECTION_INTENTS,
    StepKind.UNREGISTER_SQL_CONTAINERS,
    StepKind.DELETE_SAP_HANA_ITEMS,
    StepKind.UNREGISTER_SAP_HANA_CONTAINERS,
    StepKind.DELETE_AZURE_FILES_ITEMS,
    StepKind.UNREGISTER_STORAGE_CONTAINERS,
    StepKind.DELETE_OTHER_ITEMS,
    StepKind.UNREGISTER_MARS_SERVERS,
    StepKind.UNREGISTER_BACKUP_SERVERS,
    StepKind.REMOVE_REPLICATED_ITEMS,
    StepKind.REMOVE_CONTAINER_MAPPINGS,
    StepKind.REMOVE_REPLICATION_CONTAINERS,
    StepKind.REMOVE_NETWORK_MAPPINGS,
    StepKind.REMOVE_FABRICS,
    StepKind.REMOVE_PRIVATE_ENDPOINTS,
    StepKind.AWAIT_PURGE,
    StepKind.VERIFY_EMPTY,
    StepKind.DELETE_VAULT,
)
#: Backup vault (D-bv): instances (stop, delete, soft-deleted ones), policies, then the vault. Policies come after
#: the purge wait: Azure refuses to delete a policy that soft-deleted instances still reference
#: (``UserErrorPolicyAssociatedWithSoftDeletedItems``, terraform-provider-azurerm#25011), and with AlwaysOn soft
#: delete every deleted instance stays soft-deleted until its purge date.
BACKUP_VAULT_ORDER: Final = (
    StepKind.DISABLE_SOFT_DELETE,
    StepKind.DISABLE_IMMUTABILITY,
    StepKind.UNDELETE_INSTANCES,
    StepKind.STOP_INSTANCES,
    StepKind.DELETE_INSTANCES,
    StepKind.AWAIT_PURGE,
    StepKind.DELETE_POLICIES,
    StepKind.VERIFY_EMPTY,
    StepKind.DELETE_VAULT,
)

SETTINGS_STEPS: Final = frozenset(
    {StepKind.DISABLE_SOFT_DELETE, StepKind.DISABLE_ENHANCED_SECURITY, StepKind.DISABLE_IMMUTABILITY}
)
NON_DESTRUCTIVE_STEPS: Final = frozenset(
    {StepKind.UNDELETE_ITEMS, StepKind.UNDELETE_INSTANCES, StepKind.AWAIT_PURGE, StepKind.VERIFY_EMPTY}
)


def documented_order(kind: VaultKind) -> tuple[StepKind, ...]:
    return RECOVERY_SERVICES_ORDER if kind is VaultKind.RECOVERY_SERVICES else BACKUP_VAULT_ORDER


@dataclass(frozen=True)
class SettingChange:
    setting: str
    from_value: str
    to_value: str

    def to_record(self) -> dict[str, Any]:
        return {"setting": self.setting, "from": self.from_value, "to": self.to_value}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> SettingChange:
        return cls(_str(record, "setting"), _str(record, "from"), _str(record, "to"))

    def reverse(self) -> SettingChange:
        return SettingChange(self.setting, self.to_value, self.from_value)


@dataclass(frozen=True)
class TeardownStep:
    kind: StepKind
    targets: tuple[Target, ...] = ()
    setting_changes: tuple[SettingChange, ...] = ()
    wait_until: datetime | None = None
    requires_security_approval: bool = False

    @property
    def destructive(self) -> bool:
        return self.kind not in NON_DESTRUCTIVE_STEPS

    @property
    def count(self) -> int:
        return len(self.targets)

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "count": self.count,
            "destructive": self.destructive,
            "targets": [t.to_record() for t in self.targets],
            "settingChanges": [c.to_record() for c in self.setting_changes],
            "waitUntil": format_time(self.wait_until),
            "requiresSecurityApproval": self.requires_security_approval,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TeardownStep:
        return cls(
            kind=StepKind(str(record.get("kind"))),
            targets=tuple(target_from_record(t) for t in record.get("targets") or []),
            setting_changes=tuple(SettingChange.from_record(c) for c in record.get("settingChanges") or []),
            wait_until=parse_time(record.get("waitUntil")),
            requires_security_approval=bool(record.get("requiresSecurityApproval", False)),
        )


class BlockerKind(StrEnum):
    IMMUTABILITY_LOCKED = "immutability-locked"
    ALWAYS_ON_SOFT_DELETE = "always-on-soft-delete"
    MUA = "multi-user-authorization"
    MISSING_PERMISSION = "missing-permission"


#: Blockers that stop the plan for good (nothing destructive is planned); the others wait or park.
HARD_BLOCKERS: Final = frozenset({BlockerKind.IMMUTABILITY_LOCKED, BlockerKind.MISSING_PERMISSION})


@dataclass(frozen=True)
class Blocker:
    kind: BlockerKind
    reason: str
    action_needed: str
    until: datetime | None = None

    @property
    def hard(self) -> bool:
        return self.kind in HARD_BLOCKERS

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "reason": self.reason,
            "actionNeeded": self.action_needed,
            "until": format_time(self.until),
            "hard": self.hard,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Blocker:
        return cls(
            kind=BlockerKind(str(record.get("kind"))),
            reason=_str(record, "reason"),
            action_needed=_str(record, "actionNeeded"),
            until=parse_time(record.get("until")),
        )


class PlanStatus(StrEnum):
    READY = "ready"
    BLOCKED = "blocked"
    NEEDS_SECURITY_APPROVAL = "needs-security-approval"
    NOTHING_TO_DO = "nothing-to-do"


@dataclass(frozen=True)
class TeardownPlan:
    vault_id: str
    vault_kind: VaultKind
    fingerprint: str
    planned_at: datetime
    steps: tuple[TeardownStep, ...]
    blockers: tuple[Blocker, ...] = ()
    inventory_counts: Mapping[str, int] = field(default_factory=dict)
    estimated_purge_at: datetime | None = None

    @property
    def status(self) -> PlanStatus:
        if any(b.hard for b in self.blockers):
            return PlanStatus.BLOCKED
        if not self.steps:
            return PlanStatus.NOTHING_TO_DO
        if any(b.kind is BlockerKind.MUA for b in self.blockers):
            return PlanStatus.NEEDS_SECURITY_APPROVAL
        return PlanStatus.READY

    @property
    def blocked(self) -> bool:
        return self.status is PlanStatus.BLOCKED

    def step(self, kind: StepKind) -> TeardownStep | None:
        return next((s for s in self.steps if s.kind is kind), None)

    def setting_changes(self) -> tuple[SettingChange, ...]:
        return tuple(c for s in self.steps for c in s.setting_changes)

    def to_record(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "vaultId": self.vault_id,
            "vaultKind": self.vault_kind.arm_type,
            "fingerprint": self.fingerprint,
            "plannedAt": _req_time(self.planned_at),
            "status": self.status.value,
            "steps": [s.to_record() for s in self.steps],
            "blockers": [b.to_record() for b in self.blockers],
            "inventoryCounts": dict(self.inventory_counts),
            "estimatedPurgeAt": format_time(self.estimated_purge_at),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TeardownPlan:
        if not isinstance(record, Mapping):
            raise InvalidTeardownInput("a plan record must be an object")
        planned_at = parse_time(record.get("plannedAt"))
        if planned_at is None:
            raise InvalidTeardownInput("a plan record needs plannedAt")
        return cls(
            vault_id=_str(record, "vaultId"),
            vault_kind=VaultKind(str(record.get("vaultKind"))),
            fingerprint=_str(record, "fingerprint"),
            planned_at=planned_at,
            steps=tuple(TeardownStep.from_record(s) for s in record.get("steps") or []),
            blockers=tuple(Blocker.from_record(b) for b in record.get("blockers") or []),
            inventory_counts={str(k): int(v) for k, v in (record.get("inventoryCounts") or {}).items()},
            estimated_purge_at=parse_time(record.get("estimatedPurgeAt")),
        )


def _soft_delete_stays(settings: VaultSettings) -> bool:
    """True when deleted backup data will sit in soft delete whatever the saga does."""
    return SoftDeleteState.ALWAYS_ON in (settings.soft_delete, settings.enhanced_security)


def _item_bucket(item: BackupItem) -> StepKind:
    return {
        ItemKind.VM: StepKind.DELETE_VM_ITEMS,
        ItemKind.SQL: StepKind.DELETE_SQL_ITEMS,
        ItemKind.SAP_HANA: StepKind.DELETE_SAP_HANA_ITEMS,
        ItemKind.AZURE_FILES: StepKind.DELETE_AZURE_FILES_ITEMS,
    }.get(item.kind, StepKind.DELETE_OTHER_ITEMS)


def _blockers(inventory: VaultInventory, now: datetime) -> list[Blocker]:
    settings = inventory.settings
    blockers: list[Blocker] = []
    if inventory.access_denied:
        blockers.append(
            Blocker(
                BlockerKind.MISSING_PERMISSION,
                "the app's identity was refused: " + ", ".join(sorted(set(inventory.access_denied))),
                "grant the Function App's identity Backup Contributor (and Contributor for vault deletion) "
                "on the vault"
                + (
                    ", and Storage Account Contributor on each storage account named above"
                    if any("Storage Account Contributor" in a for a in inventory.access_denied)
                    else ""
                )
                + ", then plan again",
            )
        )
    # Azure refuses stop-protection-with-delete-data on a Locked vault (D-immut), before the first recovery
    # point too: any live item blocks, not only those already holding points.
    live = [i for i in inventory.items if i.state is not ItemState.SOFT_DELETED] + [
        i for i in inventory.instances if i.state is not ItemState.SOFT_DELETED
    ]
    if settings.immutability is ImmutabilityState.LOCKED and live:
        blockers.append(
            Blocker(
                BlockerKind.IMMUTABILITY_LOCKED,
                f"immutability is Locked (irreversible) and {len(live)} item(s) are still protected or hold data: "
                "Azure refuses to stop protection with delete data until every point has expired",
                "nothing can be done early: wait until the last recovery point expires (or stop protection "
                "retaining data and let the points expire), then plan again",
            )
        )
    if settings.mua_enabled and (
        settings.soft_delete is SoftDeleteState.ENABLED or settings.enhanced_security is SoftDeleteState.ENABLED
    ):
        guard = settings.resource_guard_id or "the vault's Resource Guard"
        if settings.resource_guard_other_tenant:
            # Azure wants every guarded request to carry a token from the guard's tenant in
            # x-ms-authorization-auxiliary (azure-cli backup: aux_tenants=[tenant_id]; PowerShell: -Token); a managed
            # identity has no identity in another tenant, so the app cannot send it.
            blockers.append(
                Blocker(
                    BlockerKind.MUA,
                    f"multi-user authorization protects the vault with the Resource Guard {guard}, which is in "
                    "another tenant: every guarded request (disabling soft delete, deleting backup data) must carry "
                    "an auxiliary token for that tenant (x-ms-authorization-auxiliary), and the Function App's "
                    "managed identity cannot obtain one. The app cannot perform those steps, even after a grant",
                    "a person with Contributor on the Resource Guard (through its own tenant) must perform the guarded "
                    "steps (az backup vault backup-properties set --tenant-id <guard tenant> ...; "
                    "Unlock-AzDataProtectionResourceGuardOperation -Token ...), then raise the event "
                    f"{EVENT_SECURITY_APPROVAL!r} on this teardown (POST /api/teardowns/{{id}}/security-approval): "
                    "the saga reads the vault again and continues with what is left",
                )
            )
        else:
            blockers.append(
                Blocker(
                    BlockerKind.MUA,
                    "multi-user authorization protects the vault: disabling soft delete needs a Resource Guard grant",
                    f"a security administrator must give the requester (or the app's identity) Contributor on {guard} "
                    f"(a time-limited just-in-time grant is enough), then raise the event {EVENT_SECURITY_APPROVAL!r} "
                    "on this teardown (POST /api/teardowns/{id}/security-approval)",
                )
            )
    purge = estimated_purge_at(inventory, now)
    if purge is not None:
        blockers.append(
            Blocker(
                BlockerKind.ALWAYS_ON_SOFT_DELETE,
                ALWAYS_ON_WAIT_REASON if _soft_delete_stays(settings) else "soft-deleted data cannot be purged sooner",
                f"none: the saga waits on a durable timer until {format_time(purge)} and then deletes the vault",
                until=purge,
            )
        )
    return blockers


def estimated_purge_at(inventory: VaultInventory, now: datetime) -> datetime | None:
    """When the last soft-deleted data will be purged, if the saga cannot purge it itself."""
    settings = inventory.settings
    if not _soft_delete_stays(settings):
        return None
    dates: list[datetime] = []
    retention = timedelta(days=settings.soft_delete_retention_days)
    for item in inventory.items:
        if item.state is ItemState.SOFT_DELETED:
            dates.append(item.deferred_delete_at or now + retention)
        elif item.has_data:
            dates.append(now + retention)
    for instance in inventory.instances:
        if instance.state is ItemState.SOFT_DELETED:
            dates.append(instance.purge_at or now + retention)
        elif instance.has_data:
            dates.append(now + retention)
    latest = max(dates, default=None)
    return latest if latest is not None and latest > now else None


def _settings_steps(inventory: VaultInventory) -> list[TeardownStep]:
    settings = inventory.settings
    vault = VaultObject(inventory.vault_id, inventory.vault_id.rsplit("/", 1)[-1])
    needs_guard = settings.mua_enabled
    steps: list[TeardownStep] = []
    if settings.soft_delete is SoftDeleteState.ENABLED:
        steps.append(
            TeardownStep(
                StepKind.DISABLE_SOFT_DELETE,
                (vault,),
                (SettingChange("softDelete", SoftDeleteState.ENABLED.value, SoftDeleteState.DISABLED.value),),
                requires_security_approval=needs_guard,
            )
        )
    if (
        inventory.kind is VaultKind.RECOVERY_SERVICES
        and settings.enhanced_security is SoftDeleteState.ENABLED
    ):
        steps.append(
            TeardownStep(
                StepKind.DISABLE_ENHANCED_SECURITY,
                (vault,),
                (
                    SettingChange(
                        "enhancedSecurity", SoftDeleteState.ENABLED.value, SoftDeleteState.DISABLED.value
                    ),
                ),
                requires_security_approval=needs_guard,
            )
        )
    if settings.immutability is ImmutabilityState.UNLOCKED:
        steps.append(
            TeardownStep(
                StepKind.DISABLE_IMMUTABILITY,
                (vault,),
                (
                    SettingChange(
                        "immutability", ImmutabilityState.UNLOCKED.value, ImmutabilityState.DISABLED.value
                    ),
                ),
            )
        )
    return steps


def _recovery_services_steps(inventory: VaultInventory) -> list[TeardownStep]:
    stays = _soft_delete_stays(inventory.settings)
    steps = _settings_steps(inventory)
    soft_deleted = [i for i in inventory.items if i.state is ItemState.SOFT_DELETED]
    if soft_deleted and not stays:
        steps.append(TeardownStep(StepKind.UNDELETE_ITEMS, tuple(soft_deleted)))
    # After an undelete every item is live again; with soft delete always on they stay as they are.
    to_delete = [i for i in inventory.items if not (stays and i.state is ItemState.SOFT_DELETED)]
    servers_owned = {s.container.lower() for s in inventory.servers if s.container}
    by_step: dict[StepKind, list[Target]] = {}
    hana_containers = {i.container.lower() for i in inventory.items if i.kind is ItemKind.SAP_HANA}
    for item in to_delete:
        if item.kind in (ItemKind.MARS, ItemKind.MABS, ItemKind.DPM) and item.container.lower() in servers_owned:
            continue  # unregistering the server removes its items (portal procedure)
        by_step.setdefault(_item_bucket(item), []).append(item)
    if inventory.intents:
        by_step[StepKind.DISABLE_PROTECTION_INTENTS] = list(inventory.intents)
    server_containers = {s.container.lower() for s in inventory.servers if s.container} | {
        s.name.lower() for s in inventory.servers
    }
    for container in inventory.containers:
        if container.name.lower() in server_containers:
            continue
        if container.kind is ContainerKind.VM_APP:
            kind = (
                StepKind.UNREGISTER_SAP_HANA_CONTAINERS
                if container.name.lower() in hana_containers
                else StepKind.UNREGISTER_SQL_CONTAINERS
            )
        elif container.kind is ContainerKind.STORAGE:
            kind = StepKind.UNREGISTER_STORAGE_CONTAINERS
        elif container.kind is ContainerKind.MARS:
            kind = StepKind.UNREGISTER_MARS_SERVERS
        elif container.kind in (ContainerKind.MABS, ContainerKind.DPM):
            kind = StepKind.UNREGISTER_BACKUP_SERVERS
        else:
            continue  # IaaS VM containers disappear with their items
        by_step.setdefault(kind, []).append(container)
    for server in inventory.servers:
        kind = (
            StepKind.UNREGISTER_MARS_SERVERS
            if server.kind is ContainerKind.MARS
            else StepKind.UNREGISTER_BACKUP_SERVERS
        )
        by_step.setdefault(kind, []).append(server)
    # D-script (Site Recovery part): purge replicated items, remove container mappings, then network mappings,
    # then ``Remove-AzRecoveryServicesAsrFabric -Force``. It never removes a protection container on its own (they
    # go with their fabric), so neither does the plan. REMOVE_REPLICATION_CONTAINERS stays a step kind only for
    # plans recorded before this change.
    sr_steps = {
        SiteRecoveryKind.REPLICATED_ITEM: StepKind.REMOVE_REPLICATED_ITEMS,
        SiteRecoveryKind.CONTAINER_MAPPING: StepKind.REMOVE_CONTAINER_MAPPINGS,
        SiteRecoveryKind.NETWORK_MAPPING: StepKind.REMOVE_NETWORK_MAPPINGS,
        SiteRecoveryKind.FABRIC: StepKind.REMOVE_FABRICS,
    }
    for obj in inventory.site_recovery:
        if obj.kind in sr_steps:
            by_step.setdefault(sr_steps[obj.kind], []).append(obj)
    if inventory.private_endpoints:
        by_step[StepKind.REMOVE_PRIVATE_ENDPOINTS] = list(inventory.private_endpoints)
    steps.extend(TeardownStep(kind, tuple(_sorted_targets(targets))) for kind, targets in by_step.items())
    return steps


def _backup_vault_steps(inventory: VaultInventory) -> list[TeardownStep]:
    stays = _soft_delete_stays(inventory.settings)
    steps = _settings_steps(inventory)
    soft_deleted = [i for i in inventory.instances if i.state is ItemState.SOFT_DELETED]
    if soft_deleted and not stays:
        steps.append(TeardownStep(StepKind.UNDELETE_INSTANCES, tuple(_sorted_targets(soft_deleted))))
    live = [i for i in inventory.instances if i.state is not ItemState.SOFT_DELETED]
    protected = [i for i in live if i.state is ItemState.PROTECTED]
    if protected:
        steps.append(TeardownStep(StepKind.STOP_INSTANCES, tuple(_sorted_targets(protected))))
    to_delete = live + ([] if stays else soft_deleted)
    if to_delete:
        steps.append(TeardownStep(StepKind.DELETE_INSTANCES, tuple(_sorted_targets(to_delete))))
    if inventory.policies:
        steps.append(TeardownStep(StepKind.DELETE_POLICIES, tuple(_sorted_targets(inventory.policies))))
    return steps


def _sorted_targets(targets: Iterable[Target]) -> list[Target]:
    return sorted(targets, key=lambda t: t.id.lower())


def plan_teardown(inventory: VaultInventory, now: datetime) -> TeardownPlan:
    """The ordered steps that empty and delete the vault, or why they cannot run (then no step at all)."""
    fingerprint = inventory_fingerprint(inventory)
    counts = inventory.counts()
    if not inventory.exists:
        return TeardownPlan(inventory.vault_id, inventory.kind, fingerprint, now, (), (), counts)
    blockers = tuple(_blockers(inventory, now))
    purge = estimated_purge_at(inventory, now)
    if any(b.hard for b in blockers):
        return TeardownPlan(inventory.vault_id, inventory.kind, fingerprint, now, (), blockers, counts, purge)
    if inventory.kind is VaultKind.RECOVERY_SERVICES:
        steps = _recovery_services_steps(inventory)
    else:
        steps = _backup_vault_steps(inventory)
    vault = VaultObject(inventory.vault_id, inventory.vault_id.rsplit("/", 1)[-1])
    if purge is not None:
        steps.append(TeardownStep(StepKind.AWAIT_PURGE, (vault,), wait_until=purge))
    steps.append(TeardownStep(StepKind.VERIFY_EMPTY, (vault,)))
    steps.append(TeardownStep(StepKind.DELETE_VAULT, (vault,)))
    order = {kind: index for index, kind in enumerate(documented_order(inventory.kind))}
    steps.sort(key=lambda s: order[s.kind])
    return TeardownPlan(inventory.vault_id, inventory.kind, fingerprint, now, tuple(steps), blockers, counts, purge)


# --------------------------------------------------------------------------------------------- after steps


def purge_wait_until(inventory: VaultInventory, now: datetime) -> datetime | None:
    """The latest purge date of soft-deleted data still in the vault, if it is in the future."""
    dates = [i.deferred_delete_at for i in inventory.items if i.state is ItemState.SOFT_DELETED] + [
        i.purge_at for i in inventory.instances if i.state is ItemState.SOFT_DELETED
    ]
    known = [d for d in dates if d is not None]
    latest = max(known, default=None)
    if latest is not None and latest > now:
        return latest
    return None


def remaining_contents(inventory: VaultInventory) -> list[dict[str, Any]]:
    """What still keeps the vault from being deleted, one entry per object with the reason."""
    remaining: list[dict[str, Any]] = []
    for obj in inventory.objects():
        state = getattr(obj, "state", None)
        if state is ItemState.SOFT_DELETED:
            when = getattr(obj, "deferred_delete_at", None) or getattr(obj, "purge_at", None)
            reason = f"soft-deleted; Azure purges it at {format_time(when)}" if when else "soft-deleted"
        elif isinstance(obj, ProtectionContainer) and obj.kind is ContainerKind.VM:
            continue
        elif isinstance(obj, ProtectionContainer) and obj.soft_deleted:
            reason = "soft-deleted with its items; Azure removes it when their data is purged"
        else:
            reason = "still present"
        remaining.append({"type": obj.type_name, "id": obj.id, "name": obj.name, "reason": reason})
    return remaining


# --------------------------------------------------------------------------------------------- progress


class StepOutcome(StrEnum):
    DONE = "done"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class StepProgress:
    kind: StepKind
    total: int
    done: int = 0
    failed: int = 0
    outcome: StepOutcome | None = None
    finished_at: datetime | None = None

    def to_record(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "outcome": self.outcome.value if self.outcome else None,
            "finishedAt": format_time(self.finished_at),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> StepProgress:
        outcome = record.get("outcome")
        return cls(
            kind=StepKind(str(record.get("kind"))),
            total=int(record.get("total", 0)),
            done=int(record.get("done", 0)),
            failed=int(record.get("failed", 0)),
            outcome=StepOutcome(outcome) if outcome else None,
            finished_at=parse_time(record.get("finishedAt")),
        )


@dataclass(frozen=True)
class TeardownProgress:
    """Where a running saga is: per-step counts, what it changed, what it deleted. Carried across
    ``continue_as_new`` and shown in the custom status."""

    steps: tuple[StepProgress, ...] = ()
    changed_settings: tuple[SettingChange, ...] = ()
    deleted: tuple[Mapping[str, Any], ...] = ()
    last_error: str | None = None

    @classmethod
    def start(cls, plan: TeardownPlan) -> TeardownProgress:
        return cls(steps=tuple(StepProgress(s.kind, s.count) for s in plan.steps))

    def of(self, kind: StepKind) -> StepProgress | None:
        return next((s for s in self.steps if s.kind is kind), None)

    def finished(self, kind: StepKind) -> bool:
        step = self.of(kind)
        return step is not None and step.outcome in (StepOutcome.DONE, StepOutcome.SKIPPED)

    def _replace_step(self, updated: StepProgress) -> tuple[StepProgress, ...]:
        return tuple(updated if s.kind is updated.kind else s for s in self.steps)

    def record_batch(
        self, kind: StepKind, done: Sequence[Mapping[str, Any]], failed: int = 0, error: str | None = None
    ) -> TeardownProgress:
        current = self.of(kind) or StepProgress(kind, 0)
        updated = replace(current, done=current.done + len(done), failed=current.failed + failed)
        deleted = self.deleted + tuple(d for d in done if d.get("effect") in DELETING_EFFECTS)
        return replace(
            self,
            steps=self._replace_step(updated),
            deleted=deleted,
            last_error=error if error is not None else self.last_error,
        )

    def finish_step(self, kind: StepKind, outcome: StepOutcome, at: datetime) -> TeardownProgress:
        current = self.of(kind) or StepProgress(kind, 0)
        return replace(self, steps=self._replace_step(replace(current, outcome=outcome, finished_at=at)))

    def record_setting(self, change: SettingChange) -> TeardownProgress:
        return replace(self, changed_settings=(*self.changed_settings, change))

    def with_error(self, error: str | None) -> TeardownProgress:
        return replace(self, last_error=error)

    def to_record(self) -> dict[str, Any]:
        return {
            "steps": [s.to_record() for s in self.steps],
            "changedSettings": [c.to_record() for c in self.changed_settings],
            "deleted": [dict(d) for d in self.deleted],
            "lastError": self.last_error,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TeardownProgress:
        return cls(
            steps=tuple(StepProgress.from_record(s) for s in record.get("steps") or []),
            changed_settings=tuple(SettingChange.from_record(c) for c in record.get("changedSettings") or []),
            deleted=tuple(dict(d) for d in record.get("deleted") or []),
            last_error=record.get("lastError"),
        )


#: Effects that count as "deleted" in the report (soft-deleted data is deleted, purged at its date).
DELETING_EFFECTS: Final = frozenset({"deleted", "unregistered", "removed", "soft-deleted"})


class NextKind(StrEnum):
    RUN_STEP = "run-step"
    AWAIT_SECURITY_APPROVAL = "await-security-approval"
    FINISHED = "finished"


@dataclass(frozen=True)
class NextAction:
    kind: NextKind
    step: TeardownStep | None = None


def decide_next(plan: TeardownPlan, progress: TeardownProgress, *, security_approved: bool) -> NextAction:
    """The next thing the orchestrator does: run the first unfinished step in plan order, or park for MUA."""
    for step in plan.steps:
        if progress.finished(step.kind):
            continue
        if step.requires_security_approval and not security_approved:
            return NextAction(NextKind.AWAIT_SECURITY_APPROVAL, step)
        return NextAction(NextKind.RUN_STEP, step)
    return NextAction(NextKind.FINISHED)


def batches(targets: Sequence[Target], size: int) -> list[tuple[Target, ...]]:
    """Split a step's targets into fan-out batches of at most ``size`` (>= 1)."""
    size = max(1, size)
    return [tuple(targets[i : i + size]) for i in range(0, len(targets), size)]


# --------------------------------------------------------------------------------------------- request


class TeardownOutcome(StrEnum):
    PLANNED = "planned"
    REPLANNED = "replanned"
    DELETED = "deleted"
    ALREADY_GONE = "already-gone"
    BLOCKED = "blocked"
    CANCELLED = "cancelled"
    FAILED = "failed"
    REFUSED = "refused"
    APPROVAL_EXPIRED = "approval-expired"


@dataclass(frozen=True)
class TeardownRequest:
    """Who asked to tear which vault down, how, and with which approval. The orchestrator's input."""

    vault_id: str
    requested_by: str
    source: RequestSource
    dry_run: bool = True
    approved_fingerprint: str | None = None
    correlation_id: str = ""
    #: set for event-started teardowns: the vault must carry this tag or the request is refused.
    opt_in_tag: str | None = None
    requested_at: datetime | None = None
    #: who approved ``approved_fingerprint`` when it is not the requester (the approve route's run request).
    approved_by: str | None = None

    def __post_init__(self) -> None:
        VaultRef.parse(self.vault_id)
        if not self.requested_by:
            raise InvalidTeardownInput("a teardown request must name who requested it")

    @property
    def vault(self) -> VaultRef:
        return VaultRef.parse(self.vault_id)

    def to_record(self) -> dict[str, Any]:
        return {
            "version": RECORD_VERSION,
            "vaultId": self.vault_id,
            "requestedBy": self.requested_by,
            "source": self.source.value,
            "dryRun": self.dry_run,
            "approvedFingerprint": self.approved_fingerprint,
            "correlationId": self.correlation_id,
            "optInTag": self.opt_in_tag,
            "requestedAt": format_time(self.requested_at),
            "approvedBy": self.approved_by,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TeardownRequest:
        if not isinstance(record, Mapping):
            raise InvalidTeardownInput("a teardown request must be a JSON object")
        dry_run = record.get("dryRun", True)
        if not isinstance(dry_run, bool):
            raise InvalidTeardownInput("dryRun must be true or false")
        approved = record.get("approvedFingerprint")
        if approved is not None and not isinstance(approved, str):
            raise InvalidTeardownInput("approvedFingerprint must be a string")
        return cls(
            vault_id=VaultRef.parse(record.get("vaultId")).id,
            requested_by=_str(record, "requestedBy"),
            source=RequestSource.parse(record.get("source")),
            dry_run=dry_run,
            approved_fingerprint=approved or None,
            correlation_id=str(record.get("correlationId") or ""),
            opt_in_tag=record.get("optInTag") or None,
            requested_at=parse_time(record.get("requestedAt")),
            approved_by=_str(record, "approvedBy", optional=True) or None,
        )


def instance_id_for(request: TeardownRequest) -> str:
    """Deterministic instance id: same vault + mode + approval -> same instance (duplicates collapse)."""
    vault_hash = hashlib.sha256(request.vault.key.encode()).hexdigest()[:16]
    if request.dry_run:
        mode = "plan"
    elif request.approved_fingerprint:
        mode = "run-" + request.approved_fingerprint.lower().removeprefix("sha256:")[:16]
    else:
        mode = "run"
    if request.source is not RequestSource.HTTP and request.correlation_id:
        mode += "-" + hashlib.sha256(request.correlation_id.encode()).hexdigest()[:8]
    return f"teardown-{request.vault.name.lower()[:40]}-{vault_hash}-{mode}"


def _subscription_allowed(vault: VaultRef, allowed: Iterable[str]) -> bool:
    allowed_set = {a.lower() for a in allowed}
    return vault.subscription_id.lower() in allowed_set


def teardown_request_from_event(
    event: Any,
    *,
    allowed_subscriptions: Iterable[str],
    opt_in_tag: str = DEFAULT_OPT_IN_TAG,
    requests_topic_id: str | None = None,
    allowed_principals: Iterable[str] = (),
) -> TeardownRequest:
    """Turn an Event Grid event into a teardown request, or raise :class:`InvalidTeardownInput` saying why not.

    ``event`` is either the intent ``steward.domain.events.classify`` made of it (``VaultDeleteFailed`` or
    ``TeardownRequested``) or the raw event object (Event Grid schema, or CloudEvents with ``type``). Two
    events qualify:

    * ``Microsoft.Resources.ResourceDeleteFailure`` for ``Microsoft.RecoveryServices/vaults/delete`` or
      ``Microsoft.DataProtection/backupVaults/delete`` (a user's delete refused because the vault is not
      empty), from the system topic of the vault's subscription (``topic`` ``/subscriptions/{id}``; Event Grid
      stamps it, a publisher cannot write it). The request is a dry run asked by the deleting user (the object
      id ARM puts in ``data.claims``); the orchestrator refuses it unless the vault carries ``opt_in_tag``, and
      runs its own fresh plan only if the tag's value is ``auto`` and that user is an allowed principal.
    * ``BackupSteward.Teardown.Requested`` from the topic ``requests_topic_id`` (none configured: refused)
      whose ``requester`` is one of ``allowed_principals``. It is a request, never an approval: it plans and
      waits for an allowed principal's approval over HTTP; a ``planFingerprint`` in it is ignored. Also subject
      to the opt-in tag.

    Anything else, or a vault outside ``allowed_subscriptions``, is refused.
    """
    kind = getattr(event, "kind", None)
    if isinstance(kind, str) and hasattr(event, "origin") and hasattr(event, "vault_id"):
        schema = str(getattr(event.origin, "schema", "") or "")
        request = _request_from_intent(event, kind, opt_in_tag)
        topic = getattr(event.origin, "topic", None)
    else:
        schema = "CloudEvents" if isinstance(event, Mapping) and "specversion" in event else "EventGrid"
        request = _request_from_raw_event(event, opt_in_tag)
        topic = event.get("topic") or event.get("source")
    if schema.lower() == "cloudevents":
        # Event Grid stamps ``topic`` in its own schema; a CloudEvents ``source`` on a custom topic is whatever the
        # publisher wrote (event-grid/cloud-event-schema.md), so it proves nothing about where a request came from.
        # The deployment subscribes in the Event Grid schema (infra/modules/*events.bicep).
        raise InvalidTeardownInput(
            "teardown requests and failed vault deletes are accepted in the Event Grid schema only: a CloudEvents "
            "'source' is written by the publisher, so it cannot show which topic the event came from"
        )
    if not _subscription_allowed(request.vault, allowed_subscriptions):
        raise InvalidTeardownInput(f"subscription {request.vault.subscription_id} is not managed by this app")
    if request.source is RequestSource.CUSTOM_EVENT:
        _check_requests_topic(topic, requests_topic_id)
        if request.requested_by.lower() not in {p.strip().lower() for p in allowed_principals}:
            raise InvalidTeardownInput(
                f"requester {request.requested_by[:80]!r} is not in STEWARD_TEARDOWN_ALLOWED_PRINCIPALS; "
                f"a {CUSTOM_EVENT_TYPE} event is refused unless it names an allowed principal"
            )
    else:
        system_topic = f"/subscriptions/{request.vault.subscription_id}"
        if not isinstance(topic, str) or topic.strip().rstrip("/").lower() != system_topic.lower():
            raise InvalidTeardownInput(
                f"a failed vault delete is accepted only from the system topic of the vault's subscription "
                f"({system_topic}), not from topic {str(topic)[:200]!r}; the event is refused as forged"
            )
    return request


def _check_requests_topic(topic: object, requests_topic_id: str | None) -> None:
    expected = (requests_topic_id or "").strip().rstrip("/")
    if not expected:
        raise InvalidTeardownInput(
            f"{CUSTOM_EVENT_TYPE} events are refused: no requests topic is configured "
            "(STEWARD_TEARDOWN_REQUESTS_TOPIC_ID)"
        )
    if not isinstance(topic, str) or topic.strip().rstrip("/").lower() != expected.lower():
        raise InvalidTeardownInput(
            f"{CUSTOM_EVENT_TYPE} events are accepted only from the requests topic {expected}, "
            f"not from topic {str(topic)[:200]!r}"
        )


def _event_principal(object_id: object, app_id: object) -> str:
    """Who an ARM event names as its caller: the object id, else the application id (prefixed), else a tag."""
    if isinstance(object_id, str) and object_id.strip():
        return object_id.strip()
    if isinstance(app_id, str) and app_id.strip():
        return APP_ID_PREFIX + app_id.strip()
    return "event-grid"


def _request_from_intent(intent: Any, kind: str, opt_in_tag: str) -> TeardownRequest:
    origin = intent.origin
    principal = getattr(origin, "principal", None)
    correlation = str(getattr(origin, "correlation_id", None) or getattr(origin, "event_id", "") or "")
    when = getattr(origin, "event_time", None)
    vault = VaultRef.parse(str(intent.vault_id))
    if kind == "vault-delete-failed":
        who = _event_principal(getattr(principal, "object_id", None), getattr(principal, "app_id", None))
        return TeardownRequest(vault.id, who, RequestSource.EVENT, True, None, correlation, opt_in_tag, when)
    if kind == "teardown":
        # a request, never an approval: whatever fingerprint the event names is not carried over
        requester = str(getattr(intent, "requester", "") or "custom-event")
        return TeardownRequest(
            vault.id, requester, RequestSource.CUSTOM_EVENT, False, None, correlation, opt_in_tag, when
        )
    raise InvalidTeardownInput(f"a {kind!r} intent does not request a teardown")


def _request_from_raw_event(event: Any, opt_in_tag: str) -> TeardownRequest:
    if not isinstance(event, Mapping):
        raise InvalidTeardownInput("an event must be a JSON object")
    event_type = event.get("eventType") or event.get("type")
    data = event.get("data")
    if not isinstance(event_type, str):
        raise InvalidTeardownInput("the event has no eventType")
    if not isinstance(data, Mapping):
        raise InvalidTeardownInput("the event has no data object")
    event_id = str(event.get("id") or "")
    correlation = str(data.get("correlationId") or event_id)
    when = parse_time(event.get("eventTime") or event.get("time"))
    if event_type == FAILED_DELETE_EVENT_TYPE:
        operation = str(data.get("operationName") or "").lower()
        if operation not in (
            "microsoft.recoveryservices/vaults/delete",
            "microsoft.dataprotection/backupvaults/delete",
        ):
            raise InvalidTeardownInput(f"a failed {operation or 'unknown operation'} is not a vault delete")
        vault = VaultRef.parse(data.get("resourceUri") or event.get("subject"))
        claims = data.get("claims")
        claims = claims if isinstance(claims, Mapping) else {}
        requested_by = _event_principal(
            claims.get("http://schemas.microsoft.com/identity/claims/objectidentifier"), claims.get("appid")
        )
        return TeardownRequest(vault.id, requested_by, RequestSource.EVENT, True, None, correlation, opt_in_tag, when)
    if event_type == CUSTOM_EVENT_TYPE:
        vault = VaultRef.parse(data.get("vaultId"))
        subject = event.get("subject")
        if isinstance(subject, str) and subject.startswith("/subscriptions/"):
            try:
                if VaultRef.parse(subject) != vault:
                    raise InvalidTeardownInput("subject and data.vaultId name different vaults")
            except InvalidTeardownInput as error:
                raise InvalidTeardownInput(f"the event is refused as forged: {error}") from None
        requested_by = str(data.get("requester") or data.get("requestedBy") or "custom-event")
        # a request, never an approval: a planFingerprint/approvedFingerprint/dryRun in it changes nothing
        return TeardownRequest(
            vault.id, requested_by, RequestSource.CUSTOM_EVENT, False, None, correlation, opt_in_tag, when
        )
    raise InvalidTeardownInput(f"event type {event_type!r} does not request a teardown")


def opt_in_decision(
    request: TeardownRequest,
    inventory: VaultInventory,
    allowed_principals: Iterable[str] = (),
    *,
    four_eyes: bool = False,
) -> tuple[bool, bool, str]:
    """``(allowed, auto_approve, reason)`` for an event-started request against the vault's tags.

    Only a failed delete (``RequestSource.EVENT``) may approve itself, on the tag value ``auto``, and only when
    the deleting user is one of ``allowed_principals``; a custom event never does. With four eyes on, not even
    then: the deleting user is the requester, and ``auto`` would be their own approval (one principal who may
    tag the vault could set ``auto`` and delete alone), so the plan waits for another principal."""
    if request.opt_in_tag is None:
        return True, False, "requested over HTTP by an authorised principal"
    value = inventory.tag(request.opt_in_tag)
    if value is None:
        return False, False, f"the vault does not carry the opt-in tag {request.opt_in_tag!r}"
    reason = f"the vault carries the opt-in tag {request.opt_in_tag}={value!r}"
    if value.strip().lower() != AUTO_TAG_VALUE or request.source is not RequestSource.EVENT:
        return True, False, reason
    if request.requested_by.lower() not in {p.strip().lower() for p in allowed_principals}:
        return True, False, (
            f"{reason}, but the deleting principal {request.requested_by!r} is not in "
            "STEWARD_TEARDOWN_ALLOWED_PRINCIPALS: the plan needs an approval over HTTP"
        )
    if four_eyes:
        return True, False, (
            f"{reason}; the deleting principal {request.requested_by} is allowed, but four eyes "
            "(STEWARD_TEARDOWN_FOUR_EYES) needs another allowed principal's approval over HTTP"
        )
    return True, True, f"{reason} and the deleting principal {request.requested_by} is an allowed principal"


def approval_refusal(request: TeardownRequest, approver: str | None, *, four_eyes: bool) -> str | None:
    """Why ``approver`` may not approve ``request`` (None: they may). With four eyes on, the approver must be
    named and must not be the requester (compared case-insensitively: object ids)."""
    if not four_eyes:
        return None
    if not approver or not approver.strip():
        return "four eyes: an approval must name its approver"
    if approver.strip().lower() == request.requested_by.strip().lower():
        return (
            f"four eyes: {approver} requested this teardown and may not approve it too; "
            "another allowed principal must approve"
        )
    return None


class ApprovalVerdict(StrEnum):
    APPROVED = "approved"
    #: four eyes on a custom-event request: this approval stands in for the requester, whom the event names
    #: without proof; a second, different principal must approve
    CONFIRMED = "confirmed"
    REFUSED = "refused"


def judge_approval(
    request: TeardownRequest, approver: str | None, *, four_eyes: bool, confirmed_by: str | None = None
) -> tuple[ApprovalVerdict, str | None]:
    """What one approval event does to a waiting teardown, and why.

    With four eyes, the approver must differ from the requester. A custom event's ``requester`` is only what its
    sender wrote (any allowed principal may send on the requests topic), so under four eyes the first approval
    of such a request *confirms* it - that verified caller becomes the requester (``confirmed_by``) - and a
    second, different principal approves: two people, both verified, whatever the event claimed."""
    if four_eyes and request.source is RequestSource.CUSTOM_EVENT and confirmed_by is None:
        if not approver or not approver.strip():
            return ApprovalVerdict.REFUSED, "four eyes: an approval must name its approver"
        return ApprovalVerdict.CONFIRMED, (
            f"{approver} confirmed the custom-event request (its requester is not verified); "
            "another allowed principal must approve"
        )
    requester = replace(request, requested_by=confirmed_by) if confirmed_by else request
    refusal = approval_refusal(requester, approver, four_eyes=four_eyes)
    return (ApprovalVerdict.REFUSED, refusal) if refusal else (ApprovalVerdict.APPROVED, None)


def request_approval(request: TeardownRequest, *, four_eyes: bool) -> tuple[str | None, str | None, str | None]:
    """``(fingerprint, approver, note)``: the approval a request carries itself, if the saga may take it.

    Only an HTTP request carries one (the route checked the caller); a fingerprint in an event-started request
    is never an approval. ``note`` says why a fingerprint the request names was not taken."""
    fingerprint = request.approved_fingerprint
    if request.source is not RequestSource.HTTP:
        if not fingerprint and request.source is not RequestSource.CUSTOM_EVENT:
            return None, None, None
        return None, None, (
            f"a {request.source.value} request is never an approval (a fingerprint it names is ignored); "
            "an allowed principal must approve over HTTP"
        )
    if not fingerprint:
        return None, None, None
    approver = request.approved_by or request.requested_by
    refusal = approval_refusal(request, approver, four_eyes=four_eyes)
    if refusal is not None:
        return None, None, refusal
    return fingerprint, approver, None
