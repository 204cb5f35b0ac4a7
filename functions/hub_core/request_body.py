"""A request body as fields: size and media type checked, JSON or a URL-encoded form post, decoded strictly."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from hub_core.http_api import FieldProblem, RequestRejected

FORM_TYPES = frozenset({"application/json", "application/x-www-form-urlencoded"})


def submitted_fields(event: Mapping[str, Any], headers: Mapping[str, str], *, max_bytes: int) -> dict[str, Any]:
    """The body of an HTTP API event as a dict of fields; a 4xx naming the problem for anything else."""
    raw = _raw_body(event.get("body"), bool(event.get("isBase64Encoded")))
    if len(raw) > max_bytes:
        raise RequestRejected(413, "payload_too_large", f"the body must be at most {max_bytes} bytes")
    if is_form_post(headers) is None:
        raise RequestRejected(
            415, "unsupported_media_type", "send application/json or application/x-www-form-urlencoded",
            [FieldProblem("Content-Type", "one_of", "must be application/json or application/x-www-form-urlencoded")],
        )  # fmt: skip
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed("utf8", "the body must be UTF-8") from None
    if is_form_post(headers):
        return _form_fields(text)
    return _json_fields(text)


def is_form_post(headers: Mapping[str, str]) -> bool | None:
    """True for a form post, False for JSON, None for any other media type."""
    media_type = (headers.get("content-type") or "").split(";")[0].strip().lower()
    if media_type not in FORM_TYPES:
        return None
    return media_type == "application/x-www-form-urlencoded"


def _malformed(rule: str, message: str) -> RequestRejected:
    """A body that cannot be read as fields: its one problem is the body itself, so a form can still point at it."""
    return RequestRejected(400, "malformed_body", message, [FieldProblem("body", rule, message)])


def _raw_body(body: str | None, is_base64: bool) -> bytes:
    if not body:
        return b""
    if not is_base64:
        return body.encode("utf-8")
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise _malformed("base64", "the body could not be decoded") from None


def _json_fields(text: str) -> dict[str, Any]:
    try:
        fields = json.loads(text)
    except json.JSONDecodeError:
        raise _malformed("json", "the body is not valid JSON") from None
    if not isinstance(fields, dict):
        raise _malformed("object", "the body must be a JSON object of fields")
    return fields


def _form_fields(text: str) -> dict[str, Any]:
    parsed = parse_qs(text, keep_blank_values=True)
    repeated = [name for name, values in parsed.items() if len(values) > 1]
    if repeated:
        # A form may repeat a field without a name (`=a&=b`): the problem is then the body's, not a blank field's.
        problems = [FieldProblem(name or "body", "single_value", "must be given once") for name in sorted(repeated)]
        raise RequestRejected(422, "validation_failed", "the request is not valid", problems)
    return {name: values[0] for name, values in parsed.items()}
