"""DonationLedger's answers to DynamoDB's race outcomes, with a scripted client (the races moto cannot stage)."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from donation_ingester import store
from donation_ingester.store import DonationLedger, FoldConflict, FoldEntry

ITEM = {
    "pk": "donation#m1",
    "campaign_ref": "1/hjerte/abc",
    "amount": 100,
    "donated_at": 1_795_000_000,
    "received_at": 1_795_000_001,
}


def cancelled(*codes: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": code} for code in codes],
        },
        "TransactWriteItems",
    )


class ScriptedDynamo:
    """Answers each call with the next scripted outcome (an exception is raised, anything else returned)."""

    def __init__(self, *outcomes: Any) -> None:
        self.outcomes = list(outcomes)
        self.transactions: list[list[Any]] = []
        self.tokens: list[str] = []

    def _next(self) -> Any:
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    def transact_write_items(self, **kwargs: Any) -> Any:
        self.transactions.append(kwargs["TransactItems"])
        self.tokens.append(kwargs["ClientRequestToken"])
        return self._next()

    def put_item(self, **_: Any) -> Any:
        return self._next()


@pytest.fixture
def scripted(monkeypatch):
    def install(*outcomes: Any) -> ScriptedDynamo:
        client = ScriptedDynamo(*outcomes)
        monkeypatch.setattr(store.aws, "dynamodb", lambda: client)
        monkeypatch.setattr(store.time, "sleep", lambda _seconds: None)
        return client

    return install


ENTRIES = [FoldEntry("m1", 100), FoldEntry("m2", 200), FoldEntry("m3", 300)]


def test_a_conflicting_fold_backs_off_and_applies_the_same_chunk(scripted):
    client = scripted(cancelled("None", "None", "None", "TransactionConflict"), {})
    outcome = DonationLedger("t").fold("1/hjerte/abc", ENTRIES, now=1, attempts=3)
    assert (outcome.folded, outcome.amount, outcome.skipped) == (3, 600, 0)
    assert len(client.transactions) == 2
    assert len(client.transactions[1]) == 4  # three marks and the total, again


def test_already_folded_donations_leave_the_chunk_and_the_rest_are_counted_once(scripted):
    client = scripted(cancelled("ConditionalCheckFailed", "None", "ConditionalCheckFailed", "None"), {})
    outcome = DonationLedger("t").fold("1/hjerte/abc", ENTRIES, now=1, attempts=3)
    assert (outcome.folded, outcome.amount, outcome.skipped) == (1, 200, 2)
    total = client.transactions[1][-1]["Update"]
    assert total["ExpressionAttributeValues"][":amount"] == {"N": "200"}
    assert total["ExpressionAttributeValues"][":count"] == {"N": "1"}


def test_a_fold_that_keeps_conflicting_fails_for_the_queue_to_retry(scripted):
    scripted(*[cancelled("None", "None", "None", "TransactionConflict")] * 3)
    with pytest.raises(FoldConflict):
        DonationLedger("t").fold("1/hjerte/abc", ENTRIES, now=1, attempts=3)


def test_a_throttled_fold_is_not_swallowed(scripted):
    throttled = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "TransactWriteItems")
    scripted(throttled)
    with pytest.raises(ClientError):
        DonationLedger("t").fold("1/hjerte/abc", ENTRIES, now=1, attempts=3)


def test_one_chunk_carries_one_request_token_and_a_later_redelivery_another(scripted):
    client = scripted(cancelled("None", "None", "None", "TransactionConflict"), {}, {})
    DonationLedger("t").fold("1/hjerte/abc", ENTRIES, now=1, attempts=2)
    DonationLedger("t").fold("1/hjerte/abc", list(reversed(ENTRIES)), now=2, attempts=1)
    first, retry, later = client.tokens
    assert first == retry  # DynamoDB treats the retry as the same request (applied once)
    assert later != first  # a redelivery later is a new request: its conditions decide
    assert all(len(token) <= 36 for token in client.tokens)


def test_a_put_meeting_a_fold_in_progress_is_a_repeat_that_publishes_nothing(scripted):
    conflict = ClientError({"Error": {"Code": "TransactionConflictException"}}, "PutItem")
    scripted(conflict)
    outcome = DonationLedger("t").record(ITEM)
    assert not outcome.new
    assert outcome.existing is not None
    assert outcome.existing.folded_at is not None


def test_any_other_put_failure_is_raised(scripted):
    scripted(ClientError({"Error": {"Code": "InternalServerError"}}, "PutItem"))
    with pytest.raises(ClientError):
        DonationLedger("t").record(ITEM)
