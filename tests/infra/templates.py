"""Read the Bicep templates under ``infra/`` as data, with the PyPI Bicep parser ``pycep-parser``.

No Bicep CLI is needed (it downloads a binary, which a fresh machine cannot). ``pycep`` turns a file into
nested dicts: ``parameters``, ``variables``, ``resources``, ``modules``, ``outputs``, ``globals``. A
resource or module body sits under ``config``; a loop or a condition wraps it in one more ``config``
(``loop_type`` / ``condition`` beside it), which :func:`body` unwraps. Expressions are dicts
(``{"function": ...}``, ``{"operator": ...}``); literals are plain values, so a test that needs a literal
(a filter value, a setting name) reads it where the template writes it literally.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
MAIN = INFRA / "main.bicep"
MODULES = INFRA / "modules"

_SKIP = re.compile(r"#checkov:skip=(CKV2?_[A-Z]+_\d+)(?::\s*(.*))?")


def bicep_files() -> list[Path]:
    """Every Bicep file of the deployment, main first."""
    return [MAIN, *sorted(MODULES.glob("*.bicep"))]


@cache
def _parser() -> BicepParser:
    return BicepParser(cache=False)


@cache
def parse(path: Path) -> dict[str, Any]:
    """The parsed template (raises the parser's error when the file is not valid Bicep)."""
    return _parser().parse(file_path=path)


def body(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The body of a resource or module declaration, through any loop or condition wrapper."""
    config: Any = entry["config"]
    while isinstance(config, Mapping) and ("loop_type" in config or "condition" in config) and "config" in config:
        config = config["config"]
    if not isinstance(config, dict):
        raise TypeError(f"unexpected declaration shape: {entry!r:.200}")
    return config


def target_scope(doc: Mapping[str, Any]) -> str:
    """``targetScope`` of a file; Bicep's default is ``resourceGroup``."""
    scope = (doc.get("globals") or {}).get("scope") or {}
    return str(scope.get("value") or "resourceGroup")


def resources(path: Path, type_name: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
    """(symbolic name, declaration) of each resource in a file, optionally of one type (case-insensitive)."""
    for name, entry in (parse(path).get("resources") or {}).items():
        if type_name is None or str(entry["type"]).lower() == type_name.lower():
            yield name, entry


def one_resource(path: Path, type_name: str) -> dict[str, Any]:
    """The body of the single resource of ``type_name`` in a file (fails when there is not exactly one)."""
    found = [body(entry) for _, entry in resources(path, type_name)]
    assert len(found) == 1, f"{path.name}: expected one {type_name}, found {len(found)}"
    return found[0]


def all_resources(type_name: str) -> Iterator[tuple[Path, str, dict[str, Any]]]:
    """(file, symbolic name, body) of every resource of a type across the deployment."""
    for path in bicep_files():
        for name, entry in resources(path, type_name):
            yield path, name, body(entry)


def checkov_skips(path: Path) -> list[tuple[str, str]]:
    """(check id, justification) of every inline ``#checkov:skip=`` comment in a file."""
    return [(m.group(1), (m.group(2) or "").strip()) for m in _SKIP.finditer(path.read_text())]


def deployed_app_settings() -> dict[str, str]:
    """The Function App's settings as the template writes them: literals as they are, a parameter by its
    default (``""`` when it has none). Enough to resolve the ``%SETTING%`` expressions of trigger bindings."""
    path = MODULES / "function-app.bicep"
    defaults = {name: spec.get("default") for name, spec in parse(path)["parameters"].items()}
    site = one_resource(path, "Microsoft.Web/sites")
    out = {}
    for entry in site["properties"]["siteConfig"]["appSettings"]:
        value = entry["value"]
        if isinstance(value, str) and value in defaults:
            value = defaults[value]
        out[str(entry["name"])] = value if isinstance(value, str) else ""
    return out


def app_catalog(env: Mapping[str, str] | None = None) -> Any:
    """The functions ``function_app`` registers, described with the deployed app settings (the sandbox's
    catalogue indexes the app once: the Functions SDK refuses a second indexing)."""
    import function_app
    from sandbox.durable.discovery import FunctionCatalog

    return FunctionCatalog(function_app.app, env=deployed_app_settings() if env is None else env)
