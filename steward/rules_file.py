"""Reading rules documents: the only file I/O of the rules (the domain parses text it is given)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

from steward.domain.errors import InvalidRules, RuleProblem
from steward.domain.rules import (
    DEFAULT_FILL_PERCENT,
    DEFAULT_VAULT_TAG,
    MAX_RULES_BYTES,
    RuleSet,
    RulesSchema,
    parse_rules,
)

DEFAULT_RULES_RESOURCE: Final = "default_rules.yaml"
SCHEMA_RESOURCE: Final = "rules.schema.json"


def default_rules_text() -> str:
    """The text of the default rules shipped with the package."""
    return resources.files("steward.domain").joinpath(DEFAULT_RULES_RESOURCE).read_text(encoding="utf-8")


def schema_text() -> str:
    """The JSON Schema of rules documents, as shipped beside the default rules (for editors and docs)."""
    return resources.files("steward.domain").joinpath(SCHEMA_RESOURCE).read_text(encoding="utf-8")


@cache
def rules_schema() -> RulesSchema:
    """The packaged rules schema (``steward/domain/rules.schema.json``, the one copy) with its validator."""
    document: dict[str, Any] = json.loads(schema_text())
    return RulesSchema.of(document)


def load_rules(
    text: str,
    source: str = "<rules>",
    *,
    opt_out_tag: str | None = None,
    vault_default_tag: str = DEFAULT_VAULT_TAG,
    vault_fill_percent: int = DEFAULT_FILL_PERCENT,
) -> RuleSet:
    """Parse and validate a rules document against the packaged schema (:func:`steward.domain.rules.parse_rules`).
    Raises :class:`InvalidRules` listing every problem with its line and field."""
    return parse_rules(
        text, source, schema=rules_schema(), opt_out_tag=opt_out_tag, vault_default_tag=vault_default_tag,
        vault_fill_percent=vault_fill_percent,
    )


def read_rules_file(path: str | Path) -> str:
    """The text of a rules file; :class:`InvalidRules` naming the file when it cannot be read."""
    source = str(path)
    try:
        with Path(path).open("rb") as handle:
            raw = handle.read(MAX_RULES_BYTES + 1)
    except (OSError, ValueError) as error:
        reason = error.strerror if isinstance(error, OSError) else str(error)
        raise InvalidRules([RuleProblem(source, None, "", f"cannot read the rules file: {reason}")]) from None
    if len(raw) > MAX_RULES_BYTES:
        raise InvalidRules([RuleProblem(source, None, "", f"the file is larger than {MAX_RULES_BYTES} bytes")])
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidRules([RuleProblem(source, None, "", f"the file is not UTF-8 text ({error.reason})")]) from None


def load_configured_rules(
    path: str | None,
    inline: str | None,
    *,
    opt_out_tag: str | None = None,
    vault_default_tag: str = DEFAULT_VAULT_TAG,
    vault_fill_percent: int = DEFAULT_FILL_PERCENT,
) -> RuleSet:
    """The rules the settings name: a file, inline text, or the packaged defaults (in that order)."""
    if path:
        text, source = read_rules_file(path), path
    elif inline:
        text, source = inline, "STEWARD_RULES"
    else:
        text, source = default_rules_text(), f"steward/domain/{DEFAULT_RULES_RESOURCE}"
    return load_rules(text, source, opt_out_tag=opt_out_tag, vault_default_tag=vault_default_tag,
                      vault_fill_percent=vault_fill_percent)
