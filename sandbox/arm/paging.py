"""List pages with ``nextLink`` and signed continuation tokens.

The token names the last id returned (keyset paging, so inserts and deletes between pages neither repeat
nor skip survivors) and is bound to the list's path and filter by an HMAC: a token replayed against another
list, or edited, is a 400. ``nextLink`` keeps every other query parameter (``api-version``, ``$filter``...).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from sandbox.arm.errors import ArmError
from sandbox.arm.http import Request, Response
from sandbox.arm.ids import id_key

SKIP_TOKEN = "$skiptoken"  # noqa: S105 - a query parameter name, not a secret


class Pager:
    def __init__(self, page_size: int, secret: bytes | None = None) -> None:
        self.page_size = page_size
        self._secret = secret or secrets.token_bytes(32)

    def _scope(self, req: Request) -> str:
        query = {k: v for k, v in sorted(req.query.items()) if k not in (SKIP_TOKEN, "api-version")}
        return req.path.lower() + "?" + urlencode(query)

    def _sign(self, payload: bytes) -> str:
        return hmac.new(self._secret, payload, hashlib.sha256).hexdigest()[:32]

    def token(self, req: Request, last_key: str) -> str:
        payload = json.dumps({"after": last_key, "scope": self._scope(req)}).encode()
        return base64.urlsafe_b64encode(payload).decode().rstrip("=") + "." + self._sign(payload)

    def _read_token(self, req: Request, token: str) -> str:
        try:
            encoded, signature = token.rsplit(".", 1)
            payload = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            data = json.loads(payload)
            valid = hmac.compare_digest(self._sign(payload), signature) and data["scope"] == self._scope(req)
        except (ValueError, KeyError, TypeError):
            valid = False
        if not valid:
            raise ArmError(400, "InvalidSkipToken", f"The continuation token '{token}' is not valid for this list.")
        return str(data["after"])

    def page(
        self, req: Request, items: Sequence[dict[str, Any]], *, page_size: int | None = None, key: Any = None
    ) -> Response:
        """Answer a list request with one page of ``items`` (``{"value": [...], "nextLink"?: url}``).

        Items are ordered by id (or by the string ``key(item)``); pass the full, filtered list each time.
        """
        size = page_size or self.page_size
        sort_key = key or (lambda item: id_key(str(item.get("id", ""))))
        ordered = sorted(items, key=sort_key)
        token = req.query.get(SKIP_TOKEN)
        if token:
            after = self._read_token(req, token)
            ordered = [item for item in ordered if str(sort_key(item)) > after]
        chunk = list(ordered[:size])
        body: dict[str, Any] = {"value": chunk}
        if len(ordered) > size:
            query = dict(req.query)
            query[SKIP_TOKEN] = self.token(req, str(sort_key(chunk[-1])))
            body["nextLink"] = req.base_url + req.raw_path + "?" + urlencode(query, safe="$")
        return Response(200, body)
