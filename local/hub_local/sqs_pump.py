"""SQS event source mapping: polls a queue, invokes the function with Lambda's SQS event, deletes or retries."""

from __future__ import annotations

import base64
import sys
import time
import traceback
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from hub_local.cfn import REGION
from hub_local.redelivery import Redelivery
from hub_local.resources import UnknownResourceError
from hub_local.specs import QueueSpec, SqsSource
from hub_local.template import LocalTemplate
from hub_local.workers import StoppableThreads

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageAttributeValueOutputTypeDef, MessageTypeDef

Invoke = Callable[[str, dict[str, Any]], Any]

# The attributes Lambda copies into each record, in Lambda's order; the optional ones only when SQS sent them.
_RECORD_ATTRIBUTES: Final = (
    "ApproximateReceiveCount",
    "AWSTraceHeader",
    "SentTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "SenderId",
    "MessageDeduplicationId",
    "ApproximateFirstReceiveTimestamp",
    "DeadLetterQueueSourceArn",
)
_SQS_BATCH_LIMIT: Final = 10


def _lambda_message_attribute(value: MessageAttributeValueOutputTypeDef) -> dict[str, Any]:
    attribute: dict[str, Any] = {}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    attribute["stringListValues"] = list(value.get("StringListValues", []))
    attribute["binaryListValues"] = [base64.b64encode(item).decode() for item in value.get("BinaryListValues", [])]
    attribute["dataType"] = value["DataType"]
    return attribute


def build_sqs_event(messages: Sequence[MessageTypeDef], queue_arn: str, region: str = REGION) -> dict[str, Any]:
    """The event Lambda's SQS event source mapping sends for one batch of received messages."""
    records = []
    for message in messages:
        received = message.get("Attributes", {})
        record: dict[str, Any] = {
            "messageId": message["MessageId"],
            "receiptHandle": message["ReceiptHandle"],
            "body": message.get("Body", ""),
            "attributes": {name: received[name] for name in _RECORD_ATTRIBUTES if name in received},
            "messageAttributes": {
                name: _lambda_message_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
            },
            "md5OfBody": message.get("MD5OfBody", ""),
        }
        if "MD5OfMessageAttributes" in message:
            record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
        record |= {"eventSource": "aws:sqs", "eventSourceARN": queue_arn, "awsRegion": region}
        records.append(record)
    return {"Records": records}


def failed_message_ids(response: Any, message_ids: Collection[str], *, report_batch_item_failures: bool) -> set[str]:
    """Which messages of a batch the function's (successful) response marks as failed, by Lambda's rules.

    Lambda treats a null/empty response or a null/empty `batchItemFailures` as complete success, and anything
    it cannot read (not an object, an item without a known `itemIdentifier`) as complete failure.
    """
    if not report_batch_item_failures or response is None:
        return set()
    everything = set(message_ids)
    if not isinstance(response, Mapping):
        return everything
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return everything
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, Mapping) else None
        if not isinstance(identifier, str) or identifier not in everything:
            return everything
        failed.add(identifier)
    return failed


class SqsPump(StoppableThreads):
    """One SQS event source of one function: a polling thread, or synchronous cycles driven by `drain`."""

    def __init__(
        self,
        *,
        function: str,
        source: SqsSource,
        queue: QueueSpec,
        client: SQSClient,
        invoke: Invoke,
        retry_seconds: float,
        pollers: int = 1,
        redelivery: Redelivery | None = None,
    ) -> None:
        """`pollers` batches may run at once (Lambda scales an SQS source up to its MaximumConcurrency);
        `redelivery` picks settled messages to deliver once more (at-least-once, `hub_local.redelivery`)."""
        super().__init__()
        self.function = function
        self.source = source
        self.queue = queue
        self.client = client
        self.invoke = invoke
        # ChangeMessageVisibility takes whole seconds.
        self.retry_seconds = max(0, int(-(-retry_seconds // 1)))
        self.pollers = max(1, pollers)
        self.redelivery = redelivery or Redelivery()

    @property
    def name(self) -> str:
        return f"{self.function}.{self.source.event_name}"

    def cycle(self, wait_seconds: int = 1) -> int:
        """Receive one batch, invoke the function with it, settle each message; returns how many were received."""
        messages = self._receive_batch(wait_seconds)
        if not messages:
            return 0
        message_ids = [message["MessageId"] for message in messages]
        try:
            response = self.invoke(self.function, build_sqs_event(messages, self.queue.arn))
        except Exception:  # a failing invocation fails the whole batch, as in Lambda
            print(f"sqs pump {self.name}: invocation failed, the whole batch is retried", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
            failed = set(message_ids)
        else:
            failed = failed_message_ids(
                response, message_ids, report_batch_item_failures=self.source.reports_batch_item_failures
            )
        done = [message for message in messages if message["MessageId"] not in failed]
        again = self._duplicates(done)
        done = [message for message in done if message["MessageId"] not in again]
        if again:
            self.client.change_message_visibility_batch(
                QueueUrl=self.queue.url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": again[m["MessageId"]]}
                    for index, m in enumerate(messages)
                    if m["MessageId"] in again
                ],
            )
        if done:
            self.client.delete_message_batch(
                QueueUrl=self.queue.url,
                Entries=[{"Id": str(index), "ReceiptHandle": m["ReceiptHandle"]} for index, m in enumerate(done)],
            )
        retried = [message for message in messages if message["MessageId"] in failed]
        if retried:
            print(
                f"sqs pump {self.name}: {len(retried)} of {len(messages)} message(s) failed, "
                f"visible again in {self.retry_seconds} s",
                file=sys.stderr,
            )
            # Locally a failed message comes back sooner than the template's VisibilityTimeout would allow.
            self.client.change_message_visibility_batch(
                QueueUrl=self.queue.url,
                Entries=[
                    {"Id": str(index), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": self.retry_seconds}
                    for index, m in enumerate(retried)
                ],
            )
        return len(messages)

    def _duplicates(self, settled: Sequence[Any]) -> dict[str, int]:
        """The settled messages to leave in the queue, by id, with the seconds until they come back: a receive
        that would send a message to its DLQ is never added by a duplicate."""
        limit = self.queue.max_receive_count
        again: dict[str, int] = {}
        for message in settled:
            received = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
            if limit is not None and received >= limit:
                continue
            delay = self.redelivery.repeat(f"sqs:{self.queue.logical_id}", message["MessageId"])
            if delay is not None:
                again[message["MessageId"]] = max(0, int(-(-delay // 1)))  # whole seconds, as SQS takes them
        return again

    def _receive_batch(self, wait_seconds: int) -> list[Any]:
        """Up to the source's BatchSize, as Lambda's poller gathers it: SQS hands out 10 at a time, so a larger
        batch takes several receives (without waiting once the first has brought something)."""
        messages: list[Any] = []
        while len(messages) < self.source.batch_size:
            received = self.client.receive_message(
                QueueUrl=self.queue.url,
                MaxNumberOfMessages=min(self.source.batch_size - len(messages), _SQS_BATCH_LIMIT),
                WaitTimeSeconds=0 if messages else wait_seconds,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            )
            more = received.get("Messages", [])
            if not more:
                break
            messages.extend(more)
        return messages

    def start(self) -> SqsPump:
        """One polling thread per batch that may run at once: each receives and invokes on its own."""
        self._start_threads(self._run, (f"sqs-pump-{self.name}-{index}" for index in range(self.pollers)))
        return self

    def _run(self) -> None:
        # No pause when idle: each cycle is a long poll already.
        self._poll(lambda: self.cycle(wait_seconds=1), f"sqs pump {self.name}: polling failed")


def queue_is_empty(sqs: Any, url: str) -> bool:
    """Whether the queue holds no visible, in-flight or delayed message."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=[
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ],
    )["Attributes"]
    return all(int(count) == 0 for count in attributes.values())


def build_pumps(
    template: LocalTemplate,
    sqs: Any,
    invoke: Invoke,
    *,
    concurrency_of: Callable[[str], int],
    retry_seconds: float,
    redelivery: Redelivery,
) -> list[SqsPump]:
    """A pump for every enabled SQS event source of every function, each with as many pollers as its function may
    run at once (capped by the source's MaximumConcurrency)."""
    return [
        SqsPump(
            function=function.logical_id,
            source=source,
            queue=template.queues[source.queue],
            client=sqs,
            invoke=invoke,
            retry_seconds=retry_seconds,
            pollers=min(source.maximum_concurrency or limit, limit),
            redelivery=redelivery,
        )
        for function in template.functions.values()
        for limit in [concurrency_of(function.logical_id)]
        for source in function.sqs_sources
        if source.enabled
    ]


def drain_pumps(pumps: Sequence[SqsPump], sqs: Any, timeout: float) -> bool:
    """Run pump cycles until the pumps' queues hold no visible, delayed or in-flight message; False on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        if all(queue_is_empty(sqs, pump.queue.url) for pump in pumps):
            return True
        if time.monotonic() >= deadline:
            return False
        if not sum(pump.cycle(wait_seconds=0) for pump in pumps):
            time.sleep(0.05)


def stop_pumps(pumps: Sequence[SqsPump]) -> None:
    """Ask every pump to stop, then wait for each (a few seconds at most)."""
    for pump in pumps:
        pump.stop()
    for pump in pumps:
        pump.join(timeout=5)


def pumps_of(
    pumps: Sequence[SqsPump], queue_logical_id: str | None, template: LocalTemplate, source: Path
) -> list[SqsPump]:
    """The pumps that consume the queue (all of them without one); `source` names the template in errors."""
    if queue_logical_id is None:
        return list(pumps)
    if queue_logical_id not in template.queues:
        raise UnknownResourceError(f"{queue_logical_id} is not a queue of {source}")
    found = [pump for pump in pumps if pump.queue.logical_id == queue_logical_id]
    if not found:
        raise ValueError(f"no function consumes {queue_logical_id}: nothing would drain it")
    return found
