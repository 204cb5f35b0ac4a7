"""LeadsTable's part of an erasure: every lead of one address, phone number or member, deleted (all of a lead is
the person's). Lead intake owns the table; the erasure function calls this, and ships this module alone."""

from __future__ import annotations

from typing import Any

from hub_core.dynamo import delete_if, to_item
from hub_core.personal_data import count, keys_holding

BY_EMAIL = "EmailIndex"
BY_PHONE = "PhoneIndex"
BY_MEMBER = "MemberIndex"
# Each sparse KEYS_ONLY index of LeadsTable and the attribute it is keyed on (tests/infra/test_privacy_layout.py).
INDEXES = {BY_EMAIL: "email_key", BY_PHONE: "phone_key", BY_MEMBER: "apps_miles_user_id"}


def erase_person(table: str, *, email_key: str | None, phone_key: str | None, user_id: str | None) -> int:
    """How many leads were deleted; a lead found by two of its keys is deleted once (the second condition fails)."""
    wanted = {BY_EMAIL: email_key, BY_PHONE: phone_key, BY_MEMBER: user_id}
    found: list[tuple[str, str, dict[str, Any]]] = [
        (INDEXES[index], value, key)
        for index, value in wanted.items()
        if value
        for key in keys_holding(table, index, INDEXES[index], value)
    ]
    return sum(
        count(
            delete_if(
                TableName=table,
                Key=key,
                ConditionExpression="#attribute = :value",
                ExpressionAttributeNames={"#attribute": attribute},
                ExpressionAttributeValues=to_item({":value": value}),
            )
        )
        for attribute, value, key in found
    )
