"""The teardown's adapters around the pure saga (``steward.domain.teardown``): request checks and access policy
(``requests``), settings, the composition root of its ports, ARM record mapping (``arm``), refusals (``errors``),
the report (``report``) and the command-line demo driver (``demo``)."""
