"""Long-running operations on the virtual clock.

A handler that starts an LRO calls :meth:`OperationEngine.begin` with the change to apply (``complete``) and
the URLs the provider's spec shows (``async_url`` for ``Azure-AsyncOperation``, ``location_url`` for
``Location``; ``{operationId}`` in them is filled in), then returns ``op.response(201|202, body)``. The
operation is ``InProgress`` until its modelled duration has passed on the clock; then ``complete()`` runs once:
its return value is the operation's result (served by :meth:`result_response`), an :class:`ArmError` it raises
makes the operation ``Failed``. The matching Event Grid event is raised when the operation ends.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sandbox.arm.errors import ArmError
from sandbox.arm.http import Request, Response

if TYPE_CHECKING:
    from sandbox.arm.events import EventBus, RequestFacts
    from sandbox.arm.faults import FaultInjector

log = logging.getLogger(__name__)

IN_PROGRESS, SUCCEEDED, FAILED, CANCELED = "InProgress", "Succeeded", "Failed", "Canceled"


def retry_after_headers(azure_seconds: float, scale: float, mode: str = "auto") -> dict[str, str]:
    """How long a client should wait, in a form the SDK obeys.

    ``azure``: ``Retry-After: <whole Azure seconds>`` exactly as ARM sends it. ``fast``: ``retry-after-ms:
    <real milliseconds>`` (Azure seconds / clock scale) and no ``Retry-After``: azure-core honours
    ``retry-after-ms`` when ``Retry-After`` is absent, and the SDK parses ``Retry-After`` as a whole number, so
    this is the only way a wall-clock poller keeps pace with a fast virtual clock. ``auto`` (default):
    ``azure`` when the clock runs at scale 1, else ``fast``.
    """
    if mode == "azure" or (mode == "auto" and scale == 1.0):
        return {"Retry-After": str(max(1, round(azure_seconds)))}
    return {"retry-after-ms": str(max(1, round(azure_seconds / scale * 1000)))}


@dataclass
class Operation:
    id: str
    started: datetime
    due: datetime
    complete: Callable[[], Any] | None
    on_failure: Callable[[ArmError], None] | None
    async_url: str | None
    location_url: str | None
    retry_after: float  # Azure seconds
    facts: RequestFacts | None
    fail_with: ArmError | None = None
    status: str = IN_PROGRESS
    ended: datetime | None = None
    result: Any = None
    error: ArmError | None = None
    #: the status ``result_response`` answers once Succeeded with no result body (204 unless told)
    done_status: int = 204
    extra: dict[str, Any] = field(default_factory=dict)  # provider bookkeeping (e.g. the operation's resource)

    @property
    def done(self) -> bool:
        return self.status != IN_PROGRESS


class OperationEngine:
    def __init__(self, clock: Any, events: EventBus | None, faults: FaultInjector | None = None) -> None:
        self.clock = clock
        self.events = events
        self.faults = faults
        self._lock = threading.RLock()
        self._ops: dict[str, Operation] = {}
        self._due: list[tuple[datetime, int, str]] = []
        self._seq = itertools.count()
        self._settling = threading.Lock()
        self.retry_after_mode = "auto"

    # -- starting -------------------------------------------------------------------------------
    def begin(
        self,
        req: Request,
        *,
        duration: float | timedelta,
        complete: Callable[[], Any] | None = None,
        async_url: str | None = None,
        location_url: str | None = None,
        retry_after: float = 10.0,
        on_failure: Callable[[ArmError], None] | None = None,
        fail_with: ArmError | None = None,
        facts: RequestFacts | None = None,
        operation_id: str | None = None,
        done_status: int = 204,
    ) -> Operation:
        """Start an operation ending after ``duration`` Azure seconds.

        ``async_url``/``location_url`` are paths (or absolute URLs) containing ``{operationId}``; give one or
        both, as the operation's spec shows. ``fail_with`` makes it end Failed with that error (rule
        violations detected late); ``on_failure`` runs when it fails (e.g. set provisioningState Failed).
        ``facts`` defaults to the request's (the event raised at the end names the request's resource).
        """
        if async_url is None and location_url is None:
            raise ValueError("an LRO needs an Azure-AsyncOperation URL, a Location URL, or both")
        seconds = duration.total_seconds() if isinstance(duration, timedelta) else float(duration)
        op_id = operation_id or str(uuid.uuid4())
        if self.faults is not None:
            factor, fails = self.faults.lro_outcome(f"{req.method} {req.path}")
            seconds *= factor
            if fails and fail_with is None:
                cfg = self.faults.config
                fail_with = ArmError(
                    cfg.lro_fail_status, cfg.lro_fail_code, "The operation failed (sandbox-injected fault)."
                )
        now = self.clock.now()
        op = Operation(
            id=op_id,
            started=now,
            due=now + timedelta(seconds=max(0.0, seconds)),
            complete=complete,
            on_failure=on_failure,
            async_url=self._absolute(req, async_url, op_id),
            location_url=self._absolute(req, location_url, op_id),
            retry_after=retry_after,
            facts=facts if facts is not None else getattr(req, "event_facts", None),
            fail_with=fail_with,
            done_status=done_status,
        )
        with self._lock:
            self._ops[op_id.lower()] = op
            heapq.heappush(self._due, (op.due, next(self._seq), op_id.lower()))
        return op

    @staticmethod
    def _absolute(req: Request, url: str | None, op_id: str) -> str | None:
        if url is None:
            return None
        url = url.replace("{operationId}", op_id)
        if url.startswith("/"):
            url = req.base_url + url
        if "api-version=" not in url and req.api_version:
            url += ("&" if "?" in url else "?") + "api-version=" + req.api_version
        return url

    def headers(self, op: Operation) -> dict[str, str]:
        headers = self.retry_after_headers(op.retry_after)
        if op.async_url:
            headers["Azure-AsyncOperation"] = op.async_url
        if op.location_url:
            headers["Location"] = op.location_url
        return headers

    def accept(self, op: Operation, status: int = 202, body: Any = None) -> Response:
        """The initial answer (201/202 [+ body]) with the LRO headers; its event waits for the operation's end."""
        return Response(status, body, self.headers(op), raise_event=False)

    def retry_after_headers(self, azure_seconds: float) -> dict[str, str]:
        """The wait hint for clients; see :func:`retry_after_headers` (``FaultConfig.retry_after_seconds``, when
        set, replaces every hint: a hostile or buggy answer)."""
        forced = self.faults.config.retry_after_seconds if self.faults is not None else None
        if forced is not None:
            azure_seconds = forced
        return retry_after_headers(azure_seconds, float(getattr(self.clock, "scale", 1.0)), self.retry_after_mode)

    # -- reading --------------------------------------------------------------------------------
    def get(self, operation_id: str) -> Operation:
        # Never wait for another settler here: a handler may hold the store lock that a running completion
        # needs. The request pipeline settles (without locks) before every handler anyway.
        self.settle_due(blocking=False)
        with self._lock:
            op = self._ops.get(operation_id.lower())
        if op is None:
            raise ArmError(404, "OperationNotFound", f"The operation '{operation_id}' was not found.")
        return op

    def status_body(self, op: Operation) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": (op.async_url or op.location_url or "").split("?")[0].split("://", 1)[-1].split("/", 1)[-1],
            "name": op.id,
            "status": op.status,
            "startTime": op.started.isoformat().replace("+00:00", "Z"),
        }
        body["id"] = "/" + body["id"]
        if op.ended is not None:
            body["endTime"] = op.ended.isoformat().replace("+00:00", "Z")
        if op.error is not None:
            body["error"] = op.error.body()["error"]
        return body

    def status_response(self, operation_id: str) -> Response:
        """200 with ``{"id","name","status","startTime","endTime"?,"error"?}`` (Azure-AsyncOperation poll)."""
        op = self.get(operation_id)
        headers = {} if op.done else self.retry_after_headers(op.retry_after)
        return Response(200, self.status_body(op), headers, raise_event=False)

    def result_response(self, operation_id: str) -> Response:
        """Location poll: 202 while running; then 200 + result (or ``done_status`` without one); failed -> error."""
        op = self.get(operation_id)
        if not op.done:
            headers = self.retry_after_headers(op.retry_after)
            if op.location_url:
                headers["Location"] = op.location_url
            return Response(202, None, headers, raise_event=False)
        if op.status == FAILED and op.error is not None:
            return Response(op.error.status, op.error.body(), dict(op.error.headers), raise_event=False)
        if op.result is not None:
            return Response(200, op.result, raise_event=False)
        return Response(op.done_status, None, raise_event=False)

    # -- ending ---------------------------------------------------------------------------------
    def cancel(self, operation_id: str) -> Operation:
        op = self.get(operation_id)
        with self._lock:
            if op.done:
                return op
            op.status, op.ended = CANCELED, self.clock.now()
        self._raise(op)
        return op

    def next_due(self) -> datetime | None:
        with self._lock:
            return self._due[0][0] if self._due else None

    def clock_probe(self) -> tuple[bool, datetime | None]:
        """For a discrete clock: (an operation is due or being settled, when the next one is due)."""
        if self._settling.locked():
            return True, None
        due = self.next_due()
        if due is not None and due <= self.clock.now():
            return True, None
        return False, due

    def settle_due(self, *, blocking: bool = True) -> int:
        """End every operation whose time has come (runs completions outside the engine lock).

        ``blocking=False`` returns at once if another thread is settling.
        """
        settled = 0
        if not self._settling.acquire(blocking=blocking):  # one settler at a time: completions in due order
            return 0
        try:
            while True:
                with self._lock:
                    if not self._due or self._due[0][0] > self.clock.now():
                        return settled
                    _, _, key = heapq.heappop(self._due)
                    op = self._ops.get(key)
                if op is None or op.done:
                    continue
                self._finish(op)
                settled += 1
        finally:
            self._settling.release()

    def _finish(self, op: Operation) -> None:
        error = op.fail_with
        result = None
        if error is None and op.complete is not None:
            try:
                result = op.complete()
            except ArmError as exc:
                error = exc
            except Exception as exc:
                log.exception("LRO %s completion crashed", op.id)
                error = ArmError(500, "InternalServerError", f"The operation failed: {exc}")
        if error is not None and op.on_failure is not None:
            try:
                op.on_failure(error)
            except Exception:
                log.exception("LRO %s failure handler crashed", op.id)
        with self._lock:
            op.result, op.error = result, error
            op.status = FAILED if error is not None else SUCCEEDED
            op.ended = self.clock.now()
        self._raise(op)

    def _raise(self, op: Operation) -> None:
        if self.events is not None and op.facts is not None:
            self.events.raise_resource_event(op.facts, op.status)

    # -- background -----------------------------------------------------------------------------
    def run_until_stopped(self, stopped: threading.Event) -> None:
        """Settle operations as virtual time passes (the server runs this in a thread)."""
        while not stopped.is_set():
            try:
                self.settle_due()
            except Exception:
                log.exception("settling LROs failed")
            due = self.next_due()
            wait = 0.05
            if due is not None:
                wait = min(wait, max(0.0, (due - self.clock.now()).total_seconds() / self.clock.scale))
            stopped.wait(max(wait, 0.002))
