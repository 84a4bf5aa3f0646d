"""The house drawn from the imports (issue 16): one composition root, SDK clients built in one module, no cycle
between top-level packages, and no arrow from ``steward`` up into the app's layers.

Every production module is parsed (not imported) and every import counts, function-level ones too. A named
exception needs its reason, and an exception nothing needs any more fails the test (so it is removed). Each
checker is also run on snippets that break its rule, so these tests can fail.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP_LAYERS = ("activities", "orchestrators", "entrypoints")
#: The top-level packages of the repository's production code (``sandbox`` is the development tool above it).
TOP_LEVEL = ("steward", *APP_LAYERS, "sandbox", "function_app")
#: What ships in the Functions app: ``sandbox`` is development tooling and builds its own clients.
PRODUCTION = ("steward", *APP_LAYERS, "function_app")
COMPOSITION_ROOT = "steward/bootstrap.py"
CLIENT_FACTORY = "steward/cloud/clients.py"

#: (module file, package it imports) -> why the arrow is allowed although it points up or closes a cycle.
ARROW_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("steward/cli.py", "sandbox"): (
        "`python -m steward.cli` is the command line's front door; its development commands (demo, sandbox, "
        "local, instances) import the sandbox lazily inside each command, and the deployed app never imports "
        "steward.cli"
    ),
    ("steward/api_cli.py", "sandbox"): (
        "`steward protect|teardown|drill` work out of the box against the local stack: with no API configured they "
        "ask the local stack's Entra ID for a token (sandbox.playground.mint_token), imported lazily; the deployed "
        "app never imports steward.api_cli"
    ),
    ("steward/why_cli.py", "sandbox"): (
        "`steward why` answers from the local stack: it reads the local Durable runner's store "
        "(sandbox.durable.store), imported lazily inside latest_outcome; the deployed app never imports it"
    ),
}
#: (module file, builder) -> why it builds something the composition root otherwise builds alone.
BUILDER_EXCEPTIONS: dict[tuple[str, str], str] = {
    ("steward/audit_cli.py", "CloudClients"): (
        "`steward audit` is a command-line process of its own, not the app: its ARM target comes from its flags "
        "(--arm-endpoint, --sandbox-token-url, --ca-bundle) or the environment"
    ),
    ("steward/audit_cli.py", "Settings.from_env"): "`steward audit` without flags reads the environment once",
    ("steward/why_cli.py", "CloudClients"): (
        "`steward why` is a command-line process of its own: it reads the resource from the ARM endpoint of the "
        "local stack it was pointed at (var/), not from the app's settings"
    ),
    ("steward/settings_cli.py", "Settings.from_env"): (
        "`steward settings check` validates an environment offline and builds nothing from it"
    ),
}
#: What only the composition root builds: settings from the environment, clients, the injectable ports.
BUILDERS = frozenset(
    {
        "CloudClients",
        "Settings.from_env",
        "TeardownOps",
        "store_for",
        "LocalReportStore",
        "BlobReportStore",
        "BlobReportStore.from_settings",
        "EventGridOutcomePublisher",
        "validator_for",
    }
)
#: The Functions bindings are no Azure service clients (the host builds their clients).
NOT_SERVICE_SDKS = ("azure.functions", "azure.durable_functions")


def _files(tops: tuple[str, ...], root: Path = ROOT) -> Iterator[Path]:
    for top in tops:
        single = root / f"{top}.py"
        if single.is_file():
            yield single
        elif (root / top).is_dir():
            yield from sorted((root / top).rglob("*.py"))


def _rel(path: Path, root: Path = ROOT) -> str:
    return path.relative_to(root).as_posix()


def _imports(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            yield from (f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def _node(module: str, root: Path = ROOT) -> str:
    """``steward.<package>`` for a module inside a sub-package of steward, else the top-level package."""
    parts = module.split(".")
    if parts[0] == "steward" and len(parts) >= 2 and (root / "steward" / parts[1]).is_dir():
        return f"steward.{parts[1]}"
    return parts[0]


def _graph(root: Path = ROOT, exceptions: dict[tuple[str, str], str] | None = None) -> dict[str, dict[str, set[str]]]:
    """source node -> target node -> the files making that arrow (the excepted arrows left out)."""
    excepted = ARROW_EXCEPTIONS if exceptions is None else exceptions
    edges: dict[str, dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for path in _files(TOP_LEVEL, root):
        rel = _rel(path, root)
        source = _node(".".join(path.relative_to(root).with_suffix("").parts), root)
        for target in _imports(ast.parse(path.read_text(encoding="utf-8"))):
            if target.split(".")[0] not in TOP_LEVEL:
                continue
            found = _node(target, root)
            if found != source and (rel, found.split(".")[0]) not in excepted:
                edges[source][found].add(rel)
    return edges


def _cycle(edges: dict[str, dict[str, set[str]]]) -> list[str] | None:
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, {})):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)) is not None:
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(edges):
        if start not in state and (found := visit(start)) is not None:
            return found
    return None


def _dotted(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute) and (base := _dotted(node.value)) is not None:
        return f"{base}.{node.attr}"
    return None


def _calls(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and (name := _dotted(node.func)) is not None:
            yield node.lineno, name


def _azure_names(tree: ast.AST) -> dict[str, str]:
    """Local name -> the ``azure.*`` module or object it was imported as (service SDKs only)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.startswith("azure.") and not node.module.startswith(NOT_SERVICE_SDKS):
                names.update({alias.asname or alias.name: f"{node.module}.{alias.name}" for alias in node.names})
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("azure.") and not alias.name.startswith(NOT_SERVICE_SDKS):
                    names[alias.asname or "azure"] = alias.name if alias.asname else "azure"
    return names


def sdk_clients_built(source: str, filename: str = "<snippet>") -> list[str]:
    """Every Azure SDK client or credential constructed in ``source``, as 'file:line: what'."""
    tree = ast.parse(source, filename)
    imported = _azure_names(tree)
    found = []
    for line, name in _calls(tree):
        head, _, rest = name.partition(".")
        if head not in imported:
            continue
        full = f"{imported[head]}.{rest}" if rest else imported[head]
        built = [part for part in full.split(".")[1:] if part.endswith(("Client", "Credential"))]
        if built:
            found.append(f"{filename}:{line}: {full}")
    return found


def builders_called(source: str, filename: str = "<snippet>") -> list[tuple[int, str]]:
    """Calls of what only the composition root builds: (line, builder)."""
    return [(line, name) for line, name in _calls(ast.parse(source, filename)) if name in BUILDERS]


def _defines(source: str, name: str) -> bool:
    top = name.split(".", maxsplit=1)[0]
    return any(isinstance(node, ast.ClassDef | ast.FunctionDef) and node.name == top for node in ast.parse(source).body)


# ---- the checkers break on what they must find ----------------------------------------------------------------


def test_the_client_checker_finds_clients_and_credentials_built_from_the_sdk() -> None:
    snippet = (
        "import azure.storage.blob as blob\n"
        "from azure.eventgrid import EventGridPublisherClient as Publisher\n"
        "from azure.core.credentials import AzureKeyCredential\n"
        "from azure.storage.blob import BlobServiceClient, ContentSettings\n"
        "import azure.durable_functions as df\n"
        "def f(x):\n"
        "    blob.BlobServiceClient(x)\n"
        "    Publisher(x, AzureKeyCredential(x))\n"
        "    BlobServiceClient.from_connection_string(x)\n"
        "    ContentSettings(content_type=x)\n"
        "    df.DurableOrchestrationClient(x)\n"
        "    x.get_blob_client('n')\n"
    )
    assert sorted(hit.split(": ")[1] for hit in sdk_clients_built(snippet)) == [
        "azure.core.credentials.AzureKeyCredential",
        "azure.eventgrid.EventGridPublisherClient",
        "azure.storage.blob.BlobServiceClient",
        "azure.storage.blob.BlobServiceClient.from_connection_string",
    ]


def test_the_builder_checker_and_the_cycle_finder_find_what_they_look_for(tmp_path: Path) -> None:
    assert builders_called("def f(s):\n    CloudClients(s)\n    Settings.from_env()\n    other(s)\n") == [
        (2, "CloudClients"),
        (3, "Settings.from_env"),
    ]
    sources = (
        ("steward/cloud", "import steward.report.x\n"),
        ("steward/report", "import steward.cloud\n"),
        ("activities", "from entrypoints import x\n"),
    )
    for package, source in sources:
        (tmp_path / package).mkdir(parents=True, exist_ok=True)
        (tmp_path / package / "m.py").write_text(source)
    (tmp_path / "entrypoints").mkdir()
    edges = _graph(tmp_path, exceptions={})
    assert _cycle(edges) == ["steward.cloud", "steward.report", "steward.cloud"]
    assert edges["activities"]["entrypoints"] == {"activities/m.py"}


# ---- the house ----------------------------------------------------------------------------------------------------


def test_the_composition_root_is_the_only_place_that_builds_settings_clients_and_ports() -> None:
    found = []
    used_exceptions = set()
    for path in _files(PRODUCTION):
        rel = _rel(path)
        if rel == COMPOSITION_ROOT:
            continue
        source = path.read_text(encoding="utf-8")
        for line, name in builders_called(source, rel):
            if _defines(source, name):  # the builder's own module (a factory calling its own classes)
                continue
            if (rel, name) in BUILDER_EXCEPTIONS:
                used_exceptions.add((rel, name))
                continue
            found.append(f"{rel}:{line}: {name}")
    assert found == [], "build these in steward/bootstrap.py and ask it for them"
    assert set(BUILDER_EXCEPTIONS) == used_exceptions, "an exception nothing needs any more: remove it"
    assert all(BUILDER_EXCEPTIONS.values())
    root = (ROOT / COMPOSITION_ROOT).read_text(encoding="utf-8")
    assert {"CloudClients", "Settings.from_env", "TeardownOps", "store_for"} <= {n for _, n in builders_called(root)}


def test_sdk_clients_are_built_only_in_the_client_factory() -> None:
    found = [
        hit
        for path in _files(PRODUCTION)
        if _rel(path) != CLIENT_FACTORY
        for hit in sdk_clients_built(path.read_text(encoding="utf-8"), _rel(path))
    ]
    assert found == []
    assert sdk_clients_built((ROOT / CLIENT_FACTORY).read_text(encoding="utf-8")), "the walk sees the factory's"


def test_the_top_level_packages_import_each_other_without_a_cycle() -> None:
    edges = _graph()
    assert "steward.domain" in edges["steward.cloud"], "the walk found the packages and their imports"
    assert _cycle(edges) is None, " -> ".join(_cycle(edges) or [])


def test_nothing_in_steward_imports_the_layers_above_it() -> None:
    above = {*APP_LAYERS, "sandbox", "function_app"}
    upward = {
        src: {dst: sorted(files) for dst, files in targets.items() if dst in above}
        for src, targets in _graph().items()
        if src.startswith("steward") and above & set(targets)
    }
    assert upward == {}
    unused = {
        arrow
        for arrow in ARROW_EXCEPTIONS
        if arrow[1] not in {_node(t) for t in _imports(ast.parse((ROOT / arrow[0]).read_text()))}
    }
    assert unused == set(), "an exception nothing needs any more: remove it"
    assert all(ARROW_EXCEPTIONS.values())


def test_the_app_layers_stand_side_by_side() -> None:
    """An entry point starts an orchestration by name, an orchestrator calls activities by name: none of the three
    layers imports another (what they share lives in ``steward``)."""
    sideways = {
        src: {dst: sorted(files) for dst, files in targets.items() if dst in APP_LAYERS}
        for src, targets in _graph().items()
        if src in APP_LAYERS and set(APP_LAYERS) & set(targets)
    }
    assert sideways == {}
