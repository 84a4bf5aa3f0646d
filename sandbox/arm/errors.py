"""ARM errors a provider raises; the server turns them into ARM error bodies.

ARM answers every failure with ``{"error": {"code": ..., "message": ..., "details": [...]?}}``. A provider
raises :class:`ArmError` (or one of the shortcuts below) anywhere in a handler or an LRO completion; the
server renders it, and the event bus raises the matching ``...Failure`` event.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


class SandboxError(Exception):
    """Root of every error the sandbox itself defines."""


class ArmError(SandboxError):
    """An ARM error answer: HTTP status, ARM error code, message, optional details and headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        details: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        target: str | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = [dict(d) for d in details] if details else []
        self.headers = dict(headers or {})
        self.target = target

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.target:
            error["target"] = self.target
        if self.details:
            error["details"] = self.details
        return {"error": error}


def bad_request(code: str, message: str, **kw: Any) -> ArmError:
    return ArmError(400, code, message, **kw)


def conflict(code: str, message: str, **kw: Any) -> ArmError:
    return ArmError(409, code, message, **kw)


def not_found(resource_id: str, resource_type: str | None = None) -> ArmError:
    """ARM's 404 for a missing resource (text as ARM words it)."""
    from sandbox.arm.ids import parse_id

    parsed = parse_id(resource_id)
    rtype = resource_type or parsed.full_type
    group = parsed.resource_group or "-"
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{rtype}/{parsed.name}' under resource group '{group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def resource_group_not_found(name: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{name}' could not be found.")


def subscription_not_found(subscription_id: str) -> ArmError:
    return ArmError(404, "SubscriptionNotFound", f"The subscription '{subscription_id}' could not be found.")
