"""Erasure's Lambda entry point: the signed POST /erasure, the back office's ErasureRequested events, and a direct
invoke `{"erase": {...}}` from the operators' CLI; all three run the same erasure."""

from __future__ import annotations

import math
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from erasure import SERVICE, deferred, flow
from erasure.models import ErasureRequest
from erasure.services import ErasureServices, services
from erasure.settings import settings
from hub_core import priming
from hub_core.entry import entry_point, http_resolver
from hub_core.http_api import error_response, json_response
from hub_core.iam_callers import require_configured_caller
from hub_core.observability import logger_for, metrics_for
from hub_core.openapi import answers, form_body
from hub_core.request_body import submitted_fields
from hub_core.triggers import Trigger, trigger_of
from partners.errors import PartnerAuthError, PartnerUnavailable

logger = logger_for(SERVICE)
metrics = metrics_for(SERVICE)
app = http_resolver(logger)


@app.exception_handler(flow.Invalid)
def _invalid(exc: flow.Invalid) -> Response[str]:
    logger.info("erasure request invalid", extra={"fields": [p.field for p in exc.problems]})
    return error_response(
        400, "validation_failed", "the erasure request is not valid; nothing was erased", exc.problems
    )


@app.exception_handler(flow.PartnerStepFailed)
def _partner_step(exc: flow.PartnerStepFailed) -> Response[str]:
    logger.warning("app's miles erasure failed", extra=exc.cause.log_fields())
    local = exc.report.body()
    if isinstance(exc.cause, PartnerUnavailable):
        retry_after = max(1, math.ceil(exc.cause.retry_after)) if exc.cause.retry_after else 30
        return error_response(
            503, "partner_unavailable",
            "erased here; app's miles is unavailable, so the person is not erased there yet: repeat this request",
            headers={"Retry-After": str(retry_after)}, retryable=True, **local,
        )  # fmt: skip
    if isinstance(exc.cause, PartnerAuthError):
        message = "erased here; app's miles refused our credentials, so the person is not erased there"
        return error_response(502, "partner_misconfigured", message, retryable=False, **local)
    message = f"erased here; app's miles refused the erasure: {exc.cause.message}"
    return error_response(502, "partner_rejected", message, retryable=False, **local)


@app.post(
    "/erasure",
    summary="Erase a person's personal data from the hub and from app's miles (repeatable)",
    responses=answers({200: "what was erased where"}, 400, 403, 413, 415, 502, 503),
    openapi_extensions=form_body(ErasureRequest, "the person's identifiers, at least one", ("application/json",)),
)
def post_erasure() -> Response[str]:
    _require_iam_caller()
    collaborators = services()
    event = app.current_event
    fields = submitted_fields(event.raw_event, event.headers, max_bytes=collaborators.settings.max_body_bytes)
    report = flow.erase(collaborators, flow.parse(collaborators, fields))
    return json_response(200, report.body())


def _require_iam_caller() -> None:
    require_configured_caller(app.current_event.request_context.raw_event, settings())


def handle_erasure_requested(services: ErasureServices, event: dict[str, Any]) -> dict[str, Any]:
    """The back office's request. A bad one is logged (fields and rules only) and acknowledged: retrying cannot
    mend it. One that fails (app's miles, or our own tables) is kept in ErasureRequestsTable and retried from
    ErasureRetryQueue by its id (erasure.deferred), so no DLQ holds the person's identifiers. Only when even that
    fails does this raise: Lambda retries, then its OnFailure record goes to the same retry queue."""
    try:
        request = flow.parse(services, event.get("detail"))
    except flow.Invalid as exc:
        metrics.add_metric(name="ErasureRequestRejected", unit="Count", value=1)
        logger.warning(
            "ErasureRequested event rejected",
            extra={"event_id": event.get("id"), "fields": [p.field for p in exc.problems]},
        )
        return {"rejected": True, "problems": [p.as_dict() for p in exc.problems]}
    try:
        return flow.erase(services, request).body()
    except flow.PartnerStepFailed as exc:
        logger.warning("app's miles erasure failed; deferred", extra=exc.cause.log_fields())
        return exc.report.body() | {"deferred": deferred.defer(services, request)}
    except Exception as exc:
        # Our tables failed part-way (every step is repeatable): the retry runs the whole erasure again.
        logger.warning("erasure failed; deferred", extra={"kind": type(exc).__name__})
        return {"deferred": deferred.defer(services, request)}


def handle_direct(services: ErasureServices, request: Any) -> dict[str, Any]:
    """The CLI's invoke: the report, or the problems, or the local report with app's miles' failure, as data."""
    try:
        return flow.erase(services, flow.parse(services, request)).body()
    except flow.Invalid as exc:
        return {"error": "validation_failed", "problems": [p.as_dict() for p in exc.problems]}
    except flow.PartnerStepFailed as exc:
        logger.warning("app's miles erasure failed", extra=exc.cause.log_fields())
        retryable = isinstance(exc.cause, PartnerUnavailable)
        return exc.report.body() | {
            "error": "partner_unavailable" if retryable else "partner_failed",
            "message": exc.cause.message,
            "retryable": retryable,
        }


@entry_point(SERVICE)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    trigger = trigger_of(event)
    if trigger is Trigger.HTTP:
        return app.resolve(event, context)
    if trigger is Trigger.EVENT and event["detail-type"] == "ErasureRequested":
        return handle_erasure_requested(services(), event)
    if trigger is Trigger.SQS:
        return dict(deferred.handle(event, context))
    if "erase" in event:
        return handle_direct(services(), event["erase"])
    raise ValueError('unrecognised event: expected an HTTP API request, an ErasureRequested event or {"erase": {...}}')


# SnapStart (template.yaml's EnableSnapStart): what to build before the snapshot and renew after restore.
priming.register(lambda_handler, priming.dry_http_request("POST", "/erasure"))
