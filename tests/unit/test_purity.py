"""The decision core is pure: no Azure SDK, no I/O, no clock, no randomness, no environment.

Every module under ``steward/domain/`` is parsed (not imported) and its syntax tree searched for what a pure
module must not use. The checker itself is tested on snippets that break each rule, so this test can fail.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "steward" / "domain"

#: Modules (and their submodules) a pure module may not import, with the reason.
FORBIDDEN_MODULES: dict[str, str] = {
    "azure": "an Azure SDK",
    "msrest": "an Azure SDK",
    "requests": "network I/O",
    "httpx": "network I/O",
    "aiohttp": "network I/O",
    "urllib": "network I/O",
    "http": "network I/O",
    "socket": "network I/O",
    "ssl": "network I/O",
    "smtplib": "network I/O",
    "subprocess": "process I/O",
    "os": "the environment and the file system",
    "sys": "process state",
    "shutil": "file I/O",
    "pathlib": "file I/O",
    "tempfile": "file I/O",
    "glob": "file I/O",
    "io": "file I/O",
    "sqlite3": "file I/O",
    "pickle": "file I/O and code execution",
    "importlib": "loading code and package files",
    "logging": "log output (return facts; the shell logs)",
    "random": "randomness",
    "secrets": "randomness",
    "time": "the clock",
    "threading": "concurrency",
    "asyncio": "concurrency and I/O",
    "multiprocessing": "concurrency",
}
#: Builtins a pure module may not call.
FORBIDDEN_CALLS: dict[str, str] = {
    "open": "file I/O",
    "print": "console output",
    "input": "console input",
    "exec": "code execution",
    "eval": "code execution",
    "compile": "code execution",
    "__import__": "dynamic import",
    "breakpoint": "debugger",
}
#: Attribute uses a pure module may not make (``datetime.now()``, ``uuid.uuid4()``, ...).
FORBIDDEN_ATTRIBUTES: dict[str, str] = {
    "now": "the clock",
    "utcnow": "the clock",
    "today": "the clock",
    "fromtimestamp": "the clock (local time zone)",
    "uuid1": "randomness and the clock",
    "uuid4": "randomness",
    "environ": "the environment",
    "getenv": "the environment",
    "urandom": "randomness",
}


def impurities(source: str, filename: str = "<snippet>") -> list[str]:
    """Every use of something a pure module must not use, as 'file:line: what (why)'."""
    tree = ast.parse(source, filename)
    found: list[str] = []

    def report(node: ast.AST, what: str, why: str) -> None:
        found.append(f"{filename}:{getattr(node, 'lineno', '?')}: {what} ({why})")

    def check_module(node: ast.AST, name: str) -> None:
        root = name.split(".", maxsplit=1)[0]
        if root in FORBIDDEN_MODULES:
            report(node, f"imports {name}", FORBIDDEN_MODULES[root])

    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                check_module(node, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                check_module(node, node.module)
            for alias in node.names:
                if alias.name in FORBIDDEN_ATTRIBUTES:
                    report(node, f"imports {alias.name}", FORBIDDEN_ATTRIBUTES[alias.name])
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            report(node, f"calls {node.func.id}()", FORBIDDEN_CALLS[node.func.id])
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            report(node, f"uses .{node.attr}", FORBIDDEN_ATTRIBUTES[node.attr])
    return found


def domain_modules() -> list[Path]:
    modules = sorted(DOMAIN.rglob("*.py"))
    assert len(modules) >= 5, f"expected the domain modules under {DOMAIN}"
    return modules


@pytest.mark.parametrize("module", domain_modules(), ids=lambda p: p.name)
def test_every_domain_module_is_pure(module: Path) -> None:
    assert impurities(module.read_text(encoding="utf-8"), str(module.relative_to(DOMAIN.parents[1]))) == []


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("import azure.mgmt.recoveryservices", "imports azure.mgmt.recoveryservices (an Azure SDK)"),
        ("from azure.core.exceptions import HttpResponseError", "imports azure.core.exceptions"),
        ("import os\nx = 1", "imports os"),
        ("from os import environ", "imports os"),
        ("import urllib.request", "imports urllib.request"),
        ("import socket", "imports socket"),
        ("import requests", "imports requests"),
        ("import random", "imports random (randomness)"),
        ("import time", "imports time (the clock)"),
        ("from pathlib import Path", "imports pathlib"),
        ("import logging", "imports logging"),
        ("from importlib import resources", "imports importlib"),
        ("data = open('rules.yaml').read()", "calls open() (file I/O)"),
        ("print('hello')", "calls print()"),
        ("from datetime import datetime\nstamp = datetime.now()", "uses .now (the clock)"),
        ("import datetime\nstamp = datetime.datetime.utcnow()", "uses .utcnow"),
        ("from datetime import date\nd = date.today()", "uses .today"),
        ("import uuid\nu = uuid.uuid4()", "uses .uuid4 (randomness)"),
        ("from uuid import uuid4", "imports uuid4 (randomness)"),
        ("def f(env):\n    return env.environ['X']", "uses .environ"),
    ],
)
def test_the_checker_finds_each_kind_of_impurity(snippet: str, expected: str) -> None:
    found = impurities(snippet)
    assert any(expected in entry for entry in found), found


def test_the_checker_accepts_pure_code_and_names_the_line() -> None:
    pure = (
        "from __future__ import annotations\n"
        "import hashlib, json, re\n"
        "from datetime import UTC, datetime, timedelta\n"
        "import uuid\n"
        "import jsonschema, yaml\n"
        "from steward.domain.ids import ResourceId\n"
        "def key(text: str, at: datetime) -> str:\n"
        "    return hashlib.sha256(text.encode()).hexdigest() + str(uuid.uuid5(uuid.NAMESPACE_URL, text))\n"
    )
    assert impurities(pure) == []
    assert impurities("x = 1\n\nimport socket\n", "m.py") == ["m.py:3: imports socket (network I/O)"]
