"""Resource providers of the ARM sandbox, discovered by module.

Every module in this package that defines ``register(router, ctx)`` is a provider: it is imported and its
``register`` called once per sandbox (in module-name order, ``resources`` first). Add a file; touch nothing
else. A module may also define ``PROVIDER`` (its namespace string) for documentation and diagnostics.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sandbox.arm.context import ProviderContext
    from sandbox.arm.routing import Router

FIRST = ("resources",)


def provider_modules(only: Iterable[str] | None = None) -> list[ModuleType]:
    names = sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_"))
    if only is not None:
        wanted = set(only)
        missing = wanted - set(names)
        if missing:
            raise ValueError(f"unknown sandbox provider modules: {sorted(missing)}; known: {names}")
        names = [n for n in names if n in wanted]
    ordered = [n for n in FIRST if n in names] + [n for n in names if n not in FIRST]
    modules = [importlib.import_module(f"{__name__}.{name}") for name in ordered]
    return [m for m in modules if callable(getattr(m, "register", None))]


def register_all(router: Router, ctx: ProviderContext, only: Iterable[str] | None = None) -> list[str]:
    """Register every provider module's routes (or those named in ``only``); returns the module names."""
    done = []
    for module in provider_modules(only):
        module.register(router, ctx)
        done.append(module.__name__.rsplit(".", 1)[-1])
    return done
