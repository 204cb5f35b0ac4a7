"""Every route with a body, through its handler on the local stack, given the three inputs that once slipped through:
a 5,000-digit integer (a 500), a NUL (stored), and Arabic-Indic digits where a number belongs (stored, then missed
by erasure). Each must be a 4xx JSON answer naming the field, with nothing stored or sent to a partner.

The routes come from template.yaml: a new route with a body and no case here fails the coverage test."""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from hub_core.tokens import token_hash
from tests.conftest import load_event
from tests.integration.conftest import CANARY_MSISDN, lead_fields, response_json

HUGE = "9" * 5000  # past Python's int conversion limit (4,300 digits): the parser raised ValueError, a 500
LONG = "9" * 1000  # fits every route's body limit, so the parser itself must refuse it
ARABIC_INDIC = "\u0660\u0666\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668"  # 0612345678
ARABIC_DK = "\u0664\u0665\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668"  # 4512345678
ARABIC_PORT = "https://moodle.example.org:\u0668\u0660\u0668\u0660/"
ARABIC_AMOUNT = "\u0665\u0660\u0660\u0660"  # 5000
BODY_METHODS = {"POST", "PUT", "PATCH"}
# A route that refuses every request before it reads a body: Umbrella's callback without its token (401).
REFUSED_UNREAD = {"POST /donations/callback/{serviceId}/{route}/{donationCode}"}


@dataclass(frozen=True)
class Case:
    """How to reach one route past its authentication, with a valid body to spoil one field of."""

    function: str
    event: Callable[[Any, dict[str, Any]], dict[str, Any]]
    valid: Callable[[], dict[str, Any]]
    huge_field: str
    nul_field: str
    digits_field: str
    digits_value: str = ARABIC_INDIC


def with_body(event: dict[str, Any], body: str) -> dict[str, Any]:
    event["body"] = body
    event["isBase64Encoded"] = False
    event["headers"]["content-type"] = "application/json"
    return event


def campaign_fields() -> dict[str, Any]:
    fields = json.loads(load_event("campaign_lifecycle/post_campaign.json")["body"])
    return fields | {"donationCode": f"h{uuid.uuid4().hex[:12]}", "confirmMsisdn": CANARY_MSISDN}


def created_campaign(stack) -> dict[str, Any]:
    """A campaign at Umbrella's sandbox and in our table, whose manage token the test sets itself."""
    fields = campaign_fields()
    event = load_event("campaign_lifecycle/post_campaign.json")
    event["body"] = json.dumps(fields)
    response = stack.invoke("CampaignLifecycleFunction", event)
    assert response["statusCode"] == 201, response["body"]
    token = secrets.token_urlsafe(32)
    ref = f"{fields['serviceId']}/{fields['route']}/{fields['donationCode']}"
    stack.boto3_client("dynamodb").update_item(
        TableName=stack.physical("CampaignsTable"),
        Key={"campaign_ref": {"S": ref}},
        UpdateExpression="SET manage_token_hash = :hash",
        ExpressionAttributeValues={":hash": {"S": token_hash(token)}},
    )
    return fields | {"manage_token": token}


def campaign_path(event: dict[str, Any], fields: dict[str, Any], prefix: str, suffix: str = "") -> dict[str, Any]:
    ref = f"{fields['serviceId']}/{fields['route']}/{fields['donationCode']}"
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"{prefix}/{ref}{suffix}"
    event["pathParameters"] = {
        "serviceId": str(fields["serviceId"]),
        "route": fields["route"],
        "donationCode": fields["donationCode"],
    }
    return event


def put_event(stack, umbrella) -> dict[str, Any]:
    fields = created_campaign(stack)
    event = campaign_path(load_event("campaign_lifecycle/put_campaign.json"), fields, "/campaigns")
    event["headers"]["authorization"] = f"Bearer {fields['manage_token']}"
    return event


def callback_event(stack, umbrella) -> dict[str, Any]:
    """The callback URL the lifecycle gave Umbrella for a new campaign, as Umbrella would post to it."""
    fields = created_campaign(stack)
    [campaign] = [c for c in umbrella.campaigns if c["donationCode"] == fields["donationCode"]]
    token = campaign["callbackUrl"].rsplit("/", 1)[1]
    event = campaign_path(
        load_event("donation_ingester/callback_post_json.json"), fields, "/donations/callback", f"/{token}"
    )
    event["pathParameters"]["token"] = token
    return event


def fixed(name: str) -> Callable[[Any, Any], dict[str, Any]]:
    return lambda stack, umbrella: load_event(name)


def body_of(name: str) -> Callable[[], dict[str, Any]]:
    return lambda: json.loads(load_event(name)["body"])


CASES: dict[str, Case] = {
    "POST /leads": Case(
        "LeadIntakeFunction", fixed("lead_intake/post_valid.json"), lead_fields,
        huge_field="project_total_budget", nul_field="lastname", digits_field="phone",
    ),
    "POST /campaigns": Case(
        "CampaignLifecycleFunction", fixed("campaign_lifecycle/post_campaign.json"), campaign_fields,
        huge_field="amount", nul_field="route", digits_field="confirmMsisdn", digits_value=ARABIC_DK,
    ),
    "PUT /campaigns/{serviceId}/{route}/{donationCode}": Case(
        "CampaignLifecycleFunction", put_event, lambda: {"amount": 7500},
        huge_field="amount", nul_field="confirmMsisdn", digits_field="confirmMsisdn", digits_value=ARABIC_DK,
    ),
    "POST /donations/callback/{serviceId}/{route}/{donationCode}/{token}": Case(
        "DonationIngesterFunction", callback_event,
        lambda: {"messageKey": f"umb-{uuid.uuid4().hex}", "amount": 5000, "msisdn": CANARY_MSISDN},
        huge_field="amount", nul_field="messageKey", digits_field="amount", digits_value=ARABIC_AMOUNT,
    ),
    "POST /licences": Case(
        "LicenceIssuanceFunction", fixed("licence_issuance/post_licence.json"),
        lambda: body_of("licence_issuance/post_licence.json")() | {"order_id": f"hostile-{uuid.uuid4().hex[:12]}"},
        huge_field="product_id", nul_field="customer_reference", digits_field="url",
        digits_value=ARABIC_PORT,
    ),
    "POST /licences/{key}/sites": Case(
        "LicenceIssuanceFunction", fixed("licence_issuance/post_site.json"), body_of("licence_issuance/post_site.json"),
        huge_field="url", nul_field="url", digits_field="url", digits_value=ARABIC_PORT,
    ),
    "POST /erasure": Case(
        "ErasureFunction", fixed("erasure/post_erasure.json"), lambda: {"msisdn": CANARY_MSISDN},
        huge_field="msisdn", nul_field="msisdn", digits_field="msisdn",
    ),
}  # fmt: skip


def spoil(case: Case, kind: str) -> tuple[str, str]:
    """The valid body as JSON text with one field spoiled, and that field's name."""
    fields = case.valid()
    if kind in ("huge", "long"):
        # A JSON number literal: json.dumps cannot write one this long (Python refuses the int).
        fields[case.huge_field] = "@NUMBER@"
        return json.dumps(fields).replace('"@NUMBER@"', HUGE if kind == "huge" else LONG), case.huge_field
    if kind == "nul":
        fields[case.nul_field] = f"{fields.get(case.nul_field) or 'x'}\x00"
        return json.dumps(fields), case.nul_field
    fields[case.digits_field] = case.digits_value
    return json.dumps(fields, ensure_ascii=False), case.digits_field


def test_every_route_with_a_body_has_a_case(stack):
    routes = {route.route_key for route in stack.template.http_routes if route.method in BODY_METHODS}
    assert routes == set(CASES) | REFUSED_UNREAD


@pytest.mark.parametrize("kind", ["huge", "long", "nul", "digits"])
@pytest.mark.parametrize("route_key", sorted(CASES))
def test_a_hostile_body_is_a_4xx_naming_the_field(stack, umbrella, miimosa, mlm, route_key, kind):
    case = CASES[route_key]
    event = case.event(stack, umbrella)
    umbrella.clear_requests()
    miimosa.clear_requests()
    mlm.clear_requests()
    body, field = spoil(case, kind)

    response = stack.invoke(case.function, with_body(event, body))

    assert response["headers"]["Content-Type"].startswith("application/json")
    answer = response_json(response)
    assert isinstance(answer["error"], str)
    if response["statusCode"] == 413:
        # A route whose body limit is below 5,000 bytes: refused for its size before parsing ("long" is parsed).
        assert kind == "huge"
        assert len(body.encode()) > 4096
    else:
        assert response["statusCode"] in (400, 422), response["body"]
        assert field in {problem["field"] for problem in answer["problems"]}, answer
    # Refused before any partner heard of it.
    assert not miimosa.requests
    assert not mlm.requests
    assert not [r for r in umbrella.requests if r.method != "GET"]


def test_a_valid_body_passes_each_case_s_route(stack, umbrella, miimosa, mlm):
    """The cases' valid bodies really are valid: the spoiled field, not the rest, is what each test refuses."""
    for route_key, case in CASES.items():
        if route_key == "POST /licences/{key}/sites":
            continue  # its event file names a licence this stack never issued: a 404 after validation
        event = with_body(case.event(stack, umbrella), json.dumps(case.valid()))
        response = stack.invoke(case.function, event)
        assert response["statusCode"] < 400, (route_key, response["body"])


@pytest.mark.parametrize("route_key", sorted(REFUSED_UNREAD))
def test_a_route_that_reads_no_body_refuses_a_hostile_one_as_it_refuses_any(stack, umbrella, route_key):
    fields = created_campaign(stack)
    event = campaign_path(load_event("donation_ingester/callback_post_json.json"), fields, "/donations/callback")
    event["routeKey"] = event["requestContext"]["routeKey"] = route_key
    event["pathParameters"].pop("token", None)
    body = '{"amount": ' + HUGE + ', "messageKey": "k\\u0000"}'

    response = stack.invoke("DonationIngesterFunction", with_body(event, body))

    assert response["statusCode"] == 401, response["body"]
    assert response_json(response)["error"]
