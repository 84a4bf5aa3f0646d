"""Discovery: read the functions a Python v2 Functions app registers on its app object.

The worker indexes an app by importing ``function_app.py`` and calling ``app.get_functions()``; so do we.
Every trigger, route, schedule, orchestrator and activity comes from that list, never from a second,
hand-written registry.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import sys
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func

from .errors import AppLoadError, UnknownFunction

ORCHESTRATION = "orchestrationTrigger"
ACTIVITY = "activityTrigger"
HTTP = "httpTrigger"
EVENT_GRID = "eventGridTrigger"
TIMER = "timerTrigger"
DURABLE_CLIENT = "durableClient"
ENTITY = "entityTrigger"

_SETTING_EXPRESSION = re.compile(r"%([^%]+)%")


def resolve_setting_expressions(text: str, env: Mapping[str, str] | None = None) -> str:
    """Replace ``%NAME%`` binding expressions with app settings, as the host does for schedules."""
    settings = os.environ if env is None else env

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in settings:
            raise AppLoadError(f"binding expression %{name}% names an app setting that is not set")
        return settings[name]

    return _SETTING_EXPRESSION.sub(lookup, text)


@dataclass(frozen=True)
class RegisteredFunction:
    """One function of the app with the metadata the host needs to invoke it."""

    name: str
    trigger_type: str
    trigger_arg: str
    user_function: Callable[..., Any]
    bindings: tuple[Mapping[str, Any], ...]
    route: str | None = None
    methods: tuple[str, ...] = ()
    auth_level: str = "function"
    schedule: str | None = None
    run_on_startup: bool = False
    client_arg: str | None = None
    extra_args: tuple[str, ...] = field(default=())

    @property
    def is_async(self) -> bool:
        import inspect

        return inspect.iscoroutinefunction(self.user_function)


def _enum_text(value: Any) -> str:
    return str(getattr(value, "value", value))


def _describe(fn: Any, env: Mapping[str, str] | None) -> RegisteredFunction:
    trigger = fn.get_trigger()
    if trigger is None:
        raise AppLoadError(f"function {fn.get_function_name()!r} has no trigger")
    ttype = trigger.get_binding_name()
    bindings = tuple(b.get_dict_repr() for b in fn.get_bindings())
    client_arg = next((b["name"] for b in bindings if b.get("type") == DURABLE_CLIENT), None)
    route = methods = auth = schedule = None
    run_on_startup = False
    if ttype == HTTP:
        route = trigger.route or fn.get_function_name()
        methods = tuple(_enum_text(m).upper() for m in (trigger.methods or ["GET", "POST"]))
        auth = _enum_text(trigger.auth_level or "function").lower()
    if ttype == TIMER:
        schedule = resolve_setting_expressions(trigger.schedule, env)
        run_on_startup = bool(trigger.run_on_startup)
    in_args = tuple(
        b["name"] for b in bindings
        if b.get("direction") in ("IN", 0, "in") and b["name"] not in (trigger.name, client_arg)
    )
    return RegisteredFunction(
        name=fn.get_function_name(),
        trigger_type=ttype,
        trigger_arg=trigger.name,
        user_function=fn.get_user_function(),
        bindings=bindings,
        route=route,
        methods=methods or (),
        auth_level=auth or "function",
        schedule=schedule,
        run_on_startup=run_on_startup,
        client_arg=client_arg,
        extra_args=in_args,
    )


_INDEXED: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()


def _indexed(app: Any) -> list[Any]:
    """``app.get_functions()`` once per app object: the SDK refuses a second indexing of the same app."""
    if app not in _INDEXED:
        _INDEXED[app] = list(app.get_functions())
    return _INDEXED[app]


class FunctionCatalog:
    """The app's registered functions, by kind and by name."""

    def __init__(self, app: Any, env: Mapping[str, str] | None = None) -> None:
        if not hasattr(app, "get_functions"):
            raise AppLoadError(f"{type(app).__name__} is not a Functions app object (no get_functions())")
        self.app = app
        described = [_describe(f, env) for f in _indexed(app)]
        self._by_name: dict[str, RegisteredFunction] = {}
        for item in described:
            key = item.name.lower()
            if key in self._by_name:
                raise AppLoadError(f"function name {item.name!r} is registered twice")
            self._by_name[key] = item

    def all(self) -> list[RegisteredFunction]:
        return list(self._by_name.values())

    def of_kind(self, trigger_type: str) -> list[RegisteredFunction]:
        return [f for f in self._by_name.values() if f.trigger_type == trigger_type]

    def get(self, name: str, trigger_type: str) -> RegisteredFunction:
        found = self._by_name.get(name.lower())
        if found is None or found.trigger_type != trigger_type:
            known = sorted(f.name for f in self.of_kind(trigger_type))
            raise UnknownFunction(f"no {trigger_type} function named {name!r} (the app registers {known})")
        return found

    def has(self, name: str, trigger_type: str) -> bool:
        found = self._by_name.get(name.lower())
        return found is not None and found.trigger_type == trigger_type

    @property
    def orchestrators(self) -> list[RegisteredFunction]:
        return self.of_kind(ORCHESTRATION)

    @property
    def activities(self) -> list[RegisteredFunction]:
        return self.of_kind(ACTIVITY)

    @property
    def routes(self) -> list[RegisteredFunction]:
        return self.of_kind(HTTP)

    @property
    def event_grid(self) -> list[RegisteredFunction]:
        return self.of_kind(EVENT_GRID)

    @property
    def timers(self) -> list[RegisteredFunction]:
        return self.of_kind(TIMER)


def load_app(target: str | Path, attribute: str = "app") -> Any:
    """Import an app module by file path or dotted name and return its app object.

    A path is imported under a name derived from the file so two apps never collide in ``sys.modules``;
    its folder is put on ``sys.path`` first, as the worker does with the app root.
    """
    text = str(target)
    if text.endswith(".py") or os.sep in text or "/" in text:
        path = Path(text).resolve()
        if not path.is_file():
            raise AppLoadError(f"app module {path} does not exist")
        root = str(path.parent)
        if root not in sys.path:
            sys.path.insert(0, root)
        module_name = path.stem if path.stem == "function_app" else f"_sandbox_app_{path.stem}"
        existing = sys.modules.get(module_name)
        if existing is not None and getattr(existing, "__file__", None) == str(path):
            module = existing
        else:
            spec = importlib.util.spec_from_file_location(module_name, path)
            if spec is None or spec.loader is None:
                raise AppLoadError(f"cannot import {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[module_name] = module
            try:
                spec.loader.exec_module(module)
            except Exception:
                sys.modules.pop(module_name, None)
                raise
    else:
        module = importlib.import_module(text)
    app = getattr(module, attribute, None)
    if app is None:
        raise AppLoadError(f"module {text} defines no {attribute!r} object")
    return app


def load_catalog(target: str | Path | Any, env: Mapping[str, str] | None = None) -> FunctionCatalog:
    """A catalog from an app object, or from a module path / name holding ``app``."""
    if isinstance(target, FunctionCatalog):
        return target
    app = target if hasattr(target, "get_functions") else load_app(target)
    return FunctionCatalog(app, env)


__all__ = [
    "ACTIVITY",
    "DURABLE_CLIENT",
    "EVENT_GRID",
    "HTTP",
    "ORCHESTRATION",
    "TIMER",
    "FunctionCatalog",
    "RegisteredFunction",
    "func",
    "load_app",
    "load_catalog",
    "resolve_setting_expressions",
]
