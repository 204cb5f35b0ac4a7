"""One error shape for every HTTP route: a JSON body naming the problem, and the status that fits who must act."""

from __future__ import annotations

import functools
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from botocore.exceptions import ClientError, HTTPClientError

# Not hub_core.aws: API docs maps these errors too, and its cold start loads no boto3.
from hub_core.aws_errors import AwsOutOfTime
from hub_core.config import ConfigError
from partners.errors import (
    PartnerAuthError,
    PartnerBadResponse,
    PartnerError,
    PartnerNotFound,
    PartnerUnavailable,
)

# pydantic's error types, renamed to the rule a form author recognises.
_RULES = {
    "missing": "required",
    "extra_forbidden": "unknown_field",
    "literal_error": "one_of",
    "enum": "one_of",
    "string_too_long": "max_length",
    "string_too_short": "min_length",
    "string_pattern_mismatch": "pattern",
    "string_type": "string",
    "int_parsing": "integer",
    "int_type": "integer",
    "greater_than": "minimum",
    "greater_than_equal": "minimum",
    "less_than_equal": "maximum",
    "json_invalid": "json",
    "model_attributes_type": "object",
}
# Where a value came from is not part of its name for the caller.
_LOCATIONS = {"body", "query", "path", "header", "cookie"}


@dataclass(frozen=True)
class FieldProblem:
    field: str
    rule: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "rule": self.rule, "message": self.message}


class RequestRejected(Exception):
    """A caller's mistake: answered with `status` and a body naming each field and rule."""

    def __init__(
        self, status: int, error: str, message: str, problems: Sequence[FieldProblem] = (), **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.problems = list(problems)
        self.extra = extra


def problems_from(errors: Iterable[Mapping[str, Any]]) -> list[FieldProblem]:
    """Field problems from pydantic errors, without the submitted values (they may be personal data)."""
    problems = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ()) if str(part) not in _LOCATIONS]
        rule = str(error.get("type", "invalid"))
        message = str(error.get("msg", "invalid value"))
        if rule == "value_error":
            message = message.removeprefix("Value error, ")
        problems.append(FieldProblem(".".join(loc) or "body", _RULES.get(rule, rule), message))
    return problems


def error_response(
    status: int,
    error: str,
    message: str,
    problems: Sequence[FieldProblem] = (),
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> Response[str]:
    body: dict[str, Any] = {"error": error, "message": message, **extra}
    if problems:
        body["problems"] = [p.as_dict() for p in problems]
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers=dict(headers or {}),
    )


@dataclass(frozen=True)
class Refusal:
    """How one domain error of a flow is answered: its status and error code, and what the error itself adds (field
    problems, headers, `body_fields`). `message` replaces the error's own message when the answer names the request
    rather than the one problem."""

    status: int
    error: str
    problems: Callable[[Any], Sequence[FieldProblem]] | None = None
    headers: Callable[[Any], Mapping[str, str]] | None = None
    body_fields: Callable[[Any], Mapping[str, Any]] | None = None
    message: str | None = None

    def answer(self, exc: Exception, logger: logging.Logger | Any) -> Response[str]:
        problems = list(self.problems(exc)) if self.problems else []
        logger.info("request rejected", extra={"error": self.error, "fields": [p.field for p in problems]})
        return error_response(
            self.status,
            self.error,
            self.message or str(getattr(exc, "message", "") or exc),
            problems,
            self.headers(exc) if self.headers else None,
            **(self.body_fields(exc) if self.body_fields else {}),
        )


def map_refusals(
    app: APIGatewayHttpResolver, logger: logging.Logger | Any, refusals: Mapping[type[Exception], Refusal]
) -> None:
    """One exception handler per domain error, each answering as its Refusal says: the only place a flow's errors
    become HTTP (docs/errors.md). A handler per concrete class, so that a new error without its own row falls
    through to the catch-all 500 and `tests/unit/test_domain_errors.py` names it."""
    for error_type, refusal in refusals.items():
        app.exception_handler(error_type)(functools.partial(refusal.answer, logger=logger))


def json_response(
    status: int, body: Any, *, cache_seconds: int | None = None, headers: Mapping[str, str] | None = None
) -> Response[str]:
    """A JSON answer; shared caches may keep it `cache_seconds`, or never when not given."""
    cache = f"public, max-age={cache_seconds}" if cache_seconds else "no-store"
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, separators=(",", ":")),
        headers={"Cache-Control": cache, **(headers or {})},
    )


def partner_error_response(exc: PartnerError) -> Response[str]:
    """A partner failure on a read route: 404 passes through, the rest say whether retrying can help."""
    if isinstance(exc, PartnerNotFound):
        return error_response(404, "not_found", "not found at the partner")
    if isinstance(exc, PartnerUnavailable):
        retry_after = max(1, math.ceil(exc.retry_after)) if exc.retry_after else 5
        return error_response(
            502 if isinstance(exc, PartnerBadResponse) else 503,
            "partner_unavailable",
            f"{exc.partner} is unavailable; try again later",
            headers={"Retry-After": str(retry_after)},
            retryable=True,
        )
    if isinstance(exc, PartnerAuthError):
        return error_response(502, "partner_misconfigured", f"{exc.partner} refused our credentials", retryable=False)
    return error_response(502, "partner_rejected", exc.message, retryable=False)


# AWS throttling and 5xx pass in seconds; a client told to come back sooner only adds to the load.
AWS_RETRY_AFTER_SECONDS = 2
# botocore.retries.standard's throttling codes, and its transient ones, as the SDK itself retries them.
_AWS_TRANSIENT_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
        "RequestTimeout",
        "RequestTimeoutException",
        "InternalError",
        "ServiceUnavailable",
    }
)


def aws_unavailable(exc: Exception) -> bool:
    """Whether an AWS failure says "not now" (throttled, 5xx, unreachable, out of time) rather than "never"."""
    if isinstance(exc, AwsOutOfTime | HTTPClientError):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        return exc.response.get("Error", {}).get("Code") in _AWS_TRANSIENT_CODES or int(status or 0) >= 500
    return False


def install_error_handlers(app: APIGatewayHttpResolver, logger: logging.Logger | Any) -> None:
    """Register the shared mapping from exceptions to responses on a resolver."""

    @app.exception_handler(RequestRejected)
    def _rejected(exc: RequestRejected) -> Response[str]:
        logger.info("request rejected", extra={"error": exc.error, "fields": [p.field for p in exc.problems]})
        return error_response(exc.status, exc.error, exc.message, exc.problems, **exc.extra)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response[str]:
        problems = problems_from(exc.errors())
        logger.info("request invalid", extra={"fields": [p.field for p in problems]})
        return error_response(422, "validation_failed", "the request is not valid", problems)

    @app.exception_handler(PartnerError)
    def _partner(exc: PartnerError) -> Response[str]:
        logger.warning("partner call failed", extra=exc.log_fields())
        return partner_error_response(exc)

    def unexpected(exc: Exception) -> Response[str]:
        # The traceback goes to the log for the operator; the caller learns nothing of our internals.
        logger.exception("unhandled error", extra={"kind": type(exc).__name__})
        return error_response(500, "internal_error", "something went wrong on our side; try again later")

    @app.exception_handler([AwsOutOfTime, HTTPClientError, ClientError])
    def _aws(exc: Exception) -> Response[str]:
        if not aws_unavailable(exc):  # a bug of ours (a bad parameter, a condition not handled): the catch-all's
            return unexpected(exc)
        # The error code, never its message: a ClientError's message may quote the request.
        code = exc.response.get("Error", {}).get("Code") if isinstance(exc, ClientError) else type(exc).__name__
        logger.warning("AWS unavailable", extra={"kind": code})
        return error_response(
            503,
            "service_unavailable",
            "the service is busy; try again shortly",
            headers={"Retry-After": str(AWS_RETRY_AFTER_SECONDS)},
            retryable=True,
        )

    @app.exception_handler(ConfigError)
    def _config(exc: ConfigError) -> Response[str]:
        logger.error("configuration error", extra={"detail": str(exc)})
        return error_response(500, "internal_error", "the service is misconfigured; the operators are alerted")

    app.exception_handler(Exception)(unexpected)

    @app.not_found
    def _no_route(_: Exception) -> Response[str]:
        return error_response(404, "not_found", "no such route")
