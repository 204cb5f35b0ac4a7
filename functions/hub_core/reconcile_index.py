"""CampaignsTable's ReconcilableIndex: the campaigns reconciliation visits, read as one key range, never a Scan.

The campaign lifecycle (the table's owner) writes the two attributes when a campaign becomes active and when it
stops; the donation ingester's reconciliation and `hub reconcile` read the index. Every indexed campaign has the
one partition value, and `open_until` sorts it: `STILL_OPEN` while active, its stop time once stopped. "Active, or
stopped since T" is then `open_until >= T`, and campaigns stopped long ago are never read again, however many
accumulate. One partition is enough: the index changes twice in a campaign's life, and is read every 5 minutes.
"""

from __future__ import annotations

from typing import Any, Final

INDEX_NAME: Final = "ReconcilableIndex"
PARTITION_ATTRIBUTE: Final = "reconcilable"
PARTITION: Final = "campaign"
OPEN_UNTIL_ATTRIBUTE: Final = "open_until"
# After every stop time (the year 2286): an active campaign is in every range.
STILL_OPEN: Final = 9_999_999_999


def open_values(stopped_at: int | None = None) -> dict[str, Any]:
    """The indexed attributes of an active campaign, or of one stopped at `stopped_at`, as plain values."""
    return {PARTITION_ATTRIBUTE: PARTITION, OPEN_UNTIL_ATTRIBUTE: STILL_OPEN if stopped_at is None else stopped_at}


def query_since(table_name: str, stopped_since: int, projection: str, names: dict[str, str]) -> dict[str, Any]:
    """A Query (paginator) request for the campaigns active or stopped at or after `stopped_since`."""
    return {
        "TableName": table_name,
        "IndexName": INDEX_NAME,
        "KeyConditionExpression": "#partition = :partition AND #open_until >= :since",
        "ProjectionExpression": projection,
        "ExpressionAttributeNames": {"#partition": PARTITION_ATTRIBUTE, "#open_until": OPEN_UNTIL_ATTRIBUTE, **names},
        "ExpressionAttributeValues": {":partition": {"S": PARTITION}, ":since": {"N": str(stopped_since)}},
    }
