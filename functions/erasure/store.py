"""The hub's tables as erasure sees them: a person's items found through sparse KEYS_ONLY indexes, never a Scan,
and each one erased by one conditional write, so a repeat (or a race with another erasure) counts nothing twice."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from hub_core import aws
from hub_core.dynamo import delete_if, from_item, put_if, to_item, update_if

LEADS_BY_EMAIL = "EmailIndex"
LEADS_BY_MEMBER = "MemberIndex"
LEADS_BY_PHONE = "PhoneIndex"
CAMPAIGNS_BY_MSISDN = "CreatorMsisdnIndex"
CAMPAIGNS_BY_USER = "CreatorUserIndex"
DONATIONS_BY_MSISDN = "DonorIndex"
LOYALTY_BY_USER = "UserIndex"
LICENCES_BY_MEMBER = "MemberIndex"


class ErasureStore:
    def __init__(self, *, leads: str, campaigns: str, donations: str, loyalty: str, licences: str = "") -> None:
        self.licences = licences
        self.leads = leads
        self.campaigns = campaigns
        self.donations = donations
        self.loyalty = loyalty

    def erase_leads(self, *, email_key: str | None, user_id: str | None, phone_key: str | None = None) -> int:
        """Delete every lead of this address, phone number or member: all of a lead is the person's."""
        found: list[tuple[str, str, dict[str, Any]]] = []
        if email_key:
            found += [
                ("email_key", email_key, key) for key in self._keys(self.leads, LEADS_BY_EMAIL, "email_key", email_key)
            ]
        if phone_key:
            found += [
                ("phone_key", phone_key, key) for key in self._keys(self.leads, LEADS_BY_PHONE, "phone_key", phone_key)
            ]
        if user_id:
            found += [
                ("apps_miles_user_id", user_id, key)
                for key in self._keys(self.leads, LEADS_BY_MEMBER, "apps_miles_user_id", user_id)
            ]
        # A lead found by both is deleted by the first delete; the second's condition then fails and counts 0.
        return sum(
            self._write(
                "delete_item",
                TableName=self.leads,
                Key=key,
                ConditionExpression="#attribute = :value",
                ExpressionAttributeNames={"#attribute": attribute},
                ExpressionAttributeValues=to_item({":value": value}),
            )
            for attribute, value, key in found
        )

    def erase_campaign_creator(self, *, msisdn: str | None, user_id: str | None, now: int) -> int:
        """Remove the creator's number and user id from their campaigns; the campaign, its state and money stay."""
        found: dict[str, dict[str, Any]] = {}
        if msisdn:
            for key in self._keys(self.campaigns, CAMPAIGNS_BY_MSISDN, "confirm_msisdn", msisdn):
                found[key["campaign_ref"]["S"]] = key
        if user_id:
            for key in self._keys(self.campaigns, CAMPAIGNS_BY_USER, "apps_miles_user_id", user_id):
                found[key["campaign_ref"]["S"]] = key
        matches = []
        values: dict[str, Any] = {":now": now, ":entry": [{"at": now, "action": "creator_erased"}]}
        if msisdn:
            matches.append("confirm_msisdn = :msisdn")
            values[":msisdn"] = msisdn
        if user_id:
            matches.append("apps_miles_user_id = :user")
            values[":user"] = user_id
        return sum(
            self._write(
                "update_item",
                TableName=self.campaigns,
                Key=key,
                UpdateExpression=(
                    "SET erased_at = :now, history = list_append(if_not_exists(history, :empty), :entry) "
                    "REMOVE confirm_msisdn, apps_miles_user_id"
                ),
                ConditionExpression=" OR ".join(matches),
                ExpressionAttributeValues=to_item(values | {":empty": []}),
            )
            for key in found.values()
        )

    def erase_donor(self, msisdn_keys: Sequence[str]) -> int:
        """Remove the donor's number (its keyed hash) and free text from their donations; amounts and totals stay.

        `msisdn_keys` are the values a donation of this donor may hold: the number's keyed hash under each key of the
        ring, and the number itself for donations stored before numbers were hashed.
        """
        erased = 0
        for value in dict.fromkeys(msisdn_keys):
            erased += sum(
                self._write(
                    "update_item",
                    TableName=self.donations,
                    Key=key,
                    UpdateExpression="REMOVE msisdn, #text",
                    ConditionExpression="msisdn = :value",
                    ExpressionAttributeNames={"#text": "text"},
                    ExpressionAttributeValues=to_item({":value": value}),
                )
                for key in self._keys(self.donations, DONATIONS_BY_MSISDN, "msisdn", value)
            )
        return erased

    def erase_loyalty_user(self, user_id: str) -> int:
        """Remove the user id from loyalty records; the record stays, it is what makes a relay happen once."""
        return self._remove_attribute(self.loyalty, LOYALTY_BY_USER, "user_id", user_id)

    def erase_licence_member(self, user_id: str) -> int:
        """Remove the member id from licence orders (kept for the loyalty relay); the order stays the shop's."""
        if not self.licences:
            return 0
        return self._remove_attribute(self.licences, LICENCES_BY_MEMBER, "apps_miles_user_id", user_id)

    def _remove_attribute(self, table: str, index: str, attribute: str, value: str) -> int:
        return sum(
            self._write(
                "update_item",
                TableName=table,
                Key=key,
                UpdateExpression="REMOVE #attribute",
                ConditionExpression="#attribute = :value",
                ExpressionAttributeNames={"#attribute": attribute},
                ExpressionAttributeValues=to_item({":value": value}),
            )
            for key in self._keys(table, index, attribute, value)
        )

    @staticmethod
    def _keys(table: str, index: str, attribute: str, value: str) -> Iterator[dict[str, Any]]:
        """The primary keys of the items whose `attribute` is `value` (a KEYS_ONLY index projects them)."""
        pages = (
            aws.dynamodb()
            .get_paginator("query")
            .paginate(
                TableName=table,
                IndexName=index,
                KeyConditionExpression="#attribute = :value",
                ExpressionAttributeNames={"#attribute": attribute},
                ExpressionAttributeValues=to_item({":value": value}),
            )
        )
        for page in pages:
            for item in page.get("Items", []):
                yield {name: item[name] for name in item if name != attribute}

    @staticmethod
    def _write(operation: str, **arguments: Any) -> int:
        """1 when this write erased something; 0 when the item no longer held the value (erased meanwhile)."""
        written = {"put_item": put_if, "update_item": update_if, "delete_item": delete_if}[operation](**arguments)
        return 1 if written.applied else 0


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
