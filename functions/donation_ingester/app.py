"""Donation ingester's Lambda entry point: Umbrella's callbacks (HTTP), the fold queue (SQS) and reconciliation
(the schedule, or a direct invoke `{"reconcile": {"campaigns": [...]}}` from the operators' CLI)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.utilities.typing import LambdaContext

from donation_ingester import SERVICE, callback, errors, fold, reconcile
from donation_ingester.models import CallbackDonation
from donation_ingester.services import services
from hub_core import priming
from hub_core.campaigns import CampaignKey
from hub_core.entry import entry_point, http_resolver
from hub_core.http_api import Refusal, json_response, map_refusals, problems_from
from hub_core.observability import logger_for, metrics_for
from hub_core.openapi import form_body
from hub_core.request_body import submitted_fields
from hub_core.triggers import Trigger, trigger_of

logger = logger_for(SERVICE)
metrics = metrics_for(SERVICE)
app = http_resolver(logger)

MAX_BODY_BYTES = 8 * 1024
CALLBACK = "/donations/callback/<serviceId>/<route>/<donationCode>"


# ------------------------------------------------------------------------------------------------ the flow's refusals
# One handler per domain error (donation_ingester/errors.py): the only place their HTTP status, error code and
# headers are decided (docs/errors.md).


map_refusals(
    app,
    logger,
    {
        errors.CallbackTokenMissing: Refusal(401, "unauthorized"),
        errors.CallbackTokenRefused: Refusal(403, "forbidden"),
        errors.CallbackRevoked: Refusal(403, "callback_revoked"),
        errors.InvalidDonation: Refusal(400, "invalid_donation", problems=lambda exc: problems_from(exc.errors)),
        # Umbrella repeats a callback that is not answered 2xx; the repeat publishes what this one could not.
        errors.PublishFailed: Refusal(
            503,
            "event_not_published",
            headers=lambda _: {"Retry-After": "5"},
            body_fields=lambda _: {"retryable": True},
        ),
    },
)


# POST documents its body so that generated clients (and the API fuzz) send donations; GET takes the same fields as
# its query string, which Powertools cannot describe without validating it too. Powertools' validation is off on
# these routes: their only parameters are path strings (nothing to refuse) and the flow validates the payload itself
# (CallbackDonation); at 1,000 callbacks a second the two validation middlewares were a sixth of the hub's own CPU.
# The document is unchanged (Powertools documents by the resolver's setting).
@app.get(f"{CALLBACK}/<token>", enable_validation=False)
@app.post(
    f"{CALLBACK}/<token>",
    openapi_extensions=form_body(CallbackDonation, "the donation, as Umbrella's webhook sends it: JSON or a form post"),
    enable_validation=False,
)
def donation_callback(serviceId: str, route: str, donationCode: str, token: str) -> Response[str]:
    collaborators = services()
    campaign = CampaignKey.from_path(serviceId, route, donationCode)
    callback.verify_token(collaborators, campaign, token)
    assert campaign is not None  # verify_token refuses a path that names no campaign
    donation = callback.parse_donation(collaborators, _payload_fields())
    received = callback.receive(collaborators, campaign, donation)
    body: dict[str, Any] = {"status": received.status, "messageKey": received.message_key}
    if received.flags:
        body["flags"] = received.flags
    return json_response(200, body)


@app.route(CALLBACK, method=["GET", "POST"], enable_validation=False)
def donation_callback_without_token(serviceId: str, route: str, donationCode: str) -> Response[str]:
    callback.verify_token(services(), CampaignKey.from_path(serviceId, route, donationCode), None)
    raise AssertionError("verify_token refuses a missing token")  # pragma: no cover


def _payload_fields() -> dict[str, Any]:
    """Umbrella's webhook may send the donation as a GET query, a form post or JSON: all three are read."""
    event = app.current_event
    fields: dict[str, Any] = dict(event.query_string_parameters or {})
    if event.request_context.http.method == "POST" and event.body:
        fields |= submitted_fields(event.raw_event, event.headers, max_bytes=MAX_BODY_BYTES)
    return fields


@entry_point(SERVICE)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    trigger = trigger_of(event)
    if trigger is Trigger.HTTP:
        return app.resolve(event, context)
    if trigger is Trigger.SQS:
        from hub_core import batches  # noqa: PLC0415 - queue invocations only: the callback's cold start does without

        report = fold.fold_batch(services(), event["Records"])
        failed = set(report.failed_message_ids)
        return dict(batches.planned(event, context, lambda message_id: "not folded" if message_id in failed else None))
    if trigger is Trigger.SCHEDULE:
        return reconcile.reconcile_all(services(), context.get_remaining_time_in_millis)
    request = event.get("reconcile")
    if isinstance(request, dict):
        campaigns = request.get("campaigns")
        if campaigns is None:
            return reconcile.reconcile_all(services(), context.get_remaining_time_in_millis)
        if isinstance(campaigns, list) and all(isinstance(ref, str) and ref.count("/") == 2 for ref in campaigns):
            return reconcile.reconcile_refs(services(), campaigns)
    raise ValueError(
        "unrecognised event: expected an HTTP API request, an SQS batch, a Scheduled Event or "
        '{"reconcile": {"campaigns": ["<serviceId>/<route>/<donationCode>", ...]}}'
    )


# SnapStart (template.yaml's EnableSnapStart): what to build before the snapshot and renew after restore.
priming.register(lambda_handler, priming.dry_callback())
