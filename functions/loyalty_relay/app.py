"""Loyalty relay's Lambda entry point: an SQS batch of bus events, with failures reported record by record."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.typing import LambdaContext

from hub_core import batches, priming
from hub_core.entry import entry_point
from hub_core.observability import logger_for, metrics_for
from loyalty_relay import SERVICE, flow
from loyalty_relay.models import Outcome
from loyalty_relay.services import services

logger = logger_for(SERVICE)
metrics = metrics_for(SERVICE)


METRIC_NAMES = {
    Outcome.RELAYED: "ActionRelayed",
    Outcome.ALREADY_RECORDED: "ActionAlreadyRecorded",
    Outcome.REJECTED: "ActionRejected",
    Outcome.DUPLICATE: "ActionDuplicate",
    Outcome.SKIPPED_ANONYMOUS: "ActionSkippedAnonymous",
    Outcome.SKIPPED_UNMAPPED: "ActionSkippedUnmapped",
    Outcome.CAPPED: "ActionCapped",
    Outcome.RETRY: "ActionDeferred",
    Outcome.MALFORMED: "ActionMalformed",
}


@entry_point(SERVICE)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    # The whole batch is planned and sent first, so that actions of one tagId can share a multistore call and the
    # records of settled events are read in one request; Powertools then reports the failures record by record.
    report = flow.relay_batch(services(), event.get("Records") or [])
    for outcome, count in report.counts().items():
        metrics.add_metric(name=METRIC_NAMES[outcome], unit=MetricUnit.Count, value=count)

    def failure_of(message_id: str) -> str | None:
        # Back to the queue: app's miles or our setup failed in passing, or the event is unreadable.
        outcome = report.outcomes[message_id]
        return outcome.value if outcome.failed else None

    return batches.planned(event, context, failure_of)


# SnapStart (template.yaml's EnableSnapStart): what to build before the snapshot and renew after restore.
priming.register(lambda_handler)  # SQS only: the clients, no dry request
