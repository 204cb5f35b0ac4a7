"""Licence issuance's Lambda entry point: the shop's LicenceRequested events and the server-to-server routes."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

from hub_core import priming
from hub_core.entry import entry_point, http_resolver
from hub_core.http_api import (
    FieldProblem,
    Refusal,
    RequestRejected,
    error_response,
    json_response,
    map_refusals,
    problems_from,
)
from hub_core.iam_callers import require_configured_caller
from hub_core.member_signature import Verdict
from hub_core.observability import logger_for, metrics_for
from hub_core.openapi import answers, form_body
from hub_core.request_body import submitted_fields
from hub_core.triggers import Trigger, trigger_of
from licence_issuance import SERVICE, flow
from licence_issuance.models import ORDER_ID_PATTERN, IssuedLicence, LicenceRequest, LicenceState, SiteRequest
from licence_issuance.services import services
from licence_issuance.settings import settings
from partners.errors import PartnerAuthError, PartnerError, PartnerUnavailable
from partners.mlm import MaxSitesReached

logger = logger_for(SERVICE)
metrics = metrics_for(SERVICE)
app = http_resolver(logger)

# A licence key as documented: an UUID, "-", then a long random suffix; anything else cannot be one of ours.
LicenceKey = Annotated[str, Path(pattern=r"^[A-Za-z0-9-]{16,128}$")]


_MAX_SITES = Refusal(
    409, "max_sites_reached", message="this licence already has the most sites its type allows",
    problems=lambda _: [FieldProblem("url", "max_sites", "this licence already has the most sites its type allows")],
    body_fields=lambda _: {"retryable": False},
)  # fmt: skip
_ORDER_REUSED = FieldProblem("order_id", "reused", "this order id was already used for a different licence request")
map_refusals(
    app,
    logger,
    {
        flow.OrderInProgress: Refusal(
            409, "order_in_progress",
            message="this order (or another of the same product and type) is being issued right now",
            headers=lambda _: {"Retry-After": "2"}, body_fields=lambda _: {"retryable": True},
        ),
        flow.OrderConflict: Refusal(
            409, "order_conflict", message=_ORDER_REUSED.message, problems=lambda _: [_ORDER_REUSED],
            body_fields=lambda _: {"retryable": False},
        ),
        flow.CatalogueMismatch: Refusal(
            422, "validation_failed", message="the licence request is not valid", problems=lambda exc: exc.problems
        ),
        flow.MaxSitesOnRecord: _MAX_SITES,
        MaxSitesReached: _MAX_SITES,
    },
)  # fmt: skip


@app.post(
    "/licences",
    summary="Issue the licence of a shop order (once per order)",
    responses=answers({201: "issued (or issued before for this order)"}, 400, 403, 409, 413, 415, 502, 503),
    openapi_extensions=form_body(LicenceRequest, "the order's licence", ("application/json",)),
)
def post_licence() -> Response[str]:
    _require_iam_caller()
    request = _verified_member(_validated(LicenceRequest))
    return _outcome(flow.issue(services(), request))


@app.get("/licences/<orderId>")
def get_licence(orderId: Annotated[str, Path(pattern=ORDER_ID_PATTERN)]) -> Response[str]:
    _require_iam_caller()
    record = flow.licence_for_order(services(), orderId)
    if record is None or record.state in (LicenceState.CREATING, LicenceState.UNCERTAIN):
        raise RequestRejected(404, "not_found", "no licence was issued for this order (yet)")
    return json_response(200, {"licence": record.licence.body()})


@app.post(
    "/licences/<key>/sites",
    summary="Add a site to a licence",
    responses=answers({200: "the site was there already", 201: "added"}, 400, 403, 404, 409, 413, 415, 502, 503),
    openapi_extensions=form_body(SiteRequest, "the site", ("application/json",)),
)
def post_site(key: LicenceKey) -> Response[str]:
    _require_iam_caller()
    site = _validated(SiteRequest)
    try:
        licence, added = flow.add_site(services(), key, site.url)
    except LookupError:
        raise RequestRejected(404, "not_found", "no licence with this key was issued here") from None
    metrics.add_metric(name="LicenceSiteAdded" if added else "LicenceSiteRepeated", unit=MetricUnit.Count, value=1)
    return json_response(201 if added else 200, {"licence": licence.body()})


@app.get("/licence-types")
def get_licence_types() -> Response[str]:
    _require_iam_caller()
    kinds = [kind.model_dump(mode="json") for kind in flow.licence_types(services())]
    return json_response(200, {"licence_types": kinds}, cache_seconds=settings().catalogue_cache_seconds)


@app.get("/products")
def get_products() -> Response[str]:
    _require_iam_caller()
    products = [product.model_dump(mode="json") for product in flow.products(services())]
    return json_response(200, {"products": products}, cache_seconds=settings().catalogue_cache_seconds)


def _require_iam_caller() -> None:
    require_configured_caller(app.current_event.request_context.raw_event, settings())


def _verified_member(request: LicenceRequest) -> LicenceRequest:
    """An unsigned, badly signed or expired member id is dropped (the licence is still issued) and counted."""
    verified, verdict = flow.with_verified_member(services(), request)
    if verdict is not None and verdict is not Verdict.VALID:
        metrics.add_metric(name="MemberIdDropped", unit=MetricUnit.Count, value=1)
        logger.info("app's miles member id dropped", extra={"reason": verdict.value})
    return verified


def _validated[M: BaseModel](model: type[M]) -> M:
    event = app.current_event
    fields = submitted_fields(event.raw_event, event.headers, max_bytes=settings().max_body_bytes)
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        problems = problems_from(exc.errors(include_input=False, include_url=False))
        raise RequestRejected(422, "validation_failed", "the licence request is not valid", problems) from None


def _outcome(licence: IssuedLicence) -> Response[str]:
    if licence.state is LicenceState.REJECTED:
        metrics.add_metric(name="LicenceRejected", unit=MetricUnit.Count, value=1)
        return error_response(422, "rejected_by_pimenko", licence.message, retryable=False, order_id=licence.order_id)
    metrics.add_metric(name="LicenceIssued", unit=MetricUnit.Count, value=1)
    return json_response(201, {"licence": licence.body()})


# ------------------------------------------------------------------------------------------------ events


class LicenceRequestedEvent(EventBridgeModel):
    detail: dict[str, Any]  # validated as a LicenceRequest below, so a bad detail is recorded, not retried


def handle_licence_requested(event: dict[str, Any], *, requeues: int = 0) -> dict[str, Any]:
    """An order from the shop. A bad one is recorded and acknowledged; one whose turn did not come in time, or that
    Pimenko could not take now, is put on the retry queue with a delay (as an id: requeue.py), up to
    LICENCE_MAX_REQUEUES times; then it raises, so the retry queue hands it to LicenceRetryDLQ (nothing is lost)."""
    try:
        envelope = parse(event=event, model=LicenceRequestedEvent)
        request = _verified_member(LicenceRequest.model_validate(envelope.detail))
        licence = flow.issue(services(), request)
    except (flow.OrderInProgress, PartnerUnavailable, PartnerAuthError) as exc:
        # Re-queued by id rather than raised: Lambda's failure record of an asynchronous invocation carries the whole
        # event (the shop's customer reference, a member id) into LicenceRequestDLQ, while the retry queue and its
        # DLQ carry only the id of the order waiting in LicencesTable. Only when re-queueing itself fails (our own
        # DynamoDB or SQS) does Lambda retry the event, and then dead-letter it.
        from licence_issuance import requeue  # noqa: PLC0415 - only events that failed need the batch code

        if not requeue.can_requeue(services(), requeues):
            raise
        if isinstance(exc, PartnerError):
            logger.warning("licence order re-queued after a partner failure", extra=exc.log_fields())
        requeue.requeue(services(), event, requeues)
        return {"requeued": True, "requeues": requeues + 1}
    except ValidationError as exc:
        return _reject_event(event, problems_from(exc.errors(include_input=False, include_url=False)))
    except flow.CatalogueMismatch as exc:
        return _reject_event(event, exc.problems)
    except flow.OrderConflict:
        problem = FieldProblem("order_id", "reused", "this order id was already used for a different licence request")
        return _reject_event(event, [problem])
    if licence.state is LicenceState.REJECTED:
        metrics.add_metric(name="LicenceRejected", unit=MetricUnit.Count, value=1)
        return {"order_id": licence.order_id, "state": licence.state.value}
    metrics.add_metric(name="LicenceIssued", unit=MetricUnit.Count, value=1)
    return {"order_id": licence.order_id, "state": licence.state.value, "licence_id": licence.licence_id}


def _reject_event(event: dict[str, Any], problems: list[FieldProblem]) -> dict[str, Any]:
    event_id = str(event.get("id") or "unknown")
    collaborators = services()
    problems_found = [p.as_dict() for p in problems]
    collaborators.store.record_rejected_event(event_id, problems=problems_found, now=int(collaborators.now()))
    metrics.add_metric(name="LicenceRequestRejected", unit=MetricUnit.Count, value=1)
    fields = [p.field for p in problems]
    logger.warning("LicenceRequested event rejected", extra={"event_id": event_id, "fields": fields})
    return {"rejected": True, "problems": [p.as_dict() for p in problems]}


@entry_point(SERVICE)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    trigger = trigger_of(event)
    if trigger in (Trigger.EVENT, Trigger.SCHEDULE):
        return handle_licence_requested(event)
    if trigger is Trigger.SQS:
        from licence_issuance import requeue  # noqa: PLC0415 - as lead_intake's retries: queue invocations only

        return dict(requeue.handle_batch(services(), event, context, handle_licence_requested))
    return app.resolve(event, context)


# SnapStart (template.yaml's EnableSnapStart): what to build before the snapshot and renew after restore.
priming.register(lambda_handler, priming.dry_http_request("POST", "/licences"))
