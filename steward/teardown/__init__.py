"""The teardown's request checks and access policy (``requests``), around the pure saga
(``steward.domain.teardown``). Its ports are composed in ``steward.bootstrap``; its report is
``steward.report.teardown``; its ARM record mapping and refusals live with the other adapters
(``steward.cloud.teardown_arm``, ``steward.cloud.teardown_errors``); the command-line demo driver with the sandbox
is ``sandbox.teardown_demo``."""
