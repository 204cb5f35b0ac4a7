"""A burst of licence orders of one product and type: every order gets its licence, none reaches a DLQ."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

from licence_issuance import app
from licence_issuance.services import services
from licence_issuance.settings import settings
from tests.integration.test_licence_issuance import FUNCTION, bridge_event, licences_for, order, table_item

BURST = 20


def _empty(stack, queue: str) -> bool:
    attributes = stack.boto3_client("sqs").get_queue_attributes(
        QueueUrl=stack.physical(queue), AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return attributes["ApproximateNumberOfMessages"] == "0"


def test_twenty_simultaneous_orders_of_one_kind_give_twenty_licences_and_no_dead_letter(stack, mlm, monkeypatch):
    for name, value in stack.function_env(FUNCTION).items():
        monkeypatch.setenv(name, value)
    sqs = stack.boto3_client("sqs")
    for queue in ("LicenceRequestDLQ", "LicenceRetryDLQ", "LicenceRetryQueue"):
        sqs.purge_queue(QueueUrl=stack.physical(queue))
    orders = [order(product_id=3, licence_type=2, url=f"https://burst{i}.example.org") for i in range(BURST)]

    def arrive(fields):
        # Lambda's asynchronous invocations of one burst: all at once, each in its own container.
        try:
            return app.handle_licence_requested(bridge_event(fields))
        except Exception as exc:  # what would make Lambda retry (and, twice later, dead-letter)
            return {"raised": type(exc).__name__}

    with ThreadPoolExecutor(max_workers=BURST) as pool:
        outcomes = list(pool.map(arrive, orders))
    assert not [outcome for outcome in outcomes if "raised" in outcome]
    # Those whose turn did not come in time are on the retry queue; it hands them back one by one.
    assert stack.drain("LicenceRetryQueue", timeout=60)
    for fields in orders:
        assert table_item(stack, f"order#{fields['order_id']}")["state"]["S"] == "issued", fields["order_id"]
    made = licences_for(mlm, 3, 2)
    assert len(made) == BURST
    assert len({licence["id"] for licence in made}) == BURST
    assert _empty(stack, "LicenceRequestDLQ")
    assert _empty(stack, "LicenceRetryDLQ")


def test_the_lease_is_the_functions_timeout_so_a_killed_attempt_frees_the_turn_within_it(stack, monkeypatch):
    for name, value in stack.function_env(FUNCTION).items():
        monkeypatch.setenv(name, value)
    timeout = stack.function(FUNCTION).timeout
    assert settings().create_lease_seconds == timeout
    now = int(time.time())
    # An attempt Lambda killed never ends its turn: its lease alone frees it.
    assert services().store.take_turn(4, 4, holder="killed", now=now, lease_seconds=settings().create_lease_seconds)
    assert not services().store.take_turn(4, 4, holder="next", now=now + int(timeout), lease_seconds=1)
    assert services().store.take_turn(4, 4, holder="next", now=now + int(timeout) + 1, lease_seconds=1)
    services().store.end_turn(4, 4, holder="next")


def test_a_requeued_order_waits_in_the_table_and_its_message_carries_only_an_id(stack, mlm, monkeypatch):
    import json  # noqa: PLC0415

    from licence_issuance import requeue  # noqa: PLC0415
    from tests.canaries import CANARY_EMAIL  # noqa: PLC0415

    for name, value in stack.function_env(FUNCTION).items():
        monkeypatch.setenv(name, value)
    sqs = stack.boto3_client("sqs")
    queue = stack.physical("LicenceRetryQueue")
    assert stack.drain("LicenceRetryQueue", timeout=30)  # another test's waits (PurgeQueue allows one a minute)
    event = bridge_event(order(customer_reference=CANARY_EMAIL))
    requeue.requeue(services(), event, 0)

    (message,) = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=2).get("Messages", [])
    body = json.loads(message["Body"])
    # Neither this queue nor its DLQ holds the shop's customer reference or a member id: an id and a count.
    assert set(body) == {requeue.WAITING_ID, "requeues"}
    assert CANARY_EMAIL not in message["Body"]
    waiting = table_item(stack, f"waiting#{body[requeue.WAITING_ID]}")
    assert int(waiting["expires_at"]["N"]) > time.time()

    handled = []
    record = {"messageId": message["MessageId"], "body": message["Body"], "eventSource": "aws:sqs",
              "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:LicenceRetryQueue",
              "receiptHandle": message["ReceiptHandle"], "attributes": {}, "messageAttributes": {}}  # fmt: skip
    answer = requeue.handle_batch(
        services(), {"Records": [record]}, None, lambda event, requeues: handled.append(event)
    )
    assert answer == {"batchItemFailures": []}
    assert handled == [event]
    assert table_item(stack, f"waiting#{body[requeue.WAITING_ID]}") is None
    # A second delivery of the same message (at least once) finds nothing left to run, and is acknowledged.
    assert requeue.handle_batch(
        services(), {"Records": [record]}, None, lambda event, requeues: handled.append(event)
    ) == {"batchItemFailures": []}
    assert len(handled) == 1
