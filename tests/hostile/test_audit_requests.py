"""``POST /api/audits`` says what it refused (issue 20): a field it does not know is a 400 ``UnknownField`` naming
the field and the known ones (a misspelt ``subscription`` used to be ignored and the whole estate audited), and
``SubscriptionNotManaged`` names the subscriptions outside ``STEWARD_SUBSCRIPTIONS``. Neither starts anything.

The error body is read through :func:`error_of`, which accepts both the ``{"error": {code, message}}`` shape and
RFC 9457 problem details (``code`` and ``detail`` at the top level)."""

from __future__ import annotations

import json
from typing import Any

from tests.hostile.conftest import ADMIN, SUB1, App

OTHER = "99999999-9999-4999-8999-999999999999"
OTHER2 = "88888888-8888-4888-8888-888888888888"


def error_of(body: bytes) -> tuple[str, str]:
    """(code, message) of an error answer, in either shape the app may use."""
    parsed: dict[str, Any] = json.loads(body)
    inner = parsed.get("error")
    if isinstance(inner, dict):
        return str(inner.get("code")), str(inner.get("message"))
    return str(parsed.get("code")), str(parsed.get("detail"))


def _post(app: App, record: object) -> tuple[int, bytes]:
    status, _, answer = app.request("POST", "audits", json.dumps(record).encode(), app.auth(ADMIN))
    return status, answer


def test_an_unknown_field_is_refused_naming_it_and_the_known_ones(app: App) -> None:
    before = app.state()
    status, answer = _post(app, {"subscription": [SUB1]})  # the singular: a typo of 'subscriptions'
    app.settle()
    assert app.state() == before, "the refused request started an audit"
    assert status == 400, answer
    code, message = error_of(answer)
    assert code == "UnknownField"
    assert "'subscription'" in message and "subscriptions" in message.split("known:", 1)[1]


def test_subscription_not_managed_names_the_subscriptions(app: App) -> None:
    status, answer = _post(app, {"subscriptions": [SUB1, OTHER, OTHER2.upper()]})
    assert status == 403, answer
    code, message = error_of(answer)
    assert code == "SubscriptionNotManaged"
    assert OTHER in message and OTHER2 in message and SUB1 not in message
