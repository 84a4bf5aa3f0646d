"""``LocalStack``: the ARM sandbox, the Durable runner and the local host, composed to run the real app.

Order matters, as on Azure: the app settings exist before the app is imported. ``start()``

1. starts ``sandbox.arm.ArmSandbox`` (when available and wanted) on the shared ``VirtualClock``;
2. sets the app's settings in ``os.environ`` - ``STEWARD_ARM_ENDPOINT``, ``STEWARD_CREDENTIAL=sandbox``,
   ``STEWARD_SANDBOX_TOKEN_URL``, ``STEWARD_CA_BUNDLE`` (and any ``settings`` given) - BEFORE importing
   the app module;
3. imports the app (``function_app`` by default) and indexes it once (``app.get_functions()``);
4. starts the runner (history in ``var/durable.sqlite`` unless told otherwise) and the host;
5. subscribes the host's Event Grid webhook for every Event Grid trigger to the sandbox's events (the
   sandbox performs the real SubscriptionValidation handshake against it), with the filter the Bicep event
   subscription has (``infra/event-filters.json``, which ``infra/modules/subscription-events.bicep`` loads):
   the sandbox delivers what Azure would, not every resource event of the estate.

``python -m sandbox.host up`` runs one and prints its URLs and keys.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sandbox.clock import VirtualClock
from sandbox.durable.discovery import FunctionCatalog, load_catalog
from sandbox.durable.logs import HOST_LOGGER
from sandbox.durable.runner import DEFAULT_DB_PATH, DurableRunner, RunnerConfig

from .server import HostKeys, LocalHost, redact_target, run_on_worker_loop

log = logging.getLogger(HOST_LOGGER)

ARM_ENDPOINT = "STEWARD_ARM_ENDPOINT"
EVENTS_TOPIC_ENDPOINT = "STEWARD_EVENTS_TOPIC_ENDPOINT"
EVENTS_TOPIC_KEY = "STEWARD_EVENTS_TOPIC_KEY"
SUBSCRIPTIONS = "STEWARD_SUBSCRIPTIONS"
#: the Event Grid filters of the deployment, one file for the Bicep modules and this stack
EVENT_FILTERS = Path(__file__).resolve().parents[2] / "infra" / "event-filters.json"


def system_topic_filter(path: Path = EVENT_FILTERS) -> dict[str, Any]:
    """``EventBus.subscribe_webhook`` keyword arguments for the system topic's event subscription, as deployed."""
    spec = json.loads(path.read_text())["systemTopic"]
    return {"included_event_types": list(spec["includedEventTypes"]),
            "advanced_filters": [dict(f) for f in spec.get("advancedFilters") or []]}
AUDIT_SCHEDULE = "STEWARD_AUDIT_SCHEDULE"
TEARDOWN_FOUR_EYES = "STEWARD_TEARDOWN_FOUR_EYES"
DEFAULT_AUDIT_SCHEDULE = "0 0 6 * * *"
DRILL_SCHEDULE = "STEWARD_DRILL_SCHEDULE"
DEFAULT_DRILL_SCHEDULE = "0 0 3 * * *"
#: the custom topic the app's outcome events go to on the sandbox
OUTCOME_TOPIC = "steward"
CREDENTIAL = "STEWARD_CREDENTIAL"
SANDBOX_TOKEN_URL = "STEWARD_SANDBOX_TOKEN_URL"  # noqa: S105 - a setting name, not a secret
SANDBOX_PRINCIPAL_ID = "STEWARD_SANDBOX_PRINCIPAL_ID"
CA_BUNDLE = "STEWARD_CA_BUNDLE"


@dataclass(frozen=True)
class HostSettings:
    """What the stack reads from ``host.json``: task hub, activity concurrency, HTTP route prefix."""

    task_hub: str = "StewardHub"
    max_activity_workers: int = 16
    route_prefix: str = "api"

    @classmethod
    def read(cls, path: Path) -> HostSettings:
        if not path.is_file():
            return cls()
        data = json.loads(path.read_text())
        durable = data.get("extensions", {}).get("durableTask", {})
        http = data.get("extensions", {}).get("http", {})
        return cls(task_hub=durable.get("hubName", cls.task_hub),
                   max_activity_workers=int(durable.get("maxConcurrentActivityFunctions", cls.max_activity_workers)),
                   route_prefix=http.get("routePrefix", cls.route_prefix))


def _reset_composition_root() -> None:
    """The app caches settings and clients built from the environment; make it read them again."""
    composition_root = sys.modules.get("steward.bootstrap")
    if composition_root is not None:
        composition_root.reset()


def _instance_initializer(instances: int) -> Any:
    """The app's hook that makes a thread one of N modelled instances (None for one instance: nothing to do)."""
    if instances == 1:
        return None
    hook = getattr(sys.modules.get("steward.bootstrap"), "enter_instance", None)
    if not callable(hook):
        raise ValueError("instances > 1 needs the app's steward.bootstrap.enter_instance (per-instance state)")
    return hook


def _validate_composition_root() -> None:
    composition_root = sys.modules.get("steward.bootstrap")
    validate = getattr(composition_root, "validate", None)
    if callable(validate):
        validate()


def redacted(described: Mapping[str, Any]) -> dict[str, Any]:
    """``describe()`` without the keys, for log lines."""
    out = {k: v for k, v in described.items() if k != "keys"}
    out["eventgrid"] = {name: redact_target(url) for name, url in (described.get("eventgrid") or {}).items()}
    return out


@dataclass
class LocalStack:
    """ARM sandbox + Durable runner + local host around one Functions app.

    ``arm``: True requires ``sandbox.arm``; False runs without it; None uses it when it can be imported.
    """

    app: str | Path | Any = "function_app"
    app_root: Path = field(default_factory=Path.cwd)
    db_path: str | None = None
    arm: bool | None = None
    arm_config: Any = None
    clock: VirtualClock | None = None
    settings: Mapping[str, str] = field(default_factory=dict)
    host_port: int = 0
    keys: HostKeys | None = None
    run_timers: bool = True
    #: subscribe with the deployed Event Grid filter; None: when the app is the one the Bicep deploys
    #: (``function_app``); False: every resource event (another app, e.g. a test's sample)
    filter_events: bool | None = None
    #: app instances the Durable runner models (Flex Consumption scale-out; ``RunnerConfig.instances``): each
    #: has host.json's activity slots and, through the app's ``steward.bootstrap.enter_instance``, its own
    #: clients, ARM pacer and caches; one task hub
    instances: int = 1

    sandbox: Any = field(default=None, init=False)
    runner: DurableRunner | None = field(default=None, init=False)
    host: LocalHost | None = field(default=None, init=False)
    catalog: FunctionCatalog | None = field(default=None, init=False)
    subscriptions: list[Any] = field(default_factory=list, init=False)
    _replaced_env: dict[str, str | None] = field(default_factory=dict, init=False, repr=False)

    def start(self) -> LocalStack:
        """Start everything, or nothing: a start that fails (bad settings, an app that does not load) stops what
        it started and gives the environment back before the error propagates."""
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalStack:
        clock = self._start_arm()
        applied = self.app_settings()
        self._replaced_env = {name: os.environ.get(name) for name in applied}
        os.environ.update(applied)
        _reset_composition_root()
        self.catalog = load_catalog(self._app_target())
        # As a fresh worker process would on import (function_app.py calls it): a bad setting fails the start.
        # The module may already be imported in this process (tests, the demo), so check again explicitly.
        _validate_composition_root()
        host_settings = HostSettings.read(self.app_root / "host.json")
        config = RunnerConfig(db_path=self.db_path or str(self.app_root / DEFAULT_DB_PATH),
                              task_hub=host_settings.task_hub,
                              max_activity_workers=host_settings.max_activity_workers,
                              instances=self.instances, instance_initializer=_instance_initializer(self.instances))
        self.runner = DurableRunner(self.catalog, config, clock=clock).start()
        self.host = LocalHost(self.catalog, self.runner, port=self.host_port, keys=self.keys,
                              route_prefix=host_settings.route_prefix, clock=clock,
                              run_timers=self.run_timers).start()
        if self.sandbox is not None:
            deployed = self.filter_events if self.filter_events is not None else self.app == "function_app"
            filters = system_topic_filter() if deployed else {}
            for function in self.catalog.event_grid:
                self.subscriptions.append(self.sandbox.subscribe_webhook(self.host.eventgrid_url(function.name),
                                                                         **filters))
        log.info("local stack up", extra=redacted(self.describe()))
        return self

    def stop(self) -> None:
        if self.host is not None:
            self.host.stop()
        if self.runner is not None:
            self.runner.stop()
        if self.sandbox is not None:
            self.sandbox.stop()
        # give the process its environment back: the next stack (or test) must not see a stopped sandbox
        for name, previous in self._replaced_env.items():
            if previous is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = previous
        self._replaced_env = {}
        _reset_composition_root()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- conveniences for scripts, demos and tests -----------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move Azure time on: the ARM sandbox settles due LROs; durable timers and schedules fire."""
        if self.sandbox is not None:
            self.sandbox.advance(seconds)
        elif self.runner is not None:
            self.runner.clock.advance(seconds)

    def bearer(self, principal_id: str, roles: tuple[str, ...] = (), **claims: Any) -> dict[str, str]:
        """``Authorization: Bearer <token>`` for ``principal_id``: an access token for the app, signed by the
        sandbox's Entra ID (what ``az account get-access-token --resource <app id URI>`` gives on Azure)."""
        assert self.sandbox is not None, "tokens come from the ARM sandbox's Entra issuer"
        return {"Authorization": "Bearer " + self.sandbox.app_token(principal_id, roles=list(roles), **claims)}

    def client(self, correlation_id: str | None = None) -> Any:
        """A real ``DurableOrchestrationClient`` bound to this stack (use it via ``run``)."""
        import azure.durable_functions as df

        assert self.host is not None, "start the stack first"
        return df.DurableOrchestrationClient(self.host.binding_context(correlation_id))

    @staticmethod
    def run(coroutine: Any, timeout: float = 300) -> Any:
        """Await a coroutine (e.g. a client call) on the worker event loop from synchronous code."""
        return run_on_worker_loop(coroutine, timeout)

    # ---- composition --------------------------------------------------------------------------------------

    def _start_arm(self) -> VirtualClock:
        clock = self.clock or VirtualClock()
        wanted = self.arm
        if wanted is False:
            return clock
        try:
            from sandbox.arm import ArmSandbox, SandboxConfig
        except ImportError:
            if wanted:
                raise
            log.warning("sandbox.arm is not available; starting without the ARM sandbox")
            return clock
        config = self.arm_config or SandboxConfig(clock=clock)
        self.sandbox = ArmSandbox(config).start()
        return self.sandbox.clock  # type: ignore[no-any-return]

    def app_settings(self) -> dict[str, str]:
        """The settings the app sees: the sandbox's endpoint and credential, then explicit ``settings``."""
        values: dict[str, str] = {}
        if self.sandbox is not None:
            values.update({
                ARM_ENDPOINT: self.sandbox.endpoint,
                CREDENTIAL: "sandbox",
                SANDBOX_TOKEN_URL: self.sandbox.token_url,
                CA_BUNDLE: str(self.sandbox.ca_bundle),
                # the app publishes its outcomes to a custom topic the sandbox keeps for inspection
                EVENTS_TOPIC_ENDPOINT: f"{self.sandbox.endpoint}/sandbox/eventgrid/topics/{OUTCOME_TOPIC}/api/events",
                EVENTS_TOPIC_KEY: self.sandbox.config.topic_key,
                SUBSCRIPTIONS: ",".join(s.subscription_id for s in self.sandbox.config.subscriptions),
            })
            # callers of the app's routes prove themselves with the sandbox Entra's RS256 tokens (sandbox/arm/entra.py)
            values.update(self.sandbox.app_auth_settings())
            principal = getattr(getattr(self.sandbox, "config", None), "default_principal_id", None)
            if principal and SANDBOX_PRINCIPAL_ID not in os.environ:
                values[SANDBOX_PRINCIPAL_ID] = principal
        if TEARDOWN_FOUR_EYES not in os.environ:
            # the local stack and the demo have one person at the keyboard: four eyes off unless asked for (the
            # app's own default, and the Bicep's, is on)
            values[TEARDOWN_FOUR_EYES] = "false"
        if AUDIT_SCHEDULE not in os.environ:
            # the timer's %STEWARD_AUDIT_SCHEDULE% must resolve, as the Functions host requires; the app's default
            values[AUDIT_SCHEDULE] = DEFAULT_AUDIT_SCHEDULE
        if DRILL_SCHEDULE not in os.environ:
            values[DRILL_SCHEDULE] = DEFAULT_DRILL_SCHEDULE  # the drill timer's %STEWARD_DRILL_SCHEDULE%, likewise
        values.update(self.settings)
        return values

    def _app_target(self) -> Any:
        if not isinstance(self.app, str | Path):
            return self.app
        text = str(self.app)
        candidate = self.app_root / (text if text.endswith(".py") else f"{text.replace('.', '/')}.py")
        return candidate if candidate.is_file() else text

    def describe(self) -> dict[str, Any]:
        """URLs and keys, for people and for scripts."""
        assert self.host is not None and self.runner is not None and self.catalog is not None
        host = self.host
        return {
            "host": host.origin,
            "api": host.api_base,
            "routes": {f.name: {"url": f"{host.api_base}/{f.route}", "methods": list(f.methods),
                                "auth": f.auth_level} for f in self.catalog.routes},
            "eventgrid": {f.name: host.eventgrid_url(f.name) for f in self.catalog.event_grid},
            "timers": {f.name: f.schedule for f in self.catalog.timers},
            "durable_webhook": f"{host.origin}/runtime/webhooks/durabletask",
            "keys": {"function": host.keys.function_key, "master": host.keys.master_key,
                     **{f"system:{k}": v for k, v in host.keys.system_keys.items()}},
            "durable_db": self.runner.config.db_path,
            "arm": None if self.sandbox is None else {"endpoint": self.sandbox.endpoint,
                                                      "token_url": self.sandbox.token_url,
                                                      "ca_bundle": str(self.sandbox.ca_bundle),
                                                      # POST {"principalId", "roles"?} -> a token for the routes
                                                      "app_token_url": f"{self.sandbox.entra.authority}/"
                                                                       f"{self.sandbox.default_tenant}/token"},
        }
