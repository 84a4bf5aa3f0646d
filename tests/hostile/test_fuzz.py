"""Bounded fuzz runs for CI (well under a minute together).

* atheris (coverage-guided, libFuzzer) on the event classifier, the resource-id parser, the rules loader and
  the teardown request validation (``fuzz_targets.py``), a few seconds each from seed corpora;
* Hypothesis, with a bounded profile, on hostile-fragment inputs the random-text fuzzers of ``tests/unit/domain``
  rarely reach (ids and events built from traversal, OData, control and confusable fragments), on the HTTP
  validation and on the settings reader.

``STEWARD_FUZZ_SECONDS`` (per atheris target, default 4) and ``STEWARD_FUZZ_EXAMPLES`` (per Hypothesis test,
default 150) make longer runs: ``STEWARD_FUZZ_SECONDS=600 pytest tests/hostile/test_fuzz.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from entrypoints.caller_checks import Caller, RequestRefused, TeardownAccessPolicy, teardown_request_from_http
from steward.domain.errors import InvalidEvent, InvalidResourceId
from steward.domain.events import classify, intent_from_record
from steward.domain.ids import ResourceId
from steward.domain.teardown import InvalidTeardownInput, VaultRef
from steward.settings import REFERENCE, InvalidSettings, Settings
from tests.hostile.conftest import ADMIN, REPO, SUB1
from tests.hostile.test_eventgrid import BASES

SECONDS = int(os.environ.get("STEWARD_FUZZ_SECONDS", "4"))
EXAMPLES = int(os.environ.get("STEWARD_FUZZ_EXAMPLES", "150"))
FIXTURES = REPO.parent / "shared" / "fixtures" / "event-grid"

settings.register_profile(
    "hostile-fuzz",
    max_examples=EXAMPLES,
    deadline=timedelta(seconds=2),
    suppress_health_check=[HealthCheck.too_slow],
)
FUZZ = settings.get_profile("hostile-fuzz")


# ---- atheris ---------------------------------------------------------------------------------------------


def _seed_events(folder: Path) -> None:
    events: list[Any] = list(BASES.values())
    for path in sorted(FIXTURES.glob("*.json")):
        loaded = json.loads(path.read_text(encoding="utf-8"))
        events += loaded if isinstance(loaded, list) else [loaded]
    for index, event in enumerate(events):
        (folder / f"event-{index}.json").write_text(json.dumps(event), encoding="utf-8")


def _seeds(target: str, tmp: Path) -> Path:
    folder = tmp / f"seeds-{target}"
    folder.mkdir()
    if target == "events":
        _seed_events(folder)
    elif target == "ids":
        for index, text in enumerate(
            [
                f"/subscriptions/{SUB1}",
                f"/subscriptions/{SUB1}/resourceGroups/rg",
                f"/subscriptions/{SUB1}/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/vm",
                f"/subscriptions/{SUB1}/resourceGroups/rg/providers/Microsoft.RecoveryServices/vaults/v/backupFabrics/"
                "Azure/protectionContainers/c/protectedItems/i",
            ]
        ):
            (folder / f"id-{index}").write_text(text, encoding="utf-8")
    elif target == "rules":
        (folder / "default.yaml").write_bytes((REPO / "steward" / "domain" / "default_rules.yaml").read_bytes())
    return folder


@pytest.mark.parametrize("target", ["events", "ids", "rules", "teardown_http"])
def test_atheris_finds_nothing_in_a_bounded_run(target: str, tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    artifacts.mkdir()
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.hostile.fuzz_targets",
            target,
            f"-max_total_time={SECONDS}",
            "-timeout=10",
            "-rss_limit_mb=2048",
            "-print_final_stats=1",
            f"-artifact_prefix={artifacts}/",
            str(_seeds(target, tmp_path)),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        # a hang guard, not a measurement: importing the app and replaying the seeds took over 60 s real at
        # load 30 on 2 cores (the fuzzing itself stops after SECONDS)
        timeout=SECONDS + 300,
        check=False,
    )
    found = sorted(p.name for p in artifacts.iterdir())
    assert run.returncode == 0 and not found, f"{target}: {found}\n{run.stderr[-3000:]}"
    assert "Done" in run.stderr


# ---- Hypothesis on hostile fragments ---------------------------------------------------------------------

HOSTILE = [
    "..",
    ".",
    "%2e%2e",
    "%2f",
    "'",
    "x' or 1 eq 1",
    '"',
    "?",
    "#",
    "&",
    "*",
    "\\",
    "\0",
    "\n",
    "\u202e",
    "\u200b",
    "\uff0f",
    "\u043e",
    " ",
    "\t",
    "$filter=",
    "<",
    ">",
    "providers",
    "subscriptions",
    "",
]
names = st.one_of(
    st.sampled_from(["rg", "vm", "v", "Microsoft.Compute", "virtualMachines", SUB1]),
    st.sampled_from(HOSTILE),
    st.text(max_size=8),
)
segments = st.lists(st.one_of(names, st.builds(lambda a, b: a + b, names, names)), min_size=1, max_size=10)


@st.composite
def hostile_ids(draw: st.DrawFn) -> str:
    base = draw(st.sampled_from([f"/subscriptions/{SUB1}", f"/subscriptions/{SUB1}/resourceGroups/rg", ""]))
    return base + "/" + "/".join(draw(segments))


@FUZZ
@given(hostile_ids())
def test_ids_with_hostile_fragments_parse_clean_or_are_refused(text: str) -> None:
    try:
        rid = ResourceId.parse(text)
    except InvalidResourceId as error:
        assert 0 < len(str(error)) <= 600
        return
    canonical = str(rid)
    assert ResourceId.parse(canonical) == rid
    assert not any(bad in canonical for bad in ("'", "%", "?", "#", "\\", "\0", "\n", "\u202e", "\u200b"))
    assert ".." not in canonical.split("/")


@FUZZ
@given(st.sampled_from(sorted(BASES)), hostile_ids(), hostile_ids(), st.booleans())
def test_events_naming_hostile_ids_are_refused_or_name_a_clean_resource(
    base: str, subject: str, uri: str, same: bool
) -> None:
    event = json.loads(json.dumps(BASES[base]))
    event["subject"] = subject
    event["data"]["resourceUri" if "resourceUri" in event["data"] else "vaultId"] = subject if same else uri
    try:
        intent = classify(event)
    except InvalidEvent as error:
        assert 0 < len(str(error)) <= 600
        return
    assert intent_from_record(json.loads(json.dumps(intent.to_record()))) == intent
    resource = getattr(intent, "resource_id", None)
    if resource is not None and intent.kind != "ignored":
        assert ResourceId.parse(str(resource)) == resource
        assert ResourceId.parse(subject) == resource


POLICY = TeardownAccessPolicy.of([ADMIN], [], [SUB1])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30) | hostile_ids(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)


@FUZZ
@given(
    st.dictionaries(st.sampled_from(["vaultId", "dryRun", "approvedFingerprint", "reason", "x"]), json_values),
    st.sampled_from([ADMIN, "", "x' or 1 eq 1", "../admin", ADMIN.upper()]),
    st.one_of(st.just(frozenset()), st.just(frozenset({"reader"})), st.just(frozenset({"x' or 1 eq 1"}))),
)
def test_the_teardown_doorway_refuses_with_a_bounded_4xx_or_stays_in_scope(
    body: dict[str, Any], principal: str, roles: frozenset[str]
) -> None:
    # the caller as a validated token could name it (validation itself: test_tokens.py)
    caller = Caller(principal, None, roles)
    try:
        request = teardown_request_from_http(caller, json.dumps(body).encode(), POLICY, now=datetime.now(UTC))
    except RequestRefused as refused:
        assert 400 <= refused.status < 500 and refused.code
        assert 0 < len(refused.message) <= 1024
        return
    assert request.requested_by == ADMIN
    assert request.vault.subscription_id == SUB1
    assert VaultRef.parse(request.vault_id) == request.vault


@FUZZ
@given(st.one_of(json_values, hostile_ids()))
def test_vault_refs_parse_or_refuse(value: Any) -> None:
    try:
        vault = VaultRef.parse(value)
    except InvalidTeardownInput:
        return
    assert VaultRef.parse(vault.id) == vault
    assert ResourceId.parse(vault.id).full_type.lower() in {
        "microsoft.recoveryservices/vaults",
        "microsoft.dataprotection/backupvaults",
    }


_SETTING_NAMES = [name for name, _, _ in REFERENCE]


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(_SETTING_NAMES),
        st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40), hostile_ids()),
        max_size=5,
    )
)
def test_settings_load_or_name_every_bad_setting(env: dict[str, str]) -> None:
    env = {k: v.replace("\0", "") for k, v in env.items()}  # the OS cannot hold NUL in the environment
    try:
        Settings.from_env(env)
    except InvalidSettings as error:
        assert error.problems
        assert {p.name for p in error.problems} <= set(_SETTING_NAMES)
        assert len(str(error)) <= 16_000
