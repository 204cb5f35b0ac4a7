"""SQS batches through Powertools' BatchProcessor: record by record, or planned as a whole and reported by record.

Imported by the queue paths only (lazily where a function also serves HTTP), so a route's cold start does not load
Powertools' batch utility.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext


class RecordFailed(Exception):
    """A record of a batch planned as a whole that must come back: its reason says why."""


def each_record(
    event: Mapping[str, Any], context: LambdaContext, handle: Callable[[SQSRecord], Any]
) -> PartialItemFailureResponse:
    """`handle` for each record; a record whose handling raised is reported back to the queue, the others are done.

    A processor per invocation: it holds its batch's records and outcomes while it runs, and two invocations at once
    (the local runner's concurrency, one process) must not report each other's failures. A batch whose every record
    failed is reported item by item like any other, rather than raised.
    """
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    return process_partial_response(event=dict(event), record_handler=handle, processor=processor, context=context)


def planned(
    event: Mapping[str, Any], context: LambdaContext, failure_of: Callable[[str], str | None]
) -> PartialItemFailureResponse:
    """A batch handled as a whole (records planned together: one partner call or one fold for many), then reported
    by record: `failure_of(message_id)` is why a record must come back, or None when it is done."""

    def settle(record: SQSRecord) -> None:
        reason = failure_of(record.message_id)
        if reason is not None:
            raise RecordFailed(reason)

    return each_record(event, context, settle)
