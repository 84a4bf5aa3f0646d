"""The composition root, the only one: settings read once, SDK clients and ports built once per process.

Triggers and activities ask this module for what they need (settings, rules, clients, the publisher, the token
validator, the teardown's ARM operations, the report store); nothing else reads the environment or builds
clients. Tests reset it with ``reset()`` after changing the environment. Local runs, tests and benchmarks
inject with ``use()``: ``use(settings=...)`` sets the settings of the whole app (everything built from the
settings is built again from them), ``use(ops=..., report_store=..., publisher=...)`` replaces those ports;
``use()`` removes every injection. ``reset()`` keeps injections (they are not built from the environment).
"""

from __future__ import annotations

import logging
import os
import threading
from contextvars import ContextVar
from dataclasses import replace
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from steward.auth.tokens import BearerTokenValidator, validator_for
from steward.cloud.arm_cache import ArmCache, vaults_key
from steward.cloud.clients import CloudClients
from steward.cloud.publisher import EventGridOutcomePublisher, NullPublisher, OutcomePublisher
from steward.cloud.teardown_ops import TeardownOps
from steward.domain.rules import RuleSet
from steward.report.store import ReportStore, store_for
from steward.settings import InvalidSettings, Settings, unknown_settings

_LOCK = threading.Lock()
LOG = logging.getLogger("steward.settings")
#: what ``use()`` injected: "settings", "ops", "report_store", "publisher"
_injected: dict[str, Any] = {}
#: Which app instance this thread serves. In Azure one worker process is one instance, so it stays ""; the
#: local runner's scale-out model (``sandbox/durable`` ``RunnerConfig.instances``) names one per worker group
#: (``enter_instance``), so that each modelled instance builds its own SDK clients, ARM pacer and ARM cache,
#: as a separate process on a separate Flex Consumption instance would.
_INSTANCE: ContextVar[str] = ContextVar("steward_app_instance", default="")


def enter_instance(index: int) -> None:
    """Make this thread one of the modelled app instances (the local runner's ``instance_initializer``)."""
    _INSTANCE.set(f"instance-{index}")


def use(
    *,
    settings: Settings | None = None,
    ops: TeardownOps | None = None,
    report_store: ReportStore | None = None,
    publisher: OutcomePublisher | None = None,
) -> None:
    """Inject settings and ports (None removes that injection; ``use()`` removes all). When the settings change,
    whatever was built from the previous ones (rules, clients, publisher, token validator) is built again on the
    next ask."""
    with _LOCK:
        before = _injected.get("settings")
        for key, value in (("settings", settings), ("ops", ops), ("report_store", report_store),
                           ("publisher", publisher)):
            if value is None:
                _injected.pop(key, None)
            else:
                _injected[key] = value
        if _injected.get("settings") is not before:
            _forget_built()


def _injection(key: str) -> Any:
    with _LOCK:
        return _injected.get(key)


def settings() -> Settings:
    """Every setting, validated once (or the injected settings); a bad setting fails start-up with the
    setting's name."""
    injected: Settings | None = _injection("settings")
    return injected if injected is not None else _settings_from_env()


@lru_cache(maxsize=1)
def _settings_from_env() -> Settings:
    """A ``STEWARD_*`` variable that is no setting is logged (with the setting it resembles): a misspelt name
    would do nothing."""
    for name, close in unknown_settings():
        LOG.warning("%s is not a Backup Steward setting and is ignored%s", name,
                    f" (did you mean {close}?)" if close else "", extra={"setting": name})
    return Settings.from_env()


@lru_cache(maxsize=1)
def rules() -> RuleSet:
    """The protection rules: the configured file or text, else the defaults shipped with the app."""
    configured = settings().rules
    if configured is None:  # from_env always loads the configured or the packaged rules
        raise RuntimeError("settings were built without rules")
    return configured


def clients() -> CloudClients:
    """This instance's SDK clients (one per process in Azure); its ARM pacer is the instance's own."""
    return _clients(_INSTANCE.get())


@cache
def _clients(instance: str) -> CloudClients:
    target = settings().cloud_target()
    return CloudClients(replace(target, pacing_instance=instance) if instance else target)


def arm_cache() -> ArmCache:
    """The worker's short-lived cache of vault lists, policy ids and granted roles (STEWARD_ARM_CACHE_SECONDS)."""
    return _arm_cache(_INSTANCE.get())


@cache
def _arm_cache(instance: str) -> ArmCache:
    return ArmCache(settings().arm_cache_seconds)


def forget_vaults(kind: str, subscription_id: str) -> None:
    """Drop the cached vault list of a subscription (a vault is being deleted), if a cache was built at all."""
    if _arm_cache.cache_info().currsize:
        arm_cache().drop(*vaults_key(kind, subscription_id))


def publisher() -> OutcomePublisher:
    """Where outcome events go: the injected publisher, else the configured topic, else nowhere."""
    injected: OutcomePublisher | None = _injection("publisher")
    return injected if injected is not None else _configured_publisher()


def publisher_or_null() -> OutcomePublisher:
    """The publisher, or a null one when it cannot be built (no publisher is not a teardown failure)."""
    try:
        return publisher()
    except Exception:  # noqa: BLE001 - no publisher configured is not a teardown failure
        return NullPublisher()


@lru_cache(maxsize=1)
def _configured_publisher() -> OutcomePublisher:
    current = settings()
    if not current.events_topic_endpoint:
        return NullPublisher()
    return EventGridOutcomePublisher(
        current.events_topic_endpoint,
        key=current.events_topic_key,
        credential=None if current.events_topic_key else clients().credential,
        ca_bundle=current.ca_bundle,
    )


@lru_cache(maxsize=1)
def token_validator() -> BearerTokenValidator | None:
    """The validator of callers' Entra ID access tokens (``STEWARD_AUTH_*``), with its key cache; None when no
    tenant/audience is configured (then no caller can authenticate)."""
    current = settings()
    return validator_for(
        current.auth_authority, current.auth_tenants, current.auth_audiences, ca_bundle=current.ca_bundle
    )


def teardown_ops() -> TeardownOps:
    """The teardown's ARM operations (injected, or on the shared clients)."""
    injected: TeardownOps | None = _injection("ops")
    return injected if injected is not None else TeardownOps(clients())


def report_store() -> ReportStore:
    """Where audit and teardown reports are kept: the injected store, else blob storage when configured (a
    connection string, or an account URL with the app's identity), else ``STEWARD_REPORTS_DIR``, else
    ``var/reports``."""
    injected: ReportStore | None = _injection("report_store")
    if injected is not None:
        return injected
    current = settings()
    return store_for(
        account_url=current.reports_account_url,
        connection_string=current.reports_connection_string,
        container=current.reports_container,
        credential=clients().credential if current.reports_account_url else None,
        local_directory=Path(current.reports_dir) if current.reports_dir else None,
    )


def validate() -> Settings:
    """Read and check every setting and the rules now, at start-up (issue 20): a bad configuration fails the app's
    load with every problem listed - in one error log line and in the raised :class:`InvalidSettings` - instead of
    answering the first request with a 500. The messages never carry a secret's value (see ``steward.settings``)."""
    try:
        current = settings()
        rules()
    except InvalidSettings as error:
        LOG.error("Backup Steward cannot start: %s", error,
                  extra={"problems": [f"{p.name}: {p.message}" for p in error.problems]})
        raise
    return current


@lru_cache(maxsize=1)
def telemetry() -> bool:
    """Application Insights export (OpenTelemetry) when APPLICATIONINSIGHTS_CONNECTION_STRING is set; once."""
    from steward import telemetry as metrics

    return metrics.configure_from_env(os.environ)


def _forget_built() -> None:
    for cached in (rules, _clients, _arm_cache, _configured_publisher, token_validator):
        cached.cache_clear()


def reset() -> None:
    """Forget everything built from the environment (tests, the local host after set-up); injections stay."""
    with _LOCK:
        _settings_from_env.cache_clear()
        _forget_built()
