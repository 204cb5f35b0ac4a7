"""The lead retry queue's consumer: each queued lead forwarded again, failures reported item by item.

Kept out of the handler module so that a cold start of the form's route does not load Powertools' batch utility
(and the parser models it brings), which only queue invocations need.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from hub_core import batches
from hub_core.deadline import fits, record_budget
from hub_core.observability import logger_for, metrics_for
from lead_intake import SERVICE, flow
from lead_intake.services import LeadServices, services

logger = logger_for(SERVICE)
metrics = metrics_for(SERVICE)


class RecordNotStarted(Exception):
    """Too little of the invocation is left for this record: it goes back to the queue untouched."""


def _retry_record(record: SQSRecord) -> None:
    collaborators = services()
    budget = collaborators.settings.retry_record_seconds
    if not fits(budget):
        # Started, a forward could be cut off by Lambda between MiiMOSA's yes and our record of it.
        metrics.add_metric(name="LeadRetryNotStarted", unit=MetricUnit.Count, value=1)
        raise RecordNotStarted(record.message_id)
    with record_budget(budget):
        _forward_record(collaborators, record)


def _forward_record(collaborators: LeadServices, record: SQSRecord) -> None:
    try:
        body = json.loads(record.body)
        lead_id = str(body["lead_id"])
        accepted = body.get("accepted")
    except (ValueError, KeyError, TypeError):
        # Not ours to retry and never will be: acknowledge rather than cycle it into the DLQ.
        logger.error("retry message without a lead id dropped", extra={"message_id": record.message_id})
        return
    if isinstance(accepted, dict):
        reference = accepted.get("reference")
        if flow.record_acceptance(collaborators, lead_id, None if reference is None else str(reference)) is not None:
            metrics.add_metric(name="LeadRecordedLate", unit=MetricUnit.Count, value=1)
        return
    try:
        outcome = flow.retry(collaborators, lead_id)
    except flow.LeadUncertain:
        # Acknowledged: a new message, delayed by a full lease, brings the lead back (flow._refused).
        metrics.add_metric(name="LeadUncertain", unit=MetricUnit.Count, value=1)
        return
    if outcome is not None:
        metrics.add_metric(name=f"LeadRetry{outcome.status.value.capitalize()}", unit=MetricUnit.Count, value=1)


def handle(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    return batches.each_record(event, context, _retry_record)
