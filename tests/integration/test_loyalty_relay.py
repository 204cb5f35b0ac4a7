"""Loyalty relay against the local stack and the app's miles sandbox: the real events/ batches, exactly once."""

from __future__ import annotations

import copy
import json
import uuid
from typing import Any

import pytest

from hub_core.caches import reset_all
from hub_local.stack import LocalStack
from tests.canaries import APPSMILES_SECRET
from tests.conftest import ROOT, load_event
from tests.integration.conftest import FUNCTION_OVERRIDES

RELAY = "LoyaltyRelayFunction"
QUEUE = "LoyaltyActionsQueue"
DLQ = "LoyaltyActionsDLQ"
MAX_RECEIVES = 3


@pytest.fixture(scope="module")
def stack():
    with LocalStack(
        ROOT / "template.yaml",
        gateway_port=None,
        pump_queues=False,
        sqs_retry_seconds=0,
        parameter_overrides={"LoyaltyRetryMaxReceives": str(MAX_RECEIVES)},
        environ={"APPSMILES_PARTNER_SECRET": APPSMILES_SECRET},
        function_overrides=FUNCTION_OVERRIDES | {"APPSMILES_READ_TIMEOUT": "0.4", "APPSMILES_CONNECT_TIMEOUT": "0.4"},
    ) as local:
        yield local


@pytest.fixture
def appsmiles(stack):
    sandbox = stack.sandboxes["appsmiles"]
    sandbox.faults.clear()
    yield sandbox
    sandbox.faults.clear()


def batch(name: str, **detail_changes: Any) -> dict[str, Any]:
    """An events/loyalty_relay batch whose events are new (fresh keys), with `detail_changes` in every detail."""
    event = load_event(f"loyalty_relay/{name}.json")
    for record in event["Records"]:
        body = json.loads(record["body"])
        body["id"] = str(uuid.uuid4())
        for field in ("eventId", "lead_id", "order_id"):
            if field in body["detail"]:
                body["detail"][field] = f"{field}-{uuid.uuid4()}"
        body["detail"] |= detail_changes
        record["body"] = json.dumps(body)
        record["messageId"] = str(uuid.uuid4())
    return event


def detail_of(record: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(record["body"])["detail"])


def actions_for(appsmiles: Any, param1: str) -> list[dict[str, Any]]:
    return [action for action in appsmiles.actions if action["param1"] == param1]


def relay_record(stack: LocalStack, key: str) -> dict[str, Any] | None:
    item = stack.boto3_client("dynamodb").get_item(
        TableName=stack.physical("LoyaltyTable"), Key={"pk": {"S": f"event#{key}"}}, ConsistentRead=True
    )
    return item.get("Item")


def failures(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def test_a_donation_by_a_member_becomes_one_action_and_an_anonymous_one_is_skipped(stack, appsmiles):
    event = batch("donation_received_batch")
    member, anonymous = (detail_of(record) for record in event["Records"])

    response = stack.invoke(RELAY, event)

    assert failures(response) == []
    [action] = actions_for(appsmiles, member["eventId"])
    assert (action["partnerClientId"], action["tagId"]) == (member["appsMilesUserId"], "DONATION")
    assert relay_record(stack, member["eventId"])["state"] == {"S": "relayed"}
    assert actions_for(appsmiles, anonymous["eventId"]) == []
    assert relay_record(stack, anonymous["eventId"]) is None


def relay_with_env(stack: LocalStack, event: dict[str, Any], **overrides: str) -> dict[str, Any]:
    saved = dict(stack._function_envs[RELAY])
    stack._function_envs[RELAY] |= overrides
    try:
        reset_all()
        return stack.invoke(RELAY, event)
    finally:
        stack._function_envs[RELAY] = saved
        reset_all()


def test_a_member_earns_no_more_actions_a_day_than_the_cap(stack, appsmiles):
    member = f"member-{uuid.uuid4().hex[:12]}"
    events = [batch("lead_captured_batch", apps_miles_user_id=member) for _ in range(4)]
    keys = [detail_of(event["Records"][0])["lead_id"] for event in events]

    responses = [relay_with_env(stack, event, MEMBER_ACTIONS_PER_DAY="2") for event in events]

    assert [failures(response) for response in responses] == [[], [], [], []]
    assert [len(actions_for(appsmiles, key)) for key in keys] == [1, 1, 0, 0]
    # A capped event is acknowledged (not retried into the DLQ) and leaves no record that it was relayed.
    assert relay_record(stack, keys[2]) is None
    # The allowance counts events, not deliveries: the first one delivered again is a duplicate, not a third.
    again = relay_with_env(stack, copy.deepcopy(events[0]), MEMBER_ACTIONS_PER_DAY="2")
    assert failures(again) == []
    assert len(actions_for(appsmiles, keys[0])) == 1
    # Another member is not held back by this one's cap.
    other = batch("lead_captured_batch", apps_miles_user_id=f"member-{uuid.uuid4().hex[:12]}")
    assert failures(relay_with_env(stack, other, MEMBER_ACTIONS_PER_DAY="2")) == []
    assert len(actions_for(appsmiles, detail_of(other["Records"][0])["lead_id"])) == 1


def test_a_retried_delivery_does_not_use_up_the_allowance(stack, appsmiles):
    member = f"member-{uuid.uuid4().hex[:12]}"
    first, second = (batch("lead_captured_batch", apps_miles_user_id=member) for _ in range(2))
    appsmiles.faults.add("status", status=503)
    deferred = relay_with_env(stack, first, MEMBER_ACTIONS_PER_DAY="2")
    assert failures(deferred) == [first["Records"][0]["messageId"]]
    appsmiles.faults.clear()
    for event in (first, first, second):
        assert failures(relay_with_env(stack, copy.deepcopy(event), MEMBER_ACTIONS_PER_DAY="2")) == []
    for event in (first, second):
        assert len(actions_for(appsmiles, detail_of(event["Records"][0])["lead_id"])) == 1


@pytest.mark.parametrize(
    ("name", "tag_id", "key_field"),
    [("lead_captured_batch", "LEAD", "lead_id"), ("licence_issued_batch", "LICENCE", "order_id")],
)
def test_each_event_type_earns_its_configured_action(stack, appsmiles, name, tag_id, key_field):
    event = batch(name)
    detail = detail_of(event["Records"][0])

    assert failures(stack.invoke(RELAY, event)) == []

    [action] = actions_for(appsmiles, detail[key_field])
    assert (action["partnerClientId"], action["tagId"]) == (detail["apps_miles_user_id"], tag_id)


def test_the_same_event_twice_is_one_action(stack, appsmiles):
    event = batch("lead_captured_batch")
    twice_in_one_batch = copy.deepcopy(event)
    twice_in_one_batch["Records"].append(event["Records"][0] | {"messageId": str(uuid.uuid4())})
    key = detail_of(event["Records"][0])["lead_id"]

    assert failures(stack.invoke(RELAY, twice_in_one_batch)) == []
    assert failures(stack.invoke(RELAY, event)) == []

    assert len(actions_for(appsmiles, key)) == 1


def test_an_action_app_s_miles_has_but_we_did_not_record_counts_as_relayed_once(stack, appsmiles):
    event = batch("licence_issued_batch")
    key = detail_of(event["Records"][0])["order_id"]
    assert failures(stack.invoke(RELAY, event)) == []
    # As if the first attempt died between app's miles' answer and our record.
    stack.boto3_client("dynamodb").delete_item(
        TableName=stack.physical("LoyaltyTable"), Key={"pk": {"S": f"event#{key}"}}
    )

    assert failures(stack.invoke(RELAY, event)) == []

    assert len(actions_for(appsmiles, key)) == 1
    assert relay_record(stack, key)["state"] == {"S": "already_recorded"}


def test_one_unreadable_record_fails_alone(stack, appsmiles):
    event = batch("donation_received_batch")
    broken = copy.deepcopy(event["Records"][0]) | {"messageId": "broken-1", "body": "{not json"}
    event["Records"].insert(0, broken)
    member = detail_of(event["Records"][1])

    response = stack.invoke(RELAY, event)

    assert failures(response) == ["broken-1"]
    assert len(actions_for(appsmiles, member["eventId"])) == 1


def test_a_final_refusal_is_recorded_and_acknowledged(stack, appsmiles):
    event = batch("licence_issued_batch")
    key = detail_of(event["Records"][0])["order_id"]
    points = appsmiles.tags.pop("LICENCE")
    try:
        response = stack.invoke(RELAY, event)
    finally:
        appsmiles.tags["LICENCE"] = points

    assert failures(response) == []
    record = relay_record(stack, key)
    assert record["state"] == {"S": "rejected"}
    assert record["code"] == {"N": "104"}
    # Acknowledged for good: the next delivery of the same event does not try again.
    assert failures(stack.invoke(RELAY, event)) == []
    assert actions_for(appsmiles, key) == []


def test_events_on_the_bus_reach_app_s_miles_and_an_outage_ends_in_the_dlq_then_redrives(stack, appsmiles):
    details = [detail_of(record) for record in batch("donation_received_batch")["Records"]]
    entries = [
        {"Source": "partner-hub.donation-ingester", "DetailType": "DonationReceived", "Detail": json.dumps(detail)}
        for detail in details
    ]
    appsmiles.faults.add("status", status=503)
    stack.put_events(entries)
    assert stack.drain_events()
    assert stack.drain(QUEUE, timeout=30)

    sqs = stack.boto3_client("sqs")
    dead = sqs.receive_message(QueueUrl=stack.physical(DLQ), MaxNumberOfMessages=10, WaitTimeSeconds=0)["Messages"]
    # Only the member's donation failed: the anonymous one was skipped, not retried.
    assert [json.loads(m["Body"])["detail"]["eventId"] for m in dead] == [details[0]["eventId"]]
    assert actions_for(appsmiles, details[0]["eventId"]) == []

    appsmiles.faults.clear()
    for message in dead:
        sqs.send_message(QueueUrl=stack.physical(QUEUE), MessageBody=message["Body"])
        sqs.delete_message(QueueUrl=stack.physical(DLQ), ReceiptHandle=message["ReceiptHandle"])
    assert stack.drain(QUEUE, timeout=30)

    assert len(actions_for(appsmiles, details[0]["eventId"])) == 1


def test_one_token_serves_many_invocations_and_a_revoked_one_is_replaced_once(stack, appsmiles):
    reset_all()
    before = appsmiles.auth_calls
    for _ in range(5):
        assert failures(stack.invoke(RELAY, batch("lead_captured_batch"))) == []
    assert appsmiles.auth_calls == before + 1

    appsmiles.revoke_tokens()
    assert failures(stack.invoke(RELAY, batch("lead_captured_batch"))) == []
    assert appsmiles.auth_calls == before + 2


def test_multistore_sends_one_call_for_a_batch_of_one_tag(stack, appsmiles):
    events = [batch("lead_captured_batch") for _ in range(3)]
    combined = {"Records": [record for event in events for record in event["Records"]]}
    keys = [detail_of(record)["lead_id"] for record in combined["Records"]]
    stack.set_function_env(RELAY, {"APPSMILES_MULTISTORE": "true"})
    reset_all()
    try:
        appsmiles.clear_requests()
        assert failures(stack.invoke(RELAY, combined)) == []
    finally:
        stack.set_function_env(RELAY, {"APPSMILES_MULTISTORE": "false"})
        reset_all()

    assert [len(actions_for(appsmiles, key)) for key in keys] == [1, 1, 1]
    paths = [request.path for request in appsmiles.requests]
    assert paths.count("/generosity/multistore") == 1
    assert "/buffer/store" not in paths
