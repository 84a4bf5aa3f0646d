"""Local Functions host: serves the app's HTTP routes, Event Grid webhook and timers on loopback."""

from sandbox.host.errors import InvalidSchedule, LocalHostError, UnknownTrigger
from sandbox.host.ncrontab import NCronSchedule
from sandbox.host.server import HostKeys, LocalHost, TimerScheduler, run_on_worker_loop

__all__ = ["HostKeys", "InvalidSchedule", "LocalHost", "LocalHostError", "NCronSchedule", "TimerScheduler",
           "UnknownTrigger", "run_on_worker_loop"]
