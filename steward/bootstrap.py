"""The composition root: settings read once, SDK clients and ports built once per process.

Triggers and activities ask this module for what they need; nothing else reads the environment or builds
clients. Tests reset it with ``reset()`` after changing the environment.
"""

from __future__ import annotations

import logging
import os
import threading
from functools import lru_cache

from steward.auth.tokens import BearerTokenValidator, validator_for
from steward.cloud.arm_cache import ArmCache, vaults_key
from steward.cloud.clients import CloudClients
from steward.cloud.publisher import EventGridOutcomePublisher, NullPublisher, OutcomePublisher
from steward.domain.rules import RuleSet
from steward.settings import InvalidSettings, Settings, unknown_settings

_LOCK = threading.Lock()
LOG = logging.getLogger("steward.settings")


@lru_cache(maxsize=1)
def settings() -> Settings:
    """Every setting, validated once; a bad setting fails start-up with the setting's name. A ``STEWARD_*``
    variable that is no setting is logged (with the setting it resembles): a misspelt name would do nothing."""
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


@lru_cache(maxsize=1)
def clients() -> CloudClients:
    return CloudClients(settings().cloud_target())


@lru_cache(maxsize=1)
def arm_cache() -> ArmCache:
    """The worker's short-lived cache of vault lists, policy ids and granted roles (STEWARD_ARM_CACHE_SECONDS)."""
    return ArmCache(settings().arm_cache_seconds)


def forget_vaults(kind: str, subscription_id: str) -> None:
    """Drop the cached vault list of a subscription (a vault is being deleted), if a cache was built at all."""
    if arm_cache.cache_info().currsize:
        arm_cache().drop(*vaults_key(kind, subscription_id))


@lru_cache(maxsize=1)
def publisher() -> OutcomePublisher:
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


def reset() -> None:
    """Forget everything built from the environment (tests, the local host after set-up)."""
    with _LOCK:
        for cached in (settings, rules, clients, arm_cache, publisher, token_validator):
            cached.cache_clear()
