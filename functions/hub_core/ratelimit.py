"""Fixed-window rate limits kept in DynamoDB (one counter per subject and window, deleted by TTL).

A counter is one conditional `UpdateItem`: it counts a hit only while it is under the limit, so concurrent requests
from many Lambda containers cannot together pass it. The subject (a phone number, a client IP) is stored only as a
hash under a purpose prefix, and only until its window ends plus a day (the table's TTL). A subject from a small
space (Danish numbers are 10^8, IPv4 addresses 2^32) is hashed with a key (HMAC-SHA-256), since a plain hash of it
is reversed by trying every value.
"""

from __future__ import annotations

import hashlib
import hmac
import math
from dataclasses import dataclass
from typing import Any

from hub_core.dynamo import Written, to_item, update_if

# DynamoDB deletes expired items within a day or two; the window check below never relies on that.
_TTL_SLACK_SECONDS = 86_400


@dataclass(frozen=True)
class Limit:
    """At most `count` hits per `window_seconds` for one subject of `scope`; a count of 0 turns the limit off."""

    scope: str
    count: int
    window_seconds: int


class RateLimited(Exception):
    """The subject has used its hits for this window; `retry_after` is whole seconds until the next one."""

    def __init__(self, scope: str, retry_after: int) -> None:
        super().__init__(f"rate limit {scope} reached")
        self.scope = scope
        self.retry_after = retry_after


def subject_key(scope: str, subject: str, key: bytes | None = None) -> str:
    """What the table stores of a subject: never the number or address itself (keyed when `key` is given)."""
    message = f"partner-hub/ratelimit/{scope}\n{subject}".encode()
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def _count(table_name: str, limit: Limit, subject_hash: str, now: float, **update: Any) -> Written:
    """One conditional update of the subject's counter for the window `now` falls in (`update`: its expressions and
    values, `:expires` added here); RateLimited when the condition refuses it."""
    window = max(1, limit.window_seconds)
    start = int(now) // window * window
    end = start + window
    values = {**update.pop("ExpressionAttributeValues"), ":expires": {"N": str(end + _TTL_SLACK_SECONDS)}}
    key = {"id": {"S": f"{limit.scope}#{subject_hash}#{start}"}}
    written = update_if(TableName=table_name, Key=key, ExpressionAttributeValues=values, **update)
    if not written.applied:
        raise RateLimited(limit.scope, max(1, math.ceil(end - now)))
    return written


def hit(table_name: str, limit: Limit, subject: str, *, now: float, key: bytes | None = None) -> int:
    """Count one hit for `subject`; the hits used in this window, or RateLimited once `limit.count` were used."""
    if limit.count <= 0:
        return 0
    written = _count(
        table_name, limit, subject_key(limit.scope, subject, key), now,
        UpdateExpression="ADD hits :one SET expires_at = if_not_exists(expires_at, :expires)",
        ConditionExpression="attribute_not_exists(hits) OR hits < :limit",
        ExpressionAttributeValues=to_item({":one": 1, ":limit": limit.count}),
        ReturnValues="UPDATED_NEW",
    )  # fmt: skip
    return int(written.attributes["hits"]["N"])


def hit_distinct(table_name: str, limit: Limit, subject: str, item: str, *, now: float) -> None:
    """Count `item` once for `subject` in this window; RateLimited once `limit.count` other items were counted.

    A repeat of an item already counted passes without counting again, so a delivery that is retried (the queue
    brings it back after a passing failure) does not use up the subject's allowance.
    """
    if limit.count <= 0:
        return
    _count(
        table_name, limit, subject_key(limit.scope, subject), now,
        UpdateExpression="ADD #items :item SET expires_at = if_not_exists(expires_at, :expires)",
        ConditionExpression="attribute_not_exists(#items) OR size(#items) < :limit OR contains(#items, :one)",
        ExpressionAttributeNames={"#items": "items"},
        ExpressionAttributeValues={":item": {"SS": [item]}, ":one": {"S": item}, ":limit": {"N": str(limit.count)}},
    )  # fmt: skip
