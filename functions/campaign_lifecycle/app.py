"""Campaign lifecycle's Lambda entry point: the HTTP routes fundraisers' pages call."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import quote

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ValidationError

from campaign_lifecycle import SERVICE, creation, errors, management
from campaign_lifecycle.models import DONATION_CODE, ROUTE_NAME, CampaignChanges, CampaignForm, CampaignKey
from campaign_lifecycle.services import services as collaborators
from campaign_lifecycle.settings import settings, validation_context
from hub_core import priming
from hub_core.entry import entry_point, http_resolver
from hub_core.http_api import FieldProblem, Refusal, RequestRejected, json_response, map_refusals, problems_from
from hub_core.observability import logger_for, metrics_for
from hub_core.openapi import answers, form_body
from hub_core.request_body import is_form_post, submitted_fields

logger = logger_for(SERVICE)
metrics = metrics_for(SERVICE)
app = http_resolver(logger)

MAX_BODY_BYTES = 8 * 1024
_DIGITS = re.compile(r"^[0-9]{1,12}$")  # ASCII: int() also reads Arabic-Indic digits
_INTEGER_FIELDS = ("serviceId", "amount")
_LAST_UMBRELLA_SECOND = 2**31 - 1

ServiceId = Annotated[int, Path(gt=0, le=2**31 - 1)]
RouteName = Annotated[str, Path(pattern=ROUTE_NAME.pattern)]
DonationCode = Annotated[str, Path(pattern=DONATION_CODE.pattern)]
# PUT, DELETE and the donations list: `Authorization: Bearer <manageToken>` from the create answer.
CAMPAIGN = "/campaigns/<serviceId>/<route>/<donationCode>"
MANAGE_TOKEN: list[dict[str, list[str]]] = [{"manageToken": []}]
# The read routes take Umbrella's own name and unit (timestampSince, epoch seconds) beside the hub's `since`.
Since = Annotated[
    str | None, Query(max_length=40, description="epoch seconds or an ISO 8601 date-time with its offset")
]
TimestampSince = Annotated[
    str | None, Query(max_length=12, description="epoch seconds, as Umbrella's timestampSince (instead of since)")
]
# A `+` of a query string decodes to a space: "…T10:00:00 01:00" is the offset "+01:00" sent unencoded.
_SPACED_OFFSET = re.compile(r"(?<=\d\d:\d\d)(?P<rest>(?::\d\d(?:\.\d+)?)?) (?P<offset>\d\d(?::?\d\d)?)$")


# ------------------------------------------------------------------------------------------------ the flow's refusals
# One handler per domain error (campaign_lifecycle/errors.py): the only place their HTTP status, error code and
# headers are decided. docs/errors.md explains the pattern.


map_refusals(
    app,
    logger,
    {
        errors.InvalidCampaign: Refusal(
            422, "validation_failed", message="the campaign is not valid",
            problems=lambda exc: [FieldProblem(exc.field, exc.rule, exc.message)],
        ),
        errors.RefusedByUmbrella: Refusal(422, "rejected_by_umbrella", body_fields=lambda _: {"retryable": False}),
        errors.CreationRateLimited: Refusal(
            429, "rate_limited",
            problems=lambda exc: [FieldProblem(exc.field, "rate_limit", exc.message)] if exc.field else [],
            headers=lambda exc: {"Retry-After": str(exc.retry_after)},
            body_fields=lambda exc: {"retryable": True, "retryAfterSeconds": exc.retry_after},
        ),
        errors.CampaignNotFound: Refusal(404, "not_found"),
        errors.ManageTokenMissing: Refusal(
            401, "unauthorized", headers=lambda _: {"WWW-Authenticate": 'Bearer realm="campaigns"'}
        ),
        errors.ManageTokenRefused: Refusal(403, "forbidden"),
        errors.DonationCodeInUse: Refusal(
            409, "donation_code_in_use", problems=lambda exc: [FieldProblem(exc.field, "in_use", exc.message)]
        ),
        errors.CreateInProgress: Refusal(409, "create_in_progress", body_fields=lambda _: {"retryable": True}),
        errors.CampaignStopped: Refusal(409, "campaign_stopped"),
        errors.CampaignChanged: Refusal(409, "campaign_changed"),
    },
)  # fmt: skip


@app.get(
    "/services",
    summary="Umbrella services and their keywords (routes)",
    responses=answers({200: "the services"}, 502, 503),
)
def get_services() -> Response[str]:
    services = [service.model_dump() for service in creation.umbrella_services(collaborators())]
    return json_response(200, {"services": services}, cache_seconds=settings().services_cache_seconds)


@app.post(
    "/campaigns",
    summary="Create a personal SMS donation campaign",
    description=(
        "Answers the campaign. Its manageToken is not in the answer: Umbrella sends it to confirmMsisdn inside the "
        "organisation's confirmation SMS, so only the number's owner can change or stop the campaign."
    ),
    responses=answers({201: "created"}, 400, 409, 413, 415, 429, 502, 503),
    openapi_extensions=form_body(CampaignForm, "the campaign: JSON, or a plain HTML form post"),
)
def post_campaign() -> Response[str]:
    form = _validated(CampaignForm, "the campaign is not valid")
    created = creation.create(collaborators(), form, request_base_url=_request_base_url(), client_ip=_client_ip())
    metrics.add_metric(name="CampaignCreated", unit=MetricUnit.Count, value=1)
    if created.recovered:
        metrics.add_metric(name="CampaignCreateRecovered", unit=MetricUnit.Count, value=1)
    key = created.record.key
    body = {
        "campaign": management.public_view(created.record),
        "message": creation.SENT_BY_SMS_NOTE,
    }
    return json_response(201, body, headers={"Location": _location(key)})


@app.get(
    CAMPAIGN,
    summary="A campaign's public view and collected amount (øre)",
    responses=answers(
        {
            200: "the campaign; `collected.amount`/`count`: donations Umbrella confirmed (null with a note when "
            "unknown); `collected.pending`: callbacks not confirmed yet, never part of the amount"
        },
        404,
    ),
)
def get_campaign(serviceId: ServiceId, route: RouteName, donationCode: DonationCode) -> Response[str]:
    services = collaborators()
    record = management.campaign(services, CampaignKey(service_id=serviceId, route=route, donation_code=donationCode))
    collected = management.collected(services, record)
    body = {
        "campaign": management.public_view(record),
        "collected": collected.as_dict(),
    }
    return json_response(200, body)


@app.put(
    CAMPAIGN,
    summary="Change a campaign",
    security=MANAGE_TOKEN,
    responses=answers({200: "changed"}, 400, 401, 403, 404, 409, 413, 415, 502, 503),
    openapi_extensions=form_body(CampaignChanges, "at least one field to change: JSON, or a form post"),
)
def put_campaign(serviceId: ServiceId, route: RouteName, donationCode: DonationCode) -> Response[str]:
    record = _authorized(serviceId, route, donationCode)
    changes = _validated(CampaignChanges, "the change is not valid")
    updated = management.update(collaborators(), record, changes)
    metrics.add_metric(name="CampaignUpdated", unit=MetricUnit.Count, value=1)
    return json_response(200, {"campaign": management.public_view(updated)})


@app.delete(
    CAMPAIGN,
    summary="Stop a campaign",
    security=MANAGE_TOKEN,
    responses=answers({200: "stopped (also when it already was)"}, 401, 403, 404, 502, 503),
)
def delete_campaign(serviceId: ServiceId, route: RouteName, donationCode: DonationCode) -> Response[str]:
    record = _authorized(serviceId, route, donationCode)
    stopped = management.stop(collaborators(), record)
    metrics.add_metric(name="CampaignStopped", unit=MetricUnit.Count, value=1)
    return json_response(200, {"campaign": management.public_view(stopped)})


@app.get(
    f"{CAMPAIGN}/donations",
    summary="A campaign's donations, without donors' numbers",
    security=MANAGE_TOKEN,
    responses=answers({200: "the donations and their total"}, 401, 403, 404, 502, 503),
)
def get_donations(
    serviceId: ServiceId,
    route: RouteName,
    donationCode: DonationCode,
    since: Since = None,
    timestampSince: TimestampSince = None,
) -> Response[str]:
    record = _authorized(serviceId, route, donationCode)
    moment = _since_either(since, timestampSince)
    donations = management.donations(collaborators(), record, moment)
    body = {
        "donations": [management.donation_view(donation) for donation in donations],
        "count": len(donations),
        "total": sum(donation.amount for donation in donations),
        "since": since,
        "timestampSince": _seconds(moment),
    }
    return json_response(200, body)


@app.get(
    f"{CAMPAIGN}/collected",
    summary="The hub's verified ledger total beside Umbrella's own collected amount (øre)",
    description="`umbrella.amount` is Umbrella's Get Collected Amount, since `since`/`timestampSince` when given; "
    "`ledger` is the hub's total of the donations it verified (all time).",
    security=MANAGE_TOKEN,
    responses=answers({200: "both amounts (`umbrella.amount` null with a note when Umbrella has none)"}, 401, 403,
                      404, 502, 503),
)  # fmt: skip
def get_collected(
    serviceId: ServiceId,
    route: RouteName,
    donationCode: DonationCode,
    since: Since = None,
    timestampSince: TimestampSince = None,
) -> Response[str]:
    record = _authorized(serviceId, route, donationCode)
    moment = _since_either(since, timestampSince)
    ledger = management.collected(collaborators(), record)
    umbrella = management.umbrella_collected(collaborators(), record, moment)
    body = {
        "ledger": {"amount": ledger.amount, "count": ledger.count, "note": ledger.note},
        "umbrella": {"amount": umbrella.amount, "timestampSince": _seconds(moment), "note": umbrella.note},
    }
    return json_response(200, body)


def _validated[M: BaseModel](model: type[M], message: str) -> M:
    """The body against the model and the configured limits; nothing reaches Umbrella before this passes."""
    event = app.current_event
    fields = submitted_fields(event.raw_event, event.headers, max_bytes=MAX_BODY_BYTES)
    if is_form_post(event.headers):
        # A form post carries only strings; whole numbers are what its number inputs send.
        fields = {
            name: int(value) if name in _INTEGER_FIELDS and isinstance(value, str) and _DIGITS.match(value) else value
            for name, value in fields.items()
            if value != ""
        }
    try:
        return model.model_validate(fields, context=validation_context())
    except ValidationError as exc:
        problems = problems_from(exc.errors(include_input=False, include_url=False))
        metrics.add_metric(name="CampaignInvalid", unit=MetricUnit.Count, value=1)
        raise RequestRejected(422, "validation_failed", message, problems) from None


def _authorized(service_id: int, route: str, donation_code: str) -> Any:
    """The campaign of a manage route, once the request's manage token is found to be its own."""
    key = CampaignKey(service_id=service_id, route=route, donation_code=donation_code)
    record = management.campaign(collaborators(), key)
    management.authorize(record, app.current_event.headers.get("authorization"))
    return record


def _since_either(since: str | None, timestamp_since: str | None) -> datetime | None:
    """`since` (the hub's name) or `timestampSince` (Umbrella's: epoch seconds); both at once is a 422."""
    if since not in (None, "") and timestamp_since not in (None, ""):
        problem = FieldProblem("timestampSince", "conflict", "give since or timestampSince, not both")
        raise RequestRejected(422, "validation_failed", problem.message, [problem])
    if timestamp_since not in (None, ""):
        assert timestamp_since is not None
        if not timestamp_since.isascii() or not timestamp_since.isdigit():
            problem = FieldProblem("timestampSince", "timestamp", "must be epoch seconds, e.g. 1528867481")
            raise RequestRejected(422, "validation_failed", problem.message, [problem])
        return _since(timestamp_since, field="timestampSince")
    return _since(since)


def _seconds(moment: datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() // 1)


def _since(value: str | None, *, field: str = "since") -> datetime | None:
    if value is None or value == "":
        return None
    # "%2B" arrives decoded as "+"; a "+" left unencoded arrives as a space; a "%2B" encoded twice stays "%2B".
    value = _SPACED_OFFSET.sub(r"\g<rest>+\g<offset>", value.strip().replace("%2B", "+").replace("%2b", "+"))
    try:
        epoch = value.isascii() and value.isdigit()  # int() also reads Arabic-Indic digits
        moment = datetime.fromtimestamp(int(value), UTC) if epoch else datetime.fromisoformat(value)
    except (ValueError, OverflowError, OSError):
        problem = FieldProblem(field, "timestamp", "must be epoch seconds or an ISO 8601 date-time with its offset")
        raise RequestRejected(422, "validation_failed", problem.message, [problem]) from None
    if moment.tzinfo is None:
        problem = FieldProblem(field, "timestamp", "must carry its UTC offset, e.g. 2026-11-24T10:00:00+00:00")
        raise RequestRejected(422, "validation_failed", problem.message, [problem])
    if not 0 <= moment.timestamp() <= _LAST_UMBRELLA_SECOND:
        problem = FieldProblem(field, "range", "must be between 1970 and 2038 (Umbrella counts seconds in 32 bits)")
        raise RequestRejected(422, "validation_failed", problem.message, [problem])
    return moment


def _request_base_url() -> str:
    """The address this request came in on, as API Gateway reports it: where Umbrella can reach us too.

    API Gateway serves https on 443 only, so a port is kept for plain http alone (the local gateway).
    """
    event = app.current_event
    domain = event.request_context.domain_name
    proto = (event.headers.get("x-forwarded-proto") or "https").split(",")[0].strip().lower()
    if proto != "http":
        return f"https://{domain}"
    port = (event.headers.get("x-forwarded-port") or "").split(",")[0].strip()
    return f"http://{domain}" + (f":{port}" if port.isdigit() and port != "80" else "")


def _client_ip() -> str:
    """The caller's address as API Gateway saw it (not a header the caller could set)."""
    return app.current_event.request_context.http.source_ip or "unknown"


def _location(key: CampaignKey) -> str:
    parts = (str(key.service_id), key.route, key.donation_code)
    return "/campaigns/" + "/".join(quote(part, safe="") for part in parts)


@entry_point(SERVICE)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)


# SnapStart (template.yaml's EnableSnapStart): what to build before the snapshot and renew after restore.
priming.register(lambda_handler, priming.dry_http_request("POST", "/campaigns"))
