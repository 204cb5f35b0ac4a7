"""What the routes tell the OpenAPI document: request bodies from their pydantic models, and the shared error shape."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from pydantic import BaseModel

FORM_MEDIA_TYPES = ("application/json", "application/x-www-form-urlencoded")

# The body of every 4xx/5xx the hub answers (hub_core.http_api.error_response).
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "message"],
    "properties": {
        "error": {"type": "string", "description": "machine-readable kind, e.g. validation_failed"},
        "message": {"type": "string"},
        "retryable": {"type": "boolean"},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "rule", "message"],
                "properties": {
                    "field": {"type": "string"},
                    "rule": {"type": "string", "description": "e.g. required, pattern, one_of, email_syntax"},
                    "message": {"type": "string"},
                },
            },
        },
    },
}
_ERRORS = {
    400: "malformed body or header",
    401: "no manage token",
    403: "not allowed",
    404: "not found",
    409: "conflict: in use, in progress or stopped",
    413: "body too large",
    415: "neither JSON nor a form post",
    422: "a field breaks a rule (each named in `problems`)",
    429: "a rate limit is reached; retry after Retry-After seconds",
    502: "the partner answered something unusable or refused our credentials",
    503: "the partner is unavailable; retry after Retry-After seconds",
}


def _inline_definitions(schema: Any, definitions: dict[str, Any]) -> Any:
    """pydantic's `$defs` references replaced by their definitions (enums and small models only, no cycles)."""
    if isinstance(schema, dict):
        reference = schema.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/$defs/"):
            return _inline_definitions(definitions[reference.removeprefix("#/$defs/")], definitions)
        return {key: _inline_definitions(value, definitions) for key, value in schema.items() if key != "$defs"}
    if isinstance(schema, list):
        return [_inline_definitions(item, definitions) for item in schema]
    return schema


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON schema of `model` as a request body, self-contained."""
    schema = model.model_json_schema()
    return dict(_inline_definitions(schema, schema.get("$defs", {})))


def form_body(
    model: type[BaseModel], description: str, media_types: tuple[str, ...] = FORM_MEDIA_TYPES
) -> dict[str, Any]:
    """`openapi_extensions` giving a route the request body it reads itself: JSON or a plain HTML form post."""
    schema = body_schema(model)
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {media_type: {"schema": schema} for media_type in media_types},
        }
    }


def answers(success: dict[int, str], *errors: int) -> dict[int, OpenAPIResponse]:
    """A route's `responses`: its JSON successes and the errors it can answer, in the shared error shape."""
    responses: dict[int, OpenAPIResponse] = {
        status: {"description": text, "content": {"application/json": {"schema": {"type": "object"}}}}
        for status, text in success.items()
    }
    for status in sorted({422, *errors}):
        responses[status] = {"description": _ERRORS[status], "content": {"application/json": {"schema": ERROR_SCHEMA}}}
    return responses
