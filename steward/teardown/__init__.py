"""The teardown's adapters around the pure saga (``steward.domain.teardown``): request checks and access policy
(``requests``), the composition of its ports and the report (``report``). Its ARM record mapping and
refusals live with the other adapters (``steward.cloud.teardown_arm``, ``steward.cloud.teardown_errors``); the
command-line demo driver with the sandbox (``sandbox.teardown_demo``)."""
