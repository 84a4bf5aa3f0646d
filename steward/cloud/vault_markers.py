"""The teardown's marker on a vault (``steward.domain.compensation``): write it before a protection is turned
off, remove it when the saga ends, find the vaults that carry one, and read a vault's current settings.

Tags go through ``Microsoft.Resources/tags/default`` at the vault's scope (``Tags_UpdateAtScope``,
api-version 2025-04-01 as pinned for Microsoft.Resources): ``Merge`` adds the marker without touching the
vault's other tags and ``Delete`` with the marker's name *and value* removes it only if it is still the one we
read (a compare-and-delete). A PATCH of the vault's ``tags`` would replace them all (ARM RPC
``resource-api-reference.md``, "Patch Resource"), losing a tag a person added meanwhile. Needs
``Microsoft.Resources/tags/write`` on the vault (in Contributor and Tag Contributor; the app's teardown role
lists it).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any, Final

from steward.cloud import teardown_arm as arm
from steward.cloud.errors import NotFound
from steward.cloud.teardown_ops import TeardownOps, _call, _quiet_not_found
from steward.cloud.wire import wire
from steward.domain.compensation import MARKER_TAG, InvalidMarker, TeardownMarker
from steward.domain.teardown import VaultKind, VaultRef

LOG = logging.getLogger("steward.teardown")

_VAULT_TYPES: Final = frozenset(k.arm_type.lower() for k in VaultKind)


class VaultMarkers:
    """Reads and writes the teardown marker tag of vaults, through the app's SDK clients."""

    def __init__(self, ops: TeardownOps) -> None:
        self._ops = ops
        self._clients = ops.clients

    def _tags(self, vault: VaultRef) -> Any:
        return self._clients.resources(vault.subscription_id).tags

    def read(self, vault: VaultRef) -> str | None:
        """The marker tag's value (None: no marker, or no vault)."""
        body = _quiet_not_found(lambda: wire(self._tags(vault).get_at_scope(vault.id)))
        tags = ((body or {}).get("properties") or {}).get("tags") or {}
        return next((str(v) for k, v in tags.items() if k.lower() == MARKER_TAG), None)

    def _patch(self, vault: VaultRef, operation: str, tags: dict[str, str]) -> None:
        interval = self._clients.target.polling_interval
        body: Any = {"operation": operation, "properties": {"tags": tags}}
        _call(lambda: self._tags(vault).begin_update_at_scope(vault.id, body, polling_interval=interval).result())

    def mark(self, vault: VaultRef, marker: TeardownMarker) -> tuple[str, TeardownMarker]:
        """Write ``marker`` (merged over one an interrupted teardown left): the effect (``marked`` /
        ``unchanged`` / ``already-gone``) and the marker the vault carries now. :class:`InvalidMarker` when it
        does not fit a tag value."""
        try:
            current = self.read(vault)
        except NotFound:
            return "already-gone", marker
        older: TeardownMarker | None = None
        if current is not None:
            try:
                older = TeardownMarker.decode(current)
            except InvalidMarker:
                older = None  # unreadable: ours replaces it
        wanted = marker.merged_with(older)
        if older is not None and older.instance_id == marker.instance_id and wanted == older:
            # ours already (an activity retry); a marker naming our instance id but weaker values is not ours
            # (ids are predictable): it is rewritten with the stronger values
            return "unchanged", older
        try:
            self._patch(vault, "Merge", {MARKER_TAG: wanted.encode()})
        except NotFound:
            return "already-gone", marker
        return "marked", wanted

    def unmark(self, vault: VaultRef, instance_id: str | None = None) -> str:
        """Remove the marker (only the one ``instance_id`` wrote, when given). ``removed`` / ``unchanged`` /
        ``already-gone``."""
        current = self.read(vault)
        if current is None:
            return "unchanged"
        if instance_id is not None:
            try:
                if TeardownMarker.decode(current).instance_id != instance_id:
                    return "unchanged"  # another teardown's: it removes its own
            except InvalidMarker:
                return "unchanged"
        try:
            self._patch(vault, "Delete", {MARKER_TAG: current})
        except NotFound:
            return "already-gone"
        return "removed"

    def find(self, subscription_id: str) -> Iterator[tuple[str, str]]:
        """``(vault id, marker)`` of every vault of the subscription that carries the marker tag."""
        listed = self._clients.resources(subscription_id).resources.list(filter=f"tagName eq '{MARKER_TAG}'")
        for resource in _call(lambda: list(listed)):
            body = wire(resource)
            if str(body.get("type") or "").lower() not in _VAULT_TYPES:
                continue
            tags = body.get("tags") or {}
            value = next((str(v) for k, v in tags.items() if k.lower() == MARKER_TAG), None)
            if value is not None:
                yield str(body["id"]), value

    def current_settings(self, vault: VaultRef) -> dict[str, str] | None:
        """The settings a teardown changes, as the vault has them now (None: the vault is gone)."""
        rg, name = vault.resource_group, vault.name
        if vault.kind is VaultKind.RECOVERY_SERVICES:
            rs = self._clients.recovery_services(vault.subscription_id)
            bk = self._clients.recovery_services_backup(vault.subscription_id)
            body = _quiet_not_found(lambda: wire(rs.vaults.get(rg, name)))
            if body is None:
                return None
            config = _quiet_not_found(lambda: wire(bk.backup_resource_vault_configs.get(name, rg)))
            settings = arm.recovery_services_settings(body, config)
            return {
                "softDelete": settings.soft_delete.value,
                "enhancedSecurity": settings.enhanced_security.value,
                "immutability": settings.immutability.value,
            }
        dp = self._clients.data_protection(vault.subscription_id)
        body = _quiet_not_found(lambda: wire(dp.backup_vaults.get(rg, name)))
        if body is None:
            return None
        settings = arm.backup_vault_settings(body)
        return {"softDelete": settings.soft_delete.value, "immutability": settings.immutability.value}


__all__ = ["VaultMarkers"]
