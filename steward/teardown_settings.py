"""The teardown's view of the settings, with errors that name the setting.

The shared names (``STEWARD_SUBSCRIPTIONS``, ``STEWARD_TEARDOWN_*``, ``STEWARD_MAX_PARALLEL_WRITES``,
``STEWARD_REPORTS_*``) are the ones ``steward.settings.Settings`` reads; :meth:`TeardownSettings.from_shared`
takes them from there. Three are the teardown's own: ``STEWARD_TEARDOWN_APPROVAL_TIMEOUT_HOURS``,
``STEWARD_TEARDOWN_WAIT_CHUNK_HOURS`` and ``STEWARD_TEARDOWN_REPORTS_DIR`` (store reports as local files).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from steward.domain.teardown import DEFAULT_OPT_IN_TAG

ALLOWED_PRINCIPALS: Final = "STEWARD_TEARDOWN_ALLOWED_PRINCIPALS"
ALLOWED_ROLES: Final = "STEWARD_TEARDOWN_ALLOWED_ROLES"
SUBSCRIPTIONS: Final = "STEWARD_SUBSCRIPTIONS"
MAX_PARALLEL_WRITES: Final = "STEWARD_MAX_PARALLEL_WRITES"
OPT_IN_TAG: Final = "STEWARD_TEARDOWN_OPT_IN_TAG"
APPROVAL_TIMEOUT_HOURS: Final = "STEWARD_TEARDOWN_APPROVAL_TIMEOUT_HOURS"
REPORTS_CONTAINER: Final = "STEWARD_REPORTS_CONTAINER"
REPORTS_DIR: Final = "STEWARD_TEARDOWN_REPORTS_DIR"
REPORTS_CONNECTION: Final = "STEWARD_REPORTS_CONNECTION_STRING"
REPORTS_ACCOUNT_URL: Final = "STEWARD_REPORTS_ACCOUNT_URL"
WAIT_CHUNK_HOURS: Final = "STEWARD_TEARDOWN_WAIT_CHUNK_HOURS"

_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class TeardownSettingError(ValueError):
    """A teardown setting is malformed; the message names it."""


def _list(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    raw = env.get(name, "")
    return tuple(part.strip() for part in re.split(r"[,;\s]+", raw) if part.strip())


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise TeardownSettingError(f"{name} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise TeardownSettingError(f"{name} must be between {low} and {high}, got {value}")
    return value


@dataclass(frozen=True)
class TeardownSettings:
    allowed_principals: tuple[str, ...] = ()
    allowed_roles: tuple[str, ...] = ()
    subscriptions: tuple[str, ...] = ()
    #: concurrent ARM writes per fan-out batch; ARM refills 10 writes/s per subscription and principal.
    max_parallel_writes: int = 10
    opt_in_tag: str = DEFAULT_OPT_IN_TAG
    approval_timeout_hours: int = 72
    #: longest single durable timer before a continue-as-new (keeps history bounded on 180-day waits).
    wait_chunk_hours: int = 24
    reports_container: str = "teardown-reports"
    reports_dir: str | None = None
    reports_connection: str | None = None
    reports_account_url: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TeardownSettings:
        env = os.environ if env is None else env
        subscriptions = _list(env, SUBSCRIPTIONS)
        for sub in subscriptions:
            if not _GUID.fullmatch(sub):
                raise TeardownSettingError(f"{SUBSCRIPTIONS} holds {sub!r}, which is not a subscription id")
        tag = env.get(OPT_IN_TAG, DEFAULT_OPT_IN_TAG).strip() or DEFAULT_OPT_IN_TAG
        if not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", tag):
            raise TeardownSettingError(f"{OPT_IN_TAG} must be a tag name, got {tag!r}")
        container = env.get(REPORTS_CONTAINER, "teardown-reports").strip() or "teardown-reports"
        if not re.fullmatch(r"[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]", container):
            raise TeardownSettingError(f"{REPORTS_CONTAINER} must be a blob container name, got {container!r}")
        return cls(
            allowed_principals=tuple(p.lower() for p in _list(env, ALLOWED_PRINCIPALS)),
            allowed_roles=tuple(r.lower() for r in _list(env, ALLOWED_ROLES)),
            subscriptions=tuple(s.lower() for s in subscriptions),
            max_parallel_writes=_int(env, MAX_PARALLEL_WRITES, 10, 1, 200),
            opt_in_tag=tag,
            approval_timeout_hours=_int(env, APPROVAL_TIMEOUT_HOURS, 72, 1, 24 * 30),
            wait_chunk_hours=_int(env, WAIT_CHUNK_HOURS, 24, 1, 24 * 6),
            reports_container=container,
            reports_dir=env.get(REPORTS_DIR) or None,
            reports_connection=env.get(REPORTS_CONNECTION) or None,
            reports_account_url=env.get(REPORTS_ACCOUNT_URL) or None,
        )

    @classmethod
    def from_shared(cls, shared: Any, env: Mapping[str, str] | None = None) -> TeardownSettings:
        """The shared ``Settings`` for the common names; the environment for the teardown's own three."""
        env = os.environ if env is None else env
        own = cls.from_env(
            {k: v for k, v in env.items() if k in (APPROVAL_TIMEOUT_HOURS, WAIT_CHUNK_HOURS, REPORTS_DIR)}
        )
        return cls(
            allowed_principals=tuple(sorted(shared.teardown_allowed_principals)),
            allowed_roles=tuple(sorted(shared.teardown_allowed_roles)),
            subscriptions=tuple(shared.subscriptions),
            max_parallel_writes=int(shared.max_parallel_writes),
            opt_in_tag=str(shared.teardown_opt_in_tag),
            approval_timeout_hours=own.approval_timeout_hours,
            wait_chunk_hours=own.wait_chunk_hours,
            reports_container=str(shared.reports_container),
            reports_dir=own.reports_dir,
            reports_connection=shared.reports_connection_string,
            reports_account_url=shared.reports_account_url,
        )

    def limits_record(self) -> dict[str, int]:
        """What the orchestrator needs (it may not read the environment itself)."""
        return {
            "maxParallelWrites": self.max_parallel_writes,
            "approvalTimeoutHours": self.approval_timeout_hours,
            "waitChunkHours": self.wait_chunk_hours,
        }
