"""The licence retry queue: LicenceRequested events whose turn did not come in time, put back with a delay and run.

The waiting event is kept in LicencesTable (`waiting#<id>`, TTL as long as the queue's DLQ keeps a message) and the
message carries only that id, so that neither the queue nor LicenceRetryDLQ holds the shop's customer reference or a
member id. Kept out of the handler module so that a cold start of the HTTP routes does not load Powertools' batch
utility.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from hub_core import batches
from hub_core.deadline import record_budget
from hub_core.observability import logger_for, metrics_for
from licence_issuance import SERVICE
from licence_issuance.services import LicenceServices

logger = logger_for(SERVICE)
metrics = metrics_for(SERVICE)


class RecordNotStarted(Exception):
    """Too little of the invocation is left for this record: it goes back to the queue untouched."""


def can_requeue(services: LicenceServices, requeues: int) -> bool:
    config = services.settings
    return bool(config.licence_retry_queue_url) and requeues < config.licence_max_requeues


# What a retry message holds besides its requeue count: the id of the waiting event in LicencesTable.
WAITING_ID = "waiting_id"
# As long as LicenceRetryDLQ keeps a message (14 days), so that a redriven message still finds its event.
WAITING_SECONDS = 14 * 86_400


def requeue(services: LicenceServices, event: dict[str, Any], requeues: int) -> None:
    """Put the event back for a later turn: a new message (its receive count starts afresh) after a random delay,
    so a burst spreads out instead of coming back at once."""
    config = services.settings
    low, high = sorted((config.requeue_delay_min_seconds, config.requeue_delay_max_seconds))
    waiting_id = services.new_id()
    services.store.keep_waiting(waiting_id, event, expires_at=int(services.now()) + WAITING_SECONDS)
    services.send_retry({WAITING_ID: waiting_id, "requeues": requeues + 1}, round(services.jitter(low, high)))
    metrics.add_metric(name="LicenceRequeued", unit=MetricUnit.Count, value=1)
    logger.info("licence order re-queued for a later turn", extra={"requeues": requeues + 1})


def handle_batch(
    services: LicenceServices, event: dict[str, Any], context: LambdaContext, handle: Callable[..., dict[str, Any]]
) -> PartialItemFailureResponse:
    """Each re-queued event through `handle` (the event path of app.py), its requeue count carried along."""

    def one(record: SQSRecord) -> None:
        budget = services.settings.record_seconds
        if not services.fits(budget):
            raise RecordNotStarted(record.message_id)
        body = json.loads(record.body)
        waiting_id = body.get(WAITING_ID)
        # A message from before ids (it carried the event itself) is still run as it is.
        event = services.store.waiting_event(str(waiting_id)) if waiting_id is not None else body.get("event")
        if event is None:
            # Handled by an earlier delivery of this message (at least once), or expired with its DLQ retention.
            logger.info("licence retry message without a waiting event", extra={"message_id": record.message_id})
            return
        with record_budget(budget):
            handle(event, requeues=int(body.get("requeues", 0)))
        if waiting_id is not None:
            services.store.forget_waiting(str(waiting_id))

    return batches.each_record(event, context, one)
