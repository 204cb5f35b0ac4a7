"""The hub's tables as erasure reaches them: each through its owner's `personal_data` module (the owner knows its
items and indexes; erasure writes no table of another function's itself), and erasure's own ErasureRequestsTable."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from campaign_lifecycle.personal_data import erase_creator
from donation_ingester.personal_data import erase_donor
from hub_core import aws
from hub_core.dynamo import from_item, to_item
from lead_intake.personal_data import erase_person
from licence_issuance.personal_data import erase_member
from loyalty_relay.personal_data import erase_user


class ErasureStore:
    """The tables' names, for the owners' erase functions; one method per table, as the flow erases them."""

    def __init__(self, *, leads: str, campaigns: str, donations: str, loyalty: str, licences: str = "") -> None:
        self.licences = licences
        self.leads = leads
        self.campaigns = campaigns
        self.donations = donations
        self.loyalty = loyalty

    def erase_leads(self, *, email_key: str | None, user_id: str | None, phone_key: str | None = None) -> int:
        return erase_person(self.leads, email_key=email_key, phone_key=phone_key, user_id=user_id)

    def erase_campaign_creator(self, *, msisdn: str | None, user_id: str | None, now: int) -> int:
        return erase_creator(self.campaigns, msisdn=msisdn, user_id=user_id, now=now)

    def erase_donor(self, msisdn_keys: Sequence[str]) -> int:
        return erase_donor(self.donations, msisdn_keys)

    def erase_loyalty_user(self, user_id: str) -> int:
        return erase_user(self.loyalty, user_id)

    def erase_licence_member(self, user_id: str) -> int:
        # A stack deployed before licences were erased has no LicencesTable name to give.
        return erase_member(self.licences, user_id) if self.licences else 0


class DeferredRequests:
    """ErasureRequestsTable: the requests whose erasure could not finish at once, kept by id until done (or TTL)."""

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def keep(self, request_id: str, request: dict[str, Any], *, created_at: int, expires_at: int) -> None:
        item = {"request_id": request_id, "request": request, "created_at": created_at, "expires_at": expires_at}
        aws.dynamodb().put_item(TableName=self.table_name, Item=to_item(item))

    def get(self, request_id: str) -> dict[str, Any] | None:
        """The stored request's fields; None when it is done (deleted) or expired."""
        key = {"request_id": {"S": request_id}}
        item = aws.dynamodb().get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item")
        return None if item is None else dict(from_item(item)["request"])

    def delete(self, request_id: str) -> None:
        aws.dynamodb().delete_item(TableName=self.table_name, Key={"request_id": {"S": request_id}})
