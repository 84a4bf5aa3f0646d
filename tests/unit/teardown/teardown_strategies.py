"""Hypothesis strategies and small builders for vault inventories."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from steward.domain.teardown import (
    BackupInstance,
    BackupItem,
    BackupPolicy,
    ContainerKind,
    ImmutabilityState,
    ItemKind,
    ItemState,
    PrivateEndpointConnection,
    ProtectionContainer,
    ProtectionIntent,
    RegisteredServer,
    SiteRecoveryKind,
    SiteRecoveryObject,
    SoftDeleteState,
    VaultInventory,
    VaultKind,
    VaultSettings,
)

SUB = "00000000-0000-0000-0000-0000000000aa"
RS_VAULT = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.RecoveryServices/vaults/vault-1"
BV_VAULT = f"/subscriptions/{SUB}/resourceGroups/rg-backup/providers/Microsoft.DataProtection/backupVaults/bv-1"
GUARD = "/subscriptions/x/resourceGroups/sec/providers/Microsoft.DataProtection/resourceGuards/g"
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)

names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=12)
future = st.integers(min_value=1, max_value=180 * 24).map(lambda h: NOW + timedelta(hours=h))
past = st.integers(min_value=1, max_value=24 * 30).map(lambda h: NOW - timedelta(hours=h))

settings_strategy = st.builds(
    VaultSettings,
    soft_delete=st.sampled_from(
        [SoftDeleteState.ENABLED, SoftDeleteState.DISABLED, SoftDeleteState.ALWAYS_ON]
    ),
    soft_delete_retention_days=st.integers(min_value=14, max_value=180),
    enhanced_security=st.sampled_from(
        [SoftDeleteState.ENABLED, SoftDeleteState.DISABLED, SoftDeleteState.ALWAYS_ON]
    ),
    immutability=st.sampled_from(list(ImmutabilityState)),
    mua_enabled=st.booleans(),
    resource_guard_id=st.none() | st.just(GUARD),
)


def item(
    name: str,
    kind: ItemKind = ItemKind.VM,
    state: ItemState = ItemState.PROTECTED,
    *,
    container: str | None = None,
    deferred: datetime | None = None,
    vault: str = RS_VAULT,
) -> BackupItem:
    container = container or f"iaasvmcontainer;iaasvmcontainerv2;rg;{name}"
    return BackupItem(
        id=f"{vault}/backupFabrics/Azure/protectionContainers/{container}/protectedItems/{kind.value};{name}",
        name=f"{kind.value};{name}",
        fabric="Azure",
        container=container,
        kind=kind,
        state=state,
        source_resource_id=f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/{name}",
        item_type="Microsoft.Compute/virtualMachines",
        deferred_delete_at=deferred if state is ItemState.SOFT_DELETED else None,
    )


@st.composite
def items_strategy(draw: st.DrawFn) -> BackupItem:
    name = draw(names)
    kind = draw(st.sampled_from([ItemKind.VM, ItemKind.SQL, ItemKind.SAP_HANA, ItemKind.AZURE_FILES, ItemKind.MARS]))
    state = draw(st.sampled_from(list(ItemState)))
    deferred = draw(st.one_of(future, past)) if state is ItemState.SOFT_DELETED else None
    container = {
        ItemKind.VM: f"iaasvmcontainer;iaasvmcontainerv2;rg;{name}",
        ItemKind.SQL: f"vmappcontainer;compute;rg;sql-{name}",
        ItemKind.SAP_HANA: f"vmappcontainer;compute;rg;hana-{name}",
        ItemKind.AZURE_FILES: f"storagecontainer;storage;rg;{name}",
        ItemKind.MARS: f"mars-{name}",
    }[kind]
    return item(name, kind, state, container=container, deferred=deferred)


@st.composite
def containers_strategy(draw: st.DrawFn) -> ProtectionContainer:
    name = draw(names)
    kind = draw(st.sampled_from(list(ContainerKind)))
    cname = f"{kind.value};{name}"
    return ProtectionContainer(
        id=f"{RS_VAULT}/backupFabrics/Azure/protectionContainers/{cname}", name=cname, fabric="Azure", kind=kind
    )


@st.composite
def site_recovery_strategy(draw: st.DrawFn) -> SiteRecoveryObject:
    name = draw(names)
    kind = draw(st.sampled_from(list(SiteRecoveryKind)))
    return SiteRecoveryObject(
        id=f"{RS_VAULT}/replicationFabrics/f1/{kind.value}/{name}", name=name, kind=kind, fabric="f1", parent="c1"
    )


def _unique(strategy: st.SearchStrategy, max_size: int) -> st.SearchStrategy:
    return st.lists(strategy, max_size=max_size, unique_by=lambda o: o.id.lower()).map(tuple)


@st.composite
def rs_inventories(draw: st.DrawFn) -> VaultInventory:
    return VaultInventory(
        vault_id=RS_VAULT,
        kind=VaultKind.RECOVERY_SERVICES,
        location="westeurope",
        tags=tuple(sorted(draw(st.dictionaries(names, names, max_size=2)).items())),
        settings=draw(settings_strategy),
        items=draw(_unique(items_strategy(), 8)),
        containers=draw(_unique(containers_strategy(), 4)),
        intents=draw(
            _unique(
                names.map(
                    lambda n: ProtectionIntent(
                        id=f"{RS_VAULT}/backupFabrics/Azure/backupProtectionIntent/{n}", name=n, fabric="Azure"
                    )
                ),
                2,
            )
        ),
        servers=draw(
            _unique(
                st.tuples(names, st.sampled_from([ContainerKind.MARS, ContainerKind.MABS, ContainerKind.DPM])).map(
                    lambda t: RegisteredServer(
                        id=f"{RS_VAULT}/registeredIdentities/{t[0]}", name=t[0], kind=t[1], container=t[0]
                    )
                ),
                3,
            )
        ),
        site_recovery=draw(_unique(site_recovery_strategy(), 4)),
        private_endpoints=draw(
            _unique(
                names.map(
                    lambda n: PrivateEndpointConnection(id=f"{RS_VAULT}/privateEndpointConnections/{n}", name=n)
                ),
                2,
            )
        ),
        observed_at=NOW,
    )


@st.composite
def bv_inventories(draw: st.DrawFn) -> VaultInventory:
    @st.composite
    def instance(draw2: st.DrawFn) -> BackupInstance:
        name = draw2(names)
        state = draw2(st.sampled_from(list(ItemState)))
        return BackupInstance(
            id=f"{BV_VAULT}/backupInstances/{name}",
            name=name,
            datasource_type=draw2(
                st.sampled_from(["Microsoft.Compute/disks", "Microsoft.DBforPostgreSQL/flexibleServers"])
            ),
            state=state,
            purge_at=draw2(st.one_of(future, past)) if state is ItemState.SOFT_DELETED else None,
        )

    return VaultInventory(
        vault_id=BV_VAULT,
        kind=VaultKind.BACKUP,
        location="westeurope",
        settings=VaultSettings(
            soft_delete=draw(
                st.sampled_from([SoftDeleteState.ENABLED, SoftDeleteState.DISABLED, SoftDeleteState.ALWAYS_ON])
            ),
            immutability=draw(st.sampled_from(list(ImmutabilityState))),
            mua_enabled=draw(st.booleans()),
        ),
        instances=draw(_unique(instance(), 6)),
        policies=draw(
            _unique(names.map(lambda n: BackupPolicy(id=f"{BV_VAULT}/backupPolicies/{n}", name=n)), 3)
        ),
        observed_at=NOW,
    )


inventories = st.one_of(rs_inventories(), bv_inventories())
