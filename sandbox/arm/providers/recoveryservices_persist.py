"""Recovery Services vault state <-> JSON, so a sandbox started with ``state_file`` resumes with its vaults' contents.

Each vault's whole backup state (items, containers, policies, security settings, Site Recovery...) rides in the
private part of the vault's record in the shared store, which the framework snapshots. Running operations are
not carried over (the framework's operation engine is not persisted): an item whose delete-with-data was still
running comes back unchanged, as if the delete had never been asked for.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from sandbox.arm.providers.recoveryservices_model import (
    BackupEngine,
    Container,
    Intent,
    Item,
    Policy,
    PrivateEndpointConnection,
    ResourceGuardProxy,
    SecuritySettings,
    VaultState,
)
from sandbox.arm.providers.siterecovery_model import Fabric, SiteRecoveryState, SrObject

STATE_KEY = "recoveryServicesState"
VERSION = 1


def _encode(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"$dt": value.isoformat()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _encode(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_encode(v) for v in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"$dt"}:
            return datetime.fromisoformat(value["$dt"])
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def dump_vault(vault: VaultState) -> dict[str, Any]:
    skip = {"site_recovery", "items"}
    body = {f.name: _encode(getattr(vault, f.name)) for f in dataclasses.fields(vault) if f.name not in skip}
    body["items"] = [_encode(item) for item in vault.items.values()]
    sr = vault.site_recovery
    body["site_recovery"] = [_encode(f) for f in sr.fabrics.values()] if sr is not None else []
    return {"version": VERSION, "vault": body}


def load_vault(data: dict[str, Any]) -> VaultState:
    raw = _decode(data["vault"])
    vault = VaultState(
        uid=raw["uid"],
        id=raw["id"],
        location=raw["location"],
        created=raw["created"],
        tenant_id=raw.get("tenant_id", ""),
        tags=raw["tags"],
        sku=raw["sku"],
        identity=raw["identity"],
        public_network_access=raw["public_network_access"],
        security=SecuritySettings(**raw["security"]),
        storage_redundancy=raw["storage_redundancy"],
        cross_region_restore=raw["cross_region_restore"],
        monitoring=raw["monitoring"],
        move=raw["move"],
        etag_time=raw["etag_time"],
        protectable=raw["protectable"],
        grant_until=raw["grant_until"],
        unlocks=raw["unlocks"],
        policy_changes=raw.get("policy_changes", []),
    )
    vault.policies = {k: Policy(**v) for k, v in raw["policies"].items()}
    vault.containers = {k: Container(**v) for k, v in raw["containers"].items()}
    for item_raw in raw["items"]:
        item = Item(**{**item_raw, "pending_delete": False})
        vault.items[(item.container.lower(), item.name.lower())] = item
    vault.engines = {k: BackupEngine(**v) for k, v in raw["engines"].items()}
    vault.intents = {k: Intent(**v) for k, v in raw["intents"].items()}
    vault.proxies = {
        k: ResourceGuardProxy(**{**v, "protected_operations": tuple(v["protected_operations"])})
        for k, v in raw["proxies"].items()
    }
    vault.private_endpoints = {
        k: PrivateEndpointConnection(**{**v, "group_ids": tuple(v["group_ids"])})
        for k, v in raw["private_endpoints"].items()
    }
    sr = SiteRecoveryState(vault)
    for fabric_raw in raw["site_recovery"]:
        fabric = _fabric(fabric_raw)
        sr.fabrics[fabric.name.lower()] = fabric
    vault.site_recovery = sr
    return vault


def _object(raw: dict[str, Any]) -> SrObject:
    return SrObject(
        name=raw["name"],
        properties=raw["properties"],
        children={k: _object(v) for k, v in raw.get("children", {}).items()},
        mappings={k: _object(v) for k, v in raw.get("mappings", {}).items()},
    )


def _fabric(raw: dict[str, Any]) -> Fabric:
    base = _object(raw)
    return Fabric(
        name=base.name,
        properties=base.properties,
        children=base.children,
        mappings=base.mappings,
        networks={k: _object(v) for k, v in raw.get("networks", {}).items()},
    )
