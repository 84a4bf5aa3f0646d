"""Microsoft.Insights (api-version 2015-04-01): the subscription's activity log, read-only.

``GET /subscriptions/{s}/providers/Microsoft.Insights/eventtypes/management/values?$filter=...`` answers the
``EventData`` entries ARM kept of the writes, deletes and actions made through the sandbox (``EventBus``'s
``ActivityLog``), newest first, paged by ``nextLink``. ``$filter`` takes the patterns the Monitor spec
(``activityLogs_API.json``, ``ActivityLogs_List``) lists: ``eventTimestamp ge '<start>'`` (required) and optionally
``eventTimestamp le '<end>'``, ``eventChannels eq '...'`` (accepted, not applied) and one of ``resourceGroupName eq``,
``resourceUri eq``, ``resourceProvider eq``, ``correlationId eq``. Anything else is a 400 (inferred code
``BadRequest``; ARM's own text for a bad filter is not modelled). The audit reads it to count a vault's policy
changes in the last 24 hours (issue 19, CAP-002).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Final

from sandbox.arm.context import ProviderContext
from sandbox.arm.errors import ArmError
from sandbox.arm.http import Request, Response
from sandbox.arm.routing import Router

PROVIDER = "Microsoft.Insights"
API_VERSIONS: Final = ("2015-04-01",)
_CLAUSE: Final = re.compile(r"^\s*(\w+)\s+(eq|ge|le)\s+'([^']*)'\s*$", re.IGNORECASE)
_MATCHERS: Final = {
    "resourcegroupname": lambda e, v: str(e["resourceGroupName"]).lower() == v,
    "resourceuri": lambda e, v: str(e["resourceId"]).lower() == v,
    "resourceprovider": lambda e, v: str(e["resourceProviderName"]["value"]).lower() == v,
    "correlationid": lambda e, v: str(e["correlationId"]).lower() == v,
}


def _moment(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ArmError(400, "BadRequest", f"'{text}' is not a valid eventTimestamp.") from None
    if moment.tzinfo is None:
        raise ArmError(400, "BadRequest", f"'{text}' has no time zone.")
    return moment


def _parse(text: str | None) -> tuple[datetime, datetime | None, list[tuple[str, str]]]:
    if not text:
        raise ArmError(400, "BadRequest", "The $filter query parameter with eventTimestamp ge '<start>' is required.")
    start: datetime | None = None
    end: datetime | None = None
    matches: list[tuple[str, str]] = []
    for clause in re.split(r"\s+and\s+", text.strip(), flags=re.IGNORECASE):
        found = _CLAUSE.match(clause)
        if found is None:
            raise ArmError(400, "BadRequest", f"The $filter clause '{clause}' is not supported.")
        field, op, value = found.group(1).lower(), found.group(2).lower(), found.group(3)
        if field == "eventtimestamp" and op == "ge":
            start = _moment(value)
        elif field == "eventtimestamp" and op == "le":
            end = _moment(value)
        elif field == "eventchannels" and op == "eq":
            continue
        elif field in _MATCHERS and op == "eq":
            matches.append((field, value.lower()))
        else:
            raise ArmError(400, "BadRequest", f"The $filter clause '{clause}' is not supported.")
    if start is None:
        raise ArmError(400, "BadRequest", "The $filter must name eventTimestamp ge '<start>'.")
    return start, end, matches


def register(router: Router, ctx: ProviderContext) -> None:
    routes = router.provider(PROVIDER, API_VERSIONS)

    def list_events(req: Request) -> Response:
        ctx.require_subscription(req.params["subscriptionId"])
        start, end, matches = _parse(req.query.get("$filter"))
        found: list[dict[str, Any]] = []
        for entry in ctx.events.activity_log.entries(req.params["subscriptionId"]):
            when: datetime = entry["_when"]
            if when < start or (end is not None and when > end):
                continue
            if all(_MATCHERS[field](entry, value) for field, value in matches):
                found.append({k: v for k, v in entry.items() if k != "_when"})
        return ctx.page(req, found)

    routes.add("GET", "/subscriptions/{subscriptionId}/providers/Microsoft.Insights/eventtypes/management/values",
               list_events, events=False)
