"""Turns SDK response models into plain JSON-shaped dicts with the REST wire names.

The management SDKs come in two generations: TypeSpec-generated models (``as_dict()`` gives wire names)
and msrest models (``serialize(keep_readonly=True)`` gives wire names; ``as_dict()`` would give Python
attribute names). Adapters work on wire-shaped dicts so that the names in our code are the names in the
REST specs and the sandbox, whatever the SDK generation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def wire(model: Any) -> dict[str, Any]:
    """The REST-shaped dict of an SDK model (or of a dict, unchanged)."""
    if model is None:
        return {}
    if isinstance(model, Mapping):
        as_dict = getattr(model, "as_dict", None)
        return dict(as_dict()) if callable(as_dict) else dict(model)
    serialize = getattr(model, "serialize", None)
    if callable(serialize):
        return dict(serialize(keep_readonly=True))
    raise TypeError(f"cannot read {type(model).__name__} as a REST body")


def dig(body: Mapping[str, Any], *path: str, default: Any = None) -> Any:
    """``body[p0][p1]...`` or ``default`` when any step is missing or not a mapping."""
    current: Any = body
    for key in path:
        if not isinstance(current, Mapping) or key not in current:
            return default
        current = current[key]
    return current
