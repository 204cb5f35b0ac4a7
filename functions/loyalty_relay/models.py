"""What the relay reads (the bus's event envelope) and what it decides for each queued record."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from hub_core.identifiers import USER_ID_PATTERN

# app's miles' partnerClientId as the forms accept it; anything else is refused before any call.
USER_ID = re.compile(USER_ID_PATTERN)
# The key travels as param1 and in our record's key: ids, uuids and order numbers, nothing free-form.
EVENT_KEY = re.compile(r"^[A-Za-z0-9._:@/-]{1,128}$")


class BusEvent(BaseModel):
    """An EventBridge event as a rule with an SQS target delivers it: the whole envelope is the message body."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, frozen=True)

    id: str = Field(min_length=1)
    detail_type: str = Field(alias="detail-type", min_length=1)
    source: str
    time: datetime | None = None
    detail: dict[str, Any]


class Outcome(StrEnum):
    RELAYED = "relayed"
    ALREADY_RECORDED = "already_recorded"  # app's miles had it (param1): relayed before, maybe by a lost attempt
    REJECTED = "rejected"  # final: recorded and acknowledged, never retried
    DUPLICATE = "duplicate"  # our record says it was settled before, or an earlier copy in this batch settles it
    SKIPPED_ANONYMOUS = "skipped_anonymous"  # the event names no app's miles user
    SKIPPED_UNMAPPED = "skipped_unmapped"  # no action is configured for its detail-type
    CAPPED = "capped"  # the member reached the day's cap of actions: acknowledged, never sent
    RETRY = "retry"  # passing failure: the queue delivers it again, then the DLQ keeps it
    MALFORMED = "malformed"  # not an event we can read: kept for the DLQ, where an operator looks at it

    @property
    def failed(self) -> bool:
        return self in (Outcome.RETRY, Outcome.MALFORMED)

    @property
    def settled(self) -> bool:
        """Worth a record: app's miles has answered for good."""
        return self in (Outcome.RELAYED, Outcome.ALREADY_RECORDED, Outcome.REJECTED)


@dataclass(frozen=True)
class OwnerRecord:
    """Where the member of an event is named: the owning table (`leads`, `campaigns`, `licences`) and its key."""

    table: str
    key: str


@dataclass(frozen=True)
class PendingAction:
    """One action for app's miles: the event's key (our record's, and param1), its tagId and its user.

    `user_id` is empty until read from `owner` (the event itself names no member), which happens only for an event
    not settled before.
    """

    message_id: str
    key: str
    tag_id: str
    user_id: str
    detail_type: str
    happened_at: datetime | None
    owner: OwnerRecord | None = None


@dataclass(frozen=True)
class Settlement:
    """What app's miles answered for one action, as our record keeps it."""

    outcome: Outcome
    code: int | None = None
    reason: str = ""
