"""CampaignsTable's part of an erasure: the creator's number and member id removed from their campaigns, which
stay with their state and money. The campaign lifecycle owns the table; the erasure function calls this."""

from __future__ import annotations

from typing import Any

from hub_core.dynamo import to_item, update_if
from hub_core.personal_data import count, keys_holding

BY_MSISDN = "CreatorMsisdnIndex"
BY_USER = "CreatorUserIndex"
# Each sparse KEYS_ONLY index of CampaignsTable and the attribute it is keyed on (tests/infra/test_privacy_layout.py).
INDEXES = {BY_MSISDN: "confirm_msisdn", BY_USER: "apps_miles_user_id"}


def erase_creator(table: str, *, msisdn: str | None, user_id: str | None, now: int) -> int:
    """How many campaigns lost their creator's data; each notes the erasure in its history."""
    found: dict[str, dict[str, Any]] = {}
    matches = []
    values: dict[str, Any] = {":now": now, ":entry": [{"at": now, "action": "creator_erased"}], ":empty": []}
    for index, placeholder, value in ((BY_MSISDN, ":msisdn", msisdn), (BY_USER, ":user", user_id)):
        if not value:
            continue
        attribute = INDEXES[index]
        for key in keys_holding(table, index, attribute, value):
            found[key["campaign_ref"]["S"]] = key
        matches.append(f"{attribute} = {placeholder}")
        values[placeholder] = value
    return sum(
        count(
            update_if(
                TableName=table,
                Key=key,
                UpdateExpression=(
                    "SET erased_at = :now, history = list_append(if_not_exists(history, :empty), :entry) "
                    "REMOVE confirm_msisdn, apps_miles_user_id"
                ),
                ConditionExpression=" OR ".join(matches),
                ExpressionAttributeValues=to_item(values),
            )
        )
        for key in found.values()
    )
