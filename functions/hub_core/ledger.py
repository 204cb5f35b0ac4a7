"""The donation ledger's item keys and its per-campaign totals, shared by the ingester (writes) and pages (reads).

One DynamoDB table holds three kinds of item, told apart by the prefix of their `pk`:

- `donation#<messageKey>`: one donation, written once by one conditional put (callback or reconciliation);
- `total#<campaignRef>`: the campaign's folded amount and count, written once per fold batch, never per donation;
- `reconcile#<campaignRef>`: the reconciliation watermark and the last comparison with Umbrella.
"""

from __future__ import annotations

from dataclasses import dataclass

from hub_core import aws

DONATION_PREFIX = "donation#"
TOTAL_PREFIX = "total#"
RECONCILE_PREFIX = "reconcile#"


def donation_pk(message_key: str) -> str:
    return f"{DONATION_PREFIX}{message_key}"


def total_pk(campaign_ref: str) -> str:
    return f"{TOTAL_PREFIX}{campaign_ref}"


def reconcile_pk(campaign_ref: str) -> str:
    return f"{RECONCILE_PREFIX}{campaign_ref}"


@dataclass(frozen=True)
class CampaignTotals:
    """What the ledger has folded for a campaign: amount in øre and number of donations."""

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
