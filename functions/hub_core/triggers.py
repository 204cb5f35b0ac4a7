"""What invoked a function, told from the event's shape alone: the one classifier every multi-trigger app uses."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any


class Trigger(StrEnum):
    HTTP = "http"  # an HTTP API (payload 2.0) request
    SQS = "sqs"  # a batch from an SQS event source mapping
    SCHEDULE = "schedule"  # an EventBridge schedule ("Scheduled Event")
    EVENT = "event"  # another EventBridge event, delivered by a rule
    DIRECT = "direct"  # anything else: an operator's or the CLI's own invoke payload


def trigger_of(event: Mapping[str, Any]) -> Trigger:
    if "routeKey" in event and "requestContext" in event:
        return Trigger.HTTP
    records = event.get("Records")
    if (
        isinstance(records, list)
        and records
        and all(isinstance(record, Mapping) and record.get("eventSource") == "aws:sqs" for record in records)
    ):
        return Trigger.SQS
    if "detail-type" in event:
        return Trigger.SCHEDULE if event["detail-type"] == "Scheduled Event" else Trigger.EVENT
    return Trigger.DIRECT
