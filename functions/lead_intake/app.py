"""Lead intake's Lambda entry point: HTTP routes for the website and the retry-queue consumer."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import ValidationError

from hub_core import priming
from hub_core.entry import entry_point, http_resolver
from hub_core.http_api import FieldProblem, Refusal, RequestRejected, json_response, map_refusals, problems_from
from hub_core.member_signature import Verdict
from hub_core.observability import logger_for, metrics_for
from hub_core.openapi import answers, form_body
from hub_core.request_body import submitted_fields
from hub_core.text import SINGLE_LINE_PATTERN
from hub_core.triggers import Trigger, trigger_of
from lead_intake import SERVICE, flow
from lead_intake.models import LeadForm, LeadOutcome, LeadStatus, LeadSubmission
from lead_intake.services import services
from lead_intake.settings import settings
from partners.miimosa import Category, CollectType, ProjectOrder

logger = logger_for(SERVICE)
metrics = metrics_for(SERVICE)
app = http_resolver(logger)

_IDEMPOTENCY_KEY = re.compile(r"^[A-Za-z0-9._:\-]{8,128}$")


_KEY_REUSED = FieldProblem("Idempotency-Key", "reused", "this key was already used for a different lead")
map_refusals(
    app,
    logger,
    {
        flow.SubmissionInProgress: Refusal(
            409, "submission_in_progress", message="the same lead is being submitted right now; wait for its answer",
            headers=lambda _: {"Retry-After": "2"},
        ),
        flow.IdempotencyKeyReused: Refusal(
            422, "idempotency_key_reused", message=_KEY_REUSED.message, problems=lambda _: [_KEY_REUSED]
        ),
    },
)  # fmt: skip


@app.post(
    "/leads",
    summary="Submit a lead for MiiMOSA",
    description="Stored, then forwarded to MiiMOSA; when MiiMOSA is unavailable it is accepted (202) and forwarded "
    "later. A double submit (same Idempotency-Key, or the same lead within 15 minutes) gets the first answer.",
    responses=answers(
        {201: "forwarded to MiiMOSA", 202: "accepted: stored and being forwarded to MiiMOSA"}, 400, 409, 413, 415
    ),
    openapi_extensions=form_body(LeadForm, "a lead: JSON, or a plain HTML form post")
    | {
        "parameters": [
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "pattern": _IDEMPOTENCY_KEY.pattern},
            }
        ]
    },
)
def post_lead() -> Response[str]:
    fields = _submitted_fields()
    collaborators = services()
    try:
        lead, is_bot = flow.lead_from_fields(collaborators, fields)
    except ValidationError as exc:
        problems = problems_from(exc.errors(include_input=False, include_url=False))
        metrics.add_metric(name="LeadInvalid", unit=MetricUnit.Count, value=1)
        raise RequestRejected(422, "validation_failed", "the lead is not valid", problems) from None
    if is_bot or lead is None:
        metrics.add_metric(name="HoneypotTriggered", unit=MetricUnit.Count, value=1)
        logger.info("honeypot filled; nothing stored or forwarded")
        decoy = LeadOutcome(lead_id=str(uuid.uuid4()), status=LeadStatus.FORWARDED, message=flow.FORWARDED_MESSAGE)
        return _outcome_response(decoy)

    lead, verdict = flow.with_verified_member(collaborators, lead)
    if verdict is not None and verdict is not Verdict.VALID:
        # Dropped, not refused: the lead still goes to MiiMOSA, it just earns no one points.
        metrics.add_metric(name="MemberIdDropped", unit=MetricUnit.Count, value=1)
        logger.info("app's miles member id dropped", extra={"reason": verdict.value})
    fingerprint = lead.fingerprint()
    key = app.current_event.headers.get("idempotency-key")
    if key is not None and not _IDEMPOTENCY_KEY.match(key):
        problem = FieldProblem("Idempotency-Key", "pattern", "must be 8 to 128 letters, digits or . _ : -")
        raise RequestRejected(400, "validation_failed", problem.message, [problem])
    dedup_key = f"key:{key}" if key else f"body:{fingerprint}"
    outcome = flow.submit(collaborators, LeadSubmission(dedup_key=dedup_key, fingerprint=fingerprint, lead=lead))
    metrics.add_metric(name=f"Lead{outcome.status.value.capitalize()}", unit=MetricUnit.Count, value=1)
    return _outcome_response(outcome)


@app.get("/projects", summary="MiiMOSA projects", responses=answers({200: "the projects"}, 502, 503))
def get_projects(
    order: Annotated[ProjectOrder | None, Query()] = None,
    category: Annotated[Category | None, Query()] = None,
    type: Annotated[CollectType | None, Query()] = None,
    region: Annotated[str | None, Query(pattern=r"^[0-9A-Za-z]{1,3}$")] = None,
    keyword: Annotated[str | None, Query(min_length=1, max_length=100, pattern=SINGLE_LINE_PATTERN)] = None,
) -> Response[str]:
    page = flow.list_projects(
        services(), {"order": order, "category": category, "type": type, "region": region, "keyword": keyword}
    )
    body = {"projects": page.projects, "count": len(page.projects), "truncated": page.truncated}
    return json_response(200, body, cache_seconds=settings().projects_cache_seconds)


# The path parameter keeps the template's name ({id}) so the OpenAPI document and the HTTP API agree.
@app.get("/projects/<id>", summary="One MiiMOSA project", responses=answers({200: "the project"}, 404, 502, 503))
def get_project(id: Annotated[int, Path(gt=0, le=2**31)]) -> Response[str]:
    return json_response(200, flow.get_project(services(), id), cache_seconds=settings().projects_cache_seconds)


def _submitted_fields() -> dict[str, Any]:
    """The request body as fields, after the size and content-type checks; nothing is stored before this."""
    event = app.current_event
    return submitted_fields(event.raw_event, event.headers, max_bytes=settings().max_body_bytes)


# How a submitter hears each outcome; a lead still on its way (forwarding) is accepted, like a queued one.
_OUTCOME_STATUS = {LeadStatus.FORWARDED: 201, LeadStatus.QUEUED: 202, LeadStatus.REJECTED: 422}


def _outcome_response(outcome: LeadOutcome) -> Response[str]:
    return json_response(_OUTCOME_STATUS.get(outcome.status, 202), outcome.body())


@entry_point(SERVICE)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> Any:
    if trigger_of(event) is Trigger.SQS:
        # Loaded on the queue's first invocation only: the form's cold start does without the batch utility.
        from lead_intake import retries  # noqa: PLC0415

        return retries.handle(event, context)
    return app.resolve(event, context)


# SnapStart (template.yaml's EnableSnapStart): what to build before the snapshot and renew after restore.
priming.register(lambda_handler, priming.dry_http_request("POST", "/leads"))
