"""The donation ledger's item keys and its per-campaign totals, shared by the ingester (writes) and pages (reads).

One DynamoDB table holds three kinds of item, told apart by the prefix of their `pk`:

- `donation#<messageKey>`: one donation, written once by one conditional put (callback or reconciliation). Its
  `verification` is `pending` until Umbrella lists its messageKey (`verified`, and folded into the total) or a window
  passes without that (`unconfirmed`: never counted). While pending it carries `pending_campaign`, the key of the
  sparse `PendingIndex`, so that pages can show what waits and reconciliation can find what to settle;
- `total#<campaignRef>`: the campaign's verified amount and count, written once per fold chunk, never per donation;
- `reconcile#<campaignRef>`: the reconciliation watermark and the last comparison with Umbrella.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub_core import aws

DONATION_PREFIX = "donation#"
TOTAL_PREFIX = "total#"
RECONCILE_PREFIX = "reconcile#"
PENDING_INDEX = "PendingIndex"

PENDING = "pending"
VERIFIED = "verified"
UNCONFIRMED = "unconfirmed"


def donation_pk(message_key: str) -> str:
    return f"{DONATION_PREFIX}{message_key}"


def total_pk(campaign_ref: str) -> str:
    return f"{TOTAL_PREFIX}{campaign_ref}"


def reconcile_pk(campaign_ref: str) -> str:
    return f"{RECONCILE_PREFIX}{campaign_ref}"


@dataclass(frozen=True)
class CampaignTotals:
    """What the ledger has verified and folded for a campaign: amount in øre and number of donations."""

    amount: int
    count: int
    updated_at: int | None = None


def read_totals(table_name: str, campaign_ref: str) -> CampaignTotals:
    """The campaign's folded totals (zero before its first donation is folded); one eventually consistent read."""
    response = aws.dynamodb().get_item(
        TableName=table_name,
        Key={"pk": {"S": total_pk(campaign_ref)}},
        ProjectionExpression="amount, donations, updated_at",
    )
    item = response.get("Item") or {}
    return CampaignTotals(
        amount=int(item.get("amount", {}).get("N", "0")),
        count=int(item.get("donations", {}).get("N", "0")),
        updated_at=int(item["updated_at"]["N"]) if "updated_at" in item else None,
    )


@dataclass(frozen=True)
class PendingTotals:
    """Callbacks not yet confirmed by Umbrella: shown apart, never part of the total. `capped` when there were more
    than the read looked at (a flood of forged callbacks cannot make a page read unbounded)."""

    amount: int
    count: int
    capped: bool = False


def read_pending(table_name: str, campaign_ref: str, *, limit: int = 1000) -> PendingTotals:
    """Sum of the campaign's pending donations from the sparse PendingIndex (they settle within the confirm window)."""
    amount = count = 0
    start: dict[str, Any] | None = None
    while True:
        arguments: dict[str, Any] = {
            "TableName": table_name,
            "IndexName": PENDING_INDEX,
            "KeyConditionExpression": "pending_campaign = :ref",
            "ExpressionAttributeValues": {":ref": {"S": campaign_ref}},
            "ProjectionExpression": "amount",
            "Limit": max(1, limit - count),
        }
        if start:
            arguments["ExclusiveStartKey"] = start
        response = aws.dynamodb().query(**arguments)
        for item in response.get("Items", []):
            amount += int(item.get("amount", {}).get("N", "0"))
            count += 1
        start = response.get("LastEvaluatedKey")
        if not start:
            return PendingTotals(amount, count)
        if count >= limit:
            return PendingTotals(amount, count, capped=True)
