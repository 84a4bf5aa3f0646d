"""Every setting of Backup Steward, read once from the environment (Function App settings), validated.

``Settings.from_env()`` collects every problem and raises :class:`InvalidSettings` naming each setting, so a
bad deployment fails at start-up with one clear message instead of at the first event. Secrets (the Event
Grid topic key, the reports connection string) are never echoed: not in errors, not in ``repr``.
The env-var names are the constants below (and :data:`REFERENCE` documents them); nothing else reads them.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from steward.cloud.clients import PUBLIC_ARM_ENDPOINT, CloudTarget
from steward.domain.audit import DEFAULT_ROLE_ASSIGNMENT_PERCENT
from steward.domain.errors import InvalidResourceId, InvalidRules, StewardError
from steward.domain.ids import ResourceId, is_subscription_guid
from steward.domain.rules import DEFAULT_FILL_PERCENT, DEFAULT_OPT_OUT_TAG, DEFAULT_VAULT_TAG, ExplicitVault, RuleSet
from steward.rules_file import load_configured_rules

# ---- the names --------------------------------------------------------------------------------------

ARM_ENDPOINT: Final = "STEWARD_ARM_ENDPOINT"
CREDENTIAL: Final = "STEWARD_CREDENTIAL"
MANAGED_IDENTITY_CLIENT_ID: Final = "STEWARD_MANAGED_IDENTITY_CLIENT_ID"
SANDBOX_TOKEN_URL: Final = "STEWARD_SANDBOX_TOKEN_URL"  # noqa: S105 - an env-var name, not a secret
SANDBOX_PRINCIPAL_ID: Final = "STEWARD_SANDBOX_PRINCIPAL_ID"
CA_BUNDLE: Final = "STEWARD_CA_BUNDLE"
SUBSCRIPTIONS: Final = "STEWARD_SUBSCRIPTIONS"
RULES_PATH: Final = "STEWARD_RULES_PATH"
RULES: Final = "STEWARD_RULES"
OPT_OUT_TAG: Final = "STEWARD_OPT_OUT_TAG"
TEARDOWN_OPT_IN_TAG: Final = "STEWARD_TEARDOWN_OPT_IN_TAG"
TEARDOWN_ALLOWED_PRINCIPALS: Final = "STEWARD_TEARDOWN_ALLOWED_PRINCIPALS"
TEARDOWN_ALLOWED_ROLES: Final = "STEWARD_TEARDOWN_ALLOWED_ROLES"
TEARDOWN_RATE_PER_MINUTE: Final = "STEWARD_TEARDOWN_RATE_PER_MINUTE"
TEARDOWN_REQUESTS_TOPIC_ID: Final = "STEWARD_TEARDOWN_REQUESTS_TOPIC_ID"
TEARDOWN_FOUR_EYES: Final = "STEWARD_TEARDOWN_FOUR_EYES"
EVENTS_TOPIC_ENDPOINT: Final = "STEWARD_EVENTS_TOPIC_ENDPOINT"
EVENTS_TOPIC_KEY: Final = "STEWARD_EVENTS_TOPIC_KEY"
REPORTS_ACCOUNT_URL: Final = "STEWARD_REPORTS_ACCOUNT_URL"
REPORTS_CONNECTION_STRING: Final = "STEWARD_REPORTS_CONNECTION_STRING"
REPORTS_CONTAINER: Final = "STEWARD_REPORTS_CONTAINER"
AUDIT_SCHEDULE: Final = "STEWARD_AUDIT_SCHEDULE"
DRILL_SCHEDULE: Final = "STEWARD_DRILL_SCHEDULE"
MAX_PARALLEL_WRITES: Final = "STEWARD_MAX_PARALLEL_WRITES"
AUTO_CREATE_VAULTS: Final = "STEWARD_AUTO_CREATE_VAULTS"
ARM_CACHE_SECONDS: Final = "STEWARD_ARM_CACHE_SECONDS"
VAULT_FILL_PERCENT: Final = "STEWARD_VAULT_FILL_PERCENT"
ROLE_ASSIGNMENT_WARN_PERCENT: Final = "STEWARD_ROLE_ASSIGNMENT_WARN_PERCENT"
REPORTS_DIR: Final = "STEWARD_REPORTS_DIR"
TEARDOWN_APPROVAL_TIMEOUT_HOURS: Final = "STEWARD_TEARDOWN_APPROVAL_TIMEOUT_HOURS"
TEARDOWN_WAIT_CHUNK_HOURS: Final = "STEWARD_TEARDOWN_WAIT_CHUNK_HOURS"
VAULT_DEFAULT_TAG: Final = "STEWARD_VAULT_DEFAULT_TAG"
AUDIT_REMEDIATE_LIMIT: Final = "STEWARD_AUDIT_REMEDIATE_LIMIT"
AUDIT_ALLOWED_PRINCIPALS: Final = "STEWARD_AUDIT_ALLOWED_PRINCIPALS"
AUDIT_RATE_PER_MINUTE: Final = "STEWARD_AUDIT_RATE_PER_MINUTE"
AUTH_AUTHORITY: Final = "STEWARD_AUTH_AUTHORITY"
AUTH_TENANTS: Final = "STEWARD_AUTH_TENANTS"
AUTH_AUDIENCES: Final = "STEWARD_AUTH_AUDIENCES"

CREDENTIAL_KINDS: Final = ("default", "managed-identity", "sandbox")
DEFAULT_TEARDOWN_OPT_IN_TAG: Final = "backup-steward:teardown"
#: Entra ID's authority in the public cloud (the OpenID configuration lives at {authority}/{tenant}/v2.0/...).
DEFAULT_AUTH_AUTHORITY: Final = "https://login.microsoftonline.com"
DEFAULT_REPORTS_CONTAINER: Final = "steward-reports"
#: NCRONTAB (six fields, seconds first): every day at 06:00 UTC.
DEFAULT_AUDIT_SCHEDULE: Final = "0 0 6 * * *"
#: NCRONTAB of the restore drill timer: every day at 03:00 UTC. Each drill rule's ``every`` decides which resources
#: are due; without drill rules (the packaged rules have none) the timer starts nothing.
DEFAULT_DRILL_SCHEDULE: Final = "0 0 3 * * *"
DEFAULT_MAX_PARALLEL_WRITES: Final = 8
MAX_PARALLEL_WRITES_RANGE: Final = (1, 50)
#: lifetime of the cached vault lists, policy ids and granted roles (steward/cloud/arm_cache.py); 0: no cache
DEFAULT_ARM_CACHE_SECONDS: Final = 300
ARM_CACHE_SECONDS_RANGE: Final = (0, 3600)
VAULT_FILL_PERCENT_RANGE: Final = (1, 100)
ROLE_ASSIGNMENT_WARN_PERCENT_RANGE: Final = (1, 100)
#: Teardown requests (POST routes) one caller may make per minute, per instance (token bucket, burst = rate).
DEFAULT_TEARDOWN_RATE_PER_MINUTE: Final = 10
DEFAULT_TEARDOWN_APPROVAL_TIMEOUT_HOURS: Final = 72
TEARDOWN_APPROVAL_TIMEOUT_RANGE: Final = (1, 24 * 30)
DEFAULT_TEARDOWN_WAIT_CHUNK_HOURS: Final = 24
TEARDOWN_WAIT_CHUNK_RANGE: Final = (1, 24 * 6)
TEARDOWN_RATE_PER_MINUTE_RANGE: Final = (1, 600)
AUDIT_REMEDIATE_LIMIT_RANGE: Final = (0, 1000)
#: Audit starts (POST /api/audits) one caller may make per minute, per instance (token bucket, burst = rate).
DEFAULT_AUDIT_RATE_PER_MINUTE: Final = 10
AUDIT_RATE_PER_MINUTE_RANGE: Final = (1, 600)
#: Longest value we accept for any setting but inline rules (which have their own bound).
MAX_VALUE_LENGTH: Final = 4096

#: (name, default, meaning) of every setting, for the README's configuration reference.
REFERENCE: Final[tuple[tuple[str, str, str], ...]] = (
    (ARM_ENDPOINT, PUBLIC_ARM_ENDPOINT, "ARM base URL; https (http only on loopback)"),
    (CREDENTIAL, "default", "default | managed-identity | sandbox"),
    (MANAGED_IDENTITY_CLIENT_ID, "", "client id of a user-assigned managed identity"),
    (SANDBOX_TOKEN_URL, "", "token endpoint of the local sandbox (required when the credential is sandbox)"),
    (SANDBOX_PRINCIPAL_ID, "", "principal the sandbox token names (GUID)"),
    (CA_BUNDLE, "", "PEM file of extra trusted CAs (the sandbox's); must exist"),
    (SUBSCRIPTIONS, "", "comma-separated subscription ids the app may act on; empty: none"),
    (RULES_PATH, "", "protection rules file (YAML/JSON); exclusive with STEWARD_RULES"),
    (RULES, "", "protection rules inline; neither set: the packaged default rules"),
    (OPT_OUT_TAG, DEFAULT_OPT_OUT_TAG, "tag that opts a resource out when 'true'"),
    (TEARDOWN_OPT_IN_TAG, DEFAULT_TEARDOWN_OPT_IN_TAG, "tag a vault needs before a failed delete may tear it down"),
    (TEARDOWN_ALLOWED_PRINCIPALS, "", "comma-separated object ids allowed to request teardowns"),
    (TEARDOWN_ALLOWED_ROLES, "", "comma-separated app roles allowed to request teardowns"),
    (
        TEARDOWN_REQUESTS_TOPIC_ID,
        "",
        "resource id of the Event Grid topic whose BackupSteward.Teardown.Requested events are accepted (they only "
        "plan; approval is over HTTP); empty: custom teardown events are refused",
    ),
    (
        TEARDOWN_FOUR_EYES,
        "true",
        "four eyes: a teardown's approver must be another principal than its requester (the Bicep sets true; the "
        "local stack and the demo false)",
    ),
    (
        TEARDOWN_RATE_PER_MINUTE,
        str(DEFAULT_TEARDOWN_RATE_PER_MINUTE),
        "teardown requests (POST) per caller per minute and instance (1..600); more get 429 + Retry-After",
    ),
    (EVENTS_TOPIC_ENDPOINT, "", "Event Grid topic for outcome events; empty: none published"),
    (EVENTS_TOPIC_KEY, "", "access key of that topic (secret); empty: the app's identity"),
    (REPORTS_ACCOUNT_URL, "", "blob account URL for audit and teardown reports (identity auth)"),
    (
        REPORTS_CONNECTION_STRING,
        "",
        "connection string for audit and teardown reports (secret); exclusive with the URL",
    ),
    (REPORTS_CONTAINER, DEFAULT_REPORTS_CONTAINER, "blob container of audit and teardown reports"),
    (AUDIT_SCHEDULE, DEFAULT_AUDIT_SCHEDULE, "NCRONTAB schedule of the audit timer (6 fields, seconds first)"),
    (DRILL_SCHEDULE, DEFAULT_DRILL_SCHEDULE, "NCRONTAB schedule of the restore drill timer (6 fields, seconds "
     "first); it starts a drill only when the rules have a drills section"),
    (
        AUDIT_ALLOWED_PRINCIPALS,
        "",
        "comma-separated object ids allowed to start audits and read reports over HTTP (with a valid token); "
        "empty: the teardown principals and roles",
    ),
    (
        AUDIT_REMEDIATE_LIMIT,
        "0",
        "resources an audit run starts protection for when the rules require it and nothing protects them "
        "(BKP-001), at most (0..1000); 0: the audit only reports",
    ),
    (
        AUDIT_RATE_PER_MINUTE,
        str(DEFAULT_AUDIT_RATE_PER_MINUTE),
        "audit starts (POST) per caller per minute and instance (1..600); more get 429 + Retry-After; callers "
        "without a verified identity share one bucket",
    ),
    (
        AUTH_AUTHORITY,
        DEFAULT_AUTH_AUTHORITY,
        "Entra ID authority whose v2.0 OpenID configuration and keys validate callers' access tokens; https",
    ),
    (
        AUTH_TENANTS,
        "",
        "comma-separated tenant ids whose access tokens the HTTP routes accept; empty (or no audience): no caller "
        "can authenticate, so the teardown routes (and the audit routes when restricted) answer 401",
    ),
    (
        AUTH_AUDIENCES,
        "",
        "comma-separated audiences the access token must name: the app registration's client id (v2.0 tokens) "
        "and/or its application id URI",
    ),
    (MAX_PARALLEL_WRITES, str(DEFAULT_MAX_PARALLEL_WRITES), "ARM writes in flight per orchestration (1..50)"),
    (AUTO_CREATE_VAULTS, "false", "create the regional vault when none exists, and a vault set's next vault"),
    (VAULT_FILL_PERCENT, str(DEFAULT_FILL_PERCENT),
     "a vault set passes over a member this full (percent of its limit, 1..100; issue 19)"),
    (ROLE_ASSIGNMENT_WARN_PERCENT, str(DEFAULT_ROLE_ASSIGNMENT_PERCENT),
     "the audit reports a subscription holding this share of Azure's 4,000 role assignments (percent, 1..100; "
     "CAP-003)"),
    (
        ARM_CACHE_SECONDS,
        str(DEFAULT_ARM_CACHE_SECONDS),
        "seconds a vault list, policy id or role the app granted is reused per worker (0..3600; 0: every "
        "protection reads them again); the app's own vault creates and deletes drop it sooner",
    ),
    (VAULT_DEFAULT_TAG, DEFAULT_VAULT_TAG, "tag (=true) that marks a region's default vault"),
    (REPORTS_DIR, "", "local directory for reports when no blob storage is configured (development)"),
    (
        TEARDOWN_APPROVAL_TIMEOUT_HOURS,
        str(DEFAULT_TEARDOWN_APPROVAL_TIMEOUT_HOURS),
        "hours a planned teardown waits for approval before it ends (1..720)",
    ),
    (
        TEARDOWN_WAIT_CHUNK_HOURS,
        str(DEFAULT_TEARDOWN_WAIT_CHUNK_HOURS),
        "longest durable timer of a waiting teardown before it continues as new (1..144)",
    ),
)

_GUID_LIST_SPLIT = re.compile(r"[,;\s]+")
_CONTAINER = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")
_TAG_FORBIDDEN = set("<>%&\\?/")
_TRUE: Final = frozenset({"true", "1", "yes", "on"})
_FALSE: Final = frozenset({"false", "0", "no", "off", ""})
_SECRETS: Final = frozenset({EVENTS_TOPIC_KEY, REPORTS_CONNECTION_STRING})
#: The settings whose values are secrets: never shown in a message, a repr or ``steward settings check``.
SECRET_SETTINGS: Final = _SECRETS
_TEST_PREFIXES: Final = ("STEWARD_TEST_", "STEWARD_FUZZ_", "STEWARD_SCHEMATHESIS_")


@dataclass(frozen=True)
class SettingProblem:
    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.name}: {self.message}"


class InvalidSettings(StewardError, ValueError):
    """One or more settings are wrong; ``problems`` names each one."""

    def __init__(self, problems: list[SettingProblem]) -> None:
        self.problems = tuple(problems)
        lines = "\n".join(f"  {p}" for p in self.problems)
        super().__init__(f"invalid settings ({len(self.problems)} problem(s)):\n{lines}")


def unknown_settings(env: Mapping[str, str] | None = None) -> list[tuple[str, str | None]]:
    """``STEWARD_*`` variables that are not settings (a misspelt name is otherwise silently ignored), each with
    the setting it most resembles, if any. Names under ``STEWARD_TEST_``/``STEWARD_FUZZ_`` belong to the tests."""
    known = [name for name, _, _ in REFERENCE]
    found = []
    for name in sorted(os.environ if env is None else env):
        if not name.startswith("STEWARD_") or name in known or name.startswith(_TEST_PREFIXES):
            continue
        close = difflib.get_close_matches(name, known, n=1, cutoff=0.75)
        found.append((name, close[0] if close else None))
    return found


@dataclass(frozen=True)
class Settings:
    arm_endpoint: str = PUBLIC_ARM_ENDPOINT
    credential: str = "default"
    managed_identity_client_id: str | None = None
    sandbox_token_url: str | None = None
    sandbox_principal_id: str | None = None
    ca_bundle: str | None = None
    subscriptions: tuple[str, ...] = ()  # lower-cased GUIDs
    rules_path: str | None = None
    rules: RuleSet = field(default_factory=lambda: load_configured_rules(None, None), repr=False)
    opt_out_tag: str = DEFAULT_OPT_OUT_TAG
    teardown_opt_in_tag: str = DEFAULT_TEARDOWN_OPT_IN_TAG
    teardown_allowed_principals: frozenset[str] = frozenset()  # lower-cased object ids
    teardown_allowed_roles: frozenset[str] = frozenset()  # lower-cased
    teardown_rate_per_minute: int = DEFAULT_TEARDOWN_RATE_PER_MINUTE
    teardown_approval_timeout_hours: int = DEFAULT_TEARDOWN_APPROVAL_TIMEOUT_HOURS
    teardown_wait_chunk_hours: int = DEFAULT_TEARDOWN_WAIT_CHUNK_HOURS
    teardown_requests_topic_id: str | None = None
    teardown_four_eyes: bool = True
    reports_dir: str | None = None
    events_topic_endpoint: str | None = None
    events_topic_key: str | None = field(default=None, repr=False)
    reports_account_url: str | None = None
    reports_connection_string: str | None = field(default=None, repr=False)
    reports_container: str = DEFAULT_REPORTS_CONTAINER
    audit_schedule: str = DEFAULT_AUDIT_SCHEDULE
    drill_schedule: str = DEFAULT_DRILL_SCHEDULE
    audit_remediate_limit: int = 0
    audit_allowed_principals: frozenset[str] = frozenset()  # lower-cased object ids; empty: teardown principals
    audit_rate_per_minute: int = DEFAULT_AUDIT_RATE_PER_MINUTE
    auth_authority: str = DEFAULT_AUTH_AUTHORITY
    auth_tenants: tuple[str, ...] = ()  # lower-cased GUIDs
    auth_audiences: tuple[str, ...] = ()
    max_parallel_writes: int = DEFAULT_MAX_PARALLEL_WRITES
    arm_cache_seconds: int = DEFAULT_ARM_CACHE_SECONDS
    auto_create_vaults: bool = False
    vault_default_tag: str = DEFAULT_VAULT_TAG
    vault_fill_percent: int = DEFAULT_FILL_PERCENT
    role_assignment_warn_percent: int = DEFAULT_ROLE_ASSIGNMENT_PERCENT

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Read and validate every setting; :class:`InvalidSettings` lists every problem at once."""
        reader = _Reader(dict(os.environ if env is None else env))
        credential = reader.choice(CREDENTIAL, CREDENTIAL_KINDS, "default")
        arm_endpoint = reader.url(ARM_ENDPOINT, PUBLIC_ARM_ENDPOINT) or PUBLIC_ARM_ENDPOINT
        sandbox_token_url = reader.url(SANDBOX_TOKEN_URL, required=credential == "sandbox")
        if credential != "sandbox":
            for name in (SANDBOX_TOKEN_URL, SANDBOX_PRINCIPAL_ID):
                if reader.raw(name):
                    reader.problem(name, f"is only used with {CREDENTIAL}=sandbox (it is {credential!r})")
        events_topic_endpoint = reader.url(EVENTS_TOPIC_ENDPOINT)
        events_topic_key = reader.secret(EVENTS_TOPIC_KEY)
        if events_topic_key and not events_topic_endpoint:
            reader.problem(EVENTS_TOPIC_KEY, f"is set but {EVENTS_TOPIC_ENDPOINT} is not")
        opt_out_tag = reader.tag_name(OPT_OUT_TAG, DEFAULT_OPT_OUT_TAG)
        vault_default_tag = reader.tag_name(VAULT_DEFAULT_TAG, DEFAULT_VAULT_TAG)
        fill_percent = reader.integer(VAULT_FILL_PERCENT, DEFAULT_FILL_PERCENT, VAULT_FILL_PERCENT_RANGE)
        rules_path = reader.path(RULES_PATH)
        rules = None
        if reader.exclusive(RULES_PATH, RULES) and not any(p.name == RULES_PATH for p in reader.problems):
            # The setting, when given, overrides the document's optOutTag; else the document's (or the default).
            override = opt_out_tag if reader.raw(OPT_OUT_TAG) else None
            rules = reader.rules(rules_path, reader.raw(RULES), override, vault_default_tag, fill_percent)
            opt_out_tag = rules.opt_out_tag if rules is not None else opt_out_tag
        settings = cls(
            arm_endpoint=arm_endpoint,
            credential=credential,
            managed_identity_client_id=reader.guid(MANAGED_IDENTITY_CLIENT_ID),
            sandbox_token_url=sandbox_token_url,
            sandbox_principal_id=reader.guid(SANDBOX_PRINCIPAL_ID),
            ca_bundle=reader.existing_file(CA_BUNDLE),
            subscriptions=tuple(reader.guid_list(SUBSCRIPTIONS)),
            rules_path=rules_path,
            rules=rules if rules is not None else RuleSet(()),
            opt_out_tag=opt_out_tag,
            teardown_opt_in_tag=reader.tag_name(TEARDOWN_OPT_IN_TAG, DEFAULT_TEARDOWN_OPT_IN_TAG),
            teardown_allowed_principals=frozenset(reader.guid_list(TEARDOWN_ALLOWED_PRINCIPALS)),
            teardown_allowed_roles=frozenset(reader.name_list(TEARDOWN_ALLOWED_ROLES)),
            teardown_rate_per_minute=reader.integer(
                TEARDOWN_RATE_PER_MINUTE, DEFAULT_TEARDOWN_RATE_PER_MINUTE, TEARDOWN_RATE_PER_MINUTE_RANGE
            ),
            teardown_approval_timeout_hours=reader.integer(
                TEARDOWN_APPROVAL_TIMEOUT_HOURS,
                DEFAULT_TEARDOWN_APPROVAL_TIMEOUT_HOURS,
                TEARDOWN_APPROVAL_TIMEOUT_RANGE,
            ),
            teardown_wait_chunk_hours=reader.integer(
                TEARDOWN_WAIT_CHUNK_HOURS, DEFAULT_TEARDOWN_WAIT_CHUNK_HOURS, TEARDOWN_WAIT_CHUNK_RANGE
            ),
            teardown_requests_topic_id=reader.resource_id(TEARDOWN_REQUESTS_TOPIC_ID),
            teardown_four_eyes=reader.boolean(TEARDOWN_FOUR_EYES, default=True),
            reports_dir=reader.path(REPORTS_DIR),
            events_topic_endpoint=events_topic_endpoint,
            events_topic_key=events_topic_key,
            reports_account_url=reader.url(REPORTS_ACCOUNT_URL),
            reports_connection_string=reader.secret(REPORTS_CONNECTION_STRING),
            reports_container=reader.container(REPORTS_CONTAINER, DEFAULT_REPORTS_CONTAINER),
            audit_schedule=reader.ncrontab(AUDIT_SCHEDULE, DEFAULT_AUDIT_SCHEDULE),
            drill_schedule=reader.ncrontab(DRILL_SCHEDULE, DEFAULT_DRILL_SCHEDULE),
            audit_remediate_limit=reader.integer(AUDIT_REMEDIATE_LIMIT, 0, AUDIT_REMEDIATE_LIMIT_RANGE),
            audit_allowed_principals=frozenset(reader.guid_list(AUDIT_ALLOWED_PRINCIPALS)),
            audit_rate_per_minute=reader.integer(
                AUDIT_RATE_PER_MINUTE, DEFAULT_AUDIT_RATE_PER_MINUTE, AUDIT_RATE_PER_MINUTE_RANGE
            ),
            auth_authority=reader.url(AUTH_AUTHORITY, DEFAULT_AUTH_AUTHORITY) or DEFAULT_AUTH_AUTHORITY,
            auth_tenants=tuple(reader.guid_list(AUTH_TENANTS)),
            auth_audiences=tuple(reader.audience_list(AUTH_AUDIENCES)),
            max_parallel_writes=reader.integer(
                MAX_PARALLEL_WRITES, DEFAULT_MAX_PARALLEL_WRITES, MAX_PARALLEL_WRITES_RANGE
            ),
            arm_cache_seconds=reader.integer(ARM_CACHE_SECONDS, DEFAULT_ARM_CACHE_SECONDS, ARM_CACHE_SECONDS_RANGE),
            auto_create_vaults=reader.boolean(AUTO_CREATE_VAULTS, default=False),
            vault_default_tag=vault_default_tag,
            vault_fill_percent=fill_percent,
            role_assignment_warn_percent=reader.integer(
                ROLE_ASSIGNMENT_WARN_PERCENT, DEFAULT_ROLE_ASSIGNMENT_PERCENT, ROLE_ASSIGNMENT_WARN_PERCENT_RANGE
            ),
        )
        reader.exclusive(REPORTS_ACCOUNT_URL, REPORTS_CONNECTION_STRING)
        reader.together(AUTH_TENANTS, AUTH_AUDIENCES)
        if reader.raw(AUTH_AUTHORITY) and urlsplit(settings.auth_authority).scheme != "https":
            reader.problem(AUTH_AUTHORITY, "must use https: the keys that prove callers come from it")
        if rules is not None:
            reader.rule_targets_in_scope(rules, settings.subscriptions, RULES_PATH if rules_path else RULES)
        if reader.problems:
            raise InvalidSettings(reader.problems)
        return settings

    def cloud_target(self) -> CloudTarget:
        """Where ARM is and how to authenticate, for :class:`steward.cloud.clients.CloudClients`."""
        return CloudTarget(
            arm_endpoint=self.arm_endpoint,
            credential_kind=self.credential,
            managed_identity_client_id=self.managed_identity_client_id,
            sandbox_token_url=self.sandbox_token_url,
            sandbox_principal_id=self.sandbox_principal_id,
            ca_bundle=self.ca_bundle,
            connection_pool_size=max(32, 2 * self.max_parallel_writes),
        )

    def manages(self, subscription_id: str) -> bool:
        """True when the app may act on ``subscription_id``."""
        return subscription_id.lower() in self.subscriptions


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Reader:
    """Reads settings from a copy of the environment, collecting problems instead of stopping at the first."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.problems: list[SettingProblem] = []

    def problem(self, name: str, message: str) -> None:
        self.problems.append(SettingProblem(name, message))

    def raw(self, name: str) -> str | None:
        value = self.env.get(name)
        if value is None:
            return None
        value = value.strip()
        return value or None

    def _text(self, name: str) -> str | None:
        value = self.raw(name)
        if value is None:
            return None
        shown = "the value" if name in _SECRETS else repr(value[:60])
        if len(value) > MAX_VALUE_LENGTH:
            self.problem(name, f"is {len(value)} characters long (at most {MAX_VALUE_LENGTH})")
            return None
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
            self.problem(name, f"{shown} contains control characters")
            return None
        return value

    def _checked(self, name: str, default: str, check: Callable[[str], str | None]) -> str:
        value = self._text(name)
        if value is None:
            return default
        message = check(value)
        if message is not None:
            self.problem(name, message)
            return default
        return value

    def choice(self, name: str, allowed: tuple[str, ...], default: str) -> str:
        value = self._text(name)
        if value is None:
            return default
        if value.lower() not in allowed:
            self.problem(name, f"must be one of {', '.join(allowed)}; got {value[:60]!r}")
            return default
        return value.lower()

    def url(self, name: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self._text(name)
        if value is None:
            if required:
                self.problem(name, "is required")
            return default
        try:
            parts = urlsplit(value)
            host = parts.hostname or ""
            _ = parts.port
        except ValueError as error:
            self.problem(name, f"{value[:80]!r} is not a URL ({error})")
            return default
        if parts.scheme not in {"https", "http"} or not host:
            self.problem(name, f"{value[:80]!r} is not an http(s) URL with a host")
        elif parts.scheme == "http" and not _is_loopback(host):
            self.problem(name, f"must use https (plain http is only allowed on loopback), got {value[:80]!r}")
        elif parts.username or parts.password:
            self.problem(name, "must not carry credentials in the URL")
        elif parts.query or parts.fragment:
            # the query may carry a SAS signature or a key: name the URL without it
            shown = f"{parts.scheme}://{host}{parts.path}"[:80]
            self.problem(name, f"must not have a query or fragment (the value is not shown), got {shown!r}?...")
        else:
            return value.rstrip("/")
        return default

    def guid(self, name: str) -> str | None:
        value = self._text(name)
        if value is not None and not is_subscription_guid(value):
            self.problem(name, f"{value[:60]!r} is not a GUID")
            return None
        return None if value is None else value.lower()

    def guid_list(self, name: str) -> list[str]:
        value = self._text(name)
        if value is None:
            return []
        items = [item for item in _GUID_LIST_SPLIT.split(value) if item]
        bad = [item for item in items if not is_subscription_guid(item)]
        if bad:
            self.problem(name, f"not GUIDs: {', '.join(repr(b[:40]) for b in bad[:5])}")
            return []
        return list(dict.fromkeys(item.lower() for item in items))

    def name_list(self, name: str) -> list[str]:
        value = self._text(name)
        if value is None:
            return []
        items = [item.strip() for item in value.split(",") if item.strip()]
        too_long = [item for item in items if len(item) > 256]
        if too_long:
            self.problem(name, "entries must be at most 256 characters")
            return []
        return list(dict.fromkeys(item.lower() for item in items))

    def resource_id(self, name: str) -> str | None:
        """An ARM id of a resource (not a bare subscription or group), e.g. an Event Grid topic."""
        value = self._text(name)
        if value is None:
            return None
        try:
            parsed = ResourceId.parse(value.rstrip("/"))
        except InvalidResourceId as error:
            self.problem(name, f"is not a resource id: {error}")
            return None
        if parsed.is_subscription or parsed.is_resource_group:
            self.problem(name, f"must name a resource (an Event Grid topic), not {value[:120]!r}")
            return None
        return str(parsed)

    def audience_list(self, name: str) -> list[str]:
        """Token audiences: client ids (GUIDs) or application id URIs (``api://...`` or https URLs)."""
        value = self._text(name)
        if value is None:
            return []
        items = [item.strip() for item in value.split(",") if item.strip()]
        bad = [
            item for item in items
            if not (is_subscription_guid(item) or (":" in item and " " not in item and len(item) <= 256))
        ]
        if bad:
            self.problem(name, f"not a client id or application id URI: {', '.join(repr(b[:60]) for b in bad[:5])}")
            return []
        return list(dict.fromkeys(item.lower() if is_subscription_guid(item) else item for item in items))

    def together(self, first: str, second: str) -> None:
        """A problem when only one of two settings that work together is given."""
        if bool(self.raw(first)) != bool(self.raw(second)):
            given, missing = (first, second) if self.raw(first) else (second, first)
            self.problem(missing, f"is needed with {given} (set both, or neither)")

    def existing_file(self, name: str) -> str | None:
        value = self._text(name)
        if value is None:
            return None
        if not Path(value).is_file():
            self.problem(name, f"file {value[:200]!r} does not exist")
            return None
        return value

    def path(self, name: str) -> str | None:
        """A file path (not checked for existence here: the reader reports a missing file)."""
        return self._text(name)

    def secret(self, name: str) -> str | None:
        return self._text(name)

    def tag_name(self, name: str, default: str) -> str:
        def check(value: str) -> str | None:
            if len(value) > 512:
                return "a tag name is at most 512 characters"
            bad = sorted(_TAG_FORBIDDEN & set(value))
            if bad:
                return f"a tag name cannot contain {' '.join(bad)} (got {value[:60]!r})"
            return None

        return self._checked(name, default, check)

    def container(self, name: str, default: str) -> str:
        return self._checked(
            name,
            default,
            lambda v: (
                None
                if _CONTAINER.fullmatch(v)
                else f"{v[:70]!r} is not a blob container name (3-63 lower-case letters, digits, single hyphens)"
            ),
        )

    def ncrontab(self, name: str, default: str) -> str:
        return self._checked(name, default, ncrontab_problem)

    def integer(self, name: str, default: int, bounds: tuple[int, int]) -> int:
        value = self._text(name)
        if value is None:
            return default
        low, high = bounds
        try:
            number = int(value, 10)
        except ValueError:
            self.problem(name, f"must be a whole number from {low} to {high}, got {value[:40]!r}")
            return default
        if not low <= number <= high:
            self.problem(name, f"must be from {low} to {high}, got {number}")
            return default
        return number

    def boolean(self, name: str, *, default: bool) -> bool:
        value = self._text(name)
        if value is None:
            return default
        if value.lower() in _TRUE:
            return True
        if value.lower() in _FALSE:
            return False
        self.problem(name, f"must be true or false, got {value[:40]!r}")
        return default

    def exclusive(self, first: str, second: str) -> bool:
        """False (and a problem) when both settings are given."""
        if self.raw(first) and self.raw(second):
            self.problem(first, f"set {first} or {second}, not both")
            return False
        return True

    def rule_targets_in_scope(self, rules: RuleSet, subscriptions: tuple[str, ...], name: str) -> None:
        """Every vault subscription a rule names must be one the app may act on (when the scope is set)."""
        if not subscriptions:
            return
        for rule in rules.rules:
            spec = rule.protect
            if spec is None:
                continue
            target = (
                spec.vault.vault_id.subscription_id
                if isinstance(spec.vault, ExplicitVault)
                else spec.vault_subscription
            )
            if target is not None and target.lower() not in subscriptions:
                self.problem(
                    name,
                    f"rule {rule.name!r} (line {rule.line}) targets a vault in subscription {target}, "
                    f"which is not in {SUBSCRIPTIONS}",
                )

    def rules(
        self, path: str | None, inline: str | None, opt_out_tag: str | None, vault_default_tag: str,
        fill_percent: int = DEFAULT_FILL_PERCENT,
    ) -> RuleSet | None:
        name = RULES_PATH if path else RULES
        try:
            return load_configured_rules(path, inline, opt_out_tag=opt_out_tag, vault_default_tag=vault_default_tag,
                                         vault_fill_percent=fill_percent)
        except InvalidRules as error:
            self.problem(name, "; ".join(str(p) for p in error.problems[:20]))
            return None


# ---- NCRONTAB -----------------------------------------------------------------------------------------

_MONTHS: Final = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DAYS: Final = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_FIELDS: Final = (
    ("second", 0, 59, ()),
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 6, _DAYS),
)


def ncrontab_problem(expression: str) -> str | None:
    """None when ``expression`` is a six-field NCRONTAB expression the Functions timer accepts; else what is wrong."""
    fields = expression.split()
    if len(fields) != 6:
        return (
            f"must be an NCRONTAB expression with 6 fields (second minute hour day month day-of-week), "
            f"got {len(fields)} in {expression[:80]!r}"
        )
    for text, (what, low, high, names) in zip(fields, _FIELDS, strict=True):
        problem = _cron_field_problem(text, low, high, names)
        if problem is not None:
            return f"the {what} field {text[:40]!r} {problem}"
    return None


def _cron_value(text: str, names: tuple[str, ...], low: int) -> int | None:
    if text.isdigit():
        return int(text)
    lowered = text.lower()
    if lowered in names:
        return names.index(lowered) + low
    return None


def _cron_field_problem(text: str, low: int, high: int, names: tuple[str, ...]) -> str | None:
    for part in text.split(","):
        base, _, step = part.partition("/")
        if step and (not step.isdigit() or int(step) == 0):
            return f"has a bad step {step!r}"
        if base == "*":
            continue
        start_text, dash, end_text = base.partition("-")
        start = _cron_value(start_text, names, low)
        end = _cron_value(end_text, names, low) if dash else start
        if start is None or end is None:
            return f"has {base!r}, which is not a number{' or name' if names else ''}"
        if not (low <= start <= high and low <= end <= high):
            return f"must stay within {low}-{high}"
        if start > end:
            return f"has a backwards range {base!r}"
    return None
