"""API docs' Lambda entry point: GET /openapi.json, the committed document of every route (`make openapi`)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from api_docs import SERVICE
from hub_core import priming
from hub_core.entry import http_resolver
from hub_core.observability import logger_for

# Shipped with the function's code (CodeUri functions/); the repository root links to it.
DOCUMENT = Path(__file__).with_name("openapi.json")

logger = logger_for(SERVICE)
# No validation: the one route takes no parameter and answers a string, so there is nothing to validate, and the
# validation middlewares would load pydantic's schema machinery on the cold start for nothing. (Its document then
# lists no 422 for GET /openapi.json, which it never answers.)
app = http_resolver(logger, enable_validation=False)


@cache
def _document() -> str:
    return DOCUMENT.read_text(encoding="utf-8")


@app.get(
    "/openapi.json",
    summary="This API's OpenAPI document",
    responses={200: {"description": "OpenAPI 3.1", "content": {"application/json": {"schema": {"type": "object"}}}}},
)
def get_openapi() -> Response[str]:
    return Response(
        status_code=200,
        content_type=content_types.APPLICATION_JSON,
        body=_document(),
        headers={"Cache-Control": "public, max-age=300"},
    )


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


# SnapStart (template.yaml's EnableSnapStart): what to build before the snapshot and renew after restore.
priming.register(lambda_handler, priming.dry_http_request("GET", "/openapi.json", body=""), services=())
