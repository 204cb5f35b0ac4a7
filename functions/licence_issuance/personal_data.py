"""LicencesTable's part of an erasure: the member id removed from licence orders (kept there for the loyalty
relay); the order stays the shop's. Licence issuance owns the table; the erasure function calls this."""

from __future__ import annotations

from hub_core.personal_data import remove_attribute

MEMBER_INDEX = "MemberIndex"
MEMBER_ATTRIBUTE = "apps_miles_user_id"


def erase_member(table: str, user_id: str) -> int:
    return remove_attribute(table, MEMBER_INDEX, MEMBER_ATTRIBUTE, user_id)
