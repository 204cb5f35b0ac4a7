"""LicencesTable access: each order's licence, which Pimenko licence belongs to which order, and create turns.

One table, four kinds of item, told apart by their key's prefix:
- `order#<order id>`: the order's state and, once issued, its licence (key, expiry, sites);
- `licence#<Pimenko id>`: which order a Pimenko licence belongs to, written once, so no two orders claim one;
- `key#<sha256 of the licence key>`: finds the order from a licence key without storing the key a second time;
- `turn#<product>#<type>`: who may create a licence of that product and type right now (see flow).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from hub_core import aws
from hub_core.dynamo import delete_if, from_item, put_if, to_item, update_if
from licence_issuance.models import IssuedLicence, LicenceRequest, LicenceState


def key_digest(licence_key: str) -> str:
    return hashlib.sha256(licence_key.encode()).hexdigest()


@dataclass(frozen=True)
class OrderRecord:
    order_id: str
    state: LicenceState
    fingerprint: str
    product_id: int
    licence_type: int
    url: str
    attempt_id: str
    # The newest licence id before this order's first create; None until noted (0 is an empty Pimenko account).
    after_id: int | None
    lease_until: int
    licence: IssuedLicence
    # After a create whose outcome is unknown: no new create before then, only look-ups (it may still land).
    recreate_after: int = 0
    # How often an operator retried this order after a refusal, with corrected data (its history says what).
    retries: int = 0

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> OrderRecord:
        values = from_item(item)
        state = LicenceState(values["state"])
        issued = IssuedLicence(
            order_id=values["order_id"],
            state=state,
            licence_id=None if values.get("licence_id") is None else int(values["licence_id"]),
            key=values.get("licence_key"),
            status=values.get("licence_status"),
            expires_at=values.get("expires_at"),
            product_id=int(values["product_id"]),
            licence_type=int(values["licence_type"]),
            sites=list(values.get("sites", [])),
            message=values.get("message", ""),
        )
        return cls(
            order_id=values["order_id"],
            state=state,
            fingerprint=values["fingerprint"],
            product_id=int(values["product_id"]),
            licence_type=int(values["licence_type"]),
            url=values["first_site"],
            attempt_id=values.get("attempt_id", ""),
            after_id=None if values.get("after_id") is None else int(values["after_id"]),
            lease_until=int(values.get("lease_until", 0)),
            licence=issued,
            recreate_after=int(values.get("recreate_after", 0)),
            retries=int(values.get("retries", 0)),
        )


@dataclass(frozen=True)
class OrderHeld:
    """Another attempt holds the order right now, or it is settled: `record` says which."""

    record: OrderRecord


class LicenceStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    # ---------------------------------------------------------------------------------------------- orders

    def order(self, order_id: str) -> OrderRecord | None:
        response = aws.dynamodb().get_item(
            TableName=self.table_name, Key={"pk": {"S": f"order#{order_id}"}}, ConsistentRead=True
        )
        item = response.get("Item")
        return OrderRecord.from_item(dict(item)) if item else None

    def order_by_key(self, licence_key: str) -> OrderRecord | None:
        response = aws.dynamodb().get_item(
            TableName=self.table_name, Key={"pk": {"S": f"key#{key_digest(licence_key)}"}}, ConsistentRead=True
        )
        item = response.get("Item")
        return self.order(from_item(dict(item))["order_id"]) if item else None

    def hold_order(
        self, request: LicenceRequest, *, attempt_id: str, now: int, lease_seconds: int
    ) -> OrderRecord | OrderHeld:
        """Take the order for one attempt: a new order, an uncertain one, or one whose last attempt died.

        An uncertain order keeps the `after_id` its first create attempt saw, so the look-up knows what is new.
        A verified member id is kept on the order: LicenceIssued only says there is one, and the loyalty relay reads
        it here (erasure removes it through the sparse MemberIndex).
        """
        member = {":member": request.apps_miles_user_id} if request.apps_miles_user_id else {}
        written = update_if(
            TableName=self.table_name,
            Key={"pk": {"S": f"order#{request.order_id}"}},
            UpdateExpression=(
                "SET order_id = :order, #state = :creating, fingerprint = :fingerprint, product_id = :product, "
                "licence_type = :type, first_site = :url, customer_reference = :customer, attempt_id = :attempt, "
                "lease_until = :lease, updated_at = :now, created_at = if_not_exists(created_at, :now), "
                "attempts = if_not_exists(attempts, :zero) + :one"
                + (", apps_miles_user_id = :member" if member else "")
            ),
            ConditionExpression=(
                "attribute_not_exists(pk) OR (fingerprint = :fingerprint AND "
                "(#state = :uncertain OR (#state = :creating AND lease_until < :now)))"
            ),
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=to_item(
                {
                    ":order": request.order_id,
                    ":creating": LicenceState.CREATING.value,
                    ":uncertain": LicenceState.UNCERTAIN.value,
                    ":fingerprint": request.fingerprint(),
                    ":product": request.product_id,
                    ":type": request.licence_type,
                    ":url": request.url,
                    ":customer": request.customer_reference,
                    ":attempt": attempt_id,
                    ":lease": now + lease_seconds,
                    ":now": now,
                    ":zero": 0,
                    ":one": 1,
                }
                | member
            ),
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        if not written.applied:
            return OrderHeld(OrderRecord.from_item(written.existing))
        return OrderRecord.from_item(written.attributes)

    def note_after_id(self, order_id: str, attempt_id: str, after_id: int) -> None:
        """Remember the newest licence id seen before this order's first create: the look-up's starting point."""
        self._update_order(order_id, attempt_id, "SET after_id = :after", {":after": after_id})

    def settle_uncertain(
        self, order_id: str, attempt_id: str, *, now: int, message: str, recreate_after: int | None = None
    ) -> None:
        """A licence may exist now; `recreate_after` (after a create that got no answer) holds off a new create."""
        values: dict[str, Any] = {":uncertain": LicenceState.UNCERTAIN.value, ":now": now, ":message": message}
        sets = "#state = :uncertain, updated_at = :now, message = :message"
        if recreate_after is not None:
            values[":recreate_after"] = recreate_after
            sets += ", recreate_after = :recreate_after"
        self._update_order(order_id, attempt_id, f"SET {sets} REMOVE lease_until", values)

    def release_order(self, order_id: str, attempt_id: str) -> None:
        """Nothing of this order exists at Pimenko: forget the attempt, so a retry starts afresh."""
        aws.dynamodb().delete_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"order#{order_id}"}},
            ConditionExpression="attempt_id = :attempt",
            ExpressionAttributeValues=to_item({":attempt": attempt_id}),
        )

    def reject(self, request: LicenceRequest, *, now: int, message: str, attempt_id: str | None = None) -> None:
        """Record an order refused for good (our rules or Pimenko's), so a repeat is answered the same way.

        A refused condition records nothing, on purpose: without `attempt_id` the order is already there (another
        request's record answers its repeats); with it, another attempt took the order over and settles it."""
        condition = "attempt_id = :attempt" if attempt_id else "attribute_not_exists(pk)"
        values: dict[str, Any] = {":attempt": attempt_id} if attempt_id else {}
        item = {
            "pk": f"order#{request.order_id}",
            "order_id": request.order_id,
            "state": LicenceState.REJECTED.value,
            "fingerprint": request.fingerprint(),
            "product_id": request.product_id,
            "licence_type": request.licence_type,
            "first_site": request.url,
            # Kept so that an operator's retry with corrected data (hub licences retry) can rebuild the order.
            "customer_reference": request.customer_reference,
            "message": message,
            "attempt_id": attempt_id or "",
            "created_at": now,
            "updated_at": now,
        }
        put_if(
            TableName=self.table_name,
            Item=to_item(item),
            ConditionExpression=condition,
            **({"ExpressionAttributeValues": to_item(values)} if values else {}),
        )

    def reopen_refused(self, request: LicenceRequest, *, refused: OrderRecord, now: int) -> bool:
        """Turn a refused order into a new attempt at `request` (corrected data), keeping what was refused in its
        history. Conditional on the refusal still being there, so of two retries at once only one reopens it.

        The order is left `creating` with an expired lease: the next hold_order takes it as one whose attempt
        died. Its `after_id` stays, so that attempt looks for a licence before it creates (as after any attempt).
        False when the order is no longer the refusal read (another retry came first)."""
        refusal = {
            "at": now,
            "fingerprint": refused.fingerprint,
            "product_id": refused.product_id,
            "licence_type": refused.licence_type,
            "message": refused.licence.message,
        }
        return update_if(
            TableName=self.table_name,
            Key={"pk": {"S": f"order#{request.order_id}"}},
            UpdateExpression=(
                "SET #state = :creating, fingerprint = :fingerprint, product_id = :product, "
                "licence_type = :type, first_site = :url, customer_reference = :customer, attempt_id = :none, "
                "lease_until = :zero, updated_at = :now, retries = if_not_exists(retries, :zero) + :one, "
                "history = list_append(if_not_exists(history, :empty), :refusal), message = :blank"
            ),
            ConditionExpression="#state = :rejected AND fingerprint = :old",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=to_item(
                {
                    ":creating": LicenceState.CREATING.value,
                    ":rejected": LicenceState.REJECTED.value,
                    ":old": refused.fingerprint,
                    ":fingerprint": request.fingerprint(),
                    ":product": request.product_id,
                    ":type": request.licence_type,
                    ":url": request.url,
                    ":customer": request.customer_reference,
                    ":none": "",
                    ":zero": 0,
                    ":one": 1,
                    ":now": now,
                    ":empty": [],
                    ":refusal": [refusal],
                    ":blank": "",
                }
            ),
        ).applied

    def history(self, order_id: str) -> list[dict[str, Any]]:
        """What was refused before each retry of the order, oldest first."""
        response = aws.dynamodb().get_item(
            TableName=self.table_name, Key={"pk": {"S": f"order#{order_id}"}}, ConsistentRead=True,
            ProjectionExpression="history",
        )  # fmt: skip
        item = response.get("Item")
        return list(from_item(dict(item)).get("history", [])) if item else []

    def record_rejected_event(self, event_id: str, *, problems: list[dict[str, str]], now: int) -> None:
        """A LicenceRequested we cannot even read as an order: kept for the operator, never retried."""
        aws.dynamodb().put_item(
            TableName=self.table_name,
            Item=to_item({"pk": f"rejected-event#{event_id}", "problems": problems, "created_at": now}),
        )

    def issue(self, order_id: str, attempt_id: str, *, licence: IssuedLicence, now: int) -> IssuedLicence:
        """The order has its licence: recorded with the key's digest item, in one transaction; the licence as the
        order record now answers it (a repeat reads the same, without this attempt reading it back)."""
        assert licence.key is not None
        assert licence.licence_id is not None
        order_update = {
            "TableName": self.table_name,
            "Key": {"pk": {"S": f"order#{order_id}"}},
            "UpdateExpression": (
                "SET #state = :issued, licence_id = :id, licence_key = :key, licence_status = :status, "
                "expires_at = :expires, sites = :sites, updated_at = :now, issued_at = :now, message = :empty "
                "REMOVE lease_until"
            ),
            "ConditionExpression": "attempt_id = :attempt",
            "ExpressionAttributeNames": {"#state": "state"},
            "ExpressionAttributeValues": to_item(
                {
                    ":issued": LicenceState.ISSUED.value,
                    ":id": licence.licence_id,
                    ":key": licence.key,
                    ":status": licence.status or "",
                    ":expires": licence.expires_at,
                    ":sites": licence.sites,
                    ":now": now,
                    ":empty": "",
                    ":attempt": attempt_id,
                }
            ),
        }
        key_item = {
            "TableName": self.table_name,
            "Item": to_item({"pk": f"key#{key_digest(licence.key)}", "order_id": order_id}),
        }
        aws.dynamodb().transact_write_items(
            TransactItems=[{"Update": order_update}, {"Put": key_item}]  # type: ignore[typeddict-item]
        )
        return licence.model_copy(update={"state": LicenceState.ISSUED, "status": licence.status or "", "message": ""})

    def add_site(self, order_id: str, url: str, *, now: int) -> None:
        aws.dynamodb().update_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"order#{order_id}"}},
            UpdateExpression="SET sites = list_append(sites, :url), updated_at = :now",
            ExpressionAttributeValues=to_item({":url": [url], ":now": now}),
        )

    def _update_order(self, order_id: str, attempt_id: str, expression: str, values: dict[str, Any]) -> None:
        names = {"#state": "state"} if "#state" in expression else {}
        aws.dynamodb().update_item(
            TableName=self.table_name,
            Key={"pk": {"S": f"order#{order_id}"}},
            UpdateExpression=expression,
            ConditionExpression="attempt_id = :attempt",
            ExpressionAttributeValues=to_item(values | {":attempt": attempt_id}),
            **({"ExpressionAttributeNames": names} if names else {}),  # type: ignore[arg-type]
        )

    # ---------------------------------------------------------------------------------------------- claims

    def claim_licence(self, licence_id: int, order_id: str) -> bool:
        """Make a Pimenko licence this order's; False when another order already has it."""
        return put_if(
            TableName=self.table_name,
            Item=to_item({"pk": f"licence#{licence_id}", "order_id": order_id}),
            ConditionExpression="attribute_not_exists(pk) OR order_id = :order",
            ExpressionAttributeValues=to_item({":order": order_id}),
        ).applied

    # ---------------------------------------------------------------------------------------------- turns

    def take_turn(self, product_id: int, licence_type: int, *, holder: str, now: int, lease_seconds: int) -> bool:
        """One create (or look-up) at a time per product and type, so "new since" names exactly one licence."""
        return put_if(
            TableName=self.table_name,
            Item=to_item(
                {"pk": f"turn#{product_id}#{licence_type}", "holder": holder, "lease_until": now + lease_seconds}
            ),
            ConditionExpression="attribute_not_exists(pk) OR lease_until < :now OR holder = :holder",
            ExpressionAttributeValues=to_item({":now": now, ":holder": holder}),
        ).applied

    def end_turn(self, product_id: int, licence_type: int, *, holder: str) -> None:
        delete_if(
            TableName=self.table_name,
            Key={"pk": {"S": f"turn#{product_id}#{licence_type}"}},
            ConditionExpression="holder = :holder",
            ExpressionAttributeValues=to_item({":holder": holder}),
        )

    # ---------------------------------------------------------------------------------------------- waiting events

    def keep_waiting(self, waiting_id: str, event: dict[str, Any], *, expires_at: int) -> None:
        """A requeued LicenceRequested event, kept here so that its retry message carries only `waiting_id`."""
        aws.dynamodb().put_item(
            TableName=self.table_name,
            Item={
                "pk": {"S": f"waiting#{waiting_id}"},
                "event": {"S": json.dumps(event)},
                "expires_at": {"N": str(expires_at)},
            },
        )

    def waiting_event(self, waiting_id: str) -> dict[str, Any] | None:
        """The kept event; None once a delivery of its message ran it, or after it expired."""
        key = {"pk": {"S": f"waiting#{waiting_id}"}}
        item = aws.dynamodb().get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item")
        return None if item is None else dict(json.loads(item["event"]["S"]))

    def forget_waiting(self, waiting_id: str) -> None:
        aws.dynamodb().delete_item(TableName=self.table_name, Key={"pk": {"S": f"waiting#{waiting_id}"}})
