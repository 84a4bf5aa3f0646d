"""The teardown's view of the settings, with errors that name the setting.

Every value comes from ``steward.settings.Settings`` (the one place settings are read and validated); this is
the subset the saga uses, as one small value its activities and tests can build directly.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from steward.domain.errors import StewardError
from steward.domain.teardown import DEFAULT_OPT_IN_TAG


class TeardownSettingError(StewardError, ValueError):
    """A teardown setting is malformed; the message names it."""


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
    #: four eyes: the approver must be another principal than the requester (``STEWARD_TEARDOWN_FOUR_EYES``)
    four_eyes: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TeardownSettings:
        """Read through :class:`steward.settings.Settings`, the one place settings are parsed and validated."""
        from steward.settings import InvalidSettings, Settings

        try:
            shared = Settings.from_env(dict(os.environ if env is None else env))
        except InvalidSettings as error:
            raise TeardownSettingError(str(error)) from None
        return cls.from_shared(shared)

    @classmethod
    def from_shared(cls, shared: Any) -> TeardownSettings:
        """The teardown's view of the shared ``Settings``."""
        return cls(
            allowed_principals=tuple(sorted(shared.teardown_allowed_principals)),
            allowed_roles=tuple(sorted(shared.teardown_allowed_roles)),
            subscriptions=tuple(shared.subscriptions),
            max_parallel_writes=int(shared.max_parallel_writes),
            opt_in_tag=str(shared.teardown_opt_in_tag),
            approval_timeout_hours=int(shared.teardown_approval_timeout_hours),
            wait_chunk_hours=int(shared.teardown_wait_chunk_hours),
            reports_container=str(shared.reports_container),
            reports_dir=shared.reports_dir,
            reports_connection=shared.reports_connection_string,
            reports_account_url=shared.reports_account_url,
            four_eyes=bool(shared.teardown_four_eyes),
        )

    def limits_record(self) -> dict[str, Any]:
        """What the orchestrator needs (it may not read the environment itself): counts, four eyes (0/1), and
        the allowed principals (a failed delete's ``auto`` applies only to an allowed deleting user)."""
        return {
            "maxParallelWrites": self.max_parallel_writes,
            "approvalTimeoutHours": self.approval_timeout_hours,
            "waitChunkHours": self.wait_chunk_hours,
            "fourEyes": int(self.four_eyes),
            "allowedPrincipals": [p.lower() for p in self.allowed_principals],
        }
