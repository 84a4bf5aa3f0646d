"""``steward settings check``: validate an environment offline, with the checks the app runs when it loads.

    steward settings check                                   the current environment
    steward settings check --env-file prod.env               KEY=VALUE lines (``export`` and quotes allowed)
    steward settings check --local-settings local.settings.json   the ``Values`` of a Functions settings file
    steward settings check --output json                     for pipelines

Every problem is listed at once, as at start-up; secret values are never printed. Exit codes:

* 0 - every setting is valid (unknown ``STEWARD_*`` names are warnings)
* 1 - one or more settings are invalid
* 2 - the file cannot be read, or bad arguments
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Final, TextIO

from steward.cli_output import OUTPUTS, write_rows
from steward.domain.errors import StewardError
from steward.settings import REFERENCE, SECRET_SETTINGS, InvalidSettings, Settings, unknown_settings

EXIT_OK: Final = 0
EXIT_INVALID: Final = 1
EXIT_ERROR: Final = 2
#: Values of other app settings that are secrets too (never printed).
OTHER_SECRETS: Final = frozenset({"APPLICATIONINSIGHTS_CONNECTION_STRING", "AzureWebJobsStorage"})
HIDDEN: Final = "(set, hidden)"


class SettingsFileError(StewardError):
    """The settings file cannot be read or has the wrong shape."""


def read_env_file(path: Path) -> dict[str, str]:
    """``KEY=VALUE`` lines; blank lines and ``#`` comments skipped; an ``export`` prefix and shell quotes allowed."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsFileError(f"cannot read {path}: {error}") from None
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, sep, value = line.partition("=")
        if not sep or not name.strip().isidentifier():
            raise SettingsFileError(f"{path}:{number}: not a NAME=VALUE line")
        try:
            parts = shlex.split(value, comments=True) if value.strip() else []
        except ValueError as error:
            raise SettingsFileError(f"{path}:{number}: {error}") from None
        values[name.strip()] = " ".join(parts)
    return values


def read_local_settings(path: Path) -> dict[str, str]:
    """The ``Values`` object of a ``local.settings.json`` (Azure Functions Core Tools' app settings file)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise SettingsFileError(f"cannot read {path}: {error}") from None
    values = document.get("Values") if isinstance(document, dict) else None
    if not isinstance(values, dict):
        raise SettingsFileError(f"{path} has no 'Values' object (the local.settings.json shape)")
    if document.get("IsEncrypted") is True:
        raise SettingsFileError(f"{path} is encrypted (IsEncrypted: true); decrypt it with 'func settings decrypt'")
    return {str(k): "" if v is None else str(v) for k, v in values.items()}


def check(env: Mapping[str, str]) -> dict[str, Any]:
    """The verdict on one environment: problems, warnings and every setting's shown value (secrets hidden)."""
    problems: list[dict[str, str]] = []
    try:
        Settings.from_env(env)
    except InvalidSettings as error:
        problems = [{"setting": p.name, "message": p.message} for p in error.problems]
    warnings = [
        {"setting": name, "message": "is not a Backup Steward setting and is ignored"
         + (f" (did you mean {close}?)" if close else "")}
        for name, close in unknown_settings(env)
    ]
    shown: dict[str, str] = {}
    for name, default, _ in REFERENCE:
        value = (env.get(name) or "").strip()
        if not value:
            shown[name] = f"(default) {default}" if default else "(not set)"
        elif name in SECRET_SETTINGS or name in OTHER_SECRETS:
            shown[name] = HIDDEN
        else:
            if "?" in value:  # a URL's query may carry a SAS signature or a key
                value = value.split("?", 1)[0] + "?(query hidden)"
            shown[name] = value if len(value) <= 80 else value[:77] + "..."
    return {"valid": not problems, "problems": problems, "warnings": warnings, "settings": shown}


def _rows(verdict: Mapping[str, Any]) -> list[dict[str, str]]:
    by_name: dict[str, list[str]] = {}
    for item in verdict["problems"]:
        by_name.setdefault(item["setting"], []).append(item["message"])
    rows = [
        {"setting": name, "status": "invalid" if name in by_name else "ok", "value": value,
         "message": "; ".join(by_name.get(name, []))}
        for name, value in verdict["settings"].items()
    ]
    rows += [{"setting": w["setting"], "status": "warning", "value": "", "message": w["message"]}
             for w in verdict["warnings"]]
    return rows


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out, err = out or sys.stdout, err or sys.stderr
    parser = argparse.ArgumentParser(
        prog="steward settings", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    checking = commands.add_parser(
        "check",
        help="validate settings offline",
        description="Validate the app's settings offline.",
        epilog="example: steward settings check --local-settings local.settings.json --output json",
    )
    source = checking.add_mutually_exclusive_group()
    source.add_argument("--env-file", type=Path, metavar="FILE", help="KEY=VALUE lines (default: the environment)")
    source.add_argument("--local-settings", type=Path, metavar="FILE", help="a local.settings.json")
    checking.add_argument("--output", choices=OUTPUTS, default="table", help="table (default), json or csv")
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0) and EXIT_ERROR
    try:
        if args.env_file is not None:
            env = read_env_file(args.env_file)
        elif args.local_settings is not None:
            env = read_local_settings(args.local_settings)
        else:
            env = dict(os.environ)
    except SettingsFileError as error:
        print(f"steward settings check: {error}", file=err)
        return EXIT_ERROR
    verdict = check(env)
    if args.output == "json":
        json.dump(verdict, out, indent=2)
        out.write("\n")
    else:
        write_rows(out, _rows(verdict), ["setting", "status", "value", "message"], args.output)
        if args.output == "table":
            count = len(verdict["problems"])
            out.write("settings are valid\n" if not count else f"{count} problem(s): the app would not start\n")
    return EXIT_OK if verdict["valid"] else EXIT_INVALID
