"""Local Azure Resource Manager over HTTPS for tests, demos and benchmarks (see README.md here)."""

from sandbox.arm.config import (
    BucketSpec,
    EventDeliveryConfig,
    FaultConfig,
    LatencyConfig,
    PropagationConfig,
    SandboxConfig,
    SubscriptionSpec,
    ThrottleConfig,
)
from sandbox.arm.context import MovePlan, ProviderContext
from sandbox.arm.errors import ArmError, SandboxError
from sandbox.arm.events import RequestFacts
from sandbox.arm.http import Principal, Request, Response
from sandbox.arm.lro import Operation, OperationEngine
from sandbox.arm.routing import ProviderRoutes, Router
from sandbox.arm.server import ArmSandbox

__all__ = [
    "ArmError",
    "ArmSandbox",
    "BucketSpec",
    "EventDeliveryConfig",
    "FaultConfig",
    "LatencyConfig",
    "MovePlan",
    "Operation",
    "OperationEngine",
    "Principal",
    "PropagationConfig",
    "ProviderContext",
    "ProviderRoutes",
    "Request",
    "RequestFacts",
    "Response",
    "Router",
    "SandboxConfig",
    "SandboxError",
    "SubscriptionSpec",
    "ThrottleConfig",
]
