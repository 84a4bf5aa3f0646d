"""Errors of the local Functions host."""

from __future__ import annotations


class LocalHostError(Exception):
    """Root of every error the local host raises."""


class InvalidSchedule(LocalHostError):
    """A timer trigger's schedule is not a valid NCRONTAB expression."""


class UnknownTrigger(LocalHostError):
    """No function of the requested kind has that name."""
