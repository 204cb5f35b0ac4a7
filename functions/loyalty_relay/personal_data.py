"""LoyaltyTable's part of an erasure: the member id removed from relay records, which stay (they are what makes a
relay happen once). The relay owns the table; the erasure function calls this."""

from __future__ import annotations

from hub_core.personal_data import remove_attribute

USER_INDEX = "UserIndex"
USER_ATTRIBUTE = "user_id"


def erase_user(table: str, user_id: str) -> int:
    return remove_attribute(table, USER_INDEX, USER_ATTRIBUTE, user_id)
