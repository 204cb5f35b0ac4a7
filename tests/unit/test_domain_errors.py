"""Each flow's domain errors have one handler each in their app.py, which alone decides status, code and headers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from campaign_lifecycle import app as campaign_app
from campaign_lifecycle import errors as campaign_errors
from donation_ingester import app as ingester_app
from donation_ingester import errors as ingester_errors
from lead_intake import app as lead_app
from lead_intake import flow as lead_flow
from licence_issuance import app as licence_app
from licence_issuance import flow as licence_flow
from partners.mlm import MaxSitesReached


def _leaves(base: type[Exception]) -> set[type[Exception]]:
    found: set[type[Exception]] = set()
    for sub in base.__subclasses__():
        found |= _leaves(sub) or {sub}
    return found


CAMPAIGN = {
    campaign_errors.InvalidCampaign("route", "one_of", "must be one of this service's routes: hjerte"): (
        422, "validation_failed", {}),
    campaign_errors.RefusedByUmbrella("Umbrella says no"): (422, "rejected_by_umbrella", {}),
    campaign_errors.CreationRateLimited("too many", retry_after=42, field="confirmMsisdn"): (
        429, "rate_limited", {"Retry-After": "42"}),
    campaign_errors.CampaignNotFound(): (404, "not_found", {}),
    campaign_errors.ManageTokenMissing(): (401, "unauthorized", {"WWW-Authenticate": 'Bearer realm="campaigns"'}),
    campaign_errors.ManageTokenRefused(): (403, "forbidden", {}),
    campaign_errors.DonationCodeInUse(): (409, "donation_code_in_use", {}),
    campaign_errors.CreateInProgress(): (409, "create_in_progress", {}),
    campaign_errors.CampaignStopped(): (409, "campaign_stopped", {}),
    campaign_errors.CampaignChanged(): (409, "campaign_changed", {}),
}  # fmt: skip
INGESTER = {
    ingester_errors.CallbackTokenMissing(): (401, "unauthorized", {}),
    ingester_errors.CallbackTokenRefused(): (403, "forbidden", {}),
    ingester_errors.CallbackRevoked(): (403, "callback_revoked", {}),
    ingester_errors.InvalidDonation([{"loc": ("body", "amount"), "type": "missing", "msg": "Field required"}]): (
        400, "invalid_donation", {}),
    ingester_errors.PublishFailed(): (503, "event_not_published", {"Retry-After": "5"}),
}  # fmt: skip
# The flows without an errors module of their own: the classes their app.py maps.
LEAD = {
    lead_flow.SubmissionInProgress(): (409, "submission_in_progress", {"Retry-After": "2"}),
    lead_flow.IdempotencyKeyReused(): (422, "idempotency_key_reused", {}),
}
LICENCE = {
    licence_flow.OrderInProgress(): (409, "order_in_progress", {"Retry-After": "2"}),
    licence_flow.OrderConflict("shop-order-1"): (409, "order_conflict", {}),
    licence_flow.CatalogueMismatch([]): (422, "validation_failed", {}),
    licence_flow.MaxSitesOnRecord(3): (409, "max_sites_reached", {}),
    MaxSitesReached("mlm", "no more sites"): (409, "max_sites_reached", {}),
}
CASES = (
    [(campaign_app.app, exc, expected) for exc, expected in CAMPAIGN.items()]
    + [(ingester_app.app, exc, expected) for exc, expected in INGESTER.items()]
    + [(lead_app.app, exc, expected) for exc, expected in LEAD.items()]
    + [(licence_app.app, exc, expected) for exc, expected in LICENCE.items()]
)


@pytest.mark.parametrize(
    ("app", "base", "cases"),
    [
        (campaign_app.app, campaign_errors.CampaignError, CAMPAIGN),
        (ingester_app.app, ingester_errors.IngesterError, INGESTER),
    ],
)
def test_every_domain_error_has_its_own_handler(app: Any, base: type[Exception], cases: dict[Exception, Any]):
    registered = app.exception_handler_manager.get_registered_handlers()
    leaves = _leaves(base)
    assert leaves == {type(exc) for exc in cases}, "a domain error without a case here"
    missing = sorted(cls.__name__ for cls in leaves if cls not in registered)
    assert not missing, f"answered by the catch-all 500 handler: {missing}"


@pytest.mark.parametrize(("app", "exc", "expected"), CASES, ids=lambda value: type(value).__name__)
def test_a_domain_error_is_answered_with_its_status_code_and_headers(app: Any, exc: Exception, expected: Any):
    status, error, headers = expected
    response = app.exception_handler_manager.lookup_exception_handler(type(exc))(exc)
    body = json.loads(response.body)
    assert response.status_code == status
    assert body["error"] == error
    assert body["message"]
    for name, value in headers.items():
        assert response.headers[name] == value
