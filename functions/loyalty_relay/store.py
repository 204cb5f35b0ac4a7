"""The relay's own record of each settled event: what makes an event relayed once even before app's miles dedupes."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from typing import Any

from hub_core import aws
from hub_core.config import ConfigError
from hub_core.dynamo import from_item, put_if, to_item
from loyalty_relay.models import OwnerRecord, PendingAction, Settlement

_BATCH_GET_LIMIT = 100
# The member id's attribute in each owning table, and how a record's key is written there.
_MEMBER_ATTRIBUTE = "apps_miles_user_id"
_OWNER_KEYS: dict[str, tuple[str, str]] = {
    "leads": ("lead_id", "{}"),
    "campaigns": ("campaign_ref", "{}"),
    "licences": ("pk", "order#{}"),
}


def record_key(event_key: str) -> str:
    return f"event#{event_key}"


class LoyaltyStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def settled(self, event_keys: Collection[str]) -> dict[str, dict[str, Any]]:
        """The records of those events that have one, by event key: one consistent BatchGetItem per 100 keys."""
        found: dict[str, dict[str, Any]] = {}
        keys = sorted(set(event_keys))
        for start in range(0, len(keys), _BATCH_GET_LIMIT):
            wanted: dict[str, Any] = {
                self.table_name: {
                    "Keys": [{"pk": {"S": record_key(key)}} for key in keys[start : start + _BATCH_GET_LIMIT]],
                    "ConsistentRead": True,
                }
            }
            while wanted:
                answer = aws.dynamodb().batch_get_item(RequestItems=wanted)
                for item in answer.get("Responses", {}).get(self.table_name, []):
                    values = from_item(item)
                    found[str(values["pk"]).removeprefix("event#")] = values
                wanted = answer.get("UnprocessedKeys") or {}
        return found

    def record(self, action: PendingAction, settlement: Settlement, *, now: datetime | None = None) -> None:
        """Keep the settlement; a record already there (a concurrent copy of the event settled it) is left as is."""
        values: dict[str, Any] = {
            "pk": record_key(action.key),
            "state": settlement.outcome.value,
            "tag_id": action.tag_id,
            "detail_type": action.detail_type,
            # Erasure finds a person's records by this (sparse GSI UserIndex) and removes it; the record stays.
            "user_id": action.user_id,
            "settled_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        }
        if settlement.code is not None:
            values["code"] = settlement.code
        if settlement.reason:
            values["reason"] = settlement.reason
        put_if(
            TableName=self.table_name,
            Item=to_item(values),
            ConditionExpression="attribute_not_exists(pk)",
        )


class OwnerTables:
    """The member id of an event, read from the record that owns it: the lead, the campaign or the licence order.

    The relay may only GetItem these tables (template.yaml), and reads one attribute. A record that is gone (its
    TTL, an erasure) or no longer names a member gives None: there is no one to credit.
    """

    def __init__(self, table_names: dict[str, str]) -> None:
        self.table_names = table_names

    def member_of(self, owner: OwnerRecord) -> str | None:
        table = self.table_names.get(owner.table, "")
        if not table:
            raise ConfigError(f"no table name is set for the {owner.table} the relay reads member ids from")
        answer = aws.dynamodb().get_item(
            TableName=table,
            Key={_OWNER_KEYS[owner.table][0]: {"S": _OWNER_KEYS[owner.table][1].format(owner.key)}},
            ConsistentRead=True,
            ProjectionExpression="#member",
            ExpressionAttributeNames={"#member": _MEMBER_ATTRIBUTE},
        )
        value = from_item(answer.get("Item") or {}).get(_MEMBER_ATTRIBUTE)
        return value if isinstance(value, str) and value else None
