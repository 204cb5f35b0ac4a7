"""A request body as fields: size and media type checked, JSON or a URL-encoded form post, decoded strictly."""

from __future__ import annotations

import base64
import binascii
import json
import math
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


class _OutOfRange:
    """Stands in for a JSON number Python cannot or should not hold, so the field that carried it can be named."""


_OUT_OF_RANGE = _OutOfRange()
# More digits than any field of ours takes (an int32, an amount in øre), far below Python's int conversion limit
# (4,300 digits), which raises ValueError, not JSONDecodeError, and so became a 500.
MAX_INTEGER_DIGITS = 32


def _integer(literal: str) -> int | _OutOfRange:
    if len(literal.lstrip("-")) > MAX_INTEGER_DIGITS:
        return _OUT_OF_RANGE
    return int(literal)


def _float(literal: str) -> float | _OutOfRange:
    value = float(literal)
    return value if math.isfinite(value) else _OUT_OF_RANGE  # 1e999 is inf


def _constant(_: str) -> _OutOfRange:
    return _OUT_OF_RANGE  # NaN, Infinity, -Infinity: not JSON, though Python's parser takes them


def _holds_out_of_range(value: Any) -> bool:
    if value is _OUT_OF_RANGE:
        return True
    if isinstance(value, dict):
        return any(_holds_out_of_range(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_out_of_range(item) for item in value)
    return False


def _json_fields(text: str) -> dict[str, Any]:
    try:
        fields = json.loads(text, parse_int=_integer, parse_float=_float, parse_constant=_constant)
    except RecursionError:
        raise _malformed("nesting", "the body is nested too deeply") from None
    except ValueError:  # JSONDecodeError, and any other refusal of the parser
        raise _malformed("json", "the body is not valid JSON") from None
    if not isinstance(fields, dict):
        raise _malformed("object", "the body must be a JSON object of fields")
    out_of_range = sorted(name for name, value in fields.items() if _holds_out_of_range(value))
    if out_of_range:
        message = f"must be a finite number of at most {MAX_INTEGER_DIGITS} digits"
        problems = [FieldProblem(name or "body", "number_range", message) for name in out_of_range]
        raise RequestRejected(400, "validation_failed", "a number in the body is out of range", problems)
    return fields


def _form_fields(text: str) -> dict[str, Any]:
    parsed = parse_qs(text, keep_blank_values=True)
    repeated = [name for name, values in parsed.items() if len(values) > 1]
    if repeated:
        # A form may repeat a field without a name (`=a&=b`): the problem is then the body's, not a blank field's.
        problems = [FieldProblem(name or "body", "single_value", "must be given once") for name in sorted(repeated)]
        raise RequestRejected(422, "validation_failed", "the request is not valid", problems)
    return {name: values[0] for name, values in parsed.items()}
