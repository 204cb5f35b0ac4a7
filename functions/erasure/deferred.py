"""Erasures by event that could not finish at once: kept by id, retried from ErasureRetryQueue until done.

The request waits in ErasureRequestsTable; the queue's messages (and so ErasureDLQ's) carry its id, never the
person's identifiers. Why not Lambda's own retries and OnFailure destination: an asynchronous invocation's failure
record carries the whole event, so a failed erasure would leave the e-mail, number and user id in clear in a DLQ for
14 days. Here the identifiers stay in one table, encrypted, readable by this function only, deleted once the erasure
is done (and by TTL when it never is, after the DLQ's own retention). The erasure function's OnFailure destination
is this same queue: a failure record found here is erased from its event (and deferred by id if that fails).

defer and retry take the function's collaborators (services.ErasureServices); a queue record builds them at its edge.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from erasure import SERVICE, flow
from erasure.models import ErasureRequest
from erasure.services import ErasureServices, services
from hub_core.deadline import fits, record_budget
from hub_core.observability import logger_for, metrics_for

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse

logger = logger_for(SERVICE)
metrics = metrics_for(SERVICE)

# What the queue's messages (and so ErasureDLQ's) hold: this key and an id.
MESSAGE_KEY = "erasure_request_id"


class ErasureNotDoneYet(Exception):
    """The stored request's erasure failed again (app's miles, or our tables): the queue offers it again."""


class RecordNotStarted(Exception):
    """Too little of the invocation is left for this record: it is handed back untouched, never cut off."""


def defer(services: ErasureServices, request: ErasureRequest) -> str:
    """Keep the request for a later attempt; returns the id the retry message carries."""
    config = services.settings
    request_id = services.new_id()
    now = int(services.now())
    services.deferred.keep(
        request_id,
        request.model_dump(exclude_none=True),
        created_at=now,
        expires_at=now + config.deferred_retention_days * 86400,
    )
    services.send_retry({MESSAGE_KEY: request_id}, config.erasure_retry_delay_seconds)
    metrics.add_metric(name="ErasureDeferred", unit="Count", value=1)
    return request_id


def retry(services: ErasureServices, request_id: str) -> dict[str, Any] | None:
    """One more attempt at a stored request; None when there is none left (done, or expired)."""
    stored = services.deferred.get(request_id)
    if stored is None:
        logger.info("deferred erasure already done or expired", extra={"erasure_request_id": request_id})
        return None
    request = flow.parse(services, stored)
    try:
        report = flow.erase(services, request)
    except flow.PartnerStepFailed as exc:
        logger.warning("deferred erasure: app's miles failed again", extra=exc.cause.log_fields())
        raise ErasureNotDoneYet(request_id) from None
    # Only now: until app's miles has erased the person too, the request is what lets a redrive finish the job.
    services.deferred.delete(request_id)
    metrics.add_metric(name="ErasureDeferredCompleted", unit="Count", value=1)
    return report.body()


def _record(record: SQSRecord) -> None:
    collaborators = services()
    budget = collaborators.settings.retry_record_seconds
    if not fits(budget):
        raise RecordNotStarted(record.message_id)
    with record_budget(budget):
        _retry_record(collaborators, record)


def _retry_record(services: ErasureServices, record: SQSRecord) -> None:
    try:
        body = json.loads(record.body)
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get(MESSAGE_KEY), str):
        retry(services, body[MESSAGE_KEY])
        return
    # Lambda's failure record of an event whose deferral failed too (this queue is the OnFailure destination), or
    # one redriven from ErasureDLQ: erased from its event, which defers by id if it fails again.
    payload = body.get("requestPayload") if isinstance(body, dict) else None
    if isinstance(payload, dict) and payload.get("detail-type") == "ErasureRequested":
        from erasure import app  # noqa: PLC0415 - app imports this module

        app.handle_erasure_requested(services, payload)
        return
    logger.error("erasure retry message without a request id dropped", extra={"message_id": record.message_id})


def handle(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # Queue invocations only: Powertools' batch utility, imported once pydantic is, builds its parser models for
    # SQS, Kinesis, DynamoDB streams and Kafka (about 25 ms), which an erasure request's cold start does without.
    from hub_core import batches  # noqa: PLC0415

    return batches.each_record(event, context, _record)
