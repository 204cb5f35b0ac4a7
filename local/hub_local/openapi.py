"""One OpenAPI document for the whole HTTP API: every function's Powertools resolver, for the routes template.yaml
gives it, with AWS_IAM routes marked as SigV4-signed (`make openapi` writes it, a test fails when it is stale)."""

from __future__ import annotations

import copy
import importlib
import json
import sys
from pathlib import Path
from typing import Any, Final

from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

from hub_local.specs import HttpRoute
from hub_local.template import load_template

TITLE: Final = "Partner hub HTTP API"
VERSION: Final = "1"
DESCRIPTION: Final = (
    "Routes for the websites' forms and listings, and signed (AWS_IAM) routes for the shop. Errors are "
    '`{"error", "message", "problems": [{"field", "rule", "message"}]}`; amounts of campaigns are whole øre.'
)
# Where the document lives: beside the function that serves it (GET /openapi.json), so that it ships with it.
DOCUMENT_PATH: Final = Path("functions/api_docs/openapi.json")
SECURITY_SCHEMES: Final[dict[str, Any]] = {
    "sigv4": {
        "type": "apiKey",
        "in": "header",
        "name": "Authorization",
        "description": (
            "AWS Signature Version 4 of a caller with execute-api:Invoke on the route (AWS_IAM) whose role is on "
            "the stack's IamCallerArns allow-list."
        ),
        "x-amazon-apigateway-authtype": "awsSigv4",
    },
    "manageToken": {
        "type": "http",
        "scheme": "bearer",
        "description": (
            "The manage token Umbrella sent to the campaign's confirmMsisdn in the confirm SMS when it was created."
        ),
    },
}
# Powertools' own validation-error shapes: the hub answers its shared error shape instead.
_POWERTOOLS_ERRORS: Final = frozenset({"HTTPValidationError", "ValidationError", "ResponseValidationError"})
_POWERTOOLS_DEFAULT_RETURN: Final = {"type": "string", "title": "Return"}
ERROR_REF: Final = "#/components/schemas/Error"


class OpenApiError(Exception):
    """The template and the functions' resolvers disagree, or a function has no resolver to document."""


def _resolver_schema(function: str, handler: str) -> dict[str, Any]:
    module_name = handler.rpartition(".")[0]
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise OpenApiError(f"{function}: cannot import {module_name}: {error}") from error
    resolver = getattr(module, "app", None)
    if not hasattr(resolver, "get_openapi_schema"):
        raise OpenApiError(f"{function}: {module_name} has no Powertools resolver named `app` to document")
    # Powertools checks each route's `security` against schemes it knows; the document's own replace these.
    known = {name: HTTPBearer() for name in SECURITY_SCHEMES}
    schema = resolver.get_openapi_schema(title=TITLE, version=VERSION, security_schemes=known)  # type: ignore[union-attr]
    document: dict[str, Any] = schema.model_dump(by_alias=True, exclude_none=True, mode="json")
    return document


def _error_schema() -> dict[str, Any]:
    from hub_core.openapi import ERROR_SCHEMA  # noqa: PLC0415 - functions/ is on the path only once the template says

    return copy.deepcopy(ERROR_SCHEMA)


def _clean(value: Any, error_schema: dict[str, Any]) -> Any:
    """The error shape becomes one reference (Powertools' validation errors included); its `string` return, an
    object."""
    if isinstance(value, dict):
        reference = value.get("$ref")
        if value == error_schema or (isinstance(reference, str) and reference.rpartition("/")[2] in _POWERTOOLS_ERRORS):
            return {"$ref": ERROR_REF}
        if value == _POWERTOOLS_DEFAULT_RETURN:
            return {"type": "object"}
        return {key: _clean(item, error_schema) for key, item in value.items()}
    if isinstance(value, list):
        return [_clean(item, error_schema) for item in value]
    return value


def _operation(route: HttpRoute, schema: dict[str, Any], error_schema: dict[str, Any]) -> dict[str, Any]:
    if route.path is None or route.method == "ANY":
        raise OpenApiError(f"{route.function}: {route.route_key} ({route.method}) cannot be documented route by route")
    operation = schema.get("paths", {}).get(route.path, {}).get(route.method.lower())
    if operation is None:
        raise OpenApiError(
            f"{route.function}: template route {route.route_key} has no route in its resolver "
            f"(its routes: {', '.join(sorted(schema.get('paths', {}))) or 'none'})"
        )
    operation = _clean(operation, error_schema)
    operation["tags"] = [route.function]
    if route.authorizer == "AWS_IAM":
        operation["security"] = [{"sigv4": []}]
    return dict(operation)


def build_document(template_path: str | Path = "template.yaml") -> dict[str, Any]:
    """The OpenAPI document of every HttpApi route of the template, from its function's resolver."""
    template = load_template(template_path)
    for function in template.functions.values():
        for directory in function.code_dirs:
            if directory.is_dir() and str(directory) not in sys.path:
                sys.path.append(str(directory))
    error_schema = _error_schema()
    paths: dict[str, dict[str, Any]] = {}
    schemas: dict[str, Any] = {}
    tags: list[dict[str, str]] = []
    for logical_id in sorted(template.functions):
        function = template.functions[logical_id]
        if not function.http_routes:
            continue
        if not function.handler:
            raise OpenApiError(f"{logical_id}: no Handler to document")
        schema = _resolver_schema(logical_id, function.handler)
        for route in function.http_routes:
            paths.setdefault(str(route.path), {})[route.method.lower()] = _operation(route, schema, error_schema)
        for name, definition in schema.get("components", {}).get("schemas", {}).items():
            if name in _POWERTOOLS_ERRORS:
                continue
            if schemas.setdefault(name, definition) != definition:
                raise OpenApiError(f"two functions define the schema {name} differently; rename one")
        description = template.resources.get(logical_id, {}).get("Properties", {}).get("Description")
        tags.append({"name": logical_id, "description": str(description or logical_id)})
    schemas["Error"] = error_schema
    components: dict[str, Any] = {"schemas": dict(sorted(schemas.items())), "securitySchemes": SECURITY_SCHEMES}
    return {
        "openapi": "3.1.0",
        "info": {"title": TITLE, "version": VERSION, "description": DESCRIPTION},
        "tags": tags,
        "paths": {path: dict(sorted(methods.items())) for path, methods in sorted(paths.items())},
        "components": components,
    }


def render(document: dict[str, Any]) -> str:
    """The document as committed: stable key order, two-space indent, UTF-8 text."""
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
