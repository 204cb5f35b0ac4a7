"""The local moto server makes each DynamoDB request atomic, as DynamoDB does, and leaves other services concurrent."""

from __future__ import annotations

import copy
import gc
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from moto.dynamodb.models.table import Table
from moto.sqs import models as sqs_models

from hub_local.moto_server import atomic_dynamodb
from hub_local.stack import LocalStack
from tests.conftest import ROOT

THREADS = 8


def concurrency_seen(target: str) -> int:
    """The most requests with this X-Amz-Target that were inside the wrapped application at once."""
    inside = 0
    most = 0
    lock = threading.Lock()
    all_started = threading.Barrier(THREADS)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        nonlocal inside, most
        with lock:
            inside += 1
            most = max(most, inside)
        time.sleep(0.05)  # long enough for the others to arrive, were they let in
        with lock:
            inside -= 1
        start_response("200 OK", [])
        return [b"{}"]

    served = atomic_dynamodb(app)

    def call(_: int) -> list[bytes]:
        all_started.wait()
        return list(served({"HTTP_X_AMZ_TARGET": target}, lambda *args: None))

    with ThreadPoolExecutor(THREADS) as pool:
        assert list(pool.map(call, range(THREADS))) == [[b"{}"]] * THREADS
    return most


def test_dynamodb_requests_are_served_one_at_a_time():
    assert concurrency_seen("DynamoDB_20120810.PutItem") == 1


@pytest.mark.parametrize("target", ["AmazonSQS.ReceiveMessage", ""], ids=["sqs", "no-target"])
def test_other_requests_stay_concurrent(target):
    assert concurrency_seen(target) > 1


def test_a_hundred_conditional_puts_of_one_item_through_the_stack_s_moto_make_one(stack_for_races):
    dynamodb, table = stack_for_races
    wins = 0
    lock = threading.Lock()

    def put(index: int) -> None:
        nonlocal wins
        try:
            dynamodb.put_item(
                TableName=table,
                Item={"pk": {"S": "race#1"}, "writer": {"N": str(index)}},
                ConditionExpression="attribute_not_exists(pk)",
            )
        except dynamodb.exceptions.ConditionalCheckFailedException:
            return
        with lock:
            wins += 1

    with ThreadPoolExecutor(32) as pool:
        list(pool.map(put, range(100)))
    assert wins == 1


@pytest.fixture
def local_stack():
    with LocalStack(ROOT / "template.yaml", gateway_port=None, pump_queues=False) as stack:
        yield stack


@pytest.fixture
def stack_for_races(local_stack):
    return local_stack.boto3_client("dynamodb"), local_stack.physical("LoyaltyTable")


def test_a_send_reads_none_of_the_queue_s_messages(local_stack, monkeypatch):
    """SQS's SendMessage costs the same at any depth; moto's counted every message (a bench's fold overran)."""
    sqs = local_stack.boto3_client("sqs")
    url = sqs.create_queue(QueueName="depth")["QueueUrl"]
    for start in range(0, 200, 10):
        sqs.send_message_batch(
            QueueUrl=url, Entries=[{"Id": str(index), "MessageBody": "x"} for index in range(start, start + 10)]
        )
    reads = 0
    real_visible = sqs_models.Message.visible

    def counting(message):
        nonlocal reads
        reads += 1
        return real_visible.fget(message)

    monkeypatch.setattr(sqs_models.Message, "visible", property(counting))
    sqs.send_message(QueueUrl=url, MessageBody="one more")
    assert reads == 0
    depth = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert depth["Attributes"]["ApproximateNumberOfMessages"] == "201"
    assert reads >= 201  # the count itself still reads every message


def test_transactions_leave_no_table_copy_behind(stack_for_races):
    """moto backs up each table a transaction touches; the copy must die with the transaction, or a long stack
    grows without bound (its full GC passes took seconds after a few hundred licences)."""
    dynamodb, table = stack_for_races
    for index in range(20):
        item = {"Put": {"TableName": table, "Item": {"pk": {"S": f"txn#{index}"}}}}
        dynamodb.transact_write_items(TransactItems=[item, {"Put": {"TableName": table, "Item": {"pk": {"S": "x"}}}}])
    gc.collect()
    copies = [table_object for table_object in gc.get_objects() if isinstance(table_object, Table)]
    assert len([copy for copy in copies if copy.name == table]) == 1


def test_a_transaction_backs_each_table_up_once_and_still_rolls_back(stack_for_races, monkeypatch):
    """One rollback copy per table touched, not one per action; a refused action still undoes the others."""
    dynamodb, table = stack_for_races
    copied: list[str] = []
    real_deepcopy = copy.deepcopy

    def counting(value, *args):
        if isinstance(value, Table):
            copied.append(value.name)
        return real_deepcopy(value, *args)

    monkeypatch.setattr(copy, "deepcopy", counting)
    puts = [{"Put": {"TableName": table, "Item": {"pk": {"S": f"batch#{index}"}}}} for index in range(10)]
    dynamodb.transact_write_items(TransactItems=puts)
    assert copied == [table]
    refused = {
        "Put": {"TableName": table, "Item": {"pk": {"S": "batch#0"}}, "ConditionExpression": "attribute_not_exists(pk)"}
    }
    fresh = {"Put": {"TableName": table, "Item": {"pk": {"S": "batch#new"}}}}
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        dynamodb.transact_write_items(TransactItems=[fresh, refused])
    assert "Item" not in dynamodb.get_item(TableName=table, Key={"pk": {"S": "batch#new"}})
