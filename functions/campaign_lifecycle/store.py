"""CampaignsTable access: who holds a donation code, each campaign's state, and the history of its changes.

Every change is one conditional write, so two requests racing for the same code or the same campaign cannot both
win: a create holds the code with an attempt id before Umbrella is called, and only that attempt may settle it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from campaign_lifecycle.models import CampaignForm, CampaignKey, CampaignState
from hub_core import aws, reconcile_index
from hub_core.dynamo import from_item, put_if, to_item, update_if

# The campaign's fields as Umbrella names them, and as our table does.
FIELD_NAMES = {
    "amount": "amount",
    "answerMessage": "answer_message",
    "confirmMsisdn": "confirm_msisdn",
    "confirmText": "confirm_text",
}


@dataclass(frozen=True)
class CampaignRecord:
    key: CampaignKey
    state: CampaignState
    amount: int
    answer_message: str
    confirm_text: str
    confirm_msisdn: str
    callback_base: str
    manage_token_hash: str
    request_fingerprint: str
    attempt_id: str
    version: int
    created_at: int
    updated_at: int
    ambiguous: bool = False
    lease_until: int = 0
    apps_miles_user_id: str | None = None
    stopped_at: int | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    callback_token_hash: str | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> CampaignRecord:
        values = from_item(item)
        return cls(
            key=CampaignKey.from_ref(values["campaign_ref"]),
            state=CampaignState(values["state"]),
            amount=int(values["amount"]),
            answer_message=values["answer_message"],
            confirm_text=values["confirm_text"],
            confirm_msisdn=values.get("confirm_msisdn", ""),
            callback_base=values["callback_base"],
            manage_token_hash=values["manage_token_hash"],
            request_fingerprint=values["request_fingerprint"],
            attempt_id=values["attempt_id"],
            version=int(values["version"]),
            created_at=int(values["created_at"]),
            updated_at=int(values["updated_at"]),
            ambiguous=bool(values.get("ambiguous", False)),
            lease_until=int(values.get("lease_until", 0)),
            apps_miles_user_id=values.get("apps_miles_user_id"),
            stopped_at=None if values.get("stopped_at") is None else int(values["stopped_at"]),
            history=[{k: int(v) if k == "at" else v for k, v in entry.items()} for entry in values.get("history", [])],
            callback_token_hash=values.get("callback_token_hash"),
        )


@dataclass(frozen=True)
class CodeHeld:
    """The code is taken: by a live campaign, or by a create attempt that is still running."""

    record: CampaignRecord


@dataclass(frozen=True)
class Claim:
    """This attempt holds the code; `previous` is an interrupted attempt it took over (its outcome unknown)."""

    attempt_id: str
    previous: CampaignRecord | None


class CampaignStore:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def get(self, key: CampaignKey) -> CampaignRecord | None:
        response = aws.dynamodb().get_item(
            TableName=self.table_name, Key={"campaign_ref": {"S": key.ref}}, ConsistentRead=True
        )
        item = response.get("Item")
        return CampaignRecord.from_item(dict(item)) if item else None

    def claim(
        self,
        form: CampaignForm,
        *,
        attempt_id: str,
        manage_token_hash: str,
        answer_message: str,
        confirm_text: str,
        callback_base: str,
        now: int,
        lease_seconds: int,
        callback_token_hash: str | None = None,
    ) -> Claim | CodeHeld:
        """Hold the form's code for one create attempt: a new code, or one whose last attempt was interrupted."""
        item: dict[str, Any] = {
            "campaign_ref": form.key.ref,
            "state": CampaignState.CREATING.value,
            "amount": form.amount,
            "answer_message": answer_message,
            "confirm_text": confirm_text,
            "confirm_msisdn": form.confirmMsisdn,
            "callback_base": callback_base,
            "manage_token_hash": manage_token_hash,
            "request_fingerprint": form.fingerprint(),
            "attempt_id": attempt_id,
            "version": 1,
            "created_at": now,
            "updated_at": now,
            "lease_until": now + lease_seconds,
            "history": [{"at": now, "action": "create_requested"}],
        }
        if form.appsMilesUserId:
            item["apps_miles_user_id"] = form.appsMilesUserId
        if callback_token_hash:
            # The callback token's hash only; the ingester compares a callback's token with it.
            item["callback_token_hash"] = callback_token_hash
        written = put_if(
            TableName=self.table_name,
            Item=to_item(item),
            ConditionExpression=(
                "attribute_not_exists(campaign_ref) OR #state = :pending OR (#state = :creating AND lease_until < :now)"
            ),
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=to_item(
                {":pending": CampaignState.PENDING.value, ":creating": CampaignState.CREATING.value, ":now": now}
            ),
            ReturnValues="ALL_OLD",
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
        if not written.applied:
            return CodeHeld(CampaignRecord.from_item(written.existing))
        return Claim(attempt_id, CampaignRecord.from_item(written.attributes) if written.attributes else None)

    def activate(
        self,
        key: CampaignKey,
        attempt_id: str,
        *,
        now: int,
        recovered: bool,
        manage_token_hash: str | None = None,
        callback_token_hash: str | None = None,
    ) -> CampaignRecord:
        """Umbrella said the campaign exists: it becomes active, and the code is this attempt's for good.

        `manage_token_hash` and `callback_token_hash` replace this attempt's when the campaign (its confirm SMS and
        the callbackUrl Umbrella holds) came from an earlier one.
        """
        entry = {"at": now, "action": "created", **({"recovered": True} if recovered else {})}
        indexed = reconcile_index.open_values()
        values: dict[str, Any] = {
            ":active": CampaignState.ACTIVE.value,
            ":now": now,
            ":entry": [entry],
            ":partition": indexed[reconcile_index.PARTITION_ATTRIBUTE],
            ":open": indexed[reconcile_index.OPEN_UNTIL_ATTRIBUTE],
        }
        token = ""
        if manage_token_hash is not None:
            token, values[":token"] = ", manage_token_hash = :token", manage_token_hash
        if callback_token_hash is not None:
            token += ", callback_token_hash = :callback"
            values[":callback"] = callback_token_hash
        return self._settle(
            key,
            attempt_id,
            f"SET #state = :active, updated_at = :now, history = list_append(history, :entry){token}, "
            f"{reconcile_index.PARTITION_ATTRIBUTE} = :partition, {reconcile_index.OPEN_UNTIL_ATTRIBUTE} = :open "
            "REMOVE lease_until, ambiguous",
            values,
        )

    def hold(self, key: CampaignKey, attempt_id: str, *, now: int, ambiguous: bool) -> CampaignRecord:
        """Umbrella could not answer and may have created it: the same request may come back and resume."""
        return self._settle(
            key,
            attempt_id,
            "SET #state = :pending, updated_at = :now, ambiguous = :ambiguous, "
            "history = list_append(history, :entry) REMOVE lease_until",
            {
                ":pending": CampaignState.PENDING.value,
                ":now": now,
                ":ambiguous": ambiguous,
                ":entry": [{"at": now, "action": "create_interrupted"}],
            },
        )

    def release(self, key: CampaignKey, attempt_id: str) -> None:
        """The create surely did not happen: forget the attempt, so the code is free again."""
        aws.dynamodb().delete_item(
            TableName=self.table_name,
            Key={"campaign_ref": {"S": key.ref}},
            ConditionExpression="attempt_id = :attempt",
            ExpressionAttributeValues=to_item({":attempt": attempt_id}),
        )

    def restore(self, record: CampaignRecord, attempt_id: str) -> None:
        """Put back an interrupted attempt this one took over but may not resume (another person's request)."""
        item = {
            "campaign_ref": record.key.ref,
            "state": CampaignState.PENDING.value,
            "amount": record.amount,
            "answer_message": record.answer_message,
            "confirm_text": record.confirm_text,
            "callback_base": record.callback_base,
            "manage_token_hash": record.manage_token_hash,
            "request_fingerprint": record.request_fingerprint,
            "attempt_id": record.attempt_id,
            "version": record.version,
            "created_at": record.created_at,
            "updated_at": record.updated_at,
            "ambiguous": True,
            "history": record.history,
        }
        # An erased creator has no number: an index key may not be an empty string.
        if record.confirm_msisdn:
            item["confirm_msisdn"] = record.confirm_msisdn
        if record.apps_miles_user_id:
            item["apps_miles_user_id"] = record.apps_miles_user_id
        if record.callback_token_hash:
            item["callback_token_hash"] = record.callback_token_hash
        aws.dynamodb().put_item(
            TableName=self.table_name,
            Item=to_item(item),
            ConditionExpression="attempt_id = :attempt",
            ExpressionAttributeValues=to_item({":attempt": attempt_id}),
        )

    def apply_changes(
        self,
        record: CampaignRecord,
        changes: dict[str, Any],
        *,
        now: int,
        callback_base: str,
        callback_token_hash: str,
    ) -> CampaignRecord | None:
        """Record changes Umbrella accepted; None when the campaign moved on meanwhile (stopped, or changed)."""
        names = {f"#f{index}": FIELD_NAMES[name] for index, name in enumerate(changes)}
        values: dict[str, Any] = {f":f{index}": value for index, value in enumerate(changes.values())}
        assignments = ", ".join(f"{name} = :{name[1:]}" for name in names)
        entry = {"at": now, "action": "updated", "fields": sorted(changes)}
        written = update_if(
            TableName=self.table_name,
            Key={"campaign_ref": {"S": record.key.ref}},
            UpdateExpression=(
                f"SET {assignments}, callback_base = :base, callback_token_hash = :token, updated_at = :now, "
                "version = version + :one, "
                "history = list_append(history, :entry)"
            ),
            ConditionExpression="#state = :active AND version = :version",
            ExpressionAttributeNames={"#state": "state", **names},
            ExpressionAttributeValues=to_item(
                values
                | {
                    ":base": callback_base,
                    ":token": callback_token_hash,
                    ":now": now,
                    ":one": 1,
                    ":entry": [entry],
                    ":active": CampaignState.ACTIVE.value,
                    ":version": record.version,
                }
            ),
            ReturnValues="ALL_NEW",
        )
        return CampaignRecord.from_item(written.attributes) if written.applied else None

    def mark_stopped(self, key: CampaignKey, *, now: int, action: str = "stopped") -> CampaignRecord | None:
        """Record that the campaign is stopped; None when it was not active (already stopped, or gone)."""
        written = update_if(
            TableName=self.table_name,
            Key={"campaign_ref": {"S": key.ref}},
            UpdateExpression=(
                "SET #state = :stopped, stopped_at = :now, updated_at = :now, version = version + :one, "
                f"history = list_append(history, :entry), {reconcile_index.OPEN_UNTIL_ATTRIBUTE} = :now, "
                f"{reconcile_index.PARTITION_ATTRIBUTE} = :partition"
            ),
            ConditionExpression="#state = :active",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=to_item(
                {
                    ":stopped": CampaignState.STOPPED.value,
                    ":active": CampaignState.ACTIVE.value,
                    ":now": now,
                    ":one": 1,
                    ":entry": [{"at": now, "action": action}],
                    ":partition": reconcile_index.PARTITION,
                }
            ),
            ReturnValues="ALL_NEW",
        )
        return CampaignRecord.from_item(written.attributes) if written.applied else None

    def _settle(self, key: CampaignKey, attempt_id: str, expression: str, values: dict[str, Any]) -> CampaignRecord:
        response = aws.dynamodb().update_item(
            TableName=self.table_name,
            Key={"campaign_ref": {"S": key.ref}},
            UpdateExpression=expression,
            ConditionExpression="attempt_id = :attempt",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues=to_item(values | {":attempt": attempt_id}),
            ReturnValues="ALL_NEW",
        )
        return CampaignRecord.from_item(dict(response["Attributes"]))
