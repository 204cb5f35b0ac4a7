"""A lead is at MiiMOSA exactly once across a failed write of MiiMOSA's yes, a resubmit and the safety net."""

from __future__ import annotations

import json
import time
from collections import Counter

from tests.conftest import load_event
from tests.integration.conftest import lead_fields, post_event, response_json
from tests.integration.test_lead_intake import lead_item
from tests.integration.test_time_budgets import _failing_forwarded_settles

FUNCTION = "LeadIntakeFunction"


def queue_event(*bodies):
    """events/lead_intake/retry_batch.json carrying the given retry-queue message bodies."""
    event = load_event("lead_intake/retry_batch.json")
    template = event["Records"][0]
    event["Records"] = [
        {**template, "messageId": f"msg-{index}", "body": json.dumps(body)} for index, body in enumerate(bodies)
    ]
    return event


def queued_bodies(stack):
    sqs = stack.boto3_client("sqs")
    url = stack.physical("LeadRetryQueue")
    bodies = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


def delayed(stack):
    attributes = stack.boto3_client("sqs").get_queue_attributes(
        QueueUrl=stack.physical("LeadRetryQueue"), AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesDelayed"])


def at_miimosa(miimosa, fields):
    return Counter(lead["campaign_id"] for lead in miimosa.leads)[fields["campaign_id"]]


def lease_runs_out(stack, lead_id):
    """As if the attempt's lease (or the uncertain lead's extra lease) had passed: no test waits 30 s."""
    stack.boto3_client("dynamodb").update_item(
        TableName=stack.physical("LeadsTable"),
        Key={"lead_id": {"S": lead_id}},
        UpdateExpression="SET lease_until = :past",
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )


def submitted_through_a_write_fault(stack, miimosa, monkeypatch):
    sqs = stack.boto3_client("sqs")
    queued_bodies(stack)  # whatever earlier tests left (PurgeQueue allows one call a minute)
    if delayed(stack):
        sqs.purge_queue(QueueUrl=stack.physical("LeadRetryQueue"))
    failures = _failing_forwarded_settles(monkeypatch, 1000)
    fields = lead_fields()
    first = stack.invoke(FUNCTION, post_event(fields))
    again = stack.invoke(FUNCTION, post_event(fields))  # the visitor resubmits all the same
    assert first["statusCode"] == again["statusCode"] == 202
    lead_id = response_json(first)["lead_id"]
    assert response_json(again)["lead_id"] == lead_id
    failures["left"] = 0  # DynamoDB takes writes again
    bodies = queued_bodies(stack)
    safety_net = {"lead_id": lead_id}
    accepted = next(body for body in bodies if "accepted" in body)
    assert sorted(map(json.dumps, bodies)) == sorted(map(json.dumps, [safety_net, accepted]))
    assert at_miimosa(miimosa, fields) == 1
    return fields, lead_id, safety_net, accepted


def test_the_acceptance_is_recorded_late_and_the_safety_net_then_drops_the_lead(stack, miimosa, monkeypatch):
    fields, lead_id, safety_net, accepted = submitted_through_a_write_fault(stack, miimosa, monkeypatch)
    assert stack.invoke(FUNCTION, queue_event(accepted)) == {"batchItemFailures": []}
    item = lead_item(stack, lead_id)
    assert item["status"]["S"] == "forwarded"
    assert "partner_reference" in item
    lease_runs_out(stack, lead_id)
    assert stack.invoke(FUNCTION, queue_event(safety_net)) == {"batchItemFailures": []}
    assert at_miimosa(miimosa, fields) == 1


def test_a_safety_net_finding_an_expired_lease_waits_a_lease_for_the_late_record(stack, miimosa, monkeypatch):
    fields, lead_id, safety_net, accepted = submitted_through_a_write_fault(stack, miimosa, monkeypatch)
    lease_runs_out(stack, lead_id)
    # The safety net comes first: the lead is uncertain, so it is not forwarded but comes back a lease later.
    assert stack.invoke(FUNCTION, queue_event(safety_net)) == {"batchItemFailures": []}
    assert at_miimosa(miimosa, fields) == 1
    item = lead_item(stack, lead_id)
    assert item["status"]["S"] == "forwarding"
    assert "uncertain_since" in item
    assert delayed(stack) == 1  # the safety net again, a lease later
    later = safety_net
    assert stack.invoke(FUNCTION, queue_event(accepted)) == {"batchItemFailures": []}
    lease_runs_out(stack, lead_id)
    assert stack.invoke(FUNCTION, queue_event(later)) == {"batchItemFailures": []}
    assert lead_item(stack, lead_id)["status"]["S"] == "forwarded"
    assert at_miimosa(miimosa, fields) == 1


def test_an_uncertain_lead_is_forwarded_again_only_after_its_extra_lease(stack, miimosa, monkeypatch):
    # The trade-off (docs/exactly-once.md): with the acceptance lost as well, a lead that may be at MiiMOSA is
    # forwarded again after one more lease rather than risk never reaching it.
    fields, lead_id, safety_net, _lost = submitted_through_a_write_fault(stack, miimosa, monkeypatch)
    lease_runs_out(stack, lead_id)
    assert stack.invoke(FUNCTION, queue_event(safety_net)) == {"batchItemFailures": []}
    assert delayed(stack) == 1
    # A duplicate delivery within the extra lease leaves it alone.
    assert stack.invoke(FUNCTION, queue_event(safety_net)) == {"batchItemFailures": [{"itemIdentifier": "msg-0"}]}
    assert at_miimosa(miimosa, fields) == 1
    lease_runs_out(stack, lead_id)
    assert stack.invoke(FUNCTION, queue_event(safety_net)) == {"batchItemFailures": []}
    assert lead_item(stack, lead_id)["status"]["S"] == "forwarded"
    assert "uncertain_since" not in lead_item(stack, lead_id)
    assert at_miimosa(miimosa, fields) == 2
