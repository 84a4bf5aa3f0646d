"""Local Durable runner: the app's orchestrators on azure-functions-durable's own replay engine.

History per instance lives in SQLite (``var/durable.sqlite`` by default), activities run in a bounded
thread pool, timers wait on the sandbox's ``VirtualClock``; ``ManagementServer`` serves the HTTP API the
real ``DurableOrchestrationClient`` calls. ``python -m sandbox.durable instances|show`` inspects a store.
"""

from sandbox.durable.discovery import FunctionCatalog, RegisteredFunction, load_app, load_catalog
from sandbox.durable.errors import (
    AppLoadError,
    DurableRunnerError,
    InstanceAlreadyExists,
    InstanceNotFound,
    InstanceNotRunning,
    OrchestrationTimeout,
    UnknownFunction,
    UnsupportedAction,
)
from sandbox.durable.logs import DurableContextFilter, JsonLineFormatter, configure_json_logging, log_context
from sandbox.durable.management import ManagementApi, ManagementServer
from sandbox.durable.runner import DEFAULT_DB_PATH, DurableRunner, RunnerConfig, RunnerStats

__all__ = [
    "DEFAULT_DB_PATH",
    "AppLoadError",
    "DurableContextFilter",
    "DurableRunner",
    "DurableRunnerError",
    "FunctionCatalog",
    "InstanceAlreadyExists",
    "InstanceNotFound",
    "InstanceNotRunning",
    "JsonLineFormatter",
    "ManagementApi",
    "ManagementServer",
    "OrchestrationTimeout",
    "RegisteredFunction",
    "RunnerConfig",
    "RunnerStats",
    "UnknownFunction",
    "UnsupportedAction",
    "configure_json_logging",
    "load_app",
    "load_catalog",
    "log_context",
]
