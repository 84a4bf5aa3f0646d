"""The one place where Azure SDK exceptions become the app's errors.

Activities call ``translate`` (or use ``azure_errors()`` as a context manager) so orchestrators see three
kinds of failure, each a different decision:

* ``TransientAzureError`` - throttling, 5xx, timeouts, conflicts Azure says to retry: the orchestration's
  retry options retry it.
* ``AzureRefusal`` - Azure said no for a reason retrying will not change (a rule, a conflict, a lock,
  missing permission): the orchestrator decides (report a conflict, park, block).
* ``NotFound`` - the thing is gone; idempotent deletes treat it as success.

The error code ARM returned travels with the error so decisions are made on codes, not on message text.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)

from steward.domain.errors import SERVER_SIDE_CODES, StewardError

#: Codes some providers send with 4xx for a conflict that goes away by itself.
RETRYABLE_CODES: Final = frozenset(
    {
        "RetryableErrorDueToAnotherOperation",
        "AnotherOperationInProgress",
        "OperationNotAllowedDueToAnotherOperation",
        "ResourceGroupBeingDeleted",
        "TooManyRequests",
        # a resource group is locked for writes while a move out of or into it runs (a management lock answers
        # the same code; retrying it only delays the same refusal by the retry budget)
        "ScopeLocked",
    }
)


#: ``SERVER_SIDE_CODES`` (``steward.domain.errors``): the codes of a long-running operation that ended ``Failed``
#: on Azure's side. The SDK's poller raises them with the status of the last poll (200 for an
#: ``Azure-AsyncOperation`` status body), so the status alone would make them look like a refusal.


class CloudError(StewardError):
    """Root of the errors adapters raise. Carries ARM's status and code."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code

    def to_record(self) -> dict[str, Any]:
        return {"kind": type(self).__name__, "status": self.status, "code": self.code, "message": self.message}


class TransientAzureError(CloudError):
    """Worth retrying: throttled, server error, timeout, a conflicting operation in flight."""


class AzureRefusal(CloudError):
    """Azure refused for a reason a retry will not change."""


class NotFound(CloudError):
    """The resource does not exist (any more)."""


class AuthenticationFailed(CloudError):
    """The credential could not get or use a token."""


def _code_of(error: HttpResponseError) -> str | None:
    if error.error is not None and getattr(error.error, "code", None):
        return str(error.error.code)
    response = error.response
    if response is None:
        return None
    try:
        body = json.loads(response.text())
    except (ValueError, TypeError):
        return None
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return str(code) if code else None
    return None


def _message_of(error: HttpResponseError) -> str:
    if error.error is not None and getattr(error.error, "message", None):
        return str(error.error.message)
    return str(error.message or error)


def translate(error: AzureError) -> CloudError:
    """Map one SDK exception to the app's error type."""
    if isinstance(error, ClientAuthenticationError):
        status = error.status_code
        return AuthenticationFailed(_message_of(error), status=status, code=_code_of(error))
    if isinstance(error, ResourceNotFoundError):
        return NotFound(_message_of(error), status=error.status_code, code=_code_of(error))
    if isinstance(error, HttpResponseError):
        status = error.status_code
        code = _code_of(error)
        message = _message_of(error)
        if status == 404:
            return NotFound(message, status=status, code=code)
        if (status in (408, 429) or (status is not None and status >= 500) or code in RETRYABLE_CODES
                or code in SERVER_SIDE_CODES):
            return TransientAzureError(message, status=status, code=code)
        return AzureRefusal(message, status=status, code=code)
    if isinstance(error, ServiceRequestError | ServiceResponseError):
        return TransientAzureError(str(error))
    return TransientAzureError(str(error))


@contextmanager
def azure_errors() -> Iterator[None]:
    """Run a block of SDK calls; re-raise SDK exceptions as the app's errors."""
    try:
        yield
    except AzureError as error:
        raise translate(error) from error
