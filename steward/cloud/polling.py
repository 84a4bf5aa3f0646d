"""How the app follows Azure's long-running operations when it follows them inside an activity (issue #15 item 1).

azure-core's ``ARMPolling`` asks for the operation's status at once after the 201/202 that started it, before
waiting the ``Retry-After`` the answer carried (``LROBasePolling._poll``: ``if not self.finished():
self.update_status()``), and after a POST that succeeded it GETs the ``Location`` result even when the
``Azure-AsyncOperation`` body already said how it ended. ``PatientPolling`` waits first, every time, and can
take a POST's final state from the ``Azure-AsyncOperation`` body (azure-core's own ``final-state-via:
azure-async-operation`` option) when nobody reads the result. Statuses, errors and the final GET of a PUT's
resource are azure-core's, unchanged.
"""

from __future__ import annotations

from typing import Any

from azure.core.polling.base_polling import OperationFailed, _failed, _raise_if_bad_http_status_and_method
from azure.mgmt.core.polling.arm_polling import ARMPolling


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
