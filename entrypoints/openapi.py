"""The HTTP API's contract, served by the app: ``GET /api/openapi.yaml`` answers the OpenAPI 3 document
kept in ``openapi/backup-steward.yaml`` (the teardown and audit routes, their bodies, answers and errors).

It needs the function key like every other route: the contract is not secret, but nothing in this app
answers anonymously. The document is read once per process; a missing file is a packaging error and
answers 500 with a problem details body (``ContractMissing``; the host logs the cause).
"""

from __future__ import annotations

import logging
from functools import lru_cache
from pathlib import Path
from typing import Final

import azure.durable_functions as df
import azure.functions as func

from entrypoints import problems

LOG = logging.getLogger("steward.entry")
DOCUMENT: Final = Path(__file__).resolve().parents[1] / "openapi" / "backup-steward.yaml"
MEDIA_TYPE: Final = "application/yaml"

bp = df.Blueprint()


@lru_cache(maxsize=1)
def document() -> bytes:
    """The OpenAPI document's bytes, as shipped with the app."""
    return DOCUMENT.read_bytes()


@bp.route(route="openapi.yaml", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def openapi_document(req: func.HttpRequest) -> func.HttpResponse:
    try:
        body = document()
    except OSError:
        LOG.exception("the OpenAPI document is missing from the package")
        return problems.response(500, "ContractMissing", "the API description is not packaged with the app")
    return func.HttpResponse(
        body,
        status_code=200,
        headers={
            "Content-Type": f"{MEDIA_TYPE}; charset=utf-8",
            "Cache-Control": "no-cache",
            "X-Content-Type-Options": "nosniff",
        },
    )
