"""Publishes the hub's domain events to its EventBridge bus."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, Final

from botocore.exceptions import BotoCoreError, ClientError

from hub_core import aws

SOURCE_PREFIX = "partner-hub"
# PutEvents takes at most 10 entries (and 256 KB; the hub's details are a few hundred bytes each).
PUT_EVENTS_MAX_ENTRIES: Final = 10


class EventNotPublished(RuntimeError):
    """EventBridge refused the event; the caller decides whether that fails the work."""


def _entry(source: str, detail_type: str, detail: Mapping[str, Any]) -> dict[str, str]:
    return {
        "Source": f"{SOURCE_PREFIX}.{source}",
        "DetailType": detail_type,
        "Detail": json.dumps(detail, separators=(",", ":"), default=str),
        "EventBusName": os.environ["EVENT_BUS_NAME"],
    }


def publish_many(source: str, detail_type: str, details: Sequence[Mapping[str, Any]]) -> list[bool]:
    """Put events of one kind on the bus, 10 to a PutEvents request; whether each one was put, in order.

    EventBridge may refuse some entries of a request and take the others (FailedEntryCount), and a request that
    fails outright puts none of its entries: either way only the refused ones are reported, so the caller retries
    those alone.
    """
    put: list[bool] = []
    for start in range(0, len(details), PUT_EVENTS_MAX_ENTRIES):
        chunk = details[start : start + PUT_EVENTS_MAX_ENTRIES]
        entries = [_entry(source, detail_type, detail) for detail in chunk]
        try:
            response = aws.events().put_events(Entries=entries)  # type: ignore[arg-type]
        except (BotoCoreError, ClientError):  # throttled or unreachable: none of this request's entries were put
            put += [False] * len(chunk)
            continue
        results = response.get("Entries", [])
        put += [index < len(results) and "EventId" in results[index] for index in range(len(chunk))]
    return put


def publish(source: str, detail_type: str, detail: Mapping[str, Any]) -> None:
    """Put one event on the bus named by EVENT_BUS_NAME. Details carry ids and amounts, never personal data."""
    entry = _entry(source, detail_type, detail)
    response = aws.events().put_events(Entries=[entry])  # type: ignore[list-item]
    if response.get("FailedEntryCount"):
        code = response["Entries"][0].get("ErrorCode", "unknown")
        raise EventNotPublished(f"{detail_type} not published: {code}")
