"""Erasures by event that could not finish at once: kept by id, retried from ErasureRetryQueue until done.

The request waits in ErasureRequestsTable; the queue's messages (and so ErasureDLQ's) carry its id, never the
person's identifiers. Why not Lambda's own retries and OnFailure destination: an asynchronous invocation's failure
record carries the whole event, so a failed erasure would leave the e-mail, number and user id in clear in a DLQ for
14 days. Here the identifiers stay in one table, encrypted, readable by this function only, deleted once the erasure
is done (and by TTL when it never is, after the DLQ's own retention). The erasure function's OnFailure destination
is this same queue: a failure record found here is erased from its event (and deferred by id if that fails).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from erasure import SERVICE, flow
from erasure.models import ErasureRequest
from erasure.settings import settings
from hub_core import aws, batches
from hub_core.deadline import fits, record_budget
from hub_core.dynamo import from_item, to_item
from hub_core.observability import logger_for, metrics_for

logger = logger_for(SERVICE)
metrics = metrics_for(SERVICE)

# What the queue's messages (and so ErasureDLQ's) hold: this key and an id.
MESSAGE_KEY = "erasure_request_id"


class ErasureNotDoneYet(Exception):
    """The stored request's erasure failed again (app's miles, or our tables): the queue offers it again."""


class RecordNotStarted(Exception):
    """Too little of the invocation is left for this record: it is handed back untouched, never cut off."""


def defer(request: ErasureRequest) -> str:
    """Keep the request for a later attempt; returns the id the retry message carries."""
    config = settings()
    request_id = str(uuid.uuid4())
    now = int(time.time())
    aws.dynamodb().put_item(
        TableName=config.erasure_requests_table_name,
        Item=to_item(
            {
                "request_id": request_id,
                "request": request.model_dump(exclude_none=True),
                "created_at": now,
                "expires_at": now + config.deferred_retention_days * 86400,
            }
        ),
    )
    aws.sqs().send_message(
        QueueUrl=config.erasure_retry_queue_url,
        MessageBody=json.dumps({MESSAGE_KEY: request_id}),
        DelaySeconds=config.erasure_retry_delay_seconds,
    )
    metrics.add_metric(name="ErasureDeferred", unit="Count", value=1)
    return request_id


def retry(request_id: str) -> dict[str, Any] | None:
    """One more attempt at a stored request; None when there is none left (done, or expired)."""
    table = settings().erasure_requests_table_name
    key = {"request_id": {"S": request_id}}
    item = aws.dynamodb().get_item(TableName=table, Key=key, ConsistentRead=True).get("Item")
    if item is None:
        logger.info("deferred erasure already done or expired", extra={"erasure_request_id": request_id})
        return None
    request = flow.parse(from_item(item)["request"])
    try:
        report = flow.erase(request)
    except flow.PartnerStepFailed as exc:
        logger.warning("deferred erasure: app's miles failed again", extra=exc.cause.log_fields())
        raise ErasureNotDoneYet(request_id) from None
    # Only now: until app's miles has erased the person too, the request is what lets a redrive finish the job.
    aws.dynamodb().delete_item(TableName=table, Key=key)
    metrics.add_metric(name="ErasureDeferredCompleted", unit="Count", value=1)
    return report.body()


def _record(record: SQSRecord) -> None:
    budget = settings().retry_record_seconds
    if not fits(budget):
        raise RecordNotStarted(record.message_id)
    with record_budget(budget):
        _retry_record(record)


def _retry_record(record: SQSRecord) -> None:
    try:
        body = json.loads(record.body)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get(MESSAGE_KEY), str):
        retry(body[MESSAGE_KEY])
        return
    # Lambda's failure record of an event whose deferral failed too (this queue is the OnFailure destination), or
    # one redriven from ErasureDLQ: erased from its event, which defers by id if it fails again.
    payload = body.get("requestPayload") if isinstance(body, dict) else None
    if isinstance(payload, dict) and payload.get("detail-type") == "ErasureRequested":
        from erasure import app  # noqa: PLC0415 - app imports this module

        app.handle_erasure_requested(payload)
        return
    logger.error("erasure retry message without a request id dropped", extra={"message_id": record.message_id})


def handle(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return batches.each_record(event, context, _record)
