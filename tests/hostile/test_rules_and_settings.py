"""Hostile rules files (``corpus/rules/``) and settings values (``corpus/settings.yaml``): each is refused at
load time with problems that name the file / setting, bounded in size, fast, and without side effects."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from steward.domain.errors import InvalidRules
from steward.domain.rules import MAX_RULES_PROBLEMS
from steward.rules_file import load_configured_rules
from steward.settings import RULES, RULES_PATH, InvalidSettings, Settings
from tests.hostile.conftest import CORPUS, load_corpus

RULE_FILES = sorted((CORPUS / "rules").glob("*.yaml"))
MAX_PROBLEM = 600
MAX_ERROR = 16_000
#: a refusal must come quickly (an alias bomb, a deep or a huge document must not be expanded or validated in
#: full): the limits apply while parsing, and schema validation stops after MAX_RULES_PROBLEMS problems
MAX_SECONDS = 2.0
LEAKS = ("Traceback", 'File "', "site-packages")
PWNED = Path("/tmp/steward-pwned")


def _generated(tmp: Path) -> list[Path]:
    """Hostile documents too big to keep in the repository."""
    made = {
        "oversized.yaml": "version: 1\nrules: []\n# " + "x" * 300_000 + "\n",
        "deep.yaml": "version: 1\nrules: " + "[" * 200 + "]" * 200 + "\n",
        "many-nodes.yaml": "version: 1\nrules: [" + ", ".join("1" for _ in range(60_000)) + "]\n",
        # under the node limit, but every one of its 19,000 rules is wrong
        "many-problems.yaml": "version: 1\nrules: [" + ", ".join("1" for _ in range(19_000)) + "]\n",
        "long-line.json": '{"version": 1, "rules": [{"name": "' + "n" * 100_000 + '"}]}',
    }
    paths = []
    for name, text in made.items():
        path = tmp / name
        path.write_text(text, encoding="utf-8")
        paths.append(path)
    return paths


def _check_refusal(error: InvalidRules, source: str, started: float) -> None:
    assert time.process_time() - started < MAX_SECONDS
    assert 0 < len(error.problems) <= MAX_RULES_PROBLEMS + 1  # + the "more problems not listed" line
    for problem in error.problems:
        assert problem.source == source
        assert problem.line is None or problem.line >= 1
        assert 0 < len(problem.message) <= MAX_PROBLEM, problem.message[:200]
    text = str(error)
    assert not any(leak in text for leak in LEAKS)


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_a_hostile_rules_file_is_refused_with_bounded_problems(path: Path) -> None:
    PWNED.unlink(missing_ok=True)
    started = time.process_time()
    with pytest.raises(InvalidRules) as refused:
        load_configured_rules(str(path), None)
    _check_refusal(refused.value, str(path), started)
    assert not PWNED.exists(), "a YAML tag ran code"


def test_generated_hostile_rules_files_are_refused_quickly(tmp_path: Path) -> None:
    for path in _generated(tmp_path):
        started = time.process_time()
        with pytest.raises(InvalidRules) as refused:
            load_configured_rules(str(path), None)
        _check_refusal(refused.value, str(path), started)


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_settings_name_the_rules_setting_and_stay_bounded(path: Path) -> None:
    with pytest.raises(InvalidSettings) as file_refused:
        Settings.from_env({RULES_PATH: str(path)})
    assert {p.name for p in file_refused.value.problems} == {RULES_PATH}
    assert len(str(file_refused.value)) <= MAX_ERROR
    inline = path.read_bytes().decode("utf-8", "replace")
    if not inline.strip():
        return  # an empty STEWARD_RULES is "not set": the packaged rules apply
    with pytest.raises(InvalidSettings) as inline_refused:
        Settings.from_env({RULES: inline})
    assert RULES in {p.name for p in inline_refused.value.problems}
    assert len(str(inline_refused.value)) <= MAX_ERROR


def test_a_rules_path_that_is_not_a_file_is_refused() -> None:
    for target in ("/nonexistent/rules.yaml", "/etc", "/dev/zero", "../../../../etc/shadow\0"):
        with pytest.raises(InvalidSettings) as refused:
            Settings.from_env({RULES_PATH: target})
        assert {p.name for p in refused.value.problems} == {RULES_PATH}
        assert len(str(refused.value)) <= MAX_ERROR


# ---- settings --------------------------------------------------------------------------------------------

SETTING_CASES = load_corpus("settings.yaml")


def _value(raw: Any) -> str:
    if isinstance(raw, dict) and "repeat" in raw:
        return str(raw["repeat"]) * int(raw["times"])
    return str(raw)


@pytest.mark.parametrize("case", SETTING_CASES, ids=lambda c: c["name"])
def test_a_hostile_setting_is_refused_by_name_without_echoing_secrets(case: dict[str, Any]) -> None:
    env = {name: _value(value) for name, value in case["env"].items()}
    with pytest.raises(InvalidSettings) as refused:
        Settings.from_env(env)
    named = {p.name for p in refused.value.problems}
    assert set(case["problems"]) <= named, named
    text = str(refused.value)
    assert len(text) <= MAX_ERROR
    for secret in case.get("secrets", []):
        assert _value(secret) not in text
        assert _value(secret) not in repr(refused.value)
