"""Pimenko MLM down or slow while LicenceRequested events arrive: Lambda's asynchronous retries, then the DLQ, then
the operator's redrive — and in the end exactly one licence per order at Pimenko."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from hub_cli.app import main as hub
from hub_core.caches import reset_all
from licence_issuance.settings import LicenceSettings
from tests.conftest import load_event
from tests.resilience.conftest import READ_TIMEOUT, unique

pytestmark = pytest.mark.e2e

ORDERS = 3


def order_event(order_id: str) -> dict[str, Any]:
    event = load_event("licence_issuance/licence_requested.json")
    event["detail"] |= {"order_id": order_id, "url": f"https://{order_id}.moodle.example.org"}
    return {"Source": event["source"], "DetailType": event["detail-type"], "Detail": event["detail"]}


def licences_at_pimenko(mlm: Any, order_id: str) -> int:
    url = f"https://{order_id}.moodle.example.org"
    return sum(1 for licence in mlm.licences if any(site["url"] == url for site in licence["sites"]))


# Where a failed order waits for the operator: Lambda's OnFailure destination of the event, or, for an order whose
# turn did not come (it was re-queued for a later one), the retry queue's own DLQ.
ORDER_DLQS = ("LicenceRequestDLQ", "LicenceRetryDLQ")


def dlq_depth(live: Any) -> int:
    sqs = live.boto3_client("sqs")
    return sum(
        int(value)
        for queue in ORDER_DLQS
        for value in sqs.get_queue_attributes(
            QueueUrl=live.physical(queue),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"].values()
    )


def _order_of(live: Any, body: dict[str, Any]) -> str:
    if "waiting_id" in body:  # a re-queued order: the message holds an id, the order waits in LicencesTable
        item = live.boto3_client("dynamodb").get_item(
            TableName=live.physical("LicencesTable"), Key={"pk": {"S": f"waiting#{body['waiting_id']}"}}
        )["Item"]
        return str(json.loads(item["event"]["S"])["detail"]["order_id"])
    return str(body.get("requestPayload", body)["detail"]["order_id"])


def dlq_orders(live: Any) -> set[str]:
    """The orders the DLQs hold, without taking them out."""
    sqs = live.boto3_client("sqs")
    orders: set[str] = set()
    for queue in ORDER_DLQS:
        for _ in range(10):  # SQS hands out 10 at a time, and not always all it holds
            received = sqs.receive_message(
                QueueUrl=live.physical(queue), MaxNumberOfMessages=10, VisibilityTimeout=0
            ).get("Messages", [])
            orders |= {_order_of(live, json.loads(message["Body"])) for message in received}
    return orders


def settle(live: Any) -> bool:
    """Every event routed, and whether every re-queued order has run (or been dead-lettered) too: a re-queued order
    that failed comes back only after the queue's visibility timeout, so that may take longer than one call."""
    assert live.drain_events(timeout=60)
    drained = live.drain("LicenceRetryQueue", timeout=30)
    assert live.drain_events(timeout=60)
    return drained


def redrive(live: Any) -> None:
    for queue in ORDER_DLQS:
        assert hub(["--url", live.gateway_url, "dlq", "redrive", queue]) == 0
    settle(live)


OUTAGE_REQUEUES = 1


@contextlib.contextmanager
def licence_requeues(live: Any, most: int) -> Iterator[None]:
    """The licence function re-queues an order at most `most` times (a configuration update: new containers)."""
    before = live.function_env("LicenceIssuanceFunction").get("LICENCE_MAX_REQUEUES")
    live.set_function_env("LicenceIssuanceFunction", {"LICENCE_MAX_REQUEUES": str(most)})
    reset_all()
    try:
        yield
    finally:
        default = str(LicenceSettings.model_fields["licence_max_requeues"].default)
        live.set_function_env("LicenceIssuanceFunction", {"LICENCE_MAX_REQUEUES": before or default})
        reset_all()


def licence_state(live: Any, order_id: str) -> str | None:
    answer = requests.get(f"{live.gateway_url}/licences/{order_id}", timeout=10)
    return answer.json()["licence"]["state"] if answer.status_code == 200 else None


@pytest.mark.parametrize(
    "outage",
    [{"mode": "status", "status": 503}, {"mode": "hang", "delay": 2 * READ_TIMEOUT}],
    ids=["5xx", "timeouts"],
)
def test_orders_that_fail_while_pimenko_is_down_are_redriven_to_one_licence_each(live, mlm, outage):
    orders = [unique("rs-order-") for _ in range(ORDERS)]
    mlm.faults.add(path_prefix="/licence", **outage)
    # One re-queue per order during the outage, not the default 30 (each up to a second apart): the retry queue
    # then drains within seconds, with every order dead-lettered, rather than outlasting the drain's timeout.
    with licence_requeues(live, OUTAGE_REQUEUES):
        live.put_events([order_event(order_id) for order_id in orders])
        drained = settle(live)
    if drained:
        # Every order failed its attempts: kept, not lost, in one of the two DLQs. At-least-once delivery may have
        # brought an order's event twice, and both copies failed: a DLQ then holds it twice, as on AWS; the redrive
        # settles both.
        assert dlq_orders(live) == set(orders)
        assert dlq_depth(live) >= ORDERS
    # (Otherwise some order still waits on the retry queue for its turn: kept there, and run after the outage.)
    assert [licences_at_pimenko(mlm, order_id) for order_id in orders] == [0] * ORDERS
    assert {licence_state(live, order_id) for order_id in orders} <= {None, "uncertain"}

    mlm.faults.clear()
    for _ in range(6):  # orders of one product and type take turns; one that lost its turn is redriven again
        redrive(live)
        if not dlq_depth(live) and {licence_state(live, order_id) for order_id in orders} == {"issued"}:
            break

    assert dlq_depth(live) == 0
    assert [licences_at_pimenko(mlm, order_id) for order_id in orders] == [1] * ORDERS
    assert {licence_state(live, order_id) for order_id in orders} == {"issued"}


def test_a_create_pimenko_finishes_after_our_timeout_is_adopted_not_repeated(live, mlm):
    """Regression: a retry looked for the licence at once and, not finding it yet, created a second one that the
    first joined a moment later — two licences for one order (and on an empty Pimenko account it did not even
    look: an `after_id` of 0 counted as never noted)."""
    order_id = unique("rs-order-")
    slow = 3 * READ_TIMEOUT
    mlm.faults.add("slow", delay=slow, count=1, path_prefix="/licence/create")
    live.put_events([order_event(order_id)])
    # Attempts within the grace find nothing yet and put the order back on LicenceRetryQueue, a second later each.
    settle(live)
    for _ in range(10):  # Lambda's retries come within the grace and find nothing yet: the operator redrives
        if not dlq_depth(live):
            break
        time.sleep(0.5)
        redrive(live)

    assert licence_state(live, order_id) == "issued"
    time.sleep(slow)  # whatever was still on its way to Pimenko has landed
    assert licences_at_pimenko(mlm, order_id) == 1
    creates = [r for r in mlm.requests if r.path == "/licence/create" and order_id in json.dumps(r.body_json)]
    assert [r.faulted for r in creates] == [True]
