"""Erasure on the local stack: a person's lead, campaign, donations, loyalty records and app's miles user, erased
by POST /erasure, by an ErasureRequested event and by the CLI's direct invoke; twice; bad input; app's miles down."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from erasure.deferred import MESSAGE_KEY
from hub_cli.deadletters import dead_letter_queues
from hub_core.caches import reset_all
from hub_core.tokens import DonorHasher
from hub_local.stack import LocalStack
from partners.appsmiles import AppsMilesClient
from partners.appsmiles_transport import reset_tokens
from sandboxes.appsmiles import AppsMilesSandbox
from sandboxes.appsmiles_wire import DEFAULT_APP_ID, DEFAULT_PARTNER_ID
from tests import canaries
from tests.canaries import APPSMILES_SECRET, CANARY_APPSMILES_USER
from tests.conftest import ROOT, load_event, member_signature
from tests.integration.conftest import (
    CANARY_EMAIL,
    CANARY_LASTNAME,
    CANARY_MSISDN,
    FUNCTION_OVERRIDES,
    MIIMOSA_KEY,
    MLM_TOKEN,
    UMBRELLA_KEY,
    lead_fields,
    post_event,
    response_json,
)
from tests.privacy import LeakDetector, named_canaries

FUNCTION = "ErasureFunction"
CANARY_USER = CANARY_APPSMILES_USER
MULTIDELETE = "/user/multidelete"


@contextmanager
def stack_with_appsmiles(**options: Any) -> Iterator[tuple[LocalStack, AppsMilesSandbox]]:
    """The local stack with the functions pointed at an app's miles sandbox that expects the seeded secret."""
    with AppsMilesSandbox(partner_secret=APPSMILES_SECRET) as sandbox:
        overrides = options.pop("function_overrides", {}) | {
            "APPSMILES_READ_TIMEOUT": "0.4",
            "APPSMILES_CONNECT_TIMEOUT": "0.4",
        }
        # A base URL in the environment: the stack seeds the secret and starts no sandbox of its own.
        environ = options.pop("environ", {}) | {
            "APPSMILES_BASE_URL": sandbox.url,
            "APPSMILES_PARTNER_SECRET": APPSMILES_SECRET,
        }
        with LocalStack(ROOT / "template.yaml", function_overrides=overrides, environ=environ, **options) as local:
            yield local, sandbox


# This module's own stack: the conftest's settings, and an app's miles sandbox the tests hold.
@pytest.fixture(scope="module")
def stack_and_appsmiles():
    with stack_with_appsmiles(
        gateway_port=None,
        pump_queues=False,
        environ={"MIIMOSA_API_KEY": MIIMOSA_KEY, "UMBRELLA_API_KEY": UMBRELLA_KEY, "MLM_API_TOKEN": MLM_TOKEN},
        function_overrides=FUNCTION_OVERRIDES,
        async_retry_seconds=0.05,
    ) as both:
        yield both


@pytest.fixture(scope="module")
def stack(stack_and_appsmiles):
    return stack_and_appsmiles[0]


@pytest.fixture
def appsmiles(stack_and_appsmiles):
    sandbox = stack_and_appsmiles[1]
    sandbox.reset()
    yield sandbox
    sandbox.reset()


def appsmiles_user(sandbox: AppsMilesSandbox, user_id: str) -> None:
    """A user with two actions at app's miles, recorded through the adapter as the relay would."""
    client = AppsMilesClient(sandbox.url, DEFAULT_APP_ID, DEFAULT_PARTNER_ID, lambda: APPSMILES_SECRET)
    for param1 in ("donation-1", "donation-2"):
        assert not client.store_action(user_id, "DONATION", param1=param1).already_recorded
    reset_tokens()


def multideletes(sandbox: AppsMilesSandbox) -> int:
    return sum(1 for request in sandbox.requests if request.path == MULTIDELETE)


@dataclass
class Person:
    email: str
    msisdn: str
    user_id: str
    lead_id: str
    campaign_ref: str
    donations: list[str]
    loyalty: list[str]
    licence_order: str


def dynamodb(stack):
    return stack.boto3_client("dynamodb")


def item(stack, table: str, key: dict[str, Any]) -> dict[str, Any] | None:
    return dynamodb(stack).get_item(TableName=stack.physical(table), Key=key, ConsistentRead=True).get("Item")


def donor_hash(stack, msisdn: str) -> str:
    """The number as the ingester stores it: keyed with the stack's key ring in SSM."""
    name = stack.function_env("DonationIngesterFunction")["CALLBACK_SIGNING_KEY_PARAM"]
    ring = stack.boto3_client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    return DonorHasher(lambda: ring).hash(msisdn)


def seed_person(stack, appsmiles, *, email: str = CANARY_EMAIL, user_id: str = CANARY_USER) -> Person:
    """A lead through lead intake, a campaign through the campaign lifecycle, donations and loyalty records as the
    ingester and the relay write them, and the user at app's miles."""
    # Typed with another case than the erasure request's: the match is case-insensitive.
    response = stack.invoke(
        "LeadIntakeFunction",
        post_event(
            lead_fields(
                email=email.upper().replace("@EXAMPLE.ORG", "@example.org"),
                apps_miles_user_id=user_id,
                apps_miles_signature=member_signature(stack, user_id),
            )
        ),
    )
    assert response["statusCode"] in (201, 202), response["body"]
    lead_id = response_json(response)["lead_id"]

    code = f"e{uuid.uuid4().hex[:10]}"
    event = load_event("campaign_lifecycle/post_campaign.json")
    fields = json.loads(event["body"]) | {
        "donationCode": code,
        "confirmMsisdn": CANARY_MSISDN,
        "appsMilesUserId": user_id,
        "appsMilesSignature": member_signature(stack, user_id),
    }
    event["body"] = json.dumps(fields)
    response = stack.invoke("CampaignLifecycleFunction", event)
    assert response["statusCode"] == 201, response["body"]
    ref = f"1/hjerte/{code}"

    donations = []
    # One as the ingester writes it (the number as its keyed hash), one stored before numbers were hashed.
    for amount, msisdn in ((5000, donor_hash(stack, CANARY_MSISDN)), (2500, CANARY_MSISDN)):
        pk = f"donation#{uuid.uuid4()}"
        dynamodb(stack).put_item(
            TableName=stack.physical("DonationsTable"),
            Item={
                "pk": {"S": pk},
                "campaign_ref": {"S": ref},
                "amount": {"N": str(amount)},
                "msisdn": {"S": msisdn},
                "text": {"S": f"Hilsen fra {CANARY_LASTNAME}"},
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
    # A licence order keeps its verified member id for the loyalty relay (LicenceIssued names none).
    order_id = f"order-{uuid.uuid4().hex[:12]}"
    dynamodb(stack).put_item(
        TableName=stack.physical("LicencesTable"),
        Item={
            "pk": {"S": f"order#{order_id}"},
            "order_id": {"S": order_id},
            "state": {"S": "issued"},
            "apps_miles_user_id": {"S": user_id},
        },
    )
    appsmiles_user(appsmiles, user_id)
    return Person(email, CANARY_MSISDN, user_id, lead_id, ref, donations, loyalty, order_id)


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
        assert "text" not in donation  # a donor's free text may name them
        amounts.append(int(donation["amount"]["N"]))
    assert amounts == [5000, 2500]
    for pk in person.loyalty:
        record = item(stack, "LoyaltyTable", {"pk": {"S": pk}})
        assert record is not None
        assert "user_id" not in record
        assert record["state"]["S"] == "relayed"
    order = item(stack, "LicencesTable", {"pk": {"S": f"order#{person.licence_order}"}})
    assert order is not None
    assert "apps_miles_user_id" not in order
    assert order["state"]["S"] == "issued"


def test_the_event_file_erases_across_every_table_and_app_s_miles_then_a_repeat_is_harmless(stack, appsmiles):
    person = seed_person(stack, appsmiles)

    response = stack.invoke(FUNCTION, erasure_event(request_for(person)))

    assert response["statusCode"] == 200, response["body"]
    body = response_json(response)
    assert body["erased"] == {"leads": 1, "campaigns": 1, "donations": 2, "loyalty_records": 2, "licences": 1}
    assert body["appsmiles"] == "deleted"
    assert any("MiiMOSA" in note for note in body["notes"])
    assert_erased(stack, person)
    assert person.user_id not in appsmiles.users
    assert not [action for action in appsmiles.actions if action["partnerClientId"] == person.user_id]

    again = stack.invoke(FUNCTION, erasure_event(request_for(person)))

    assert again["statusCode"] == 200, again["body"]
    assert response_json(again)["erased"] == {
        "leads": 0,
        "campaigns": 0,
        "donations": 0,
        "loyalty_records": 0,
        "licences": 0,
    }
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
    assert multideletes(appsmiles) == 1


def test_one_identifier_erases_only_what_it_finds(stack, appsmiles):
    person = seed_person(
        stack, appsmiles, email=f"solo-{uuid.uuid4().hex[:8]}@example.org", user_id=f"amu-{uuid.uuid4().hex}"
    )

    response = stack.invoke(FUNCTION, erasure_event({"email": person.email}))

    body = response_json(response)
    assert body["erased"]["leads"] == 1
    assert body["appsmiles"] == "not_asked"
    assert multideletes(appsmiles) == 0
    assert item(stack, "LeadsTable", {"lead_id": {"S": person.lead_id}}) is None
    # The number and user id were not asked for: the campaign and loyalty records keep them.
    campaign = item(stack, "CampaignsTable", {"campaign_ref": {"S": person.campaign_ref}})
    assert campaign["apps_miles_user_id"]["S"] == person.user_id


def test_a_member_id_alone_erases_the_member_s_leads_too(stack, appsmiles):
    person = seed_person(
        stack, appsmiles, email=f"member-{uuid.uuid4().hex[:8]}@example.org", user_id=f"amu-{uuid.uuid4().hex}"
    )

    body = response_json(stack.invoke(FUNCTION, erasure_event({"appsMilesUserId": person.user_id})))

    assert body["erased"] == {"leads": 1, "campaigns": 1, "donations": 0, "loyalty_records": 2, "licences": 1}
    assert item(stack, "LeadsTable", {"lead_id": {"S": person.lead_id}}) is None
    assert body["appsmiles"] == "deleted"


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
    assert multideletes(appsmiles) == 0


def test_a_body_that_is_not_json_is_a_4xx(stack, appsmiles):
    response = stack.invoke(FUNCTION, erasure_event("{not json"))

    assert 400 <= response["statusCode"] < 500


def test_an_unsigned_request_is_refused(stack, appsmiles):
    person = seed_person(stack, appsmiles, user_id=f"amu-{uuid.uuid4().hex}")

    response = stack.invoke(FUNCTION, erasure_event(request_for(person), signed=False))

    assert response["statusCode"] == 403
    assert item(stack, "LeadsTable", {"lead_id": {"S": person.lead_id}}) is not None


def test_a_signed_caller_not_on_the_allow_list_is_refused(stack, appsmiles):
    person = seed_person(stack, appsmiles, user_id=f"amu-{uuid.uuid4().hex}")
    event = erasure_event(request_for(person))
    event["requestContext"]["authorizer"]["iam"]["userArn"] = "arn:aws:sts::123456789012:assumed-role/shop-backend2/x"

    response = stack.invoke(FUNCTION, event)

    assert response["statusCode"] == 403
    assert "allow-list" in json.loads(response["body"])["message"]
    assert item(stack, "LeadsTable", {"lead_id": {"S": person.lead_id}}) is not None


def test_the_erasure_requested_event_file_is_handled(stack, appsmiles):
    result = stack.invoke(FUNCTION, load_event("erasure/erasure_requested.json"))

    assert result["appsmiles"] == "unknown"
    assert set(result["erased"]) == {"leads", "campaigns", "donations", "loyalty_records", "licences"}


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
    assert person.user_id not in appsmiles.users


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


def break_multidelete(sandbox: AppsMilesSandbox, failure: str) -> None:
    """app's miles failing user/multidelete (every retry of the adapter too) in one of the ways it can."""
    if failure == "script_rejected":
        sandbox.script_answer(MULTIDELETE, {"errorCode": 10, "errorMsg": "Unknown application"})
    elif failure == "rate_limit":
        sandbox.faults.add("rate_limit", retry_after=7, count=10, path_prefix=MULTIDELETE)
    elif failure == "hang":
        sandbox.faults.add("hang", delay=1.0, count=10, path_prefix=MULTIDELETE)
    elif failure == "401":
        sandbox.faults.add("status", status=401, count=10, path_prefix=MULTIDELETE)
    else:
        sandbox.faults.add(failure, status=503, count=10, path_prefix=MULTIDELETE)


@pytest.mark.parametrize(
    ("failure", "status", "error", "retry_after"),
    [
        ("status", 503, "partner_unavailable", "30"),
        ("rate_limit", 503, "partner_unavailable", "7"),
        ("hang", 503, "partner_unavailable", "30"),
        ("malformed", 503, "partner_unavailable", "30"),
        ("401", 502, "partner_misconfigured", None),
        ("script_rejected", 502, "partner_rejected", None),
    ],
)
def test_app_s_miles_failing_answers_what_was_erased_locally(stack, appsmiles, failure, status, error, retry_after):
    person = seed_person(
        stack, appsmiles, email=f"down-{uuid.uuid4().hex[:8]}@example.org", user_id=f"amu-{uuid.uuid4().hex}"
    )
    break_multidelete(appsmiles, failure)

    response = stack.invoke(FUNCTION, erasure_event(request_for(person)))

    assert response["statusCode"] == status, response["body"]
    body = response_json(response)
    assert body["error"] == error
    assert body["erased"] == {"leads": 1, "campaigns": 1, "donations": 2, "loyalty_records": 2, "licences": 1}
    assert body["appsmiles"] is None
    assert_erased(stack, person)
    assert response["headers"].get("Retry-After") == retry_after
    assert person.user_id not in response["body"]
    assert person.user_id in appsmiles.users

    appsmiles.faults.clear()
    retried = response_json(stack.invoke(FUNCTION, erasure_event(request_for(person))))
    assert retried["appsmiles"] == "deleted", retried
    assert retried["erased"]["leads"] == 0
    assert person.user_id not in appsmiles.users


def retry_messages(stack, queue: str = "ErasureRetryQueue", *, visibility: int = 30) -> list[dict[str, Any]]:
    response = stack.boto3_client("sqs").receive_message(
        QueueUrl=stack.physical(queue), MaxNumberOfMessages=10, WaitTimeSeconds=1, VisibilityTimeout=visibility
    )
    return list(response.get("Messages", []))


def as_sqs_event(stack, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """events/erasure/retry_batch.json carrying the messages received from the retry queue."""
    event = load_event("erasure/retry_batch.json")
    template = event["Records"][0]
    event["Records"] = [
        template | {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"]}
        for m in messages
    ]
    return event


def purge(stack, *queues: str) -> None:
    """Delete what earlier tests left (PurgeQueue may run once a minute only)."""
    sqs = stack.boto3_client("sqs")
    for queue in queues:
        while messages := retry_messages(stack, queue, visibility=30):
            for message in messages:
                sqs.delete_message(QueueUrl=stack.physical(queue), ReceiptHandle=message["ReceiptHandle"])


def assert_no_identifier(text: str, person: Person) -> None:
    for value in (person.email, person.msisdn, person.user_id):
        assert value not in text


def test_the_committed_retry_batch_file_is_acknowledged_when_its_requests_are_gone(stack, appsmiles):
    result = stack.invoke(FUNCTION, load_event("erasure/retry_batch.json"))

    assert result == {"batchItemFailures": []}
    assert multideletes(appsmiles) == 0


def test_a_failed_event_erasure_is_kept_by_id_and_the_retry_queue_finishes_it(stack, appsmiles):
    person = seed_person(
        stack, appsmiles, email=f"dlq-{uuid.uuid4().hex[:8]}@example.org", user_id=f"amu-{uuid.uuid4().hex}"
    )
    appsmiles.faults.add("status", status=503, path_prefix=MULTIDELETE)
    purge(stack, "ErasureRetryQueue", "ErasureDLQ")
    event = load_event("erasure/erasure_requested.json")
    event["detail"] = request_for(person)

    # Through Lambda's asynchronous invoke, as the bus calls it: nothing fails, so no failure record is written.
    stack.invoke_async(FUNCTION, event)
    assert stack.drain_events(timeout=30)

    assert_erased(stack, person)
    assert person.user_id in appsmiles.users
    assert retry_messages(stack, "ErasureDLQ", visibility=0) == []
    (message,) = retry_messages(stack)
    request_id = json.loads(message["Body"])[MESSAGE_KEY]
    assert json.loads(message["Body"]) == {MESSAGE_KEY: request_id}
    assert_no_identifier(message["Body"], person)
    stored = item(stack, "ErasureRequestsTable", {"request_id": {"S": request_id}})
    assert stored is not None
    assert stored["request"]["M"]["appsMilesUserId"]["S"] == person.user_id

    # Still down: the message is reported failed and stays; then app's miles is back and the retry finishes.
    failed = stack.invoke(FUNCTION, as_sqs_event(stack, [message]))
    assert failed == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    appsmiles.faults.clear()
    done = stack.invoke(FUNCTION, as_sqs_event(stack, [message]))

    assert done == {"batchItemFailures": []}
    assert person.user_id not in appsmiles.users
    assert item(stack, "ErasureRequestsTable", {"request_id": {"S": request_id}}) is None


def test_a_deferred_erasure_that_never_succeeds_reaches_the_dlq_as_an_id(stack, appsmiles):
    person = seed_person(
        stack, appsmiles, email=f"dead-{uuid.uuid4().hex[:8]}@example.org", user_id=f"amu-{uuid.uuid4().hex}"
    )
    appsmiles.faults.add("status", status=503, path_prefix=MULTIDELETE)
    purge(stack, "ErasureRetryQueue", "ErasureDLQ")
    event = load_event("erasure/erasure_requested.json")
    event["detail"] = request_for(person)

    result = stack.invoke(FUNCTION, event)
    assert result["erased"]["leads"] == 1
    assert_no_identifier(json.dumps(result), person)

    # Every delivery fails; after the queue's maxReceiveCount SQS moves the message to ErasureDLQ.
    for _ in range(12):
        messages = retry_messages(stack, visibility=0)
        if not messages:
            break
        assert stack.invoke(FUNCTION, as_sqs_event(stack, messages))["batchItemFailures"]
    retry_messages(stack, visibility=0)  # the receive past maxReceiveCount is what moves it
    dead = retry_messages(stack, "ErasureDLQ", visibility=0)

    assert len(dead) == 1
    assert set(json.loads(dead[0]["Body"])) == {MESSAGE_KEY}
    assert_no_identifier(dead[0]["Body"], person)
    # Redriven (`hub dlq redrive ErasureDLQ` moves it back to the retry queue) once app's miles is back: done.
    appsmiles.faults.clear()
    assert stack.invoke(FUNCTION, as_sqs_event(stack, dead)) == {"batchItemFailures": []}
    assert person.user_id not in appsmiles.users


def test_when_even_keeping_the_request_fails_lambda_s_record_goes_to_the_retry_queue_and_is_erased(stack, appsmiles):
    person = seed_person(
        stack, appsmiles, email=f"last-{uuid.uuid4().hex[:8]}@example.org", user_id=f"amu-{uuid.uuid4().hex}"
    )
    appsmiles.faults.add("status", status=503, path_prefix=MULTIDELETE)
    purge(stack, "ErasureRetryQueue", "ErasureDLQ")
    env = stack.function_env(FUNCTION)
    stack.set_function_env(FUNCTION, {"ERASURE_REQUESTS_TABLE_NAME": "no-such-table"})
    reset_all()
    event = load_event("erasure/erasure_requested.json")
    event["detail"] = request_for(person)
    try:
        stack.invoke_async(FUNCTION, event)
        assert stack.drain_events(timeout=30)
    finally:
        stack.set_function_env(FUNCTION, env)
        reset_all()

    (message,) = retry_messages(stack)
    assert json.loads(message["Body"])["requestPayload"]["detail"] == request_for(person)
    assert retry_messages(stack, "ErasureDLQ", visibility=0) == []
    appsmiles.faults.clear()
    assert stack.invoke(FUNCTION, as_sqs_event(stack, [message])) == {"batchItemFailures": []}
    assert person.user_id not in appsmiles.users


def test_a_lambda_failure_record_redriven_from_the_dlq_is_erased_again(stack, appsmiles):
    person = seed_person(
        stack, appsmiles, email=f"rec-{uuid.uuid4().hex[:8]}@example.org", user_id=f"amu-{uuid.uuid4().hex}"
    )
    event = load_event("erasure/erasure_requested.json")
    event["detail"] = request_for(person)
    record = {"requestContext": {"condition": "RetriesExhausted"}, "requestPayload": event}
    batch = load_event("erasure/retry_batch.json")
    batch["Records"] = [batch["Records"][0] | {"body": json.dumps(record)}]

    assert stack.invoke(FUNCTION, batch) == {"batchItemFailures": []}
    assert_erased(stack, person)
    assert person.user_id not in appsmiles.users


def national(digits: str) -> str:
    """A French mobile number typed as people do at home: 06 12 34 56 78."""
    return "0" + " ".join([digits[0], *(digits[i : i + 2] for i in range(1, 9, 2))])


@pytest.mark.parametrize("typed_as", ["national", "international"])
def test_erasure_by_a_number_finds_the_lead_whatever_form_it_was_typed_in(stack, appsmiles, typed_as):
    digits = "6" + str(uuid.uuid4().int)[:8]
    international = f"+33 {digits}"
    stored, asked = (national(digits), international) if typed_as == "national" else (international, national(digits))
    response = stack.invoke(
        "LeadIntakeFunction",
        post_event(lead_fields(email=f"ph-{uuid.uuid4().hex[:8]}@example.org", phone=stored)),
    )
    lead_id = response_json(response)["lead_id"]
    lead = item(stack, "LeadsTable", {"lead_id": {"S": lead_id}})
    assert lead is not None
    assert lead["phone_key"]["S"] == f"33{digits}"
    assert lead["lead"]["M"]["phone"]["S"] == stored  # MiiMOSA gets the number as typed

    response = stack.invoke(FUNCTION, erasure_event({"msisdn": asked}))

    assert response["statusCode"] == 200, response["body"]
    assert response_json(response)["erased"]["leads"] == 1
    assert item(stack, "LeadsTable", {"lead_id": {"S": lead_id}}) is None


def test_erasure_by_e_mail_finds_a_lead_whatever_its_case_and_unicode_form(stack, appsmiles):
    tag = uuid.uuid4().hex[:8]
    # Typed with a decomposed ë (e + combining diaeresis) and capitals; erased with the composed, lower-case form.
    response = stack.invoke("LeadIntakeFunction", post_event(lead_fields(email=f"ZOE\u0308-{tag}@Example.org")))
    assert response["statusCode"] in (201, 202), response["body"]
    lead_id = response_json(response)["lead_id"]

    response = stack.invoke(FUNCTION, erasure_event({"email": f"zo\u00eb-{tag}@example.org"}))

    assert response_json(response)["erased"]["leads"] == 1
    assert item(stack, "LeadsTable", {"lead_id": {"S": lead_id}}) is None


def test_no_dead_letter_queue_holds_personal_data_after_a_failed_erasure_by_event(stack, appsmiles):
    """The privacy check over DLQ bodies: a person with the seeded canaries as identifiers, an erasure by event
    while app's miles is down, then every DLQ of the template (and the retry queue) searched for the canaries
    and for anything shaped like an e-mail address."""
    seed_person(stack, appsmiles)  # CANARY_EMAIL, CANARY_MSISDN, CANARY_APPSMILES_USER
    appsmiles.faults.add("status", status=503, path_prefix=MULTIDELETE)
    event = load_event("erasure/erasure_requested.json")
    event["detail"] = {"email": CANARY_EMAIL, "msisdn": CANARY_MSISDN, "appsMilesUserId": CANARY_USER}
    stack.invoke_async(FUNCTION, event)
    assert stack.drain_events(timeout=30)

    detector = LeakDetector(canaries=named_canaries(canaries.ALL))
    sqs = stack.boto3_client("sqs")
    bodies = []
    for queue in [*dead_letter_queues(ROOT / "template.yaml"), "ErasureRetryQueue"]:
        url = stack.physical(queue)
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
        for message in messages:
            bodies.append(message["Body"])
            detector.scan(message["Body"], f"{queue} message")
            assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", message["Body"]), queue
    assert detector.report() == []
    assert any(MESSAGE_KEY in body for body in bodies)  # the failed erasure is there, by its id
