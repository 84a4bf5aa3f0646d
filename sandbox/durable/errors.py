"""Errors of the local Durable runner and of app discovery."""

from __future__ import annotations


class DurableRunnerError(Exception):
    """Root of every error the local Durable runner raises."""


class AppLoadError(DurableRunnerError):
    """The Functions app module could not be loaded or has no app object."""


class UnknownFunction(DurableRunnerError):
    """An orchestrator or activity name that the app does not register."""


class InstanceNotFound(DurableRunnerError):
    """No orchestration instance has the given id."""


class InstanceAlreadyExists(DurableRunnerError):
    """A start named the id of a Pending or Running instance. The extension's default
    ``overridableExistingInstanceStates`` (``NonRunningStates``) refuses it: ``OrchestrationAlreadyExistsException``,
    HTTP 409 from the start API."""


class InstanceNotRunning(DurableRunnerError):
    """The instance exists but has already completed, failed or been terminated."""


class OrchestrationTimeout(DurableRunnerError):
    """An instance did not reach a terminal state within the time a caller waited."""


class UnsupportedAction(DurableRunnerError):
    """The orchestrator asked for something the local runner does not emulate (entities, durable HTTP)."""
