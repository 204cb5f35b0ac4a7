"""LeadsTable access: a lead is written before any partner call, and only one attempt at a time may forward it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hub_core import aws
from hub_core.dynamo import delete_if, from_item, put_if, to_item, update_if
from hub_core.identifiers import DEFAULT_PHONE_COUNTRY_CODE, email_key, phone_key
from lead_intake.models import LeadStatus


@dataclass(frozen=True)
class LeadRecord:
    lead_id: str
    status: LeadStatus
    lead: dict[str, str]
    attempts: int
    message: str
    apps_miles_user_id: str | None = None
    # What answers a repeat (flow.submit): the lead's fingerprint, the end of its dedup window, until when its
    # first invocation may still be answering (absent once it has), and the newer lead of the same dedup key.
    fingerprint: str = ""
    dedup_until: int = 0
    answer_by: int | None = None
    successor: str | None = None
    successor_until: int = 0

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> LeadRecord:
        values = from_item(item)
        return cls(
            lead_id=values["lead_id"],
            status=LeadStatus(values["status"]),
            lead=dict(values.get("lead", {})),
            attempts=int(values.get("attempts", 0)),
            message=str(values.get("message", "")),
            apps_miles_user_id=values.get("apps_miles_user_id"),
            fingerprint=str(values.get("fingerprint", "")),
            dedup_until=int(values.get("dedup_until", 0)),
            answer_by=None if values.get("answer_by") is None else int(values["answer_by"]),
            successor=values.get("successor"),
            successor_until=int(values.get("successor_until", 0)),
        )


@dataclass(frozen=True)
class ClaimRefused:
    """Another attempt holds the lead, or it is already settled (`record` None: it no longer exists)."""

    record: LeadRecord | None


class LeadVanished(Exception):
    """A conditional write was refused for a lead that was gone by the time DynamoDB answered (an erasure between
    the check and the answer): there is nothing to answer a repeat from, so the invocation fails and is retried."""

    def __init__(self) -> None:
        super().__init__("a lead vanished during a conditional write")  # its id derives from personal data


# The `message` of a lead MiiMOSA accepted whose record of it failed (store.mark_unrecorded).
UNRECORDED = "unrecorded"


class LeadStore:
    def __init__(self, table_name: str, *, phone_country_code: str = DEFAULT_PHONE_COUNTRY_CODE) -> None:
        self.table_name = table_name
        self.phone_country_code = phone_country_code

    def create(
        self,
        lead_id: str,
        lead: dict[str, str],
        *,
        now: int,
        lease_seconds: int,
        expires_at: int,
        apps_miles_user_id: str | None = None,
        fingerprint: str = "",
        dedup_until: int = 0,
        answer_by: int | None = None,
    ) -> LeadRecord | None:
        """Store a new lead already claimed by the caller, so the safety-net retry does not race it; None when it
        is stored, else the lead already stored under that id (read by the same conditional put: no second read).

        `fingerprint`, `dedup_until` and `answer_by` are what a repeat of the submission is answered from
        (flow.submit): the id of a submitted lead is derived from its dedup key.
        """
        values: dict[str, Any] = {
            "lead_id": lead_id,
            "status": LeadStatus.FORWARDING.value,
            "lead": lead,
            "attempts": 1,
            "created_at": now,
            "updated_at": now,
            "lease_until": now + lease_seconds,
            "expires_at": expires_at,
        }
        if fingerprint:
            # A hash of the normalised lead (LeadForm.fingerprint): tells a repeat from another lead under the
            # same Idempotency-Key, and holds nothing the `lead` beside it does not.
            values["fingerprint"] = fingerprint
            values["dedup_until"] = dedup_until
        if answer_by is not None:
            values["answer_by"] = answer_by
        if lead.get("email"):
            # Erasure finds a person's leads by this (LeadsTable's EmailIndex), whatever the case typed.
            values["email_key"] = email_key(lead["email"])
        phone = phone_key(lead.get("phone", ""), self.phone_country_code)
        if phone:
            # And by this (PhoneIndex): the number in international digits, however it was typed, as erasure
            # computes it from the number it is given (hub_core.identifiers.phone_key).
            values["phone_key"] = phone
        if apps_miles_user_id:
            values["apps_miles_user_id"] = apps_miles_user_id
        written = put_if(
            TableName=self.table_name,
            Item=to_item(values),
            ConditionExpression="attribute_not_exists(lead_id)",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        if written.applied:
            return None
        if not written.existing:  # gone between the check and the answer (an erasure): nothing to answer from
            raise LeadVanished
        return LeadRecord.from_item(written.existing)

    def get(self, lead_id: str) -> LeadRecord | None:
        """The lead as stored now (a consistent read), None when there is none."""
        item = aws.dynamodb().get_item(TableName=self.table_name, Key={"lead_id": {"S": lead_id}}, ConsistentRead=True)
        found: dict[str, Any] | None = item.get("Item")
        return LeadRecord.from_item(found) if found else None

    def discard(self, lead_id: str) -> None:
        """Delete a lead that was stored but never offered to MiiMOSA (its safety net could not be queued), so
        that a resubmit starts afresh instead of finding a lead no retry will ever forward."""
        # Refused: an attempt took it meanwhile, and that attempt's lead is kept.
        delete_if(
            TableName=self.table_name,
            Key={"lead_id": {"S": lead_id}},
            ConditionExpression="#status = :forwarding AND attempts = :one",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_item({":forwarding": LeadStatus.FORWARDING.value, ":one": 1}),
        )

    def link_successor(
        self, head_id: str, successor_id: str, *, now: int, until: int, replacing: str | None = None
    ) -> LeadRecord | None:
        """Name `successor_id` the lead of this dedup key until `until`, on the key's first lead (`head_id`), once
        its own window and any earlier successor's are over (or that successor, `replacing`, is gone). None when
        linked; else the head as it is now (another submission linked its lead first)."""
        values: dict[str, Any] = {":successor": successor_id, ":until": until, ":now": now}
        condition = "dedup_until < :now AND (attribute_not_exists(successor_until) OR successor_until < :now"
        if replacing is not None:
            values[":replacing"] = replacing
            condition += " OR successor = :replacing"
        written = update_if(
            TableName=self.table_name,
            Key={"lead_id": {"S": head_id}},
            UpdateExpression="SET successor = :successor, successor_until = :until",
            ConditionExpression=f"attribute_exists(lead_id) AND {condition})",
            ExpressionAttributeValues=to_item(values),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        if written.applied:
            return None
        if not written.existing:
            raise LeadVanished
        return LeadRecord.from_item(written.existing)

    def mark_unrecorded(self, lead_id: str) -> None:
        """MiiMOSA said yes and the record of it failed: the submitter has had their answer ("being recorded"), so a
        repeat gets that answer too rather than "in progress". Best effort, like the record it stands in for."""
        # Refused: settled meanwhile (the "accepted" message), nothing to mark.
        update_if(
            TableName=self.table_name,
            Key={"lead_id": {"S": lead_id}},
            UpdateExpression="SET message = :unrecorded REMOVE answer_by",
            ConditionExpression="#status = :forwarding",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_item({":forwarding": LeadStatus.FORWARDING.value, ":unrecorded": UNRECORDED}),
        )

    def claim(self, lead_id: str, *, now: int, lease_seconds: int) -> LeadRecord | ClaimRefused:
        """Take a queued lead (or an uncertain one whose extra lease ran out, see mark_uncertain) for one
        forwarding attempt, once the pause MiiMOSA asked for (`not_before`, from its Retry-After) is over.

        A lead found `forwarding` with its lease run out is not taken: its attempt may have reached MiiMOSA.

        One conditional update both claims and reads: no read-then-write race between two deliveries of the same
        retry message.
        """
        written = update_if(
            TableName=self.table_name,
            Key={"lead_id": {"S": lead_id}},
            UpdateExpression=(
                "SET #status = :forwarding, lease_until = :lease, updated_at = :now, "
                "attempts = if_not_exists(attempts, :zero) + :one REMOVE uncertain_since"
            ),
            ConditionExpression=(
                "attribute_exists(lead_id) AND "
                "(#status = :queued OR "
                "(#status = :forwarding AND lease_until < :now AND attribute_exists(uncertain_since))) AND "
                "(attribute_not_exists(not_before) OR not_before <= :now)"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_item(
                {
                    ":forwarding": LeadStatus.FORWARDING.value,
                    ":queued": LeadStatus.QUEUED.value,
                    ":lease": now + lease_seconds,
                    ":now": now,
                    ":zero": 0,
                    ":one": 1,
                }
            ),
            ReturnValues="ALL_NEW",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        if not written.applied:
            return ClaimRefused(LeadRecord.from_item(written.existing) if written.existing else None)
        return LeadRecord.from_item(written.attributes)

    def mark_uncertain(self, lead_id: str, *, now: int, lease_seconds: int) -> bool:
        """A `forwarding` lead whose lease ran out: its attempt died or could not record MiiMOSA's answer, so the
        lead may be at MiiMOSA already. It gets one more full lease (for a late record of the answer, see
        settle_accepted) before claim may take it again. False when it is not such a lead (any more)."""
        written = update_if(
            TableName=self.table_name,
            Key={"lead_id": {"S": lead_id}},
            UpdateExpression="SET uncertain_since = :now, lease_until = :lease, updated_at = :now",
            ConditionExpression=(
                "#status = :forwarding AND lease_until < :now AND attribute_not_exists(uncertain_since)"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_item(
                {":forwarding": LeadStatus.FORWARDING.value, ":now": now, ":lease": now + lease_seconds}
            ),
        )
        return written.applied

    def settle_accepted(self, lead_id: str, *, now: int, reference: str | None) -> LeadRecord | None:
        """Record, late, that MiiMOSA accepted the lead (its attempt could not write it); None when the lead is
        settled already or gone."""
        values: dict[str, Any] = {
            ":forwarded": LeadStatus.FORWARDED.value,
            ":forwarding": LeadStatus.FORWARDING.value,
            ":queued": LeadStatus.QUEUED.value,
            ":now": now,
            ":message": "",
        }
        sets = "#status = :forwarded, updated_at = :now, message = :message"
        if reference is not None:
            values[":reference"] = reference
            sets += ", partner_reference = :reference"
        written = update_if(
            TableName=self.table_name,
            Key={"lead_id": {"S": lead_id}},
            UpdateExpression=f"SET {sets} REMOVE lease_until, not_before, uncertain_since, answer_by",
            ConditionExpression="#status IN (:forwarding, :queued)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_item(values),
            ReturnValues="ALL_NEW",
        )
        return LeadRecord.from_item(written.attributes) if written.applied else None

    def settle(
        self,
        lead_id: str,
        status: LeadStatus,
        *,
        now: int,
        message: str = "",
        reference: str | None = None,
        not_before: int | None = None,
    ) -> None:
        """Record the outcome of an attempt and release its lease; `not_before` holds off the next attempt."""
        values: dict[str, Any] = {":status": status.value, ":now": now, ":message": message}
        sets = ["#status = :status", "updated_at = :now", "message = :message"]
        removes = ["lease_until", "uncertain_since", "answer_by"]
        if reference is not None:
            values[":reference"] = reference
            sets.append("partner_reference = :reference")
        if not_before is not None:
            values[":not_before"] = not_before
            sets.append("not_before = :not_before")
        else:
            removes.append("not_before")
        expression = f"SET {', '.join(sets)} REMOVE {', '.join(removes)}"
        aws.dynamodb().update_item(
            TableName=self.table_name,
            Key={"lead_id": {"S": lead_id}},
            UpdateExpression=expression,
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues=to_item(values),
        )
