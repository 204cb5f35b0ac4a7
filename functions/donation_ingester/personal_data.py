"""DonationsTable's part of an erasure: the donor's number (its keyed hash) and free text removed from their
donations; amounts and totals stay. The ingester owns the table; the erasure function calls this."""

from __future__ import annotations

from collections.abc import Sequence

from hub_core.dynamo import to_item, update_if
from hub_core.personal_data import count, keys_holding

DONOR_INDEX = "DonorIndex"
DONOR_ATTRIBUTE = "msisdn"


def erase_donor(table: str, msisdn_keys: Sequence[str]) -> int:
    """How many donations lost their donor's data.

    `msisdn_keys` are the values a donation of this donor may hold: the number's keyed hash under each key of the
    ring, and the number itself for donations stored before numbers were hashed."""
    return sum(
        count(
            update_if(
                TableName=table,
                Key=key,
                UpdateExpression="REMOVE msisdn, #text",
                ConditionExpression="msisdn = :value",
                ExpressionAttributeNames={"#text": "text"},
                ExpressionAttributeValues=to_item({":value": value}),
            )
        )
        for value in dict.fromkeys(msisdn_keys)
        for key in keys_holding(table, DONOR_INDEX, DONOR_ATTRIBUTE, value)
    )
