"""State of the Recovery Services provider: vaults and everything inside them, as plain Python.

No HTTP here: the routes module turns requests into calls on :class:`RecoveryServicesModel` and its answers
into ARM responses. Time comes only from the injected clock (the sandbox's virtual clock), and the model is
*settled* lazily: before every call, :meth:`RecoveryServicesModel.settle` applies whatever the clock has
made true since the last call - long-running operations that finished, first backups that ran, soft-deleted
items whose retention passed (purged). Nothing runs in the background, so a test that advances the clock
14 days sees the purge on its next request.

Rules enforced here (codes and provenance in ``recoveryservices_errors``): vault delete preconditions,
AlwaysON soft delete, soft-delete retention range, locked immutability, multi-user authorization through a
resource guard proxy plus a sandbox-admin grant, one vault per VM in the VM's own region and subscription,
container unregister preconditions, and the Site Recovery move veto.
"""

from __future__ import annotations

import dataclasses
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sandbox.arm.ids import id_key, parse_id
from sandbox.arm.providers import recoveryservices_errors as err
from sandbox.arm.providers.recoveryservices_errors import RecoveryServicesError
from sandbox.arm.providers.recoveryservices_kinds import (
    CONTAINER_KIND_BY_TYPE,
    CONTAINER_KINDS,
    ITEM_KIND_BY_TYPE,
    ITEM_KINDS,
    canonical_container_name,
    canonical_item_name,
    norm_location,
)

VAULT_TYPE = "Microsoft.RecoveryServices/vaults"
ALWAYS_ON = "AlwaysON"
SOFT_DELETE_STATES = ("Enabled", "Disabled", ALWAYS_ON)
IMMUTABILITY_STATES = ("Disabled", "Unlocked", "Locked")
MIN_RETENTION_DAYS, MAX_RETENTION_DAYS = 14, 180
#: deleted MARS / DPM / MABS data is kept this long while enhanced security is on (D-esd, hybrid security)
HYBRID_RETENTION_DAYS = 14

#: Operations a resource guard protects on a Recovery Services vault (D-mua). The first two are always
#: protected; the others only when the guard does not exclude them. Disabling soft delete is named as the CLI
#: names it (azure-cli backup custom_help.operation_name_map "disableSoftDelete": ".../backupconfig/write").
OP_DISABLE_SOFT_DELETE = "Microsoft.RecoveryServices/vaults/backupconfig/write"
OP_DELETE_PROXY = "Microsoft.RecoveryServices/vaults/backupResourceGuardProxies/delete"
OP_DELETE_ITEM_DATA = "Microsoft.RecoveryServices/vaults/backupFabrics/protectionContainers/protectedItems/delete"
OP_MODIFY_POLICY = "Microsoft.RecoveryServices/vaults/backupPolicies/write#modifyPolicy"
ALWAYS_PROTECTED = (OP_DISABLE_SOFT_DELETE, OP_DELETE_PROXY)
OPTIONALLY_PROTECTED = (OP_DELETE_ITEM_DATA, OP_MODIFY_POLICY)
#: the kinds of protection policy: ``ProtectionPolicy``'s discriminator ``backupManagementType`` and its subtypes'
#: ``x-ms-discriminator-value`` (Azure/azure-rest-api-specs ``recoveryservicesbackup`` ``bms.json``; as
#: azure-mgmt-recoveryservicesbackup's ``ProtectionPolicy._subtype_map`` lists them). A PUT naming another is refused
#: with 400 (the code is inferred: ``BadRequest``)
POLICY_KINDS = ("AzureIaasVM", "AzureSql", "AzureStorage", "AzureWorkload", "GenericProtectionPolicy", "MAB")
#: The Resource Guard request each protected operation is authorised through (the proxy's
#: resourceGuardOperationDetails[].defaultResourceRequest is ``{guard}/{request}/default``; S-RSB
#: ResourceGuardProxyCRUD/GetResourceGuardProxy.json and UnlockDeleteResourceGuardProxy.json).
GUARD_REQUESTS = {
    OP_DISABLE_SOFT_DELETE: "disableSoftDeleteRequests",
    OP_DELETE_PROXY: "deleteResourceGuardProxyRequests",
    OP_DELETE_ITEM_DATA: "deleteProtectedItemRequests",
    OP_MODIFY_POLICY: "updatePolicyRequests",
}


def guard_request(guard_id: str, operation: str) -> str:
    """The default resource request of ``operation`` on the guard (what a critical request must name)."""
    return f"{guard_id}/{GUARD_REQUESTS[operation]}/default"


class Clock(Protocol):
    def now(self) -> datetime: ...


class ResourceLookup(Protocol):
    """How the provider sees other providers' resources (VMs, storage accounts) in the shared store."""

    def get(self, resource_id: str) -> dict[str, Any] | None: ...

    def list(self, resource_type: str, subscription_id: str) -> list[dict[str, Any]]: ...


@dataclass
class Timing:
    """Modelled durations, in virtual seconds, and the Retry-After the provider advertises."""

    vault_update: float = 10
    vault_delete: float = 10
    configure_protection: float = 60
    first_backup: float = 3600
    stop_protection: float = 30
    delete_backup_data: float = 60
    refresh_containers: float = 60
    register_container: float = 60
    unregister_container: float = 60
    private_endpoint: float = 30
    site_recovery: float = 60
    retry_after: int = 60
    #: how long an ``unlockDelete`` keeps a protected delete open.
    unlock_window: float = 30 * 60


@dataclass
class VaultLimits:
    """Azure's documented capacity limits of Recovery Services vaults (issue 19). Numbers: the Azure Backup FAQ
    (``articles/backup/backup-azure-backup-faq.yml``) and support matrix (``backup-support-matrix.md``); how Azure
    answers at each limit is inferred (``recoveryservices_errors``). Tests lower them (``model.limits``).

    What counts is INFERRED: every item a vault lists (``backupProtectedItems``: stopped and soft-deleted ones too,
    they still hold the datasource's backup data in the vault)."""

    vms: int = 1000  # "Up to 1,000 Azure VMs in a single vault"
    datasources: int = 2000  # "Up to 2000 datasources across all workloads"
    vaults_per_region: int = 500  # "up to 500 Recovery Services vaults, per supported region ..., per subscription"
    policies: int = 200  # "You can only have up to 200 policies per vault"
    policy_changes: int = 50  # "... limited to 50 over a span of 24 hours"
    policy_change_window: float = 24 * 3600.0


# ---------------------------------------------------------------------------------------------------------
# entities
# ---------------------------------------------------------------------------------------------------------
@dataclass
class Pending:
    """A long-running change the routes start on the sandbox's operation engine.

    ``effect`` runs once when ``seconds`` of virtual time have passed (under the model lock); what it returns
    is the operation's result body (None -> no body). ``undo`` runs instead when the operation ends Failed (an
    injected LRO fault): it takes back what the request already changed.
    """

    name: str
    seconds: float
    effect: Callable[[], Any] | None = None
    undo: Callable[[], None] | None = None


@dataclass
class Policy:
    name: str
    properties: dict[str, Any]


@dataclass
class Container:
    name: str
    kind: str  # key of CONTAINER_KINDS
    source_id: str
    friendly_name: str
    workload_type: str | None = None
    soft_deleted: bool = False
    registered_at: datetime | None = None


@dataclass
class Item:
    name: str
    container: str  # canonical container name
    kind: str  # key of ITEM_KINDS
    source_id: str
    friendly_name: str
    policy_id: str | None
    created_at: datetime
    first_backup_at: datetime | None
    protection_state: str = "IRPending"
    last_backup: datetime | None = None
    recovery_points: int = 0
    deferred_delete_at: datetime | None = None
    deleted_at: datetime | None = None
    is_rehydrate: bool = False
    data_id: str = field(default_factory=lambda: str(uuid.uuid4().int)[:18])
    pending_delete: bool = False  # a delete-with-data is running

    @property
    def soft_deleted(self) -> bool:
        return self.deferred_delete_at is not None


@dataclass
class BackupEngine:
    name: str
    engine_type: str  # DpmBackupEngine | AzureBackupServerEngine
    container: str


@dataclass
class Intent:
    name: str
    fabric: str
    properties: dict[str, Any]

    @property
    def container_key(self) -> str | None:
        item_id = str(self.properties.get("itemId") or "")
        match = re.search(r"/protectionContainers/([^/]+)", item_id, flags=re.IGNORECASE)
        return match.group(1).lower() if match else None


@dataclass
class ResourceGuardProxy:
    name: str
    guard_id: str
    protected_operations: tuple[str, ...]
    description: str
    updated: datetime


@dataclass
class PrivateEndpointConnection:
    name: str
    endpoint_id: str
    group_ids: tuple[str, ...] = ("AzureBackup",)
    status: str = "Approved"
    provisioning_state: str = "Succeeded"


@dataclass
class SecuritySettings:
    soft_delete_state: str = "Enabled"
    retention_days: int = 14
    enhanced_security_state: str = "Enabled"
    immutability_state: str = "Disabled"


@dataclass
class VaultState:
    uid: str
    id: str
    location: str
    created: datetime
    tenant_id: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    sku: dict[str, Any] = field(default_factory=lambda: {"name": "Standard"})
    identity: dict[str, Any] | None = None
    public_network_access: str = "Enabled"
    security: SecuritySettings = field(default_factory=SecuritySettings)
    storage_redundancy: str = "GeoRedundant"
    cross_region_restore: str = "Disabled"
    monitoring: dict[str, Any] | None = None
    move: dict[str, Any] | None = None
    etag_time: datetime | None = None
    policies: dict[str, Policy] = field(default_factory=dict)
    containers: dict[str, Container] = field(default_factory=dict)
    items: dict[tuple[str, str], Item] = field(default_factory=dict)
    engines: dict[str, BackupEngine] = field(default_factory=dict)
    intents: dict[str, Intent] = field(default_factory=dict)
    proxies: dict[str, ResourceGuardProxy] = field(default_factory=dict)
    private_endpoints: dict[str, PrivateEndpointConnection] = field(default_factory=dict)
    protectable: list[dict[str, Any]] = field(default_factory=list)
    grant_until: datetime | None = None
    unlocks: dict[str, datetime] = field(default_factory=dict)
    #: when backup policies were created or changed through ARM (the 50-per-24-hours budget); newest last
    policy_changes: list[datetime] = field(default_factory=list)
    site_recovery: Any = None  # siterecovery_model.SiteRecoveryState, attached by the model

    @property
    def name(self) -> str:
        return parse_id(self.id).name

    @property
    def subscription_id(self) -> str:
        return parse_id(self.id).subscription_id or ""

    @property
    def resource_group(self) -> str:
        return parse_id(self.id).resource_group or ""

    @property
    def mua_enabled(self) -> bool:
        return bool(self.proxies)

    def live_items(self) -> list[Item]:
        return [i for i in self.items.values() if not i.soft_deleted]

    def soft_deleted_items(self) -> list[Item]:
        return [i for i in self.items.values() if i.soft_deleted]

    def items_in(self, container: str) -> list[Item]:
        key = container.lower()
        return [i for (c, _), i in self.items.items() if c == key]


# ---------------------------------------------------------------------------------------------------------
# small helpers
# ---------------------------------------------------------------------------------------------------------
_FILTER_TERM = re.compile(r"(\w+)\s+eq\s+'([^']*)'", re.IGNORECASE)


def _provisioned(resource: dict[str, Any]) -> bool:
    state = str((resource.get("properties") or {}).get("provisioningState") or "Succeeded")
    return state.lower() == "succeeded"


def parse_filter(text: str | None) -> dict[str, str]:
    """OData ``a eq 'x' and b eq 'y'`` -> {"a": "x", "b": "y"} (names lower-cased)."""
    if not text:
        return {}
    return {m.group(1).lower(): m.group(2) for m in _FILTER_TERM.finditer(text)}


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def etag(moment: datetime) -> str:
    return "W/\"datetime'" + moment.astimezone(UTC).strftime("%Y-%m-%dT%H%%3A%M%%3A%S.%fZ") + "'\""


def _lower_keys(body: dict[str, Any]) -> dict[str, Any]:
    return {str(k).lower(): v for k, v in body.items()}


def _props(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise RecoveryServicesError(err.INVALID_REQUEST, detail="The request body must be a JSON object.")
    props = body.get("properties") or {}
    if not isinstance(props, dict):
        raise RecoveryServicesError(err.INVALID_REQUEST, detail="'properties' must be a JSON object.")
    return props


def _pick(options: Iterable[str], value: Any, what: str) -> str:
    for option in options:
        if str(value).lower() == option.lower():
            return option
    raise RecoveryServicesError(err.INVALID_REQUEST, detail=f"'{value}' is not a valid value for {what}.")


# ---------------------------------------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------------------------------------
class RecoveryServicesModel:
    """Every Recovery Services vault of the sandbox. Thread-safe through one re-entrant lock."""

    def __init__(
        self,
        clock: Clock,
        lookup: ResourceLookup,
        timing: Timing | None = None,
        *,
        tenant_id: str = "00000000-0000-0000-0000-0000000000a1",
    ) -> None:
        self.clock = clock
        self.lookup = lookup
        self.timing = timing or Timing()
        self.limits = VaultLimits()
        self.tenant_id = tenant_id
        self.lock = threading.RLock()
        self.vaults: dict[str, VaultState] = {}  # id_key -> vault
        #: (PUT refuses undiscovered VMs, seconds after a VM's creation it is discovered without a refresh);
        #: the provider reads PropagationConfig.vm_discovery / vm_auto_discovery_seconds here. Off by default.
        self.discovery: Callable[[], tuple[bool, float]] = lambda: (False, 1800.0)
        #: called (under the lock) at the end of every settle with the clock's now: scheduled backups and jobs
        #: (recoveryservices_jobs) extend the first backup modelled here
        self.settle_hooks: list[Callable[[datetime], None]] = []

    # -- time -------------------------------------------------------------------------------------
    def now(self) -> datetime:
        return self.clock.now()

    def settle(self) -> None:
        """Apply everything the clock has made true: finished LROs, first backups, soft-delete purges."""
        with self.lock:
            now = self.now()
            for vault in list(self.vaults.values()):
                self._settle_vault(vault, now)
            for hook in self.settle_hooks:
                hook(now)

    def _settle_vault(self, vault: VaultState, now: datetime) -> None:
        for item in list(vault.items.values()):
            self._progress_item(item, now)
            if item.deferred_delete_at is not None and now >= item.deferred_delete_at:
                self._purge_item(vault, item)
        if vault.site_recovery is not None:
            vault.site_recovery.settle(now)

    @staticmethod
    def _progress_item(item: Item, now: datetime) -> None:
        if item.protection_state == "IRPending" and item.first_backup_at is not None and now >= item.first_backup_at:
            item.protection_state = "Protected"
            item.last_backup = item.first_backup_at
            item.recovery_points += 1

    def _purge_item(self, vault: VaultState, item: Item) -> None:
        vault.items.pop((item.container.lower(), item.name.lower()), None)
        container = vault.containers.get(item.container.lower())
        if container is not None and not vault.items_in(container.name):
            kind = CONTAINER_KINDS[container.kind]
            if kind.implicit or container.soft_deleted:
                vault.containers.pop(container.name.lower(), None)

    def _operation(
        self,
        name: str,
        seconds: float,
        effect: Callable[[], Any] | None = None,
        undo: Callable[[], None] | None = None,
    ) -> Pending:
        lock = self.lock

        def locked(fn: Callable[[], Any] | None) -> Callable[[], Any] | None:
            if fn is None:
                return None

            def run() -> Any:
                with lock:
                    return fn()

            return run

        return Pending(name, seconds, locked(effect), locked(undo))

    # -- vault lookup ------------------------------------------------------------------------------
    def find_vault(self, vault_id: str) -> VaultState | None:
        return self.vaults.get(id_key(vault_id))

    def vault(self, vault_id: str) -> VaultState:
        vault = self.find_vault(vault_id)
        if vault is None:
            parsed = parse_id(vault_id)
            raise RecoveryServicesError(
                err.RESOURCE_NOT_FOUND, type=VAULT_TYPE, name=parsed.name, rg=parsed.resource_group or "-"
            )
        return vault

    def list_vaults(self, subscription_id: str, resource_group: str | None = None) -> list[VaultState]:
        found = []
        for vault in self.vaults.values():
            if vault.subscription_id.lower() != subscription_id.lower():
                continue
            if resource_group is not None and vault.resource_group.lower() != resource_group.lower():
                continue
            found.append(vault)
        return sorted(found, key=lambda v: id_key(v.id))

    # -- vault CRUD --------------------------------------------------------------------------------
    def put_vault(
        self, vault_id: str, body: dict[str, Any], *, tenant_id: str | None = None
    ) -> tuple[VaultState, bool]:
        """Create or replace a vault (PUT). Returns the vault and whether it was created."""
        with self.lock:
            if not isinstance(body, dict) or not body.get("location"):
                raise RecoveryServicesError(err.INVALID_REQUEST, detail="The vault needs a 'location'.")
            existing = self.find_vault(vault_id)
            location = norm_location(str(body["location"]))
            if existing is not None and norm_location(existing.location) != location:
                raise RecoveryServicesError(
                    err.INVALID_REQUEST,
                    detail=f"The location of vault '{existing.name}' is '{existing.location}' and cannot change.",
                )
            if existing is None:
                self._require_vault_room(vault_id, location)
            vault = existing or self._new_vault(vault_id, location)
            if tenant_id:
                vault.tenant_id = tenant_id
            self._apply_vault_body(vault, body, replace=True)
            self.vaults[id_key(vault_id)] = vault
            return vault, existing is None

    def _require_vault_room(self, vault_id: str, location: str) -> None:
        subscription = parse_id(vault_id).subscription_id or ""
        count = sum(1 for v in self.list_vaults(subscription) if norm_location(v.location) == location)
        if count >= self.limits.vaults_per_region:
            raise RecoveryServicesError(err.VAULTS_PER_REGION_LIMIT, subscription=subscription, count=count,
                                        region=location, limit=self.limits.vaults_per_region)

    def _require_item_room(self, vault: VaultState, kind_key: str) -> None:
        """Azure's per-vault limits on protected datasources (every listed item counts, inferred)."""
        items = list(vault.items.values())
        if len(items) >= self.limits.datasources:
            raise RecoveryServicesError(err.VAULT_DATASOURCE_LIMIT, vault=vault.name, count=len(items),
                                        limit=self.limits.datasources)
        vms = sum(1 for i in items if i.kind == "VM")
        if kind_key == "VM" and vms >= self.limits.vms:
            raise RecoveryServicesError(err.VAULT_VM_LIMIT, vault=vault.name, count=vms, limit=self.limits.vms)

    def _spend_policy_change(self, vault: VaultState) -> None:
        """The 50-per-24-hours budget of policy creations and changes through ARM (per vault, inferred)."""
        now = self.now()
        window = timedelta(seconds=self.limits.policy_change_window)
        vault.policy_changes = [t for t in vault.policy_changes if now - t < window]
        if len(vault.policy_changes) >= self.limits.policy_changes:
            raise RecoveryServicesError(err.POLICY_CHANGE_LIMIT, vault=vault.name, count=len(vault.policy_changes),
                                        limit=self.limits.policy_changes,
                                        retry_at=(vault.policy_changes[0] + window).isoformat())
        vault.policy_changes.append(now)

    def _new_vault(self, vault_id: str, location: str) -> VaultState:
        now = self.now()
        vault = VaultState(uid=str(uuid.uuid4()), id=vault_id, location=location, created=now, etag_time=now)
        for policy in default_policies(vault.id):
            vault.policies[policy.name.lower()] = policy
        from sandbox.arm.providers.siterecovery_model import SiteRecoveryState

        vault.site_recovery = SiteRecoveryState(vault)
        return vault

    def _apply_vault_body(self, vault: VaultState, body: dict[str, Any], *, replace: bool) -> None:
        props = body.get("properties") or {}
        if not isinstance(props, dict):
            raise RecoveryServicesError(err.INVALID_REQUEST, detail="'properties' must be a JSON object.")
        security = props.get("securitySettings") or {}
        with self._all_or_nothing(vault):
            self._apply_security(vault, security, source="vault")
        if "tags" in body or replace:
            vault.tags = dict(body.get("tags") or {})
        if body.get("sku"):
            vault.sku = dict(body["sku"])
        if "identity" in body:
            vault.identity = self._identity(vault, body.get("identity"))
        if "publicNetworkAccess" in props:
            vault.public_network_access = str(props["publicNetworkAccess"])
        redundancy = props.get("redundancySettings") or {}
        if "standardTierStorageRedundancy" in redundancy:
            vault.storage_redundancy = str(redundancy["standardTierStorageRedundancy"])
        if "crossRegionRestore" in redundancy:
            vault.cross_region_restore = str(redundancy["crossRegionRestore"])
        if "monitoringSettings" in props:
            vault.monitoring = props.get("monitoringSettings")
        vault.etag_time = self.now()

    @contextmanager
    def _all_or_nothing(self, vault: VaultState) -> Iterator[None]:
        """Security changes apply together or not at all (a later check failing undoes earlier ones)."""
        before = dataclasses.replace(vault.security)
        try:
            yield
        except RecoveryServicesError:
            vault.security = before
            raise

    def _identity(self, vault: VaultState, identity: Any) -> dict[str, Any] | None:
        if not identity or str(identity.get("type", "None")).lower() == "none":
            return None
        kind = str(identity.get("type"))
        previous = vault.identity or {}
        result: dict[str, Any] = {"type": kind}
        if "systemassigned" in kind.lower():
            result["principalId"] = previous.get("principalId") or str(uuid.uuid4())
            result["tenantId"] = vault.tenant_id or self.tenant_id
        if identity.get("userAssignedIdentities"):
            result["userAssignedIdentities"] = {
                k: {"principalId": str(uuid.uuid4()), "clientId": str(uuid.uuid4())}
                for k in identity["userAssignedIdentities"]
            }
        return result

    def _apply_security(self, vault: VaultState, security: dict[str, Any], *, source: str) -> None:
        soft = security.get("softDeleteSettings") or {}
        immutability = (security.get("immutabilitySettings") or {}).get("state")
        if "softDeleteState" in soft:
            self._change_soft_delete(vault, str(soft["softDeleteState"]))
        if "enhancedSecurityState" in soft:
            self._change_enhanced_security(vault, str(soft["enhancedSecurityState"]))
        if "softDeleteRetentionPeriodInDays" in soft:
            self._change_retention(vault, soft["softDeleteRetentionPeriodInDays"])
        if immutability is not None:
            self._change_immutability(vault, str(immutability))
        del source

    def _change_soft_delete(self, vault: VaultState, wanted: str, requests: list[Any] | None = None) -> None:
        state = _pick((*SOFT_DELETE_STATES, "Invalid"), wanted, "softDeleteState")
        current = vault.security.soft_delete_state
        if state in (current, "Invalid"):
            return
        if current == ALWAYS_ON:
            raise RecoveryServicesError(err.SOFT_DELETE_DISABLE_NOT_ALLOWED)
        if state == "Disabled":
            self._require_grant(vault, OP_DISABLE_SOFT_DELETE, requests)
        vault.security.soft_delete_state = state

    def _change_enhanced_security(self, vault: VaultState, wanted: str, requests: list[Any] | None = None) -> None:
        state = _pick((*SOFT_DELETE_STATES, "Invalid"), wanted, "enhancedSecurityState")
        current = vault.security.enhanced_security_state
        if state in (current, "Invalid"):
            return
        if current == ALWAYS_ON:
            raise RecoveryServicesError(err.SOFT_DELETE_DISABLE_NOT_ALLOWED)
        if state == "Disabled":
            self._require_grant(vault, OP_DISABLE_SOFT_DELETE, requests)
        vault.security.enhanced_security_state = state

    @staticmethod
    def _change_retention(vault: VaultState, days: Any) -> None:
        try:
            value = int(days)
        except (TypeError, ValueError):
            raise RecoveryServicesError(err.INVALID_SOFT_DELETE_RETENTION, days=days) from None
        if not MIN_RETENTION_DAYS <= value <= MAX_RETENTION_DAYS:
            raise RecoveryServicesError(err.INVALID_SOFT_DELETE_RETENTION, days=value)
        vault.security.retention_days = value

    @staticmethod
    def _change_immutability(vault: VaultState, wanted: str) -> None:
        state = _pick(IMMUTABILITY_STATES, wanted, "immutabilitySettings.state")
        if vault.security.immutability_state == "Locked" and state != "Locked":
            raise RecoveryServicesError(err.IMMUTABILITY_LOCKED_CHANGE, state=state)
        vault.security.immutability_state = state

    def patch_vault(self, vault_id: str, body: dict[str, Any]) -> tuple[VaultState, Pending]:
        with self.lock:
            vault = self.vault(vault_id)
            if not isinstance(body, dict):
                raise RecoveryServicesError(err.INVALID_REQUEST, detail="The request body must be a JSON object.")
            self._apply_vault_body(vault, body, replace=False)
            op = self._operation("UpdateVault", self.timing.vault_update)
            return vault, op

    def delete_vault(self, vault_id: str) -> Pending | None:
        """Delete a vault (None when it does not exist: ARM's 204). Raises when Azure refuses."""
        with self.lock:
            vault = self.find_vault(vault_id)
            if vault is None:
                return None
            self._check_vault_empty(vault)
            self.vaults.pop(id_key(vault.id), None)
            return self._operation("DeleteVault", self.timing.vault_delete)

    def blockers(self, vault: VaultState) -> list[str]:
        """What keeps a vault from being deleted, in words (empty when it can go)."""
        found: list[str] = []
        live_containers = {i.container.lower() for i in vault.live_items()}
        for container in vault.containers.values():
            if container.soft_deleted:
                continue
            only_soft_deleted = vault.items_in(container.name) and container.name.lower() not in live_containers
            if only_soft_deleted:
                continue
            found.append(container.friendly_name or container.name)
        found += [f"backup management server {e.name}" for e in vault.engines.values()]
        if vault.site_recovery is not None:
            found += vault.site_recovery.blockers()
        found += [f"private endpoint connection {p.name}" for p in vault.private_endpoints.values()]
        return found

    def _check_vault_empty(self, vault: VaultState) -> None:
        blockers = self.blockers(vault)
        if blockers:
            raise RecoveryServicesError(err.VAULT_NOT_EMPTY, details=", ".join(sorted(set(blockers))))
        if vault.soft_deleted_items():
            raise RecoveryServicesError(err.VAULT_HAS_SOFT_DELETED_ITEMS, days=vault.security.retention_days)

    # -- moves -------------------------------------------------------------------------------------
    def move_veto(self, vault_id: str) -> RecoveryServicesError | None:
        """Why a vault may not move (Site Recovery in use), or None."""
        with self.lock:
            vault = self.find_vault(vault_id)
            if vault is None or vault.site_recovery is None:
                return None
            details = vault.site_recovery.blockers()
            if details:
                return RecoveryServicesError(
                    err.VAULT_MOVE_WITH_SITE_RECOVERY, vault=vault.name, details=", ".join(details)
                )
            return None

    def rename_vault(self, old_id: str, new_id: str) -> None:
        """Follow a resource move: the vault keeps its state (and backup data) under its new id."""
        with self.lock:
            vault = self.vaults.pop(id_key(old_id), None)
            if vault is None:
                return
            now = self.now()
            vault.id = new_id
            vault.move = {
                "operationId": str(uuid.uuid4()),
                "startTimeUtc": iso(now),
                "completionTimeUtc": iso(now),
                "sourceResourceId": old_id,
                "targetResourceId": new_id,
                "moveState": "MoveSucceeded",
            }
            self.vaults[id_key(new_id)] = vault

    # -- backupconfig/vaultconfig ----------------------------------------------------------------
    def put_vault_config(self, vault_id: str, body: dict[str, Any], *, replace: bool = False) -> VaultState:
        """``BackupResourceVaultConfigs_Put`` (``replace``) or ``_Update`` (PATCH, a merge).

        The spec (recoveryservicesbackup ``bms.json``, 2025-02-01) declares both on ``backupconfig/vaultconfig``
        and describes both only as "Updates vault security config."; nothing there makes PUT a merge, so ARM's
        resource provider contract applies (Azure/azure-resource-manager-rpc ``v1.0/resource-api-reference.md``:
        "a PUT should always be allowed to overwrite an existing resource"; PATCH follows JSON merge-patch,
        RFC 7396). A PUT therefore replaces the config: a writable property it omits goes back to its default.
        Inferred (no source states them): the defaults are a new vault's (soft delete ``Enabled``, enhanced
        security ``Enabled``, 14 days), and an ``AlwaysON`` state, which nothing can turn off, stays ``AlwaysON``.
        The Azure CLI reads the config and sends every field back (``set_backup_properties`` in azure-cli's
        ``backup/custom.py``), which is what a client must do under these semantics.
        """
        with self.lock:
            vault = self.vault(vault_id)
            props = dict(_props(body))
            if replace:
                security = vault.security
                props.setdefault(
                    "softDeleteFeatureState", ALWAYS_ON if security.soft_delete_state == ALWAYS_ON else "Enabled"
                )
                props.setdefault(
                    "enhancedSecurityState",
                    ALWAYS_ON if security.enhanced_security_state == ALWAYS_ON else "Enabled",
                )
                props.setdefault("softDeleteRetentionPeriodInDays", 14)
            soft = props.get("softDeleteFeatureState")
            enhanced = props.get("enhancedSecurityState")
            # the CLI's set_backup_properties names the guarded operation in the body (MUA_OPERATION_REQUEST)
            requests = list(props.get("resourceGuardOperationRequests") or [])
            with self._all_or_nothing(vault):
                if soft is not None:
                    self._change_soft_delete(vault, str(soft), requests)
                if enhanced is not None:
                    self._change_enhanced_security(vault, str(enhanced), requests)
                if "softDeleteRetentionPeriodInDays" in props:
                    self._change_retention(vault, props["softDeleteRetentionPeriodInDays"])
            return vault

    # -- backup status ---------------------------------------------------------------------------
    def backup_status(self, subscription_id: str, region: str, body: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            resource_id = str(body.get("resourceId") or "")
            if not resource_id:
                raise RecoveryServicesError(err.INVALID_REQUEST, detail="'resourceId' is required.")
            for vault in self.list_vaults(subscription_id):
                if norm_location(vault.location) != norm_location(region):
                    continue
                # Any item that is not soft-deleted answers Protected, a ProtectionStopped one too (inferred:
                # BackupStatusResponse's enum has no "stopped" value; the CLI's resume_protection reads the
                # item's protectionState, not backupStatus, to tell stopped from protected).
                for item in vault.live_items():
                    if id_key(item.source_id) == id_key(resource_id):
                        policy = parse_id(item.policy_id).name if item.policy_id else None
                        return {
                            "protectionStatus": "Protected",
                            "vaultId": vault.id,
                            "fabricName": "Azure",
                            "containerName": item.container,
                            "protectedItemName": item.name,
                            "policyName": policy,
                            "errorCode": "Success",
                            "errorMessage": "",
                        }
            return {"protectionStatus": "NotProtected", "errorCode": "Success", "errorMessage": ""}

    def protecting_vault(self, source_id: str, *, exclude: VaultState | None = None) -> VaultState | None:
        """The vault holding live (not soft-deleted) backup of ``source_id``, if any."""
        key = id_key(source_id)
        for vault in self.vaults.values():
            if vault is exclude:
                continue
            if any(id_key(i.source_id) == key for i in vault.live_items()):
                return vault
        return None

    # -- policies ----------------------------------------------------------------------------------
    def policy(self, vault_id: str, name: str) -> Policy:
        vault = self.vault(vault_id)
        policy = vault.policies.get(name.lower())
        if policy is None:
            raise RecoveryServicesError(
                err.RESOURCE_NOT_FOUND, type=f"{VAULT_TYPE}/backupPolicies", name=name, rg=vault.resource_group
            )
        return policy

    def put_policy(self, vault_id: str, name: str, body: dict[str, Any]) -> Policy:
        with self.lock:
            vault = self.vault(vault_id)
            props = dict(_props(body))
            if not props.get("backupManagementType"):
                raise RecoveryServicesError(err.INVALID_REQUEST, detail="'backupManagementType' is required.")
            if str(props["backupManagementType"]).lower() not in {k.lower() for k in POLICY_KINDS}:  # case: inferred
                kinds = ", ".join(POLICY_KINDS)
                raise RecoveryServicesError(err.INVALID_REQUEST, detail=(
                    f"'backupManagementType' {props['backupManagementType']!r} is not one of {kinds}."))
            existing = vault.policies.get(name.lower())
            if existing is not None:
                self._require_optional(vault, OP_MODIFY_POLICY)
            elif len(vault.policies) >= self.limits.policies:
                raise RecoveryServicesError(err.POLICY_LIMIT, vault=vault.name, count=len(vault.policies),
                                            limit=self.limits.policies)
            self._spend_policy_change(vault)
            props.setdefault("protectedItemsCount", 0)
            policy = Policy(existing.name if existing else name, props)
            vault.policies[name.lower()] = policy
            return policy

    def delete_policy(self, vault_id: str, name: str) -> bool:
        """Delete a policy no item uses (False when there was none)."""
        with self.lock:
            vault = self.vault(vault_id)
            policy = vault.policies.get(name.lower())
            if policy is None:
                return False
            users = [i.name for i in vault.items.values() if (i.policy_id or "").lower().endswith("/" + name.lower())]
            if users:
                raise RecoveryServicesError(err.POLICY_IN_USE, policy=policy.name, items=", ".join(users))
            vault.policies.pop(name.lower())
            return True

    def policy_item_count(self, vault: VaultState, policy: Policy) -> int:
        suffix = "/backuppolicies/" + policy.name.lower()
        return sum(1 for i in vault.live_items() if (i.policy_id or "").lower().endswith(suffix))

    def _resolve_policy(self, vault: VaultState, policy_id: str) -> str:
        name = parse_id(policy_id).name if "/" in policy_id else policy_id
        policy = vault.policies.get(name.lower())
        if policy is None:
            raise RecoveryServicesError(err.POLICY_NOT_FOUND, policy=name)
        return f"{vault.id}/backupPolicies/{policy.name}"

    # -- discovery -------------------------------------------------------------------------------
    def refresh_containers(self, vault_id: str, fabric: str) -> Pending:
        with self.lock:
            vault = self.vault(vault_id)

            def discover() -> None:
                vault.protectable = self._discover_vms(vault)

            del fabric
            return self._operation("RefreshContainers", self.timing.refresh_containers, effect=discover)

    def _discover_vms(self, vault: VaultState) -> list[dict[str, Any]]:
        found = []
        for vm in self.lookup.list("Microsoft.Compute/virtualMachines", vault.subscription_id):
            if norm_location(str(vm.get("location", ""))) != norm_location(vault.location):
                continue
            if not _provisioned(vm):
                continue  # a VM still being created (or whose create failed) is not discovered (inferred)
            found.append({"id": vm["id"], "name": parse_id(vm["id"]).name, "rg": parse_id(vm["id"]).resource_group})
        return found

    def discovered(self, vault: VaultState, vm: dict[str, Any]) -> bool:
        """The vault knows this VM: a ``refreshContainers`` found it, or it was created long enough ago for the
        vault's periodic discovery (azure-sdk-for-python#22232: a new VM listed "after 30 min"). INFERRED."""
        if any(id_key(str(d["id"])) == id_key(str(vm["id"])) for d in vault.protectable):
            return True
        _, auto_seconds = self.discovery()
        created = str((vm.get("properties") or {}).get("timeCreated") or "")
        if not created or not _provisioned(vm):
            return False
        born = datetime.fromisoformat(created.replace("Z", "+00:00"))
        if born.tzinfo is None:
            born = born.replace(tzinfo=UTC)
        now = self.now()
        if now.tzinfo is None:
            now = now.replace(tzinfo=UTC)
        return now >= born + timedelta(seconds=auto_seconds)

    def protectable_items(self, vault_id: str, odata_filter: str | None) -> list[dict[str, Any]]:
        """Discovered VMs not protected anywhere (as of the last refreshContainers)."""
        with self.lock:
            vault = self.vault(vault_id)
            wanted = parse_filter(odata_filter)
            bmt = wanted.get("backupmanagementtype")
            if bmt and bmt.lower() != "azureiaasvm":
                return []
            return [vm for vm in vault.protectable if self.protecting_vault(vm["id"]) is None]

    # -- containers ------------------------------------------------------------------------------
    def container(self, vault_id: str, name: str) -> Container:
        vault = self.vault(vault_id)
        container = vault.containers.get(canonical_container_name(name).lower())
        if container is None:
            raise RecoveryServicesError(
                err.RESOURCE_NOT_FOUND,
                type=f"{VAULT_TYPE}/backupFabrics/protectionContainers",
                name=name,
                rg=vault.resource_group,
            )
        return container

    def list_containers(self, vault_id: str, odata_filter: str | None) -> list[Container]:
        with self.lock:
            vault = self.vault(vault_id)
            wanted = parse_filter(odata_filter)
            found = []
            for container in vault.containers.values():
                kind = CONTAINER_KINDS[container.kind]
                if container.soft_deleted:
                    continue
                if "backupmanagementtype" in wanted and wanted["backupmanagementtype"].lower() != (
                    kind.backup_management_type.lower()
                ):
                    continue
                if "friendlyname" in wanted and wanted["friendlyname"].lower() != container.friendly_name.lower():
                    continue
                found.append(container)
            return sorted(found, key=lambda c: c.name.lower())

    def deleted_containers(self, vault_id: str) -> list[Container]:
        vault = self.vault(vault_id)
        return [c for c in vault.containers.values() if c.soft_deleted]

    def register_container(self, vault_id: str, name: str, body: dict[str, Any]) -> tuple[Container, Pending]:
        with self.lock:
            vault = self.vault(vault_id)
            props = _props(body)
            ctype = str(props.get("containerType") or "")
            kind = CONTAINER_KIND_BY_TYPE.get(ctype.lower())
            if kind is None or CONTAINER_KINDS[kind].implicit:
                raise RecoveryServicesError(
                    err.INVALID_REQUEST, detail=f"containerType '{ctype}' cannot be registered through this API."
                )
            source_id = str(props.get("sourceResourceId") or "")
            resource = self.lookup.get(source_id) if source_id else None
            if resource is None:
                raise RecoveryServicesError(err.DATASOURCE_NOT_FOUND, resource=source_id or name)
            self._check_region_and_subscription(vault, resource)
            canonical = canonical_container_name(name)
            container = vault.containers.get(canonical.lower())
            if container is None or container.soft_deleted:
                container = Container(
                    name=canonical,
                    kind=kind,
                    source_id=resource["id"],
                    friendly_name=str(props.get("friendlyName") or parse_id(resource["id"]).name),
                    workload_type=props.get("workloadType"),
                    registered_at=self.now(),
                )
                vault.containers[canonical.lower()] = container
            op = self._operation("RegisterContainer", self.timing.register_container)
            return container, op

    def unregister_container(self, vault_id: str, name: str) -> Pending:
        with self.lock:
            vault = self.vault(vault_id)
            container = self.container(vault_id, name)
            items = vault.items_in(container.name)
            live = [i for i in items if not i.soft_deleted]
            if live:
                raise RecoveryServicesError(
                    err.CONTAINER_HAS_DATASOURCES, container=container.name, items=", ".join(i.name for i in live)
                )
            intents = [i for i in vault.intents.values() if i.container_key == container.name.lower()]
            if intents:
                raise RecoveryServicesError(
                    err.CONTAINER_HAS_INTENT, container=container.name, intents=", ".join(i.name for i in intents)
                )
            enhanced = vault.security.enhanced_security_state in ("Enabled", ALWAYS_ON)

            def unregister() -> None:
                if items and enhanced:
                    container.soft_deleted = True  # D-esd: the container follows its soft-deleted items
                else:
                    for item in items:
                        vault.items.pop((item.container.lower(), item.name.lower()), None)
                    vault.containers.pop(container.name.lower(), None)

            return self._operation("UnregisterContainer", self.timing.unregister_container, effect=unregister)

    # -- protected items -------------------------------------------------------------------------
    def item(self, vault_id: str, container: str, name: str) -> Item:
        vault = self.vault(vault_id)
        item = vault.items.get((canonical_container_name(container).lower(), canonical_item_name(name).lower()))
        if item is None:
            raise RecoveryServicesError(
                err.RESOURCE_NOT_FOUND,
                type=f"{VAULT_TYPE}/backupFabrics/protectionContainers/protectedItems",
                name=name,
                rg=vault.resource_group,
            )
        return item

    def list_items(self, vault_id: str, odata_filter: str | None) -> list[Item]:
        with self.lock:
            vault = self.vault(vault_id)
            wanted = parse_filter(odata_filter)
            found = []
            for item in vault.items.values():
                kind = ITEM_KINDS[item.kind]
                if "backupmanagementtype" in wanted and wanted["backupmanagementtype"].lower() != (
                    kind.backup_management_type.lower()
                ):
                    continue
                if "itemtype" in wanted and wanted["itemtype"].lower() != kind.workload_type.lower():
                    continue
                if "policyname" in wanted and not (item.policy_id or "").lower().endswith(
                    "/" + wanted["policyname"].lower()
                ):
                    continue
                found.append(item)
            return sorted(found, key=lambda i: (i.container.lower(), i.name.lower()))

    def put_item(
        self, vault_id: str, fabric: str, container_name: str, item_name: str, body: dict[str, Any]
    ) -> Pending:
        """Enable protection, change policy, stop protection (retain data) or undelete (isRehydrate)."""
        with self.lock:
            vault = self.vault(vault_id)
            props = _props(body)
            del fabric
            container_name = canonical_container_name(container_name)
            item_name = canonical_item_name(item_name)
            key = (container_name.lower(), item_name.lower())
            existing = vault.items.get(key)
            if existing is not None and not existing.pending_delete:
                return self._update_item(vault, existing, props)
            return self._enable_item(vault, container_name, item_name, props)

    def _update_item(self, vault: VaultState, item: Item, props: dict[str, Any]) -> Pending:
        wanted_state = props.get("protectionState")
        if props.get("isRehydrate"):
            if not item.soft_deleted:
                raise RecoveryServicesError(err.ITEM_NOT_SOFT_DELETED, item=item.name)
            other = self.protecting_vault(item.source_id, exclude=vault)
            if other is not None:
                raise RecoveryServicesError(err.VM_PROTECTED_ELSEWHERE, vm=item.source_id, vault=other.id)
            item.deferred_delete_at = None
            item.deleted_at = None
            item.is_rehydrate = True
            item.protection_state = "ProtectionStopped"  # D-esd: undeleted items stop with data retained
            return self._operation("Undelete", self.timing.stop_protection)
        if item.soft_deleted:
            raise RecoveryServicesError(err.ITEM_SOFT_DELETED, item=item.name)
        if str(wanted_state or "").lower() == "protectionstopped":
            item.protection_state = "ProtectionStopped"
            item.first_backup_at = None if item.last_backup is None else item.first_backup_at
            return self._operation("StopProtection", self.timing.stop_protection)
        policy_id = props.get("policyId")
        if policy_id:
            item.policy_id = self._resolve_policy(vault, str(policy_id))
            if item.protection_state == "ProtectionStopped":
                # resume protection
                item.protection_state = "Protected" if item.last_backup else "IRPending"
                if item.last_backup is None:
                    item.first_backup_at = self.now() + timedelta(seconds=self.timing.first_backup)
        item.is_rehydrate = False
        return self._operation("ConfigureProtection", self.timing.configure_protection)

    def _enable_item(self, vault: VaultState, container_name: str, item_name: str, props: dict[str, Any]) -> Pending:
        ptype = str(props.get("protectedItemType") or "")
        kind_key = ITEM_KIND_BY_TYPE.get(ptype.lower())
        if kind_key is None:
            raise RecoveryServicesError(err.INVALID_REQUEST, detail=f"protectedItemType '{ptype}' is not supported.")
        if props.get("isRehydrate"):
            raise RecoveryServicesError(err.ITEM_NOT_SOFT_DELETED, item=item_name)
        if str(props.get("protectionState") or "").lower() == "protectionstopped":
            raise RecoveryServicesError(
                err.RESOURCE_NOT_FOUND,
                type=f"{VAULT_TYPE}/backupFabrics/protectionContainers/protectedItems",
                name=item_name,
                rg=vault.resource_group,
            )
        kind = ITEM_KINDS[kind_key]
        self._require_item_room(vault, kind_key)
        policy_raw = props.get("policyId")
        if not policy_raw:
            raise RecoveryServicesError(err.INVALID_REQUEST, detail="'policyId' is required to enable protection.")
        policy_id = self._resolve_policy(vault, str(policy_raw))
        if kind_key == "VM":
            source_id = str(props.get("sourceResourceId") or props.get("virtualMachineId") or "")
            resource = self.lookup.get(source_id) if source_id else None
            if resource is None:
                raise RecoveryServicesError(err.DATASOURCE_NOT_FOUND, resource=source_id or item_name)
            self._check_region_and_subscription(vault, resource)
            other = self.protecting_vault(resource["id"])
            if other is not None:
                raise RecoveryServicesError(err.VM_PROTECTED_ELSEWHERE, vm=resource["id"], vault=other.id)
            friendly = parse_id(resource["id"]).name
            container = vault.containers.get(container_name.lower())
            required, _ = self.discovery()
            if required and (container is None or container.soft_deleted) and not self.discovered(vault, resource):
                raise RecoveryServicesError(err.VM_NOT_DISCOVERED)
            if container is None or container.soft_deleted:
                container = Container(
                    name=container_name,
                    kind="IaasVM",
                    source_id=resource["id"],
                    friendly_name=friendly,
                    registered_at=self.now(),
                )
                vault.containers[container_name.lower()] = container
            source = resource["id"]
        else:
            container = vault.containers.get(container_name.lower())
            if container is None or container.soft_deleted or container.kind != kind.container_kind:
                raise RecoveryServicesError(err.CONTAINER_NOT_REGISTERED, container=container_name)
            source = str(props.get("sourceResourceId") or container.source_id)
            friendly = str(props.get("friendlyName") or item_name.rsplit(";", maxsplit=1)[-1])
        now = self.now()
        item = Item(
            name=item_name,
            container=container.name,
            kind=kind_key,
            source_id=source,
            friendly_name=friendly,
            policy_id=policy_id,
            created_at=now,
            first_backup_at=now + timedelta(seconds=self.timing.configure_protection + self.timing.first_backup),
        )
        if (container.name.lower(), item_name.lower()) in vault.items:
            raise RecoveryServicesError(err.CONFLICTING_OPERATION, item=item_name)
        vault.items[(container.name.lower(), item_name.lower())] = item

        def undo() -> None:  # the configure-protection job failed: no item stays behind
            if vault.items.get((container.name.lower(), item_name.lower())) is item:
                self._purge_item(vault, item)

        return self._operation("ConfigureProtection", self.timing.configure_protection, undo=undo)

    def _check_region_and_subscription(self, vault: VaultState, resource: dict[str, Any]) -> None:
        parsed = parse_id(resource["id"])
        if (parsed.subscription_id or "").lower() != vault.subscription_id.lower():
            raise RecoveryServicesError(
                err.VM_SUBSCRIPTION_MISMATCH,
                vm=resource["id"],
                vm_sub=parsed.subscription_id,
                vault_sub=vault.subscription_id,
            )
        region = norm_location(str(resource.get("location", "")))
        if region != norm_location(vault.location):
            raise RecoveryServicesError(
                err.VM_REGION_MISMATCH, vm=resource["id"], vm_region=region, vault_region=vault.location
            )

    def delete_item(self, vault_id: str, container_name: str, item_name: str) -> Pending:
        """Stop protection and delete backup data (soft delete when the vault has it on)."""
        with self.lock:
            vault = self.vault(vault_id)
            item = self.item(vault_id, container_name, item_name)
            if item.soft_deleted:
                raise RecoveryServicesError(err.ITEM_SOFT_DELETED, item=item.name)
            if item.pending_delete:
                raise RecoveryServicesError(err.CONFLICTING_OPERATION, item=item.name)
            if vault.security.immutability_state == "Locked":
                raise RecoveryServicesError(err.IMMUTABLE_VAULT_DELETE_DATA, item=item.name)
            item_id = self.item_id(vault, item)
            self._require_optional(vault, OP_DELETE_ITEM_DATA, resource_id=item_id)
            soft = vault.security.soft_delete_state in ("Enabled", ALWAYS_ON)
            retention = vault.security.retention_days

            def delete_data() -> None:
                item.pending_delete = False
                if soft:
                    now = self.now()
                    item.protection_state = "ProtectionStopped"
                    item.deleted_at = now
                    item.deferred_delete_at = now + timedelta(days=retention)
                    item.is_rehydrate = False
                else:
                    self._purge_item(vault, item)

            def undo() -> None:  # the delete job failed: the item keeps its protection and data
                item.pending_delete = False

            item.pending_delete = True
            return self._operation("DeleteBackupData", self.timing.delete_backup_data, effect=delete_data, undo=undo)

    def item_id(self, vault: VaultState, item: Item) -> str:
        return f"{vault.id}/backupFabrics/Azure/protectionContainers/{item.container}/protectedItems/{item.name}"

    # -- engines, registered identities -------------------------------------------------------------
    def list_engines(self, vault_id: str) -> list[BackupEngine]:
        vault = self.vault(vault_id)
        return sorted(vault.engines.values(), key=lambda e: e.name.lower())

    def engine(self, vault_id: str, name: str) -> BackupEngine:
        vault = self.vault(vault_id)
        engine = vault.engines.get(name.lower())
        if engine is None:
            raise RecoveryServicesError(
                err.RESOURCE_NOT_FOUND, type=f"{VAULT_TYPE}/backupEngines", name=name, rg=vault.resource_group
            )
        return engine

    def delete_registered_identity(self, vault_id: str, name: str) -> None:
        """Unregister a MARS agent, DPM or MABS server and with it the items it protects.

        With enhanced (hybrid) security on, the items' data is soft-deleted for 14 days instead of removed, so
        the vault stays undeletable until then: the reason the documented teardown disables it first. INFERRED
        from D-esd / D-script; not in the REST specs.
        """
        with self.lock:
            vault = self.vault(vault_id)
            key = name.lower()
            container = vault.containers.get(key) or next(
                (
                    c
                    for c in vault.containers.values()
                    if c.friendly_name.lower() == key and c.kind in ("MAB", "DPM", "MABS")
                ),
                None,
            )
            if container is None or container.kind not in ("MAB", "DPM", "MABS"):
                raise RecoveryServicesError(
                    err.RESOURCE_NOT_FOUND,
                    type=f"{VAULT_TYPE}/registeredIdentities",
                    name=name,
                    rg=vault.resource_group,
                )
            items = vault.items_in(container.name)
            if items and vault.security.enhanced_security_state in ("Enabled", ALWAYS_ON):
                # security features for hybrid backups: deleted data is retained 14 more days (D-esd; the reason
                # D-script turns enhanced security off first). The server is gone; its data lingers, soft-deleted.
                now = self.now()
                for item in items:
                    item.protection_state = "ProtectionStopped"
                    item.deleted_at = now
                    item.deferred_delete_at = now + timedelta(days=HYBRID_RETENTION_DAYS)
                container.soft_deleted = True
            else:
                for item in items:
                    vault.items.pop((item.container.lower(), item.name.lower()), None)
                vault.containers.pop(container.name.lower(), None)
            for engine_key, engine in list(vault.engines.items()):
                if engine.container.lower() == container.name.lower():
                    vault.engines.pop(engine_key)

    # -- protection intents -------------------------------------------------------------------------
    def put_intent(self, vault_id: str, fabric: str, name: str, body: dict[str, Any]) -> Intent:
        with self.lock:
            vault = self.vault(vault_id)
            props = dict(_props(body))
            if not props.get("protectionIntentItemType"):
                raise RecoveryServicesError(err.INVALID_REQUEST, detail="'protectionIntentItemType' is required.")
            if props.get("policyId"):
                props["policyId"] = self._resolve_policy(vault, str(props["policyId"]))
            props.setdefault("protectionState", "Protected")
            intent = Intent(name=name, fabric=fabric, properties=props)
            vault.intents[name.lower()] = intent
            return intent

    def intent(self, vault_id: str, name: str) -> Intent:
        vault = self.vault(vault_id)
        intent = vault.intents.get(name.lower())
        if intent is None:
            raise RecoveryServicesError(
                err.RESOURCE_NOT_FOUND,
                type=f"{VAULT_TYPE}/backupFabrics/backupProtectionIntent",
                name=name,
                rg=vault.resource_group,
            )
        return intent

    def delete_intent(self, vault_id: str, name: str) -> None:
        with self.lock:
            vault = self.vault(vault_id)
            vault.intents.pop(name.lower(), None)

    def list_intents(self, vault_id: str, odata_filter: str | None) -> list[Intent]:
        vault = self.vault(vault_id)
        wanted = parse_filter(odata_filter)
        found = []
        for intent in vault.intents.values():
            itype = str(intent.properties.get("protectionIntentItemType", ""))
            if "itemtype" in wanted and wanted["itemtype"].lower() not in itype.lower():
                continue
            found.append(intent)
        return sorted(found, key=lambda i: i.name.lower())

    # -- private endpoint connections -----------------------------------------------------------------
    def private_endpoint(self, vault_id: str, name: str) -> PrivateEndpointConnection:
        vault = self.vault(vault_id)
        connection = vault.private_endpoints.get(name.lower())
        if connection is None:
            raise RecoveryServicesError(
                err.RESOURCE_NOT_FOUND,
                type=f"{VAULT_TYPE}/privateEndpointConnections",
                name=name,
                rg=vault.resource_group,
            )
        return connection

    def delete_private_endpoint(self, vault_id: str, name: str) -> Pending | None:
        with self.lock:
            vault = self.vault(vault_id)
            connection = vault.private_endpoints.get(name.lower())
            if connection is None:
                return None
            connection.provisioning_state = "Deleting"

            def remove() -> None:
                vault.private_endpoints.pop(name.lower(), None)

            return self._operation("DeletePrivateEndpointConnection", self.timing.private_endpoint, effect=remove)

    # -- resource guard proxies (MUA) ------------------------------------------------------------------
    def put_proxy(self, vault_id: str, name: str, body: dict[str, Any]) -> ResourceGuardProxy:
        with self.lock:
            vault = self.vault(vault_id)
            props = _props(body)
            guard = str(props.get("resourceGuardResourceId") or "")
            if not guard:
                raise RecoveryServicesError(err.INVALID_REQUEST, detail="'resourceGuardResourceId' is required.")
            excluded = {str(x).lower() for x in props.get("vaultCriticalOperationExclusionList") or []}
            protected = (*ALWAYS_PROTECTED, *(op for op in OPTIONALLY_PROTECTED if op.lower() not in excluded))
            proxy = ResourceGuardProxy(
                name=name,
                guard_id=guard,
                protected_operations=protected,
                description=str(props.get("description") or ""),
                updated=self.now(),
            )
            vault.proxies[name.lower()] = proxy
            return proxy

    def proxy(self, vault_id: str, name: str) -> ResourceGuardProxy:
        vault = self.vault(vault_id)
        proxy = vault.proxies.get(name.lower())
        if proxy is None:
            raise RecoveryServicesError(
                err.RESOURCE_NOT_FOUND,
                type=f"{VAULT_TYPE}/backupResourceGuardProxies",
                name=name,
                rg=vault.resource_group,
            )
        return proxy

    def delete_proxy(self, vault_id: str, name: str) -> bool:
        with self.lock:
            vault = self.vault(vault_id)
            proxy = vault.proxies.get(name.lower())
            if proxy is None:
                return False
            self._require_unlock(vault, OP_DELETE_PROXY, f"{vault.id}/backupResourceGuardProxies/{proxy.name}")
            vault.proxies.pop(name.lower())
            return True

    def unlock_delete(self, vault_id: str, name: str, body: dict[str, Any]) -> datetime:
        """``unlockDelete``: opens a window for one protected delete, if the security admin granted access."""
        with self.lock:
            vault = self.vault(vault_id)
            proxy = self.proxy(vault_id, name)
            target = str((body or {}).get("resourceToBeDeleted") or "")
            if not target:
                raise RecoveryServicesError(err.INVALID_REQUEST, detail="'resourceToBeDeleted' is required.")
            if not self._granted(vault):
                raise RecoveryServicesError(err.MUA_NOT_AUTHORIZED, operation="unlockDelete", guard=proxy.guard_id)
            operation = OP_DELETE_PROXY if "/backupresourceguardproxies/" in id_key(target) else OP_DELETE_ITEM_DATA
            self._require_request(operation, proxy, body.get("resourceGuardOperationRequests"))
            until = self.now() + timedelta(seconds=self.timing.unlock_window)
            vault.unlocks[id_key(target)] = until
            return until

    def grant_resource_guard_access(self, vault_id: str, minutes: float = 60) -> datetime:
        """Sandbox admin: the security admin approves MUA-protected operations on the vault for a while."""
        with self.lock:
            vault = self.vault(vault_id)
            vault.grant_until = self.now() + timedelta(minutes=minutes)
            return vault.grant_until

    def revoke_resource_guard_access(self, vault_id: str) -> None:
        with self.lock:
            vault = self.vault(vault_id)
            vault.grant_until = None
            vault.unlocks.clear()

    def _granted(self, vault: VaultState) -> bool:
        return vault.grant_until is not None and self.now() < vault.grant_until

    def _protected(self, vault: VaultState, operation: str) -> ResourceGuardProxy | None:
        for proxy in vault.proxies.values():
            if operation in proxy.protected_operations:
                return proxy
        return None

    def _require_grant(self, vault: VaultState, operation: str, requests: list[Any] | None = None) -> None:
        """The security admin's grant; with ``requests`` (a critical request's ``resourceGuardOperationRequests``)
        also the guarded operation named in it."""
        proxy = self._protected(vault, operation)
        if proxy is not None and not self._granted(vault):
            raise RecoveryServicesError(err.MUA_NOT_AUTHORIZED, operation=operation, guard=proxy.guard_id)
        if proxy is not None and requests is not None:
            self._require_request(operation, proxy, requests)

    @staticmethod
    def _require_request(operation: str, proxy: ResourceGuardProxy, requests: Any) -> None:
        """Exactly the operation's request, no other (err.MUA_OPERATION_REQUEST: inferred)."""
        wanted = guard_request(proxy.guard_id, operation)
        named = {id_key(str(r)) for r in requests or []} if isinstance(requests, list) else set()
        if named != {id_key(wanted)}:
            raise RecoveryServicesError(
                err.MUA_OPERATION_REQUEST, operation=operation, wanted=wanted, named=", ".join(sorted(named)) or "none"
            )

    def _require_unlock(self, vault: VaultState, operation: str, resource_id: str) -> None:
        proxy = self._protected(vault, operation)
        if proxy is None:
            return
        until = vault.unlocks.get(id_key(resource_id))
        if until is None or self.now() >= until:
            raise RecoveryServicesError(err.MUA_NOT_AUTHORIZED, operation=operation, guard=proxy.guard_id)

    def _require_optional(self, vault: VaultState, operation: str, resource_id: str | None = None) -> None:
        if resource_id is not None:
            self._require_unlock(vault, operation, resource_id)
        else:
            self._require_grant(vault, operation)

    # -- seeding (agent-based kinds and things ARM cannot create) -----------------------------------
    def seed_mars_server(self, vault_id: str, server: str, *, items: Iterable[str] = ("C:\\",)) -> Container:
        """A MARS agent registered to the vault, backing up ``items`` (file/folder volumes)."""
        with self.lock:
            vault = self.vault(vault_id)
            container = Container(name=server, kind="MAB", source_id="", friendly_name=server, registered_at=self.now())
            vault.containers[server.lower()] = container
            for volume in items:
                self._seed_item(vault, container, "MARS", f"FileFolder;{volume}", volume)
            return container

    def seed_backup_server(
        self, vault_id: str, server: str, *, kind: str = "DPM", items: Iterable[str] = ("SQLDB;db1",)
    ) -> Container:
        """A DPM (``kind="DPM"``) or MABS (``kind="MABS"``) server with its backup engine and items."""
        if kind not in ("DPM", "MABS"):
            raise ValueError("kind must be 'DPM' or 'MABS'")
        with self.lock:
            vault = self.vault(vault_id)
            container = Container(name=server, kind=kind, source_id="", friendly_name=server, registered_at=self.now())
            vault.containers[server.lower()] = container
            engine_type = "DpmBackupEngine" if kind == "DPM" else "AzureBackupServerEngine"
            vault.engines[server.lower()] = BackupEngine(name=server, engine_type=engine_type, container=server)
            for name in items:
                self._seed_item(vault, container, kind, name, name.split(";")[-1])
            return container

    def _seed_item(self, vault: VaultState, container: Container, kind: str, name: str, friendly: str) -> Item:
        now = self.now()
        item = Item(
            name=name,
            container=container.name,
            kind=kind,
            source_id="",
            friendly_name=friendly,
            policy_id=None,
            created_at=now,
            first_backup_at=now,
            protection_state="Protected",
            last_backup=now,
            recovery_points=1,
        )
        vault.items[(container.name.lower(), name.lower())] = item
        return item

    def seed_private_endpoint(
        self, vault_id: str, name: str, endpoint_id: str | None = None
    ) -> PrivateEndpointConnection:
        with self.lock:
            vault = self.vault(vault_id)
            endpoint = endpoint_id or (
                f"/subscriptions/{vault.subscription_id}/resourceGroups/{vault.resource_group}"
                f"/providers/Microsoft.Network/privateEndpoints/{name}"
            )
            connection = PrivateEndpointConnection(name=name, endpoint_id=endpoint)
            vault.private_endpoints[name.lower()] = connection
            return connection

    def seed_vm_items(self, vault_id: str, count: int, *, prefix: str = "seeded") -> list[Item]:
        """``count`` protected VM items of VMs that exist nowhere else (a vault near its limits, for tests and
        benchmarks: ``seeded-0001`` ... in resource group ``rg-{prefix}``); no limit is checked. IRPending."""
        with self.lock:
            vault = self.vault(vault_id)
            policy = f"{vault.id}/backupPolicies/DefaultPolicy"
            now = self.now()
            made = []
            for index in range(count):
                group, name = f"rg-{prefix}", f"{prefix}-{index + 1:04d}"
                core = f"iaasvmcontainerv2;{group};{name}"
                source = (f"/subscriptions/{vault.subscription_id}/resourceGroups/{group}/providers/"
                          f"Microsoft.Compute/virtualMachines/{name}")
                container = f"IaasVMContainer;{core}"
                vault.containers.setdefault(container.lower(), Container(
                    name=container, kind="IaasVM", source_id=source, friendly_name=name, registered_at=now))
                item = Item(name=f"VM;{core}", container=container, kind="VM", source_id=source, friendly_name=name,
                            policy_id=policy, created_at=now, first_backup_at=None)
                vault.items[(container.lower(), item.name.lower())] = item
                made.append(item)
            return made

    def seed_soft_deleted_item(self, vault_id: str, container: str, item: str, *, days_left: float) -> Item:
        """Mark an existing item soft-deleted with ``days_left`` of retention (for audits and teardown)."""
        with self.lock:
            vault = self.vault(vault_id)
            found = self.item(vault_id, container, item)
            now = self.now()
            found.protection_state = "ProtectionStopped"
            found.deleted_at = now
            found.deferred_delete_at = now + timedelta(days=days_left)
            del vault
            return found


# ---------------------------------------------------------------------------------------------------------
# default policies
# ---------------------------------------------------------------------------------------------------------
def default_policies(vault_id: str) -> list[Policy]:
    """The policies Azure creates with every vault: DefaultPolicy (standard) and EnhancedPolicy (V2)."""
    run = "2024-01-01T02:00:00Z"
    standard = {
        "backupManagementType": "AzureIaasVM",
        "instantRpRetentionRangeInDays": 2,
        "schedulePolicy": {
            "schedulePolicyType": "SimpleSchedulePolicy",
            "scheduleRunFrequency": "Daily",
            "scheduleRunTimes": [run],
            "scheduleWeeklyFrequency": 0,
        },
        "retentionPolicy": {
            "retentionPolicyType": "LongTermRetentionPolicy",
            "dailySchedule": {"retentionTimes": [run], "retentionDuration": {"count": 30, "durationType": "Days"}},
        },
        "timeZone": "UTC",
        "protectedItemsCount": 0,
    }
    enhanced = {
        "backupManagementType": "AzureIaasVM",
        "instantRpRetentionRangeInDays": 7,
        "policyType": "V2",
        "snapshotConsistencyType": "OnlyCrashConsistent",
        "schedulePolicy": {
            "schedulePolicyType": "SimpleSchedulePolicyV2",
            "scheduleRunFrequency": "Daily",
            "dailySchedule": {"scheduleRunTimes": [run]},
        },
        "retentionPolicy": {
            "retentionPolicyType": "LongTermRetentionPolicy",
            "dailySchedule": {"retentionTimes": [run], "retentionDuration": {"count": 30, "durationType": "Days"}},
        },
        "timeZone": "UTC",
        "protectedItemsCount": 0,
        "resourceGuardOperationRequests": None,
    }
    del vault_id
    return [Policy("DefaultPolicy", standard), Policy("EnhancedPolicy", enhanced)]
