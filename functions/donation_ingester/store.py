"""DonationsTable and CampaignsTable access for the ingester: one conditional put per donation, folds in batches.

A donation is its own item (`donation#<messageKey>`), so a telethon's writes spread over as many items as there
are donations. It is stored `pending`; a campaign's total is written only when Umbrella has listed the donation, by
the fold (or reconciliation), once per chunk of up to 99 donations, in the same transaction that marks those
donations verified and folded: a donation is counted once, whatever is redelivered.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from hub_core import aws, reconcile_index
from hub_core.caches import TtlCache
from hub_core.dynamo import from_item, put_if, to_item, update_if
from hub_core.ledger import (
    PENDING,
    PENDING_INDEX,
    UNCONFIRMED,
    VERIFIED,
    donation_pk,
    reconcile_pk,
    total_pk,
)

_BATCH_GET_LIMIT = 100


@dataclass(frozen=True)
class LedgerDonation:
    """A donation as the ledger holds it (the donor's number stays in the table; it is never read back here)."""

    message_key: str
    campaign_ref: str
    amount: int
    donated_at: int
    received_at: int
    folded_at: int | None = None
    verification: str = PENDING

    @property
    def settled(self) -> bool:
        """Folded (verified, counted): nothing is left to do for it."""
        return self.folded_at is not None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> LedgerDonation:
        values = from_item(item)
        folded_at = None if values.get("folded_at") is None else int(values["folded_at"])
        return cls(
            message_key=str(values["pk"]).removeprefix("donation#"),
            campaign_ref=values["campaign_ref"],
            amount=int(values["amount"]),
            donated_at=int(values["donated_at"]),
            received_at=int(values["received_at"]),
            folded_at=folded_at,
            # Stored before verification existed: folded ones were counted, the others are pending like any hint.
            verification=values.get("verification") or (VERIFIED if folded_at is not None else PENDING),
        )


@dataclass(frozen=True)
class RecordOutcome:
    """`existing` is the donation already there when this one was a repeat (None when it was new)."""

    existing: LedgerDonation | None

    @property
    def new(self) -> bool:
        return self.existing is None


@dataclass(frozen=True)
class FoldEntry:
    """A donation Umbrella listed, with the amount Umbrella says (that is what is counted)."""

    message_key: str
    amount: int


@dataclass(frozen=True)
class PendingDonation:
    message_key: str
    amount: int
    received_at: int


@dataclass(frozen=True)
class FoldOutcome:
    folded: int
    amount: int
    skipped: int


class FoldConflict(RuntimeError):
    """The fold kept meeting concurrent transactions on the same items; the batch is retried by the queue."""


@dataclass(frozen=True)
class ReconcileState:
    watermark: int
    last_run_at: int
    # When the campaign's stop reconciled it first, while Umbrella still answered for it (None: never).
    reconciled_at_stop: int | None = None


@dataclass(frozen=True)
class CampaignInfo:
    """What the ingester needs of a campaign the lifecycle created."""

    ref: str
    state: str
    created_at: int
    stopped_at: int | None = None
    apps_miles_user_id: str | None = None
    callback_token_hash: str | None = None


class DonationLedger:
    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    # --------------------------------------------------------------------------------------- donations

    def record(self, item: dict[str, Any]) -> RecordOutcome:
        """Store a donation unless its messageKey is there: one conditional put, no read before it."""
        try:
            written = put_if(
                TableName=self.table_name,
                Item=to_item(item),
                ConditionExpression="attribute_not_exists(pk)",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as exc:
            if _error_code(exc) == "TransactionConflictException":
                # Only a fold transaction holds a donation item, and it folds stored donations: this one is there.
                return RecordOutcome(existing=_placeholder(item))
            raise
        # Refused: the item is there (ALL_OLD always returns it for this condition), and says what it holds.
        return RecordOutcome(existing=None if written.applied else LedgerDonation.from_item(written.existing))

    def known(self, message_keys: Sequence[str]) -> dict[str, LedgerDonation]:
        """The donations among these keys that the ledger already holds (reconciliation's cheap pre-check)."""
        found: dict[str, LedgerDonation] = {}
        keys = list(dict.fromkeys(message_keys))
        for start in range(0, len(keys), _BATCH_GET_LIMIT):
            pending: dict[str, Any] = {
                self.table_name: {
                    "Keys": [{"pk": {"S": donation_pk(key)}} for key in keys[start : start + _BATCH_GET_LIMIT]],
                    "ProjectionExpression": (
                        "pk, campaign_ref, amount, donated_at, received_at, folded_at, verification"
                    ),
                }
            }
            while pending:
                response = aws.dynamodb().batch_get_item(RequestItems=pending)
                for item in response.get("Responses", {}).get(self.table_name, []):
                    donation = LedgerDonation.from_item(dict(item))
                    found[donation.message_key] = donation
                pending = dict(response.get("UnprocessedKeys") or {})
                if pending:
                    time.sleep(random.uniform(0.05, 0.2))  # noqa: S311 - jitter, not security
        return found

    # --------------------------------------------------------------------------------------- totals

    def fold(self, campaign_ref: str, entries: Sequence[FoldEntry], *, now: int, attempts: int) -> FoldOutcome:
        """Add these verified donations to the campaign's total, each once: the marks and the ADD in one transaction.

        A donation already folded (a redelivered event) or not in the ledger fails its condition; it is dropped
        from the chunk and the rest go again. Concurrent folds of one campaign conflict on its total; they back off.
        Umbrella's list is the authority: the mark sets the campaign and amount it gives, whatever a callback claimed.
        """
        pending = {entry.message_key: entry for entry in entries}
        folded = amount = 0
        for attempt in range(1, attempts + 1):
            if not pending:
                break
            try:
                self._fold_transaction(campaign_ref, list(pending.values()), now)
            except ClientError as exc:
                if _error_code(exc) != "TransactionCanceledException":
                    raise
                reasons = exc.response.get("CancellationReasons") or []
                entries_in_order = list(pending.values())
                refused = [
                    entries_in_order[index].message_key
                    for index, reason in enumerate(reasons[: len(entries_in_order)])
                    if (reason or {}).get("Code") == "ConditionalCheckFailed"
                ]
                for key in refused:
                    del pending[key]
                if not refused:
                    # A conflict (or throttling) with no condition at fault: the same chunk, after a pause.
                    if attempt == attempts:
                        raise FoldConflict(f"fold of {len(pending)} donation(s) kept conflicting") from None
                    time.sleep(random.uniform(0, 0.05 * 2**attempt))  # noqa: S311 - jitter, not security
                continue
            folded += len(pending)
            amount += sum(entry.amount for entry in pending.values())
            pending = {}
        if pending:
            raise FoldConflict(f"fold of {len(pending)} donation(s) did not complete")
        return FoldOutcome(folded=folded, amount=amount, skipped=len(entries) - folded)

    def _fold_transaction(self, campaign_ref: str, entries: Sequence[FoldEntry], now: int) -> None:
        marks: list[Any] = [
            {
                "Update": {
                    "TableName": self.table_name,
                    "Key": {"pk": {"S": donation_pk(entry.message_key)}},
                    "UpdateExpression": (
                        "SET folded_at = :now, verified_at = :now, verification = :verified, campaign_ref = :ref, "
                        "amount = :amount REMOVE pending_campaign"
                    ),
                    "ConditionExpression": "attribute_exists(pk) AND attribute_not_exists(folded_at)",
                    "ExpressionAttributeValues": to_item(
                        {":now": now, ":ref": campaign_ref, ":amount": entry.amount, ":verified": VERIFIED}
                    ),
                }
            }
            for entry in entries
        ]
        total: Any = {
            "Update": {
                "TableName": self.table_name,
                "Key": {"pk": {"S": total_pk(campaign_ref)}},
                "UpdateExpression": "ADD amount :amount, donations :count SET campaign_ref = :ref, updated_at = :now",
                "ExpressionAttributeValues": to_item(
                    {
                        ":amount": sum(entry.amount for entry in entries),
                        ":count": len(entries),
                        ":ref": campaign_ref,
                        ":now": now,
                    }
                ),
            }
        }
        # The same chunk retried by the SDK after a timeout is recognised by DynamoDB as already applied (for ten
        # minutes), instead of failing every condition and looking like a chunk that someone else folded. `now` is
        # part of it: a later redelivery is a new request (its conditions then fail), not a parameter mismatch.
        keys = sorted(entry.message_key for entry in entries)
        token = hashlib.sha256("\n".join([campaign_ref, str(now), *keys]).encode()).hexdigest()
        aws.dynamodb().transact_write_items(TransactItems=[*marks, total], ClientRequestToken=token[:36])

    # --------------------------------------------------------------------------------------- verification

    def mark_unconfirmed(self, message_key: str, *, now: int) -> bool:
        """Umbrella never listed it: out of the pending figure, never in a total. False when it settled meanwhile."""
        return update_if(
            TableName=self.table_name,
            Key={"pk": {"S": donation_pk(message_key)}},
            UpdateExpression="SET verification = :unconfirmed, unconfirmed_at = :now REMOVE pending_campaign",
            ConditionExpression="attribute_exists(pk) AND attribute_not_exists(folded_at)",
            ExpressionAttributeValues=to_item({":unconfirmed": UNCONFIRMED, ":now": now}),
        ).applied

    def pending(self, campaign_ref: str) -> list[PendingDonation]:
        """The campaign's donations waiting for Umbrella's confirmation (the sparse PendingIndex)."""
        found: list[PendingDonation] = []
        pages: Any = (
            aws.dynamodb()
            .get_paginator("query")
            .paginate(
                TableName=self.table_name,
                IndexName=PENDING_INDEX,
                KeyConditionExpression="pending_campaign = :ref",
                ExpressionAttributeValues=to_item({":ref": campaign_ref}),
            )
        )
        for page in pages:
            for item in page.get("Items", []):
                values = from_item(dict(item))
                found.append(
                    PendingDonation(
                        message_key=str(values["pk"]).removeprefix("donation#"),
                        amount=int(values["amount"]),
                        received_at=int(values["received_at"]),
                    )
                )
        return found

    # --------------------------------------------------------------------------------------- reconciliation

    def reconcile_state(self, campaign_ref: str) -> ReconcileState | None:
        response = aws.dynamodb().get_item(
            TableName=self.table_name, Key={"pk": {"S": reconcile_pk(campaign_ref)}}, ConsistentRead=True
        )
        item = response.get("Item")
        if not item:
            return None
        values = from_item(dict(item))
        at_stop = values.get("reconciled_at_stop")
        return ReconcileState(
            watermark=int(values["watermark"]),
            last_run_at=int(values["last_run_at"]),
            reconciled_at_stop=None if at_stop is None else int(at_stop),
        )

    def mark_reconciled_at_stop(self, campaign_ref: str, *, now: int) -> None:
        """The stop reconciled the campaign while Umbrella still answered: its later `gone` loses nothing."""
        aws.dynamodb().update_item(
            TableName=self.table_name,
            Key={"pk": {"S": reconcile_pk(campaign_ref)}},
            UpdateExpression="SET reconciled_at_stop = :now, campaign_ref = :ref",
            ExpressionAttributeValues=to_item({":now": now, ":ref": campaign_ref}),
        )

    def save_reconcile_state(
        self, campaign_ref: str, *, watermark: int, now: int, ledger_amount: int | None, partner_amount: int | None
    ) -> None:
        """The watermark only moves forward: two overlapping runs cannot pull it back."""
        values: dict[str, Any] = {":watermark": watermark, ":now": now, ":ref": campaign_ref}
        sets = ["watermark = :watermark", "last_run_at = :now", "campaign_ref = :ref"]
        for name, value in (("ledger_amount", ledger_amount), ("partner_amount", partner_amount)):
            if value is not None:
                values[f":{name}"] = value
                sets.append(f"{name} = :{name}")
        update_if(
            TableName=self.table_name,
            Key={"pk": {"S": reconcile_pk(campaign_ref)}},
            UpdateExpression="SET " + ", ".join(sets),
            ConditionExpression="attribute_not_exists(watermark) OR watermark <= :watermark",
            ExpressionAttributeValues=to_item(values),
        )


class CampaignDirectory:
    """Read-only view of CampaignsTable (the campaign lifecycle owns it)."""

    _FIELDS = "campaign_ref, #state, created_at, stopped_at, apps_miles_user_id, callback_token_hash"

    def __init__(self, table_name: str) -> None:
        self.table_name = table_name

    def get(self, campaign_ref: str) -> CampaignInfo | None:
        response = aws.dynamodb().get_item(
            TableName=self.table_name,
            Key={"campaign_ref": {"S": campaign_ref}},
            ProjectionExpression=self._FIELDS,
            ExpressionAttributeNames={"#state": "state"},
        )
        item = response.get("Item")
        return _campaign_info(dict(item)) if item else None

    def reconcilable(self, *, stopped_since: int) -> Iterator[CampaignInfo]:
        """Active campaigns, and those stopped after `stopped_since` (their last donations may still come)."""
        paginator = aws.dynamodb().get_paginator("query")
        request = reconcile_index.query_since(self.table_name, stopped_since, self._FIELDS, {"#state": "state"})
        for page in paginator.paginate(**request):
            for item in page.get("Items", []):
                yield _campaign_info(dict(item))


class CampaignCache:
    """The directory's campaigns reused for `ttl_seconds` per container: a telethon's callbacks read their campaign
    once a minute per container, not once per donation (flags computed from it may lag a stop by this much)."""

    def __init__(
        self,
        directory: CampaignDirectory,
        *,
        ttl_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = 4096,
    ) -> None:
        self.directory = directory
        self.ttl_seconds = ttl_seconds
        self._cache = TtlCache(max_entries=max_entries, clock=clock)

    def get(self, ref: str) -> CampaignInfo | None:
        return self._cache.get_or_load(ref, lambda: self.directory.get(ref), ttl_seconds=self.ttl_seconds)

    def fresh(self, ref: str) -> CampaignInfo | None:
        """Read again and cached: a token issued by a `PUT` moments ago works at once."""
        info = self.directory.get(ref)
        self._cache.put(ref, info, ttl_seconds=self.ttl_seconds)
        return info


def _campaign_info(item: dict[str, Any]) -> CampaignInfo:
    values = from_item(item)
    return CampaignInfo(
        ref=values["campaign_ref"],
        state=values.get("state", ""),
        created_at=int(values.get("created_at", 0)),
        stopped_at=None if values.get("stopped_at") is None else int(values["stopped_at"]),
        apps_miles_user_id=values.get("apps_miles_user_id"),
        callback_token_hash=values.get("callback_token_hash"),
    )


def _placeholder(item: dict[str, Any]) -> LedgerDonation:
    """A donation known to be stored whose item we could not see; treated as folded so nothing is republished."""
    return LedgerDonation(
        message_key=str(item["pk"]).removeprefix("donation#"),
        campaign_ref=item["campaign_ref"],
        amount=int(item["amount"]),
        donated_at=int(item["donated_at"]),
        received_at=int(item["received_at"]),
        folded_at=int(item["received_at"]),
    )


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
