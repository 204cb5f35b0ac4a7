"""Campaign lifecycle through its handler: the real events, moto from the template, the Umbrella sandbox."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode, urlsplit

import pytest
from botocore.exceptions import ClientError

from campaign_lifecycle import creation
from campaign_lifecycle.errors import CreateInProgress, DonationCodeInUse
from campaign_lifecycle.models import CampaignForm
from campaign_lifecycle.services import services
from campaign_lifecycle.settings import validation_context
from hub_core.tokens import callback_token_hash
from tests.conftest import load_event, manage_token_from_sms, member_signature
from tests.integration.conftest import CANARY_MSISDN, UMBRELLA_KEY, response_json

FUNCTION = "CampaignLifecycleFunction"


def invoke(stack, event):
    return stack.invoke(FUNCTION, event)


def unique_code() -> str:
    return f"c{uuid.uuid4().hex[:10]}"


def campaign_fields(**changes: Any) -> dict[str, Any]:
    fields = {
        "serviceId": 1,
        "route": "hjerte",
        "donationCode": unique_code(),
        "amount": 5000,
        "campaignName": "Annas løb",
        "confirmMsisdn": CANARY_MSISDN,
    }
    fields.update(changes)
    return {key: value for key, value in fields.items() if value is not None}


def post_event(fields: Any, *, content_type: str = "application/json") -> dict[str, Any]:
    event = load_event("campaign_lifecycle/post_campaign.json")
    event["body"] = fields if isinstance(fields, str) else json.dumps(fields)
    event["headers"]["content-type"] = content_type
    return event


def campaign_event(name: str, fields: dict[str, Any], token: str | None = None, **extra: Any) -> dict[str, Any]:
    """One of the per-campaign event files, pointed at the campaign of `fields`, with `token` (or none)."""
    event = load_event(f"campaign_lifecycle/{name}")
    code = fields["donationCode"]
    parameters = {"serviceId": str(fields["serviceId"]), "route": fields["route"], "donationCode": code}
    event["pathParameters"] = parameters
    path = event["rawPath"].replace("/1/hjerte/anna50", f"/{fields['serviceId']}/{fields['route']}/{code}")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["headers"].pop("authorization", None)
    if token is not None:
        event["headers"]["authorization"] = f"Bearer {token}"
    if "body" in extra:
        event["body"] = json.dumps(extra["body"])
    if "query" in extra:
        event["rawQueryString"] = urlencode(extra["query"])
        event["queryStringParameters"] = extra["query"]
    return event


def create(stack, **changes: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create a campaign; the body answered, with the manageToken its creator found in the confirm SMS.

    A member id is signed as the organisation's site would sign it, unless the test gives a signature itself.
    """
    if changes.get("appsMilesUserId") and "appsMilesSignature" not in changes:
        changes["appsMilesSignature"] = member_signature(stack, changes["appsMilesUserId"])
    fields = campaign_fields(**changes)
    response = invoke(stack, post_event(fields))
    assert response["statusCode"] == 201, response["body"]
    body = response_json(response)
    assert "manageToken" not in body
    return fields, body | {"manageToken": manage_token_from_sms(stack.sandboxes["umbrella"], fields["confirmMsisdn"])}


def campaign_item(stack, fields):
    ref = f"{fields['serviceId']}/{fields['route']}/{fields['donationCode']}"
    item = stack.boto3_client("dynamodb").get_item(
        TableName=stack.physical("CampaignsTable"), Key={"campaign_ref": {"S": ref}}, ConsistentRead=True
    )
    return item.get("Item")


def at_umbrella(umbrella, fields):
    return [
        campaign
        for campaign in umbrella.campaigns
        if campaign["donationCode"] == fields["donationCode"] and campaign["route"] == fields["route"]
    ]


def posts(umbrella):
    return [request for request in umbrella.requests if request.method == "POST"]


def problems(response):
    return {(p["field"], p["rule"]) for p in response_json(response).get("problems", [])}


# ---------------------------------------------------------------- services


def test_the_services_event_file_lists_services_and_routes(stack, umbrella):
    response = invoke(stack, load_event("campaign_lifecycle/get_services.json"))
    assert response["statusCode"] == 200, response["body"]
    services = response_json(response)["services"]
    assert {"id": 1, "name": "donation service", "routes": ["abc123", "hjerte"]} in services
    assert response["headers"]["Cache-Control"].startswith("public, max-age=")


def test_services_unavailable_is_a_503_that_says_retry(stack, umbrella):
    umbrella.faults.add("status", status=503)
    response = invoke(stack, load_event("campaign_lifecycle/get_services.json"))
    assert response["statusCode"] == 503
    assert response_json(response)["retryable"] is True
    assert "Retry-After" in response["headers"]


# ---------------------------------------------------------------- create


def test_the_post_event_file_creates_an_active_campaign_with_our_callback(stack, umbrella):
    response = invoke(stack, load_event("campaign_lifecycle/post_campaign.json"))
    body = response_json(response)
    assert response["statusCode"] == 201, body
    assert body["campaign"]["state"] == "active"
    assert response["headers"]["Location"] == "/campaigns/1/hjerte/anna50"
    (created,) = at_umbrella(umbrella, {"route": "hjerte", "donationCode": "anna50"})
    callback = urlsplit(created["callbackUrl"])
    # The event came in on the API's own domain, so that is where Umbrella must call back, over https.
    assert (callback.scheme, callback.netloc) == ("https", "abc123.execute-api.eu-west-1.amazonaws.com")
    prefix, token = callback.path.rsplit("/", 1)
    assert prefix == "/donations/callback/1/hjerte/anna50"
    # Random, and only its hash is on the campaign: the ingester compares a callback's token with it.
    item = campaign_item(stack, {"serviceId": 1, "route": "hjerte", "donationCode": "anna50"})
    assert item["callback_token_hash"]["S"] == callback_token_hash(token)
    assert token not in json.dumps(item)
    other, _ = create(stack)
    other_token = at_umbrella(umbrella, other)[0]["callbackUrl"].rsplit("/", 1)[1]
    assert other_token != token


def test_a_created_campaign_stores_only_the_hash_of_its_manage_token(stack, umbrella):
    fields, body = create(stack, appsMilesUserId="am-77")
    item = campaign_item(stack, fields)
    token = body["manageToken"]
    assert len(token) >= 40
    assert token not in json.dumps(item)
    assert item["state"]["S"] == "active"
    assert item["apps_miles_user_id"]["S"] == "am-77"
    assert [entry["M"]["action"]["S"] for entry in item["history"]["L"]] == ["create_requested", "created"]
    # What anyone may read names neither the creator's number nor their loyalty id.
    assert CANARY_MSISDN not in json.dumps(body["campaign"])
    assert "am-77" not in json.dumps(body["campaign"])


def test_the_form_encoded_event_file_creates_a_campaign(stack, umbrella):
    response = invoke(stack, load_event("campaign_lifecycle/post_campaign_form.json"))
    assert response["statusCode"] == 201, response["body"]
    (created,) = at_umbrella(umbrella, {"route": "hjerte", "donationCode": "bo25"})
    assert created["amount"] == 2500


def test_the_invalid_event_file_names_each_field_and_rule(stack, umbrella):
    response = invoke(stack, load_event("campaign_lifecycle/post_campaign_invalid.json"))
    assert response["statusCode"] == 422
    assert problems(response) >= {
        ("donationCode", "pattern"),
        ("amount", "integer"),
        ("answerMessage", "organisation_text"),
        ("campaignName", "letters_only"),
        ("confirmMsisdn", "msisdn_format"),
        ("confirmText", "organisation_text"),
        ("colour", "unknown_field"),
    }
    assert umbrella.requests == []


def test_the_sms_texts_are_always_the_organisations_templates(stack, umbrella):
    fields, body = create(stack, campaignName="Annas løb, for børn")
    (made,) = at_umbrella(umbrella, fields)
    token = body["manageToken"]
    assert (
        made["confirmText"]
        == f"Indsamlingen Annas løb, for børn er oprettet. Din kode til at ændre eller stoppe den: {token}"
    )
    assert made["answerMessage"] == "Tak for din støtte til Annas løb, for børn!"
    assert body["campaign"]["answerMessage"] == made["answerMessage"]
    # The confirm SMS went to the creator's number, and the token it holds is the one that manages the campaign.
    assert umbrella.sent_sms(CANARY_MSISDN)[-1] == {"to": CANARY_MSISDN, "kind": "confirm", "text": made["confirmText"]}
    assert invoke(stack, campaign_event("put_campaign.json", fields, token))["statusCode"] == 200
    # Our table keeps the confirm text with the token masked: the token itself only as its hash.
    assert token not in json.dumps(campaign_item(stack, fields))
    # A donor's SMS is the organisation's answer too.
    umbrella.donate(1, fields["route"], fields["donationCode"], msisdn="4587654321", deliver=False)
    assert umbrella.sent_sms("4587654321")[-1]["text"] == "Tak for din støtte til Annas løb, for børn!"


def test_without_a_name_the_texts_use_the_donation_code(stack, umbrella):
    fields, _ = create(stack, campaignName=None)
    assert at_umbrella(umbrella, fields)[0]["answerMessage"] == f"Tak for din støtte til {fields['donationCode']}!"


def test_the_templates_come_from_settings(stack, umbrella):
    fields = campaign_fields(amount=2550)
    response = invoke_with_env(
        stack, post_event(fields),
        CONFIRM_TEXT_TEMPLATE="{keyword} {code}: {amount} kr. Kode {token}", ANSWER_MESSAGE_TEMPLATE="Tak, {name}",
    )  # fmt: skip
    assert response["statusCode"] == 201, response["body"]
    (made,) = at_umbrella(umbrella, fields)
    token = manage_token_from_sms(umbrella, CANARY_MSISDN)
    assert made["confirmText"] == f"hjerte {fields['donationCode']}: 25,50 kr. Kode {token}"
    assert made["answerMessage"] == "Tak, Annas løb"


@pytest.mark.parametrize(
    "template",
    ["Oprettet, uden kode", "Kode {token} {name.__class__}", "Kode {token!r}", "Kode {token", "{url} {token}"],
)
def test_a_confirm_template_without_the_token_or_with_unsafe_fields_is_a_configuration_error(stack, umbrella, template):
    response = invoke_with_env(stack, post_event(campaign_fields()), CONFIRM_TEXT_TEMPLATE=template)
    assert response["statusCode"] == 500
    assert posts(umbrella) == []


def test_an_unknown_service_or_route_is_refused_from_the_cached_list(stack, umbrella):
    unknown_service = invoke(stack, post_event(campaign_fields(serviceId=99)))
    assert unknown_service.get("statusCode") == 422
    assert ("serviceId", "unknown_service") in problems(unknown_service)
    foreign_route = invoke(stack, post_event(campaign_fields(serviceId=2, route="hjerte")))
    assert ("route", "one_of") in problems(foreign_route)
    assert "stoet" in response_json(foreign_route)["problems"][0]["message"]
    assert posts(umbrella) == []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        ("{not json", "application/json", 400, "malformed_body"),
        ("[1, 2]", "application/json", 400, "malformed_body"),
        ("x" * 9000, "application/json", 413, "payload_too_large"),
        ("<campaign/>", "application/xml", 415, "unsupported_media_type"),
    ],
)
def test_malformed_bodies_are_4xx(stack, umbrella, body, content_type, status, error):
    response = invoke(stack, post_event(body, content_type=content_type))
    assert response["statusCode"] == status
    assert response_json(response)["error"] == error
    assert posts(umbrella) == []


def test_a_code_we_already_hold_is_a_409_without_calling_umbrella(stack, umbrella):
    fields, _ = create(stack)
    umbrella.clear_requests()
    again = invoke(stack, post_event(campaign_fields(donationCode=fields["donationCode"], amount=100)))
    assert again["statusCode"] == 409
    assert response_json(again)["error"] == "donation_code_in_use"
    assert ("donationCode", "in_use") in problems(again)
    assert posts(umbrella) == []


def test_a_code_in_use_at_umbrella_is_a_409_and_frees_our_hold(stack, umbrella):
    fields = campaign_fields()
    taken_elsewhere = {**fields, "callbackUrl": "http://127.0.0.1:9/elsewhere", "answerMessage": "Tak",
                       "confirmText": "Oprettet"}  # fmt: skip
    del taken_elsewhere["serviceId"], taken_elsewhere["campaignName"]
    umbrella_client_create(umbrella, fields["serviceId"], taken_elsewhere)
    response = invoke(stack, post_event(fields))
    assert response["statusCode"] == 409
    assert "already in use" in response_json(response)["message"]
    assert campaign_item(stack, fields) is None


def umbrella_client_create(umbrella, service_id, body):
    from partners.umbrella import CampaignCreationRequest, UmbrellaClient  # noqa: PLC0415

    client = UmbrellaClient(umbrella.url, api_key=lambda: UMBRELLA_KEY)
    client.create_campaign(service_id, CampaignCreationRequest(**body))


def test_our_key_refused_is_a_502_not_to_retry_and_nothing_is_held(stack, umbrella):
    umbrella.faults.add("status", status=403, path_prefix="/public/v1/campaign/1")
    fields = campaign_fields()
    response = invoke(stack, post_event(fields))
    assert response["statusCode"] == 502
    assert response_json(response) | {"message": ""} == {
        "error": "partner_misconfigured", "message": "", "retryable": False,
    }  # fmt: skip
    assert campaign_item(stack, fields) is None


def test_umbrella_rejecting_the_campaign_is_a_422_with_its_words(stack, umbrella):
    # The sandbox refuses a number its own rules do not take; our pattern is configurable, so it can differ.
    fields = campaign_fields()
    umbrella.faults.add("status", status=400, count=1, path_prefix="/public/v1/campaign/1")
    response = invoke(stack, post_event(fields))
    assert response["statusCode"] == 422
    assert response_json(response)["error"] == "rejected_by_umbrella"
    assert campaign_item(stack, fields) is None


def test_a_create_that_timed_out_is_answered_once_with_one_campaign(stack, umbrella):
    # The timed-out POST lands at Umbrella after our check: the second POST or the first then meets the code in
    # use, so whichever lands first is the one campaign, and the fundraiser sees no error.
    umbrella.faults.add("slow", delay=0.8, count=1, path_prefix="/public/v1/campaign/1")
    fields = campaign_fields()
    response = invoke(stack, post_event(fields))
    assert response["statusCode"] == 201, response["body"]
    time.sleep(0.9)  # until the delayed POST has been processed too
    assert len(at_umbrella(umbrella, fields)) == 1
    assert campaign_item(stack, fields)["state"]["S"] == "active"


def test_a_5xx_before_creating_is_checked_then_created_once(stack, umbrella):
    umbrella.faults.add("status", status=500, count=1, path_prefix="/public/v1/campaign/1")
    fields = campaign_fields()
    response = invoke(stack, post_event(fields))
    assert response["statusCode"] == 201, response["body"]
    assert len(at_umbrella(umbrella, fields)) == 1


def test_an_outage_leaves_the_code_for_the_same_request_to_resume(stack, umbrella):
    umbrella.faults.add("status", status=503, path_prefix="/public/v1/campaign/1")
    fields = campaign_fields()
    response = invoke(stack, post_event(fields))
    assert response["statusCode"] == 503
    assert response_json(response)["retryable"] is True
    assert campaign_item(stack, fields)["state"]["S"] == "pending"
    # Another person's request for the same code is not let through while it is unknown...
    other = invoke(stack, post_event({**fields, "amount": 999}))
    assert other["statusCode"] == 503
    assert campaign_item(stack, fields)["request_fingerprint"]["S"] == CampaignForm(**fields).fingerprint()
    umbrella.faults.clear()
    # ...and once Umbrella is back, the same request resumes and creates it once.
    resumed = invoke(stack, post_event(fields))
    assert resumed["statusCode"] == 201, resumed["body"]
    assert len(at_umbrella(umbrella, fields)) == 1
    assert get(stack, fields)["campaign"]["state"] == "active"


def landed(umbrella, fields, timeout=3.0):
    """True once the timed-out POST, still held by the sandbox's slow fault, has made its campaign."""
    deadline = time.monotonic() + timeout
    while not at_umbrella(umbrella, fields) and time.monotonic() < deadline:
        time.sleep(0.02)
    return len(at_umbrella(umbrella, fields)) == 1


def test_a_resumed_request_adopts_the_campaign_an_interrupted_one_made(stack, umbrella):
    fields = campaign_fields()
    umbrella.faults.add("slow", delay=0.8, count=1, path_prefix="/public/v1/campaign/1")
    umbrella.faults.add("status", status=503, for_seconds=30, path_prefix="/public/v1/campaign/1/")
    response = invoke(stack, post_event(fields))
    assert response["statusCode"] == 503  # it timed out and the check could not tell
    assert landed(umbrella, fields)
    umbrella.faults.clear()
    resumed = invoke(stack, post_event(fields))
    assert resumed["statusCode"] == 201, resumed["body"]
    assert len(at_umbrella(umbrella, fields)) == 1
    assert len(posts(umbrella)) == 1
    # The one confirm SMS came from the interrupted attempt: its token is the one that manages the campaign.
    (made,) = at_umbrella(umbrella, fields)
    token = manage_token_from_sms(umbrella, CANARY_MSISDN)
    assert token in made["confirmText"]
    assert invoke(stack, campaign_event("delete_campaign.json", fields, token))["statusCode"] == 200


def test_another_request_cannot_take_a_code_an_interrupted_request_made(stack, umbrella):
    fields = campaign_fields()
    umbrella.faults.add("slow", delay=0.8, count=1, path_prefix="/public/v1/campaign/1")
    umbrella.faults.add("status", status=503, for_seconds=30, path_prefix="/public/v1/campaign/1/")
    assert invoke(stack, post_event(fields))["statusCode"] == 503
    assert landed(umbrella, fields)
    umbrella.faults.clear()
    other = invoke(stack, post_event({**fields, "amount": 777}))
    assert other["statusCode"] == 409
    assert campaign_item(stack, fields)["request_fingerprint"]["S"] == CampaignForm(**fields).fingerprint()
    assert invoke(stack, post_event(fields))["statusCode"] == 201


def test_umbrella_rate_limiting_a_create_is_a_503_that_frees_the_code(stack, umbrella):
    umbrella.faults.add("rate_limit", retry_after=30, count=1, path_prefix="/public/v1/campaign/1")
    fields = campaign_fields()
    response = invoke(stack, post_event(fields))
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == "30"
    assert campaign_item(stack, fields) is None
    assert invoke(stack, post_event(fields))["statusCode"] == 201


def test_concurrent_creates_of_one_code_make_one_campaign(stack, umbrella, monkeypatch):
    for name, value in stack.function_env(FUNCTION).items():
        monkeypatch.setenv(name, value)
    fields = campaign_fields()
    form = CampaignForm.model_validate(fields, context=validation_context())

    def attempt(_: int) -> str:
        try:
            creation.create(services(), form, request_base_url="https://api.example.org", client_ip="127.0.0.1")
        except CreateInProgress:
            return "create_in_progress"
        except DonationCodeInUse:
            return "donation_code_in_use"
        return "created"

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(8)))
    assert outcomes.count("created") == 1
    assert set(outcomes) <= {"created", "create_in_progress", "donation_code_in_use"}
    assert len(at_umbrella(umbrella, fields)) == 1


def test_a_callback_base_that_is_not_https_is_a_configuration_error(stack, umbrella, monkeypatch):
    for name, value in stack.function_env(FUNCTION).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("CALLBACK_BASE_URL", "http://api.example.org")
    event = post_event(campaign_fields())
    response = invoke_with_env(stack, event, CALLBACK_BASE_URL="http://api.example.org")
    assert response["statusCode"] == 500
    assert posts(umbrella) == []


def invoke_with_env(stack, event, **overrides):
    saved = dict(stack._function_envs[FUNCTION])
    stack._function_envs[FUNCTION] |= overrides
    try:
        from hub_core.caches import reset_all  # noqa: PLC0415

        reset_all()
        return invoke(stack, event)
    finally:
        stack._function_envs[FUNCTION] = saved
        reset_all()


# ---------------------------------------------------------------- read


def get(stack, fields):
    response = invoke(stack, campaign_event("get_campaign.json", fields))
    assert response["statusCode"] == 200, response["body"]
    return response_json(response)


def fold_umbrellas_donations(stack, fields) -> None:
    """Reconciliation brings Umbrella's donations into the ledger; the bus and the fold queue add them up."""
    ref = f"{fields['serviceId']}/{fields['route']}/{fields['donationCode']}"
    stack.invoke("DonationIngesterFunction", {"reconcile": {"campaigns": [ref]}})
    assert stack.drain_events(timeout=20)
    assert stack.drain("DonationTotalsQueue", timeout=20)


def test_a_campaign_shows_its_state_and_the_ledgers_collected_amount(stack, umbrella):
    fields, _ = create(stack)
    nothing = {"amount": 0, "count": 0}
    assert get(stack, fields)["collected"] == {"amount": 0, "count": 0, "note": None, "pending": nothing}
    umbrella.donate(fields["serviceId"], fields["route"], fields["donationCode"], amount=2500, deliver=False)
    umbrella.donate(fields["serviceId"], fields["route"], fields["donationCode"], amount=1000, deliver=False)
    fold_umbrellas_donations(stack, fields)
    body = get(stack, fields)
    assert body["campaign"]["state"] == "active"
    assert body["collected"] == {"amount": 3500, "count": 2, "note": None, "pending": nothing}


def test_the_get_event_file_answers_for_its_campaign(stack, umbrella):
    invoke(stack, load_event("campaign_lifecycle/post_campaign.json"))
    response = invoke(stack, load_event("campaign_lifecycle/get_campaign.json"))
    assert response["statusCode"] == 200
    assert response_json(response)["campaign"]["donationCode"] == "anna50"


def test_the_collected_amount_keeps_counting_while_umbrella_is_down(stack, umbrella):
    fields, _ = create(stack)
    umbrella.donate(fields["serviceId"], fields["route"], fields["donationCode"], amount=1200, deliver=False)
    fold_umbrellas_donations(stack, fields)
    umbrella.faults.add("status", status=503)
    umbrella.clear_requests()
    body = get(stack, fields)
    assert body["collected"] == {"amount": 1200, "count": 1, "note": None, "pending": {"amount": 0, "count": 0}}
    assert umbrella.requests == []


def test_a_throttled_campaigns_table_is_a_503_with_retry_after_and_no_partner_call(stack, umbrella, monkeypatch):
    from campaign_lifecycle.store import CampaignStore  # noqa: PLC0415

    fields, _ = create(stack)
    umbrella.clear_requests()

    def throttled(*_args, **_options):
        error = {"Code": "ProvisionedThroughputExceededException", "Message": "Rate of requests exceeds"}
        raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 400}}, "GetItem")

    monkeypatch.setattr(CampaignStore, "get", throttled)
    response = invoke(stack, campaign_event("get_campaign.json", fields))
    assert response["statusCode"] == 503, response["body"]
    assert int(response["headers"]["Retry-After"]) >= 1
    assert response_json(response)["error"] == "service_unavailable"
    assert umbrella.requests == []


def test_an_unknown_campaign_is_a_404(stack, umbrella):
    response = invoke(stack, campaign_event("get_campaign.json", campaign_fields()))
    assert response["statusCode"] == 404
    assert response_json(response)["error"] == "not_found"


def test_a_bad_path_is_a_422_naming_the_parameter(stack, umbrella):
    event = campaign_event("get_campaign.json", campaign_fields())
    event["pathParameters"]["serviceId"] = "abc"
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/campaigns/abc/hjerte/x1"
    response = invoke(stack, event)
    assert response["statusCode"] == 422
    assert "serviceId" in {p["field"] for p in response_json(response)["problems"]}


# ---------------------------------------------------------------- manage token


@pytest.mark.parametrize("name", ["put_campaign.json", "delete_campaign.json", "get_donations.json"])
def test_managing_needs_the_token_401_without_403_wrong(stack, umbrella, name):
    fields, _ = create(stack)
    missing = invoke(stack, campaign_event(name, fields))
    assert missing["statusCode"] == 401
    assert missing["headers"]["WWW-Authenticate"].startswith("Bearer")
    wrong = invoke(stack, campaign_event(name, fields, token="not-the-token"))
    assert wrong["statusCode"] == 403
    # Another campaign's token is just as wrong.
    _, other = create(stack)
    assert invoke(stack, campaign_event(name, fields, token=other["manageToken"]))["statusCode"] == 403
    basic = campaign_event(name, fields)
    basic["headers"]["authorization"] = "Basic " + base64.b64encode(b"a:b").decode()
    assert invoke(stack, basic)["statusCode"] == 401
    assert len(at_umbrella(umbrella, fields)) == 1
    assert at_umbrella(umbrella, fields)[0]["active"] is True


def test_the_put_event_file_updates_the_campaign_with_its_token(stack, umbrella):
    fields, body = create(stack)
    response = invoke(stack, campaign_event("put_campaign.json", fields, body["manageToken"]))
    assert response["statusCode"] == 200, response["body"]
    updated = response_json(response)["campaign"]
    assert (updated["amount"], updated["answerMessage"]) == (10000, "Tak for din støtte til Annas løb!")
    (at_partner,) = at_umbrella(umbrella, fields)
    assert at_partner["amount"] == 10000
    # The whole campaign went to Umbrella: the fields not changed, and a callbackUrl still ours, with a new token.
    assert at_partner["confirmMsisdn"] == CANARY_MSISDN
    assert "/donations/callback/" in at_partner["callbackUrl"]
    new_token = at_partner["callbackUrl"].rsplit("/", 1)[1]
    assert campaign_item(stack, fields)["callback_token_hash"]["S"] == callback_token_hash(new_token)
    assert updated["history"][-1]["fields"] == ["amount"]


def test_stop_then_stop_again_then_no_more_changes(stack, umbrella):
    fields, body = create(stack)
    token = body["manageToken"]
    stopped = invoke(stack, campaign_event("delete_campaign.json", fields, token))
    assert stopped["statusCode"] == 200
    assert response_json(stopped)["campaign"]["state"] == "stopped"
    assert at_umbrella(umbrella, fields)[0]["active"] is False
    umbrella.clear_requests()
    again = invoke(stack, campaign_event("delete_campaign.json", fields, token))
    assert again["statusCode"] == 200
    assert umbrella.requests == []
    change = invoke(stack, campaign_event("put_campaign.json", fields, token))
    assert change["statusCode"] == 409
    assert response_json(change)["error"] == "campaign_stopped"


def test_donations_are_listed_since_a_time_without_donor_numbers(stack, umbrella):
    fields, body = create(stack)
    umbrella.donate(1, fields["route"], fields["donationCode"], amount=1500, msisdn=CANARY_MSISDN, deliver=False)
    response = invoke(stack, campaign_event("get_donations.json", fields, body["manageToken"], query={"since": "0"}))
    assert response["statusCode"] == 200, response["body"]
    listed = response_json(response)
    assert (listed["count"], listed["total"]) == (1, 1500)
    assert CANARY_MSISDN not in response["body"]
    future = campaign_event(
        "get_donations.json", fields, body["manageToken"], query={"since": "2037-01-01T00:00:00+00:00"}
    )
    assert response_json(invoke(stack, future))["count"] == 0


@pytest.mark.parametrize(
    "since", ["yesterday", "2026-11-24T10:00:00", "-5", "2999-01-01T00:00:00+00:00", "99999999999"]
)
def test_a_bad_since_is_a_422(stack, umbrella, since):
    fields, body = create(stack)
    response = invoke(stack, campaign_event("get_donations.json", fields, body["manageToken"], query={"since": since}))
    assert response["statusCode"] == 422
    assert response_json(response)["problems"][0]["field"] == "since"


def test_a_malformed_donation_list_is_a_502(stack, umbrella):
    fields, body = create(stack)
    umbrella.faults.add("malformed", path_prefix="/public/v1/campaign/1/")
    response = invoke(stack, campaign_event("get_donations.json", fields, body["manageToken"]))
    assert response["statusCode"] == 502
    assert response_json(response)["retryable"] is True


# ---------------------------------------------------------------- privacy


def test_no_apikey_msisdn_or_token_in_any_log_line(stack, umbrella, caplog, capsys):
    caplog.set_level(logging.INFO)
    fields, body = create(stack)
    token = body["manageToken"]
    callback_token = at_umbrella(umbrella, fields)[0]["callbackUrl"].rsplit("/", 1)[1]
    umbrella.faults.add("status", status=500, count=1)
    invoke(stack, campaign_event("put_campaign.json", fields, token))
    invoke(stack, campaign_event("get_donations.json", fields, token))
    invoke(stack, campaign_event("put_campaign.json", fields, "wrong-token"))
    umbrella.faults.add("slow", delay=0.8, count=1)
    invoke(stack, post_event(campaign_fields()))
    invoke(stack, campaign_event("delete_campaign.json", fields, token))
    out, err = capsys.readouterr()
    logs = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records) + out + err
    assert "campaign created" in logs  # the capture works
    for secret in (UMBRELLA_KEY, CANARY_MSISDN, token, callback_token, "wrong-token"):
        assert secret not in logs
