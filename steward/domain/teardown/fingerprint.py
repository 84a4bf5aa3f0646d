"""The plan's fingerprint: sha256 over a canonical inventory (objects sorted, ARM ids lower-cased, the
observation time left out), so an approval names exactly what it approved."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final

from steward.domain.teardown.inventory import VaultInventory


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
