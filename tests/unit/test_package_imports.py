"""The house drawn from the imports: no cycle between ``steward``'s packages, and no arrow from ``steward`` up
into the app's ``entrypoints``, ``orchestrators`` or ``activities`` (every import counts, function-level ones
too)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP_LAYERS = ("activities", "orchestrators", "entrypoints")


def _node(module: str) -> str:
    """``steward.<package>`` for a module inside a sub-package, ``steward`` for its top-level modules."""
    parts = module.split(".")
    if parts[0] != "steward":
        return parts[0]
    if len(parts) >= 2 and (ROOT / "steward" / parts[1]).is_dir():
        return f"steward.{parts[1]}"
    return "steward"


def _graph() -> dict[str, set[str]]:
    edges: dict[str, set[str]] = defaultdict(set)
    for path in (ROOT / "steward").rglob("*.py"):
        source = _node(".".join(path.relative_to(ROOT).with_suffix("").parts))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            for target in targets:
                if target.split(".")[0] in ("steward", *APP_LAYERS):
                    found = _node(target)
                    if found != source:
                        edges[source].add(found)
    return edges


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def test_steward_packages_import_each_other_without_a_cycle() -> None:
    edges = _graph()
    assert "steward.domain" in edges["steward.cloud"], "the walk found the packages and their imports"
    assert _cycle(edges) is None, " -> ".join(_cycle(edges) or [])


def test_nothing_in_steward_imports_the_app_layers_above_it() -> None:
    upward = {src: sorted(dst & set(APP_LAYERS)) for src, dst in _graph().items() if dst & set(APP_LAYERS)}
    assert upward == {}
