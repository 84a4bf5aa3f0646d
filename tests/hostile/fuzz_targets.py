"""Coverage-guided fuzz targets (atheris / libFuzzer) for the parsers hostile input reaches first.

Run one: ``python -m tests.hostile.fuzz_targets events -max_total_time=10 [corpus dirs]``. A target fails (the
process exits non-zero and libFuzzer writes the input to ``-artifact_prefix``) when the code under test raises
anything but its own refusal, or breaks a round trip. ``tests/hostile/test_fuzz.py`` runs every target for a
few seconds in CI.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable

import atheris
import jsonschema  # noqa: F401 - imported before the block: instrument our code only (and start in ~1 s)
import yaml  # noqa: F401

with atheris.instrument_imports():
    from entrypoints.caller_checks import Caller, RequestRefused, TeardownAccessPolicy, teardown_request_from_http
    from steward.domain import events, ids, rules
    from steward.domain.errors import InvalidEvent, InvalidRecord, InvalidResourceId, InvalidRules
    from steward.rules_file import load_rules

ADMIN = "aaaaaaaa-0000-4000-8000-00000000ad01"
SUB = "00000000-0000-4000-8000-000000000001"
POLICY = TeardownAccessPolicy.of([ADMIN], ["teardown.admin"], [SUB])


def fuzz_events(data: bytes) -> None:
    try:
        intent = events.classify_json(data)
    except InvalidEvent:
        return
    record = json.loads(json.dumps(intent.to_record()))
    if events.intent_from_record(record) != intent:
        raise AssertionError("an intent does not survive its record")


def fuzz_ids(data: bytes) -> None:
    text = data.decode("utf-8", "surrogatepass") if _utf8(data) else data.decode("latin-1")
    try:
        rid = ids.ResourceId.parse(text)
    except InvalidResourceId:
        return
    if ids.ResourceId.parse(str(rid)) != rid or ids.ResourceId.parse(rid.key) != rid:
        raise AssertionError(f"{text!r} does not round-trip")
    for bad in ("..", "'", "%", "?", "#", "\\"):
        if bad in str(rid).split("/") or (bad != ".." and bad in str(rid)):
            raise AssertionError(f"{text!r} parsed with {bad!r} in it")


def fuzz_rules(data: bytes) -> None:
    if not _utf8(data):
        return
    try:
        ruleset = load_rules(data.decode("utf-8"), "fuzz.yaml")
    except InvalidRules as error:
        if not error.problems:
            raise AssertionError("a refusal without problems") from None
        return
    if not isinstance(ruleset, rules.RuleSet):
        raise AssertionError("load_rules returned something else than a RuleSet")


def fuzz_teardown_http(data: bytes) -> None:
    provider = atheris.FuzzedDataProvider(data)
    # the caller as a validated token could name it (token validation: tests/hostile/test_tokens.py)
    caller = Caller(
        provider.PickValueInList([ADMIN, "", "x", provider.ConsumeUnicodeNoSurrogates(40)]),
        None,
        frozenset({provider.ConsumeUnicodeNoSurrogates(provider.ConsumeIntInRange(0, 40))}),
    )
    body = provider.ConsumeBytes(provider.remaining_bytes())
    from datetime import UTC, datetime

    try:
        request = teardown_request_from_http(caller, body, POLICY, now=datetime.now(UTC))
    except RequestRefused as refused:
        if not (400 <= refused.status < 500 and refused.code and len(refused.message) <= 1024):
            raise AssertionError(f"an unbounded or non-4xx refusal: {refused.status} {refused.code}") from None
        return
    if request.vault.subscription_id.lower() != SUB or request.requested_by != ADMIN:
        raise AssertionError("a request outside the policy was accepted")


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


TARGETS: dict[str, Callable[[bytes], None]] = {
    "events": fuzz_events,
    "ids": fuzz_ids,
    "rules": fuzz_rules,
    "teardown_http": fuzz_teardown_http,
}

# keep the imports used (atheris instruments them) and the record error known to the reader
_ = (InvalidRecord,)


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] not in TARGETS:
        raise SystemExit(f"usage: python -m tests.hostile.fuzz_targets {{{'|'.join(TARGETS)}}} [libFuzzer flags]")
    target = TARGETS[argv[1]]
    atheris.Setup([argv[0], *argv[2:]], target)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
