"""``steward audit``: the estate audit on demand, against the sandbox or (given credentials) Azure.

The same code as the timer's orchestration: the inventory port (ARM by default, Resource Graph on request),
the rules, the pure audit, the report renderers. Exit codes, for pipelines:

* 0 - audit done, nothing at or above ``--fail-on``
* 1 - audit done, findings at or above ``--fail-on``
* 2 - bad arguments or settings, or the audit could not run at all
"""

from __future__ import annotations

import argparse
import io
import json
import ssl
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Final, TextIO

from steward.cli_output import write_rows
from steward.cloud.clients import CloudClients, CloudTarget
from steward.cloud.errors import CloudError
from steward.cloud.inventory import (
    ArmEstateReader,
    EstateReader,
    FallbackEstateReader,
    graph_reader,
    read_estate,
)
from steward.domain.audit import (
    DEFAULT_ROLE_ASSIGNMENT_PERCENT,
    AuditError,
    AuditResult,
    InvalidPreviousResult,
    RuleExpectations,
    Severity,
    audit,
)
from steward.domain.errors import StewardError
from steward.domain.kernel import parse_time
from steward.domain.rules import RuleSet
from steward.report import render_html, render_table
from steward.rules_file import load_configured_rules

EXIT_OK: Final = 0
EXIT_FINDINGS: Final = 1
EXIT_ERROR: Final = 2
FORMATS: Final = ("table", "json", "csv", "html")
#: The columns of ``--output csv``: one row per finding.
CSV_COLUMNS: Final = ("severity", "control", "title", "resourceId", "resourceType", "subscriptionId", "location",
                      "why", "fix")


class ProgressBar:
    """A one-line bar on a terminal (nothing when the stream is not a TTY, unless forced)."""

    def __init__(self, stream: TextIO, total: int, *, enabled: bool, width: int = 30) -> None:
        self.stream = stream
        self.total = max(total, 1)
        self.enabled = enabled
        self.width = width
        self.started = time.monotonic()

    def update(self, what: str, done: int) -> None:
        if not self.enabled:
            return
        filled = round(self.width * done / self.total)
        elapsed = time.monotonic() - self.started
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r[{bar}] {done}/{self.total} {what} {elapsed:5.1f}s")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def run_audit(
    reader: EstateReader,
    rules: RuleSet,
    *,
    now: datetime,
    subscriptions: Sequence[str] | None = None,
    previous: AuditResult | None = None,
    concurrency: int = 8,
    progress: ProgressBar | None = None,
    role_assignment_percent: int = DEFAULT_ROLE_ASSIGNMENT_PERCENT,
) -> AuditResult:
    """Inventory (fanned out per subscription), then the pure audit (CAP-003 from ``role_assignment_percent``)."""
    inventory = read_estate(
        reader, subscriptions, concurrency=concurrency, progress=progress.update if progress else None
    )
    return audit(inventory, RuleExpectations(rules, inventory.vaults), now, previous,
                 role_assignment_percent=role_assignment_percent)


def render(result: AuditResult, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result.to_json(), indent=2) + "\n"
    if fmt == "html":
        return render_html(result)
    if fmt == "csv":
        buffer = io.StringIO()
        write_rows(buffer, [finding.to_json() for finding in result.findings], CSV_COLUMNS, "csv")
        return buffer.getvalue()
    return render_table(result)


def sandbox_now(target: CloudTarget) -> datetime | None:
    """The sandbox's virtual time (its admin API), so RPOs are judged in Azure time; None elsewhere."""
    if target.credential_kind != "sandbox":
        return None
    url = target.arm_endpoint.rstrip("/") + "/sandbox/clock"
    context = ssl.create_default_context(cafile=target.ca_bundle) if target.ca_bundle else None
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as answer:  # noqa: S310 - loopback sandbox
            return parse_time(json.loads(answer.read())["now"])
    except (OSError, ValueError, KeyError):
        return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="steward audit",
        description="Audit backup coverage and safety across subscriptions; print a table, JSON, CSV or HTML.",
        epilog="examples: steward audit --output csv > findings.csv; "
               "steward audit --output html --output-file report.html --fail-on high",
    )
    parser.add_argument(
        "--output", "-o", metavar="FORMAT|FILE",
        help="table (default), json, csv (one row per finding) or html, as on every steward command; "
             "a file name writes the report there (as --output-file)",
    )
    parser.add_argument("--format", choices=FORMATS, default=None, help="the same as --output FORMAT")
    parser.add_argument("--output-file", metavar="FILE", help="write the report here instead of standard output")
    parser.add_argument(
        "--fail-on",
        metavar="SEVERITY",
        help="exit 1 when findings at or above this severity exist: critical, high, medium, low, info",
    )
    parser.add_argument("--subscription", action="append", default=[], help="audit this subscription (repeat)")
    parser.add_argument("--rules", help="protection rules file (default: the configured or packaged rules)")
    parser.add_argument("--previous", help="JSON of an earlier run: new/resolved findings and the trend")
    parser.add_argument(
        "--source",
        choices=("arm", "graph", "auto"),
        default="arm",
        help="inventory: ARM lists (default), Resource Graph, or auto (Graph, ARM for what Graph cannot read)",
    )
    parser.add_argument("--concurrency", type=int, default=8, help="subscriptions read in parallel (default 8)")
    parser.add_argument("--now", help="audit as of this UTC time (ISO 8601); default: now (sandbox: its clock)")
    target = parser.add_argument_group("target (default: the STEWARD_* settings; else Azure)")
    target.add_argument("--arm-endpoint", help="ARM base URL, e.g. the sandbox's https://127.0.0.1:PORT")
    target.add_argument("--ca-bundle", help="PEM of the CA to trust (the sandbox's)")
    target.add_argument("--sandbox-token-url", help="the sandbox's token URL (selects the sandbox credential)")
    bar = parser.add_mutually_exclusive_group()
    bar.add_argument("--progress", dest="progress", action="store_true", default=None, help="always show progress")
    bar.add_argument("--no-progress", dest="progress", action="store_false", help="never show progress")
    return parser


def _output(args: argparse.Namespace) -> tuple[str, str | None]:
    """(format, file): ``--output`` is a format name (as on the other commands) or, as before, a file name."""
    if args.output in FORMATS:
        return args.output, args.output_file
    return args.format or "table", args.output or args.output_file


def _target(args: argparse.Namespace) -> tuple[CloudTarget, tuple[str, ...], RuleSet | None, int]:
    """CLI flags over settings: a sandbox endpoint needs no STEWARD_* variable at all. The last: CAP-003's threshold
    (STEWARD_ROLE_ASSIGNMENT_WARN_PERCENT when settings are read, else its default)."""
    if args.sandbox_token_url or args.arm_endpoint:
        target = CloudTarget(
            arm_endpoint=args.arm_endpoint or "https://management.azure.com",
            credential_kind="sandbox" if args.sandbox_token_url else "default",
            sandbox_token_url=args.sandbox_token_url,
            ca_bundle=args.ca_bundle,
            polling_interval=1.0,
        )
        return target, (), None, DEFAULT_ROLE_ASSIGNMENT_PERCENT
    from steward.settings import Settings

    settings = Settings.from_env()
    target = settings.cloud_target()
    if args.ca_bundle:
        target = replace(target, ca_bundle=args.ca_bundle)
    return (target, settings.subscriptions, settings.rules if settings.rules.rules else None,
            settings.role_assignment_warn_percent)


def _reader(source: str, clients: CloudClients, subscriptions: Sequence[str]) -> EstateReader:
    arm = ArmEstateReader(clients)
    if source == "arm":
        return arm
    subs = tuple(subscriptions) or arm.subscriptions()
    try:
        graph: EstateReader = graph_reader(clients, subs)
    except ImportError as error:
        if source == "graph":
            raise AuditError(f"--source graph needs azure-mgmt-resourcegraph: {error}") from error
        return arm
    return graph if source == "graph" else FallbackEstateReader(graph, arm)


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    args = build_parser().parse_args(argv)
    fmt, target_file = _output(args)
    try:
        threshold = Severity.parse(args.fail_on) if args.fail_on else None
        target, configured_subs, configured_rules, role_percent = _target(args)
        rules = (
            load_configured_rules(args.rules, None)
            if args.rules
            else (configured_rules or load_configured_rules(None, None))
        )
        previous = AuditResult.from_json(json.loads(Path(args.previous).read_text())) if args.previous else None
        now = parse_time(args.now) or sandbox_now(target) or datetime.now(UTC)
        clients = CloudClients(target)
        subscriptions = tuple(args.subscription) or configured_subs
        reader = _reader(args.source, clients, subscriptions)
        wanted = subscriptions or reader.subscriptions()
        show = args.progress if args.progress is not None else err.isatty()
        progress = ProgressBar(err, len(wanted), enabled=show)
        try:
            result = run_audit(
                reader,
                rules,
                now=now,
                subscriptions=wanted,
                previous=previous,
                concurrency=args.concurrency,
                progress=progress,
                role_assignment_percent=role_percent,
            )
        finally:
            progress.close()
    except (StewardError, CloudError, AuditError, InvalidPreviousResult, OSError, ValueError) as error:
        err.write(f"steward audit: {error}\n")
        return EXIT_ERROR
    text = render(result, fmt)
    if target_file:
        Path(target_file).write_text(text, encoding="utf-8")
        err.write(f"steward audit: wrote {fmt} report to {target_file}\n")
    else:
        out.write(text)
    if threshold is not None and result.at_or_above(threshold):
        count = len(result.at_or_above(threshold))
        err.write(f"steward audit: {count} finding(s) at or above {threshold.value}\n")
        return EXIT_FINDINGS
    return EXIT_OK


if __name__ == "__main__":  # pragma: no cover - `python -m steward.audit_cli`
    raise SystemExit(main())
