"""Every Bicep file parses, and the files fit together as ``bicep build`` would check: module paths exist,
module parameters match the callee's declared parameters (none unknown, every required one given),
``<module>.outputs.<name>`` references name declared outputs, and each module is called at the scope its
``targetScope`` declares. This is the structural check a fresh machine can run without the Bicep CLI.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from tests.infra import templates
from tests.infra.templates import INFRA, MAIN, bicep_files, body, parse, target_scope

_OUTPUT_REF = re.compile(r"\b([A-Za-z_]\w*)(?:\[[^\]]*\])?\.outputs\.([A-Za-z_]\w*)")
_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}")


def _modules(path: Path) -> list[tuple[str, dict[str, Any], Path]]:
    out = []
    for name, entry in (parse(path).get("modules") or {}).items():
        assert entry["type"] == "local", f"{path.name}: module {name} is not a local file (registries need network)"
        out.append((name, entry, (path.parent / entry["detail"]["path"]).resolve()))
    return out


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_every_bicep_file_parses(path: Path) -> None:
    doc = parse(path)
    assert doc.get("resources") or doc.get("modules"), f"{path.name} declares nothing"


def test_the_parser_rejects_broken_bicep(tmp_path: Path) -> None:
    """The parse check can fail: a missing brace is refused, not skipped over."""
    broken = tmp_path / "broken.bicep"
    broken.write_text(MAIN.read_text().replace("targetScope = 'subscription'", "targetScope = 'subscription' {", 1))
    with pytest.raises(Exception, match=r"(?i)unexpected|invalid"):
        templates._parser().parse(file_path=broken)


def test_every_module_file_is_used() -> None:
    used = {callee for path in bicep_files() for _, _, callee in _modules(path)}
    unused = [p.name for p in bicep_files()[1:] if p.resolve() not in used]
    assert not unused, f"modules nobody deploys: {unused}"


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_module_calls_match_the_callee(path: Path) -> None:
    doc = parse(path)
    caller_scope = target_scope(doc)
    group_symbols = {n for n, _ in templates.resources(path, "Microsoft.Resources/resourceGroups")}
    for name, entry, callee_path in _modules(path):
        assert callee_path.is_file(), f"{path.name}: module {name} points at missing {callee_path}"
        callee = parse(callee_path)
        declared = callee.get("parameters") or {}
        given = body(entry).get("params") or {}
        unknown = sorted(set(given) - set(declared))
        assert not unknown, f"{path.name}: module {name} passes parameters {callee_path.name} lacks: {unknown}"
        required = sorted(p for p, spec in declared.items() if spec.get("default") is None)
        missing = [p for p in required if p not in given]
        assert not missing, f"{path.name}: module {name} omits required parameters of {callee_path.name}: {missing}"
        where = f"{path.name}: module {name}"
        _check_scope(where, body(entry).get("scope"), caller_scope, target_scope(callee), group_symbols)


def _check_scope(where: str, scope: Any, caller_scope: str, callee_scope: str, group_symbols: set[str]) -> None:
    function = scope.get("function", {}).get("type") if isinstance(scope, dict) else None
    if callee_scope == "subscription":
        assert (scope is None and caller_scope == "subscription") or function == "subscription", (
            f"{where} targets a subscription but is deployed at {scope!r}"
        )
    elif callee_scope == "resourceGroup":
        ok = (
            (scope is None and caller_scope == "resourceGroup")
            or function == "resource_group"
            or (isinstance(scope, str) and scope in group_symbols)
        )
        assert ok, f"{where} targets a resource group but is deployed at {scope!r}"
    else:
        pytest.fail(f"{where}: unexpected target scope {callee_scope!r}")


@pytest.mark.parametrize("path", bicep_files(), ids=lambda p: str(p.relative_to(INFRA)))
def test_module_outputs_referenced_exist(path: Path) -> None:
    modules = {name: callee for name, _, callee in _modules(path)}
    for module, output in _OUTPUT_REF.findall(path.read_text()):
        if module not in modules:
            continue
        outputs = parse(modules[module]).get("outputs") or {}
        assert output in outputs, f"{path.name}: {module}.outputs.{output} is not an output of {modules[module].name}"


def test_resources_use_stable_api_versions() -> None:
    for path in bicep_files():
        for name, entry in templates.resources(path):
            version = str(entry["api_version"])
            assert _API_VERSION.fullmatch(version), f"{path.name}: {name} uses api-version {version!r}"


def test_example_parameters_fit_main() -> None:
    example = json.loads((INFRA / "main.parameters.example.json").read_text())
    assert example["$schema"].endswith("deploymentParameters.json#")
    declared = parse(MAIN)["parameters"]
    given = example["parameters"]
    assert not sorted(set(given) - set(declared)), "example sets parameters main.bicep does not declare"
    required = [p for p, spec in declared.items() if spec.get("default") is None]
    assert all(p in given for p in required), f"example omits required parameters {required}"
    for name, value in given.items():
        kind = declared[name]["type"]
        python_type = {"string": str, "array": list, "bool": bool, "int": int, "object": dict}[kind]
        assert isinstance(value["value"], python_type), f"example parameter {name} is not a {kind}"
