"""Publishes the hub's domain events to its EventBridge bus."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from hub_core import aws

SOURCE_PREFIX = "partner-hub"


class EventNotPublished(RuntimeError):
    """EventBridge refused the event; the caller decides whether that fails the work."""


def publish(source: str, detail_type: str, detail: Mapping[str, Any]) -> None:
    """Put one event on the bus named by EVENT_BUS_NAME. Details carry ids and amounts, never personal data."""
    entry = {
        "Source": f"{SOURCE_PREFIX}.{source}",
        "DetailType": detail_type,
        "Detail": json.dumps(detail, separators=(",", ":"), default=str),
        "EventBusName": os.environ["EVENT_BUS_NAME"],
    }
    response = aws.events().put_events(Entries=[entry])  # type: ignore[list-item]
    if response.get("FailedEntryCount"):
        code = response["Entries"][0].get("ErrorCode", "unknown")
        raise EventNotPublished(f"{detail_type} not published: {code}")
