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


# The member each seeded owning record names, by the event's key (param1).
MEMBERS: dict[str, str] = {}
# The events flag a member and name its owning record; the relay reads the member id there.
MEMBER_FLAGS = ("appsMilesMember", "apps_miles_member")


def new_member() -> str:
    return f"member-{uuid.uuid4().hex[:12]}"


def seed_owner(stack: LocalStack, detail: dict[str, Any], member: str | None) -> None:
    """The record an event's member is read from, as lead intake, the campaign lifecycle or licence issuance wrote
    it: its key, and the member id when there is one."""
    extra = {"apps_miles_user_id": {"S": member}} if member else {}
    if "lead_id" in detail:
        table, item = "LeadsTable", {"lead_id": {"S": detail["lead_id"]}}
    elif "order_id" in detail:
        table, item = (
            "LicencesTable",
            {"pk": {"S": f"order#{detail['order_id']}"}, "order_id": {"S": detail["order_id"]}},
        )
    else:
        table, item = "CampaignsTable", {"campaign_ref": {"S": detail["campaign"]}}
    stack.boto3_client("dynamodb").put_item(TableName=stack.physical(table), Item=item | extra)


def event_key(detail: dict[str, Any]) -> str:
    return str(detail.get("eventId") or detail.get("lead_id") or detail.get("order_id"))


def batch(stack: LocalStack, name: str, *, member: str | None = None, **detail_changes: Any) -> dict[str, Any]:
    """An events/loyalty_relay batch whose events are new (fresh keys), with `detail_changes` in every detail; each
    event that flags a member gets its owning record, naming `member` (a new one when not given)."""
    event = load_event(f"loyalty_relay/{name}.json")
    for record in event["Records"]:
        body = json.loads(record["body"])
        body["id"] = str(uuid.uuid4())
        for field in ("eventId", "lead_id", "order_id"):
            if field in body["detail"]:
                body["detail"][field] = f"{field}-{uuid.uuid4()}"
        if "campaign" in body["detail"]:
            body["detail"]["campaign"] = f"1/hjerte/t{uuid.uuid4().hex[:10]}"
        body["detail"] |= detail_changes
        if any(body["detail"].get(flag) is True for flag in MEMBER_FLAGS):
            MEMBERS[event_key(body["detail"])] = owner = member or new_member()
            seed_owner(stack, body["detail"], owner)
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
    event = batch(stack, "donation_received_batch")
    member, anonymous = (detail_of(record) for record in event["Records"])
    assert "appsMilesUserId" not in member

    response = stack.invoke(RELAY, event)

    assert failures(response) == []
    [action] = actions_for(appsmiles, member["eventId"])
    # The member id comes from the campaign the donation went to.
    assert (action["partnerClientId"], action["tagId"]) == (MEMBERS[member["eventId"]], "DONATION")
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
    events = [batch(stack, "lead_captured_batch", member=member) for _ in range(4)]
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
    other = batch(stack, "lead_captured_batch")
    assert failures(relay_with_env(stack, other, MEMBER_ACTIONS_PER_DAY="2")) == []
    assert len(actions_for(appsmiles, detail_of(other["Records"][0])["lead_id"])) == 1


@pytest.mark.parametrize(
    ("name", "tag_id", "key_field"),
    [("lead_captured_batch", "LEAD", "lead_id"), ("licence_issued_batch", "LICENCE", "order_id")],
)
def test_each_event_type_earns_its_configured_action(stack, appsmiles, name, tag_id, key_field):
    event = batch(stack, name)
    detail = detail_of(event["Records"][0])
    assert "apps_miles_user_id" not in detail
    assert "customer_reference" not in detail

    assert failures(stack.invoke(RELAY, event)) == []

    [action] = actions_for(appsmiles, detail[key_field])
    assert (action["partnerClientId"], action["tagId"]) == (MEMBERS[detail[key_field]], tag_id)


def test_an_action_app_s_miles_has_but_we_did_not_record_counts_as_relayed_once(stack, appsmiles):
    event = batch(stack, "licence_issued_batch")
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
    event = batch(stack, "donation_received_batch")
    broken = copy.deepcopy(event["Records"][0]) | {"messageId": "broken-1", "body": "{not json"}
    event["Records"].insert(0, broken)
    member = detail_of(event["Records"][1])

    response = stack.invoke(RELAY, event)

    assert failures(response) == ["broken-1"]
    assert len(actions_for(appsmiles, member["eventId"])) == 1


def test_a_final_refusal_is_recorded_and_acknowledged(stack, appsmiles):
    event = batch(stack, "licence_issued_batch")
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
    details = [detail_of(record) for record in batch(stack, "donation_received_batch")["Records"]]
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
    # What waits in the DLQ names the campaign, not the member.
    assert all(MEMBERS[details[0]["eventId"]] not in message["Body"] for message in dead)
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
        assert failures(stack.invoke(RELAY, batch(stack, "lead_captured_batch"))) == []
    assert appsmiles.auth_calls == before + 1

    appsmiles.revoke_tokens()
    assert failures(stack.invoke(RELAY, batch(stack, "lead_captured_batch"))) == []
    assert appsmiles.auth_calls == before + 2


def test_multistore_sends_one_call_for_a_batch_of_one_tag(stack, appsmiles):
    events = [batch(stack, "lead_captured_batch") for _ in range(3)]
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


def test_an_event_whose_owning_record_names_no_member_any_more_earns_nothing(stack, appsmiles):
    erased, gone = batch(stack, "lead_captured_batch"), batch(stack, "lead_captured_batch")
    erased_detail, gone_detail = detail_of(erased["Records"][0]), detail_of(gone["Records"][0])
    # Erasure removed the member id from the lead; the other lead left with its TTL.
    seed_owner(stack, erased_detail, None)
    stack.boto3_client("dynamodb").delete_item(
        TableName=stack.physical("LeadsTable"), Key={"lead_id": {"S": gone_detail["lead_id"]}}
    )

    for event in (erased, gone):
        assert failures(stack.invoke(RELAY, event)) == []

    assert actions_for(appsmiles, erased_detail["lead_id"]) == []
    assert actions_for(appsmiles, gone_detail["lead_id"]) == []
    assert relay_record(stack, erased_detail["lead_id"]) is None


def test_an_unreadable_owning_table_leaves_the_event_to_the_queue(stack, appsmiles):
    event = batch(stack, "licence_issued_batch")
    key = detail_of(event["Records"][0])["order_id"]

    response = relay_with_env(stack, event, LICENCES_TABLE_NAME="no-such-table")

    assert failures(response) == [event["Records"][0]["messageId"]]
    assert actions_for(appsmiles, key) == []
    # The next delivery, with the table readable again, is relayed.
    assert failures(stack.invoke(RELAY, event)) == []
    assert len(actions_for(appsmiles, key)) == 1


def test_an_event_queued_before_events_carried_ids_only_still_relays(stack, appsmiles):
    member = new_member()
    event = batch(stack, "lead_captured_batch", apps_miles_member=None, apps_miles_user_id=member)
    key = detail_of(event["Records"][0])["lead_id"]

    assert failures(stack.invoke(RELAY, event)) == []

    [action] = actions_for(appsmiles, key)
    assert action["partnerClientId"] == member
