"""How the app follows Azure's long-running operations when it follows them inside an activity (issue #15 item 1).

azure-core's ``ARMPolling`` asks for the operation's status at once after the 201/202 that started it, before
waiting the ``Retry-After`` the answer carried (``LROBasePolling._poll``: ``if not self.finished():
self.update_status()``), and after a POST that succeeded it GETs the ``Location`` result even when the
``Azure-AsyncOperation`` body already said how it ended. ``PatientPolling`` waits first, every time, and can
take a POST's final state from the ``Azure-AsyncOperation`` body (azure-core's own ``final-state-via:
azure-async-operation`` option) when nobody reads the result. Statuses, errors and the final GET of a PUT's
resource are azure-core's, unchanged.

Every wait the SDK takes inside an activity is bounded (:class:`BoundedWaitTransport`, the transport every client
of ``steward.cloud.clients`` gets): an LRO poll's ``Retry-After`` (``LROBasePolling._delay`` sleeps through
``transport.sleep``) and a retried answer's (``RetryPolicy._sleep_for_retry``, likewise). Retry-After is the
server's to choose (RFC 9110 section 10.2.3): the seconds to wait before checking the operation's status again
(MicrosoftDocs/azure-docs ``azure-resource-manager/management/async-operations.md``), with no upper bound. A
hostile or buggy answer of ``Retry-After: 86400`` would hold an activity slot (8 per instance, ``host.json``
``maxConcurrentActivityFunctions``) until the function timeout (10 min) and then fail it.
:data:`MAX_SDK_WAIT_SECONDS` is 60: the longest hint in Microsoft's examples of the operations the app follows
(the ``x-ms-examples`` of vault deletes, protected-item and backup-instance operations, trigger backup: 10 or 60),
and the pacer's own cap on one wait (``PacingLimits.max_wait_seconds``). A longer hint is cut to it and logged; the
poll then simply asks again (ARM answers the status, or 202 again), and a 429 that persists ends the SDK's few
retries, after which the orchestrator waits on a durable timer, which holds no slot.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from azure.core.polling.base_polling import OperationFailed, _failed, _raise_if_bad_http_status_and_method
from azure.mgmt.core.polling.arm_polling import ARMPolling

from steward.cloud.azure_time import ClockedRequestsTransport

LOG = logging.getLogger("steward.cloud.polling")

#: the longest single wait the SDK may take inside an activity, in seconds (see the module's docstring)
MAX_SDK_WAIT_SECONDS: Final = 60.0


def bounded_wait(seconds: float, bound: float = MAX_SDK_WAIT_SECONDS) -> float:
    """``seconds``, cut to ``bound`` (logged when cut)."""
    if seconds > bound:
        LOG.warning("an Azure wait hint of %.0f s was cut to %.0f s", seconds, bound,
                    extra={"requested_wait_seconds": seconds, "wait_bound_seconds": bound})
        return bound
    return seconds


class BoundedWaitTransport(ClockedRequestsTransport):
    """The clients' transport: azure-core's requests transport on the app's clock, whose every wait (LRO poll,
    retry) is at most :data:`MAX_SDK_WAIT_SECONDS`."""

    def sleep(self, duration: float) -> None:
        super().sleep(bounded_wait(duration))


class PatientPolling(ARMPolling):
    def _poll(self) -> None:
        while not self.finished():
            self._delay()  # Retry-After (or the interval) BEFORE each status GET, the first one included
            self.update_status()
        if _failed(self.status()):  # type: ignore[no-untyped-call]
            raise OperationFailed("Operation failed or canceled")
        final_get_url = self._operation.get_final_get_url(self._pipeline_response)
        if final_get_url:
            self._pipeline_response = self.request_status(final_get_url)
            _raise_if_bad_http_status_and_method(self._pipeline_response.http_response)


def patient(interval: float, *, result_unused: bool = False) -> Any:
    """The polling method for one operation: ``result_unused`` for a POST whose result body nobody reads (the
    final state comes from the ``Azure-AsyncOperation`` status body, no GET of the ``Location`` result)."""
    options = {"final-state-via": "azure-async-operation"} if result_unused else None
    return PatientPolling(interval, lro_options=options)
