"""Site Recovery inside a Recovery Services vault, as far as vault deletion and moves need it.

Paths and methods follow ``azure-mgmt-recoveryservicessiterecovery`` (read, not used at runtime):
fabrics ``PUT``/``GET``/``DELETE`` (purge) + ``POST .../remove``; protection containers ``PUT``/``GET`` +
``POST .../remove``; container mappings ``PUT``/``GET``/``DELETE`` (purge) + ``POST .../remove``; network
mappings ``PUT``/``GET``/``DELETE``; replicated items ``PUT``/``GET``/``DELETE`` (purge) + ``POST .../remove``
(disable replication). Every write is an LRO (200/202, deletes 202/204).

The teardown order of D-script is enforced: a container with replicated items or mappings cannot be
removed, a fabric whose containers still hold replicated items or mappings, or with network mappings, cannot be
removed (error code INFERRED). Empty protection containers go with their fabric: D-script never removes a
protection container (no ``Remove-AzRecoveryServicesAsrProtectionContainer``); it purges items, removes container
mappings and network mappings, then ``Remove-AzRecoveryServicesAsrFabric -Force`` (issue #13 item 5).
While anything here exists the vault can neither be deleted nor moved.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sandbox.arm.providers import recoveryservices_errors as err
from sandbox.arm.providers.recoveryservices_errors import RecoveryServicesError

if TYPE_CHECKING:
    from sandbox.arm.providers.recoveryservices_model import VaultState

FABRIC_TYPE = "Microsoft.RecoveryServices/vaults/replicationFabrics"
CONTAINER_TYPE = FABRIC_TYPE + "/replicationProtectionContainers"
ITEM_TYPE = CONTAINER_TYPE + "/replicationProtectedItems"
MAPPING_TYPE = CONTAINER_TYPE + "/replicationProtectionContainerMappings"
NETWORK_TYPE = FABRIC_TYPE + "/replicationNetworks"
NETWORK_MAPPING_TYPE = NETWORK_TYPE + "/replicationNetworkMappings"


@dataclass
class SrObject:
    name: str
    properties: dict[str, Any]
    children: dict[str, SrObject] = field(default_factory=dict)
    mappings: dict[str, SrObject] = field(default_factory=dict)


@dataclass
class Fabric(SrObject):
    networks: dict[str, SrObject] = field(default_factory=dict)  # network name -> its network mappings


class SiteRecoveryState:
    """Fabrics -> protection containers -> replicated items / container mappings; networks -> mappings."""

    def __init__(self, vault: VaultState) -> None:
        self.vault = vault
        self.fabrics: dict[str, Fabric] = {}

    def settle(self, now: datetime) -> None:
        del now  # nothing here changes with time on its own

    # -- inventory ----------------------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        containers = [c for f in self.fabrics.values() for c in f.children.values()]
        return {
            "fabrics": len(self.fabrics),
            "protectionContainers": len(containers),
            "replicatedItems": sum(len(c.children) for c in containers),
            "containerMappings": sum(len(c.mappings) for c in containers),
            "networkMappings": sum(len(n.children) for f in self.fabrics.values() for n in f.networks.values()),
        }

    def blockers(self) -> list[str]:
        counts = self.counts()
        words = {
            "replicatedItems": "Site Recovery replicated items",
            "containerMappings": "Site Recovery protection container mappings",
            "networkMappings": "Site Recovery network mappings",
            "fabrics": "Site Recovery fabrics",
        }
        return [f"{counts[key]} {text}" for key, text in words.items() if counts[key]]

    # -- lookups ------------------------------------------------------------------------------------
    def fabric(self, name: str) -> Fabric:
        fabric = self.fabrics.get(name.lower())
        if fabric is None:
            raise self._not_found(FABRIC_TYPE, name)
        return fabric

    def container(self, fabric: str, name: str) -> SrObject:
        container = self.fabric(fabric).children.get(name.lower())
        if container is None:
            raise self._not_found(CONTAINER_TYPE, name)
        return container

    def item(self, fabric: str, container: str, name: str) -> SrObject:
        item = self.container(fabric, container).children.get(name.lower())
        if item is None:
            raise self._not_found(ITEM_TYPE, name)
        return item

    def mapping(self, fabric: str, container: str, name: str) -> SrObject:
        mapping = self.container(fabric, container).mappings.get(name.lower())
        if mapping is None:
            raise self._not_found(MAPPING_TYPE, name)
        return mapping

    def network_mapping(self, fabric: str, network: str, name: str) -> SrObject:
        net = self.fabric(fabric).networks.get(network.lower())
        mapping = net.children.get(name.lower()) if net else None
        if mapping is None:
            raise self._not_found(NETWORK_MAPPING_TYPE, name)
        return mapping

    def _not_found(self, rtype: str, name: str) -> RecoveryServicesError:
        return RecoveryServicesError(err.RESOURCE_NOT_FOUND, type=rtype, name=name, rg=self.vault.resource_group)

    # -- writes -------------------------------------------------------------------------------------
    def put_fabric(self, name: str, body: dict[str, Any]) -> Fabric:
        existing = self.fabrics.get(name.lower())
        props = _properties(body, {"friendlyName": name, "encryptionDetails": {}, "health": "Normal"})
        if existing is not None:
            existing.properties = props
            return existing
        fabric = Fabric(name=name, properties=props)
        self.fabrics[name.lower()] = fabric
        return fabric

    def put_container(self, fabric: str, name: str, body: dict[str, Any]) -> SrObject:
        parent = self.fabric(fabric)
        props = _properties(body, {"friendlyName": name, "fabricFriendlyName": parent.name, "role": "Primary"})
        return _upsert(parent.children, name, props)

    def put_item(self, fabric: str, container: str, name: str, body: dict[str, Any]) -> SrObject:
        parent = self.container(fabric, container)
        props = _properties(body, {"friendlyName": name, "protectionState": "Protected", "replicationHealth": "Normal"})
        return _upsert(parent.children, name, props)

    def put_mapping(self, fabric: str, container: str, name: str, body: dict[str, Any]) -> SrObject:
        parent = self.container(fabric, container)
        props = _properties(body, {"state": "Paired", "health": "Normal", "sourceFabricFriendlyName": fabric})
        return _upsert(parent.mappings, name, props)

    def put_network_mapping(self, fabric: str, network: str, name: str, body: dict[str, Any]) -> SrObject:
        parent = self.fabric(fabric)
        net = parent.networks.setdefault(network.lower(), SrObject(name=network, properties={}))
        props = _properties(body, {"state": "Paired", "primaryNetworkFriendlyName": network})
        return _upsert(net.children, name, props)

    # -- removals (checked now, applied when the LRO ends) --------------------------------------------
    def check_remove_fabric(self, name: str) -> Fabric:
        fabric = self.fabric(name)
        in_use = [
            f"{kind} {obj.name} (in protection container {c.name})"
            for c in fabric.children.values()
            for kind, objs in (("replicated item", c.children), ("container mapping", c.mappings))
            for obj in objs.values()
        ]
        in_use += [f"network mapping {m.name}" for n in fabric.networks.values() for m in n.children.values()]
        if in_use:
            raise RecoveryServicesError(err.SITE_RECOVERY_IN_USE, what=f"fabric {fabric.name}", used=", ".join(in_use))
        return fabric

    def remove_fabric(self, name: str) -> None:
        self.fabrics.pop(name.lower(), None)

    def check_remove_container(self, fabric: str, name: str) -> SrObject:
        container = self.container(fabric, name)
        in_use = [f"replicated item {i.name}" for i in container.children.values()]
        in_use += [f"container mapping {m.name}" for m in container.mappings.values()]
        if in_use:
            raise RecoveryServicesError(
                err.SITE_RECOVERY_IN_USE, what=f"protection container {container.name}", used=", ".join(in_use)
            )
        return container

    def remove_container(self, fabric: str, name: str) -> None:
        parent = self.fabrics.get(fabric.lower())
        if parent is not None:
            parent.children.pop(name.lower(), None)

    def check_remove_mapping(self, fabric: str, container: str, name: str) -> SrObject:
        parent = self.container(fabric, container)
        mapping = self.mapping(fabric, container, name)
        if parent.children:
            raise RecoveryServicesError(
                err.SITE_RECOVERY_IN_USE,
                what=f"container mapping {mapping.name}",
                used=", ".join(f"replicated item {i.name}" for i in parent.children.values()),
            )
        return mapping

    def remove_mapping(self, fabric: str, container: str, name: str) -> None:
        parent = self.fabrics.get(fabric.lower())
        holder = parent.children.get(container.lower()) if parent else None
        if holder is not None:
            holder.mappings.pop(name.lower(), None)

    def remove_item(self, fabric: str, container: str, name: str) -> None:
        parent = self.fabrics.get(fabric.lower())
        holder = parent.children.get(container.lower()) if parent else None
        if holder is not None:
            holder.children.pop(name.lower(), None)

    def remove_network_mapping(self, fabric: str, network: str, name: str) -> None:
        parent = self.fabrics.get(fabric.lower())
        net = parent.networks.get(network.lower()) if parent else None
        if net is not None:
            net.children.pop(name.lower(), None)


def _properties(body: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    props = (body or {}).get("properties") if isinstance(body, dict) else None
    merged = dict(defaults)
    if isinstance(props, dict):
        merged.update({k: v for k, v in props.items() if k not in ("providerSpecificDetails", "providerSpecificInput")})
        specific = props.get("providerSpecificDetails") or props.get("providerSpecificInput")
        if isinstance(specific, dict):
            merged["providerSpecificDetails"] = specific
    return merged


def _upsert(holder: dict[str, SrObject], name: str, props: dict[str, Any]) -> SrObject:
    existing = holder.get(name.lower())
    if existing is not None:
        existing.properties = props
        return existing
    created = SrObject(name=name, properties=props)
    holder[name.lower()] = created
    return created
