"""Erasure on the local stack: a person's lead, campaign, donations, loyalty records and app's miles user, erased
by POST /erasure, by an ErasureRequested event and by the CLI's direct invoke; twice; bad input; app's miles down."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from erasure import flow as erasure_flow
from partners.errors import PartnerAuthError, PartnerBadResponse, PartnerRejected, PartnerUnavailable
from tests.conftest import load_event
from tests.integration.conftest import (
    CANARY_EMAIL,
    CANARY_MSISDN,
    lead_fields,
    post_event,
    response_json,
)

FUNCTION = "ErasureFunction"
# An app's miles user id the privacy check recognises (every value with this mark is a canary).
CANARY_USER = "amu-PRIVACY-CANARY-7731"


@dataclass
class FakeAppsMiles:
    """Stands in for app's miles' user/multidelete until the adapter is merged (see flow.appsmiles)."""

    users: set[str] = field(default_factory=set)
    calls: list[list[str]] = field(default_factory=list)
    failure: Exception | None = None

    def multidelete(self, user_ids):
        self.calls.append(list(user_ids))
        if self.failure is not None:
            raise self.failure
        deleted = [user for user in user_ids if user in self.users]
        self.users -= set(deleted)
        return type("Answer", (), {"deleted": deleted, "unknown": [u for u in user_ids if u not in deleted]})()


@pytest.fixture
def appsmiles(monkeypatch):
    fake = FakeAppsMiles()
    monkeypatch.setattr(erasure_flow, "appsmiles", lambda: fake)
    return fake


@dataclass
class Person:
    email: str
    msisdn: str
    user_id: str
    lead_id: str
    campaign_ref: str
    donations: list[str]
    loyalty: list[str]


def dynamodb(stack):
    return stack.boto3_client("dynamodb")


def item(stack, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    return dynamodb(stack).get_item(TableName=stack.physical(table), Key=key, ConsistentRead=True).get("Item")


def seed_person(stack, appsmiles, *, email: str = CANARY_EMAIL, user_id: str = CANARY_USER) -> Person:
    """A lead through lead intake, a campaign through the campaign lifecycle, donations and loyalty records as the
    ingester and the relay write them, and the user at app's miles."""
    # Typed with another case than the erasure request's: the match is case-insensitive.
    response = stack.invoke(
        "LeadIntakeFunction", post_event(lead_fields(email=email.upper().replace("@EXAMPLE.ORG", "@example.org")))
    )
    assert response["statusCode"] in (201, 202), response["body"]
    lead_id = response_json(response)["lead_id"]

    code = f"e{uuid.uuid4().hex[:10]}"
    event = load_event("campaign_lifecycle/post_campaign.json")
    fields = json.loads(event["body"]) | {
        "donationCode": code,
        "confirmMsisdn": CANARY_MSISDN,
        "appsMilesUserId": user_id,
    }
    event["body"] = json.dumps(fields)
    response = stack.invoke("CampaignLifecycleFunction", event)
    assert response["statusCode"] == 201, response["body"]
    ref = f"1/hjerte/{code}"

    donations = []
    for amount in (5000, 2500):
        pk = f"donation#{uuid.uuid4()}"
        dynamodb(stack).put_item(
            TableName=stack.physical("DonationsTable"),
            Item={
                "pk": {"S": pk},
                "campaign_ref": {"S": ref},
                "amount": {"N": str(amount)},
                "msisdn": {"S": CANARY_MSISDN},
                "donated_at": {"N": "1795514400"},
                "received_at": {"N": "1795514400"},
            },
        )
        donations.append(pk)
    loyalty = []
    for _ in range(2):
        pk = f"event#{uuid.uuid4()}"
        dynamodb(stack).put_item(
            TableName=stack.physical("LoyaltyTable"),
            Item={"pk": {"S": pk}, "user_id": {"S": user_id}, "tag_id": {"S": "donation"}, "state": {"S": "relayed"}},
        )
        loyalty.append(pk)
    appsmiles.users.add(user_id)
    return Person(email, CANARY_MSISDN, user_id, lead_id, ref, donations, loyalty)


def erasure_event(body: Any, *, signed: bool = True) -> dict[str, Any]:
    event = load_event("erasure/post_erasure.json")
    event["body"] = body if isinstance(body, str) else json.dumps(body)
    if not signed:
        del event["requestContext"]["authorizer"]
    return event


def request_for(person: Person) -> dict[str, str]:
    return {"email": person.email, "msisdn": person.msisdn, "appsMilesUserId": person.user_id}


def assert_erased(stack, person: Person) -> None:
    assert item(stack, "LeadsTable", {"lead_id": {"S": person.lead_id}}) is None
    campaign = item(stack, "CampaignsTable", {"campaign_ref": {"S": person.campaign_ref}})
    assert campaign is not None
    assert "confirm_msisdn" not in campaign
    assert "apps_miles_user_id" not in campaign
    assert campaign["state"]["S"] == "active"
    assert campaign["amount"]["N"] == "5000"
    assert campaign["history"]["L"][-1]["M"]["action"]["S"] == "creator_erased"
    amounts = []
    for pk in person.donations:
        donation = item(stack, "DonationsTable", {"pk": {"S": pk}})
        assert donation is not None
        assert "msisdn" not in donation
        amounts.append(int(donation["amount"]["N"]))
    assert amounts == [5000, 2500]
    for pk in person.loyalty:
        record = item(stack, "LoyaltyTable", {"pk": {"S": pk}})
        assert record is not None
        assert "user_id" not in record
        assert record["state"]["S"] == "relayed"


def test_the_event_file_erases_across_every_table_and_app_s_miles_then_a_repeat_is_harmless(stack, appsmiles):
    person = seed_person(stack, appsmiles)

    response = stack.invoke(FUNCTION, erasure_event(request_for(person)))

    assert response["statusCode"] == 200, response["body"]
    body = response_json(response)
    assert body["erased"] == {"leads": 1, "campaigns": 1, "donations": 2, "loyalty_records": 2}
    assert body["appsmiles"] == "deleted"
    assert any("MiiMOSA" in note for note in body["notes"])
    assert_erased(stack, person)
    assert person.user_id not in appsmiles.users

    again = stack.invoke(FUNCTION, erasure_event(request_for(person)))

    assert again["statusCode"] == 200, again["body"]
    assert response_json(again)["erased"] == {"leads": 0, "campaigns": 0, "donations": 0, "loyalty_records": 0}
    assert response_json(again)["appsmiles"] == "unknown"
    assert_erased(stack, person)
    for text in (response["body"], again["body"]):
        assert person.email not in text
        assert person.msisdn not in text
        assert person.user_id not in text


def test_the_committed_event_file_is_a_valid_signed_request(stack, appsmiles):
    response = stack.invoke(FUNCTION, load_event("erasure/post_erasure.json"))

    assert response["statusCode"] == 200, response["body"]
    assert response_json(response)["appsmiles"] == "unknown"
    assert appsmiles.calls == [["member-8841"]]


def test_one_identifier_erases_only_what_it_finds(stack, appsmiles):
    person = seed_person(
        stack, appsmiles, email=f"solo-{uuid.uuid4().hex[:8]}@example.org", user_id=f"amu-{uuid.uuid4().hex}"
    )

    response = stack.invoke(FUNCTION, erasure_event({"email": person.email}))

    body = response_json(response)
    assert body["erased"]["leads"] == 1
    assert body["appsmiles"] == "not_asked"
    assert appsmiles.calls == []
    assert item(stack, "LeadsTable", {"lead_id": {"S": person.lead_id}}) is None
    # The number and user id were not asked for: the campaign and loyalty records keep them.
    campaign = item(stack, "CampaignsTable", {"campaign_ref": {"S": person.campaign_ref}})
    assert campaign["apps_miles_user_id"]["S"] == person.user_id


def test_the_invalid_event_file_names_each_field_and_rule_and_erases_nothing(stack, appsmiles):
    person = seed_person(stack, appsmiles, user_id=f"amu-{uuid.uuid4().hex}")

    response = stack.invoke(FUNCTION, load_event("erasure/post_erasure_invalid.json"))

    assert response["statusCode"] == 400
    problems = {(p["field"], p["rule"]) for p in response_json(response)["problems"]}
    assert problems == {
        ("email", "email_syntax"),
        ("msisdn", "msisdn_format"),
        ("appsMilesUserId", "pattern"),
        ("name", "unknown_field"),
    }
    assert item(stack, "LeadsTable", {"lead_id": {"S": person.lead_id}}) is not None
    assert appsmiles.calls == []


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({}, "body", "identifier_required"),
        ({"email": None}, "body", "identifier_required"),
        ([1, 2], "body", "object"),
        ({"msisdn": "+45 1234"}, "msisdn", "msisdn_format"),
        ({"email": "x" * 300 + "@example.org"}, "email", "max_length"),
        ({"appsMilesUserId": ""}, "appsMilesUserId", "pattern"),
    ],
)
def test_bad_input_is_a_400_naming_field_and_rule(stack, appsmiles, body, field, rule):
    response = stack.invoke(FUNCTION, erasure_event(body))

    assert response["statusCode"] == 400, response["body"]
    assert {"field": field, "rule": rule} in [
        {"field": p["field"], "rule": p["rule"]} for p in response_json(response)["problems"]
    ]


def test_a_body_that_is_not_json_is_a_4xx(stack, appsmiles):
    response = stack.invoke(FUNCTION, erasure_event("{not json"))

    assert 400 <= response["statusCode"] < 500


def test_an_unsigned_request_is_refused(stack, appsmiles):
    person = seed_person(stack, appsmiles, user_id=f"amu-{uuid.uuid4().hex}")

    response = stack.invoke(FUNCTION, erasure_event(request_for(person), signed=False))

    assert response["statusCode"] == 403
    assert item(stack, "LeadsTable", {"lead_id": {"S": person.lead_id}}) is not None


def test_the_erasure_requested_event_file_is_handled(stack, appsmiles):
    result = stack.invoke(FUNCTION, load_event("erasure/erasure_requested.json"))

    assert result["appsmiles"] == "unknown"
    assert set(result["erased"]) == {"leads", "campaigns", "donations", "loyalty_records"}


def test_an_erasure_requested_event_through_the_bus_erases_the_person(stack, appsmiles):
    person = seed_person(
        stack, appsmiles, email=f"bus-{uuid.uuid4().hex[:8]}@example.org", user_id=f"amu-{uuid.uuid4().hex}"
    )
    event = load_event("erasure/erasure_requested.json")

    stack.put_events(
        [
            {
                "Source": event["source"],
                "DetailType": event["detail-type"],
                "Detail": json.dumps(request_for(person)),
                "EventBusName": stack.physical("HubEventBus"),
            }
        ]
    )

    assert stack.drain_events(timeout=20)
    assert_erased(stack, person)
    assert appsmiles.calls == [[person.user_id]]


def test_a_bad_event_is_acknowledged_with_its_problems_and_erases_nothing(stack, appsmiles):
    event = load_event("erasure/erasure_requested.json")
    event["detail"] = {"phone": "4512345678"}

    result = stack.invoke(FUNCTION, event)

    assert result["rejected"] is True
    assert {p["field"] for p in result["problems"]} == {"phone"}
    assert appsmiles.calls == []


def test_the_direct_invoke_answers_the_report_or_the_problems(stack, appsmiles):
    person = seed_person(
        stack, appsmiles, email=f"cli-{uuid.uuid4().hex[:8]}@example.org", user_id=f"amu-{uuid.uuid4().hex}"
    )

    report = stack.invoke(FUNCTION, {"erase": request_for(person)})
    problems = stack.invoke(FUNCTION, {"erase": {"msisdn": "12"}})

    assert report["erased"]["leads"] == 1
    assert report["appsmiles"] == "deleted"
    assert problems["error"] == "validation_failed"
    assert problems["problems"][0]["field"] == "msisdn"


def test_an_unrecognised_event_raises(stack, appsmiles):
    with pytest.raises(ValueError, match="unrecognised event"):
        stack.invoke(FUNCTION, {"hello": "world"})


@pytest.mark.parametrize(
    ("failure", "status", "error"),
    [
        (PartnerUnavailable("appsmiles", "HTTP 503", status=503), 503, "partner_unavailable"),
        (PartnerUnavailable("appsmiles", "HTTP 429", status=429, retry_after=7), 503, "partner_unavailable"),
        (PartnerBadResponse("appsmiles", "malformed answer"), 503, "partner_unavailable"),
        (PartnerAuthError("appsmiles", "HTTP 401", status=401), 502, "partner_misconfigured"),
        (PartnerRejected("appsmiles", "errorCode 10: Unknown application"), 502, "partner_rejected"),
    ],
)
def test_app_s_miles_failing_answers_what_was_erased_locally(stack, appsmiles, failure, status, error):
    person = seed_person(
        stack, appsmiles, email=f"down-{uuid.uuid4().hex[:8]}@example.org", user_id=f"amu-{uuid.uuid4().hex}"
    )
    appsmiles.failure = failure

    response = stack.invoke(FUNCTION, erasure_event(request_for(person)))

    assert response["statusCode"] == status
    body = response_json(response)
    assert body["error"] == error
    assert body["erased"] == {"leads": 1, "campaigns": 1, "donations": 2, "loyalty_records": 2}
    assert body["appsmiles"] is None
    assert_erased(stack, person)
    if status == 503:
        expected = "7" if failure.retry_after else "30"
        assert response["headers"]["Retry-After"] == expected
    assert person.user_id not in response["body"]

    appsmiles.failure = None
    retried = response_json(stack.invoke(FUNCTION, erasure_event(request_for(person))))
    assert retried["appsmiles"] == "deleted"
    assert retried["erased"]["leads"] == 0


def test_the_event_path_raises_so_lambda_retries_then_the_dlq_keeps_it(stack, appsmiles):
    person = seed_person(
        stack, appsmiles, email=f"dlq-{uuid.uuid4().hex[:8]}@example.org", user_id=f"amu-{uuid.uuid4().hex}"
    )
    appsmiles.failure = PartnerUnavailable("appsmiles", "HTTP 503", status=503)
    sqs = stack.boto3_client("sqs")
    dlq = stack.physical("ErasureDLQ")
    sqs.purge_queue(QueueUrl=dlq)
    event = load_event("erasure/erasure_requested.json")
    event["detail"] = request_for(person)

    with pytest.raises(erasure_flow.PartnerStepFailed) as raised:
        stack.invoke(FUNCTION, event)
    assert person.user_id not in str(raised.value)

    stack.invoke_async(FUNCTION, event)
    assert stack.drain_events(timeout=20)
    messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
    assert len(messages) == 1
    # Lambda's retries (2) and the first attempt: app's miles was asked three times, the tables erased at once.
    assert len(appsmiles.calls) == 4
    assert_erased(stack, person)
