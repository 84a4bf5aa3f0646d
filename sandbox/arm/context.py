"""What providers get at registration: ``register(router, ctx)`` receives a :class:`ProviderContext`."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from sandbox.arm.config import PropagationConfig, SandboxConfig, SubscriptionSpec
from sandbox.arm.errors import ArmError, resource_group_not_found, subscription_not_found
from sandbox.arm.http import Principal, Request, Response
from sandbox.arm.odata import parse_filter

if TYPE_CHECKING:
    from sandbox.arm.events import EventBus
    from sandbox.arm.lro import OperationEngine
    from sandbox.arm.paging import Pager
    from sandbox.arm.store import ResourceStore


class SubscriptionDirectory:
    """The subscriptions and tenants the sandbox knows (from config; subscriptions can change tenant)."""

    def __init__(self, subscriptions: Iterable[SubscriptionSpec], extra_tenants: Iterable[str]) -> None:
        self._lock = threading.Lock()
        self._subs = {s.subscription_id.lower(): s for s in subscriptions}
        self._extra_tenants = list(extra_tenants)

    def get(self, subscription_id: str) -> SubscriptionSpec | None:
        with self._lock:
            return self._subs.get(subscription_id.lower())

    def all(self) -> list[SubscriptionSpec]:
        with self._lock:
            return list(self._subs.values())

    def tenants(self) -> list[str]:
        with self._lock:
            seen: dict[str, None] = {}
            for s in self._subs.values():
                seen.setdefault(s.tenant_id, None)
            for t in self._extra_tenants:
                seen.setdefault(t, None)
            return list(seen)

    def move_to_tenant(self, subscription_id: str, tenant_id: str) -> SubscriptionSpec:
        with self._lock:
            spec = self._subs.get(subscription_id.lower())
            if spec is None:
                raise subscription_not_found(subscription_id)
            moved = replace(spec, tenant_id=tenant_id)
            self._subs[subscription_id.lower()] = moved
            if spec.tenant_id not in self._extra_tenants:
                self._extra_tenants.append(spec.tenant_id)
            return moved

    def dump(self) -> list[dict[str, str]]:
        return [s.__dict__.copy() for s in self.all()]


@dataclass(frozen=True)
class MovePlan:
    """A requested ``moveResources``/``validateMoveResources``, as move guards see it."""

    source_subscription: str
    source_group: str
    target_subscription: str
    target_group: str
    source_tenant: str
    target_tenant: str
    resource_ids: tuple[str, ...]  # as given by the caller
    resources: tuple[dict[str, Any], ...]  # the stored top-level resources being moved
    principal: Principal | None
    validate_only: bool

    @property
    def cross_tenant(self) -> bool:
        return self.source_tenant.lower() != self.target_tenant.lower()

    @property
    def cross_subscription(self) -> bool:
        return self.source_subscription.lower() != self.target_subscription.lower()


MoveGuard = Callable[[MovePlan], None]
MovedHook = Callable[[list[tuple[str, str]]], None]


class ProviderContext:
    """The sandbox services a provider uses. Attributes:

    ``store`` (ResourceStore), ``clock`` (VirtualClock), ``operations`` (OperationEngine, LROs),
    ``events`` (EventBus), ``pager`` (Pager), ``config`` (SandboxConfig), ``subscriptions``
    (SubscriptionDirectory).
    """

    def __init__(
        self,
        *,
        store: ResourceStore,
        clock: Any,
        operations: OperationEngine,
        events: EventBus,
        pager: Pager,
        config: SandboxConfig,
        subscriptions: SubscriptionDirectory,
    ) -> None:
        self.store = store
        self.clock = clock
        self.operations = operations
        self.events = events
        self.pager = pager
        self.config = config
        self.subscriptions = subscriptions
        self.move_guards: list[MoveGuard] = []
        self.moved_hooks: list[MovedHook] = []
        #: serialises resource-group moves; guards run under it
        self.move_lock = threading.RLock()
        self.locked_groups: set[str] = set()
        #: ``hook(resource_id, tags) -> bool`` writes a resource's tags where its provider keeps them (True: done)
        self.tag_writers: list[Callable[[str, dict[str, str]], bool]] = []
        #: eventual-consistency delays (RBAC propagation, VM readiness/discovery); ArmSandbox.configure_propagation
        self.propagation: PropagationConfig = config.propagation
        #: role assignments per subscription (Azure's 4,000); ArmSandbox.configure_role_assignment_limit
        self.role_assignment_limit: int = config.role_assignments_per_subscription

    # -- hooks ----------------------------------------------------------------------------------
    def add_move_guard(self, guard: MoveGuard) -> None:
        """``guard(plan)`` runs for every validate/move; raise ``ArmError`` to veto (e.g. vault with ASR items)."""
        self.move_guards.append(guard)

    def on_moved(self, hook: MovedHook) -> None:
        """``hook([(old_id, new_id), ...])`` runs after a move rewrote ids (children included)."""
        self.moved_hooks.append(hook)

    # -- scope checks ---------------------------------------------------------------------------
    def require_subscription(self, subscription_id: str) -> SubscriptionSpec:
        spec = self.subscriptions.get(subscription_id)
        if spec is None:
            raise subscription_not_found(subscription_id)
        return spec

    def resource_group_id(self, subscription_id: str, group: str) -> str:
        return f"/subscriptions/{subscription_id}/resourceGroups/{group}"

    def require_resource_group(self, subscription_id: str, group: str) -> dict[str, Any]:
        self.require_subscription(subscription_id)
        record = self.store.get(self.resource_group_id(subscription_id, group))
        if record is None:
            raise resource_group_not_found(group)
        return record

    def require_group_unlocked(self, subscription_id: str, group: str) -> None:
        """409 while a move holds the group (ARM locks source and target groups during a move)."""
        key = self.resource_group_id(subscription_id, group).lower()
        if key in self.locked_groups:
            raise ArmError(
                409,
                "ScopeLocked",
                f"The scope '/subscriptions/{subscription_id}/resourceGroups/{group}' cannot perform write "
                "operation because the resource group is locked while resources are being moved.",
            )

    # -- small helpers --------------------------------------------------------------------------
    def now_iso(self) -> str:
        return str(self.clock.now().isoformat()).replace("+00:00", "Z")

    def new_id(self) -> str:
        return str(uuid.uuid4())

    def system_data(self, req: Request, existing: dict[str, Any] | None = None) -> dict[str, Any]:
        """ARM ``systemData``: created* kept from ``existing``, lastModified* now, by the caller."""
        who = req.principal.object_id if req.principal else "unknown"
        now = self.now_iso()
        previous = (existing or {}).get("systemData") or {}
        return {
            "createdBy": previous.get("createdBy", who),
            "createdByType": previous.get("createdByType", "Application"),
            "createdAt": previous.get("createdAt", now),
            "lastModifiedBy": who,
            "lastModifiedByType": "Application",
            "lastModifiedAt": now,
        }

    def filter(self, req: Request, allowed: Iterable[str], *, error_code: str = "InvalidFilter") -> dict[str, str]:
        """The request's ``$filter`` parsed (``eq``/``and`` only; anything else is a 400)."""
        return parse_filter(req.query.get("$filter"), allowed, error_code=error_code)

    def page(self, req: Request, items: list[dict[str, Any]], *, page_size: int | None = None) -> Response:
        return self.pager.page(req, items, page_size=page_size)
