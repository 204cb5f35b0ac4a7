"""hub_core.ledger on moto in-process: item keys, a campaign's folded totals, and its pending sum read with a cap."""

from __future__ import annotations

import boto3
import pytest

from hub_core import aws
from hub_core.dynamo import to_item
from hub_core.ledger import (
    PENDING_INDEX,
    CampaignTotals,
    PendingTotals,
    donation_pk,
    read_pending,
    read_totals,
    reconcile_pk,
    total_pk,
)
from tests.conftest import in_process_aws

TABLE = "Donations"
REF = "1/hjerte/anna50"


@pytest.fixture
def ledger(monkeypatch):
    with in_process_aws(monkeypatch):
        boto3.client("dynamodb").create_table(
            TableName=TABLE,
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "pending_campaign", "AttributeType": "S"},
            ],
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": PENDING_INDEX,
                    "KeySchema": [{"AttributeName": "pending_campaign", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "INCLUDE", "NonKeyAttributes": ["amount"]},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield TABLE


def put(**values) -> None:
    boto3.client("dynamodb").put_item(TableName=TABLE, Item=to_item(values))


def pending(message_key: str, amount: int, campaign: str = REF) -> None:
    put(pk=donation_pk(message_key), pending_campaign=campaign, amount=amount, verification="pending")


def queries(monkeypatch) -> list[int]:
    limits: list[int] = []
    aws.dynamodb().meta.events.register(
        "before-parameter-build.dynamodb.Query", lambda params, **_: limits.append(params["Limit"])
    )
    return limits


def test_each_kind_of_item_has_its_own_prefix():
    keys = {donation_pk("mk-1"), total_pk(REF), reconcile_pk(REF)}
    assert keys == {"donation#mk-1", "total#1/hjerte/anna50", "reconcile#1/hjerte/anna50"}
    assert donation_pk(REF) != total_pk(REF)  # a messageKey shaped like a ref is still a donation


def test_a_campaign_before_its_first_fold_has_zero_totals(ledger):
    assert read_totals(ledger, REF) == CampaignTotals(amount=0, count=0, updated_at=None)


def test_the_folded_totals_are_read_from_the_total_item_only(ledger):
    put(pk=total_pk(REF), amount=7500, donations=3, updated_at=1_800_000_000)
    put(pk=total_pk("1/hjerte/other"), amount=1, donations=1)
    pending("mk-9", 999)  # pending: never part of the total
    assert read_totals(ledger, REF) == CampaignTotals(amount=7500, count=3, updated_at=1_800_000_000)


def test_pending_donations_are_summed_apart_per_campaign(ledger):
    pending("mk-1", 1000)
    pending("mk-2", 2500)
    pending("mk-3", 400, campaign="1/hjerte/other")
    put(pk=donation_pk("mk-4"), amount=50_000, verification="verified")  # settled: not in the sparse index
    assert read_pending(ledger, REF) == PendingTotals(amount=3500, count=2, capped=False)
    assert read_pending(ledger, "2/none/none") == PendingTotals(0, 0)


def test_a_flood_of_pending_donations_is_read_up_to_the_limit_and_said_to_be_capped(ledger, monkeypatch):
    for number in range(12):
        pending(f"mk-{number:02}", 100)
    limits = queries(monkeypatch)
    capped = read_pending(ledger, REF, limit=5)
    assert (capped.count, capped.amount, capped.capped) == (5, 500, True)
    assert limits == [5]  # one page of the limit: no more is read


def test_pages_are_followed_asking_only_for_what_the_limit_leaves(ledger, monkeypatch):
    for number in range(7):
        pending(f"mk-{number}", 10 * (number + 1))
    client = aws.dynamodb()
    real = client.query
    pages: list[int] = []

    def small_pages(**arguments):
        pages.append(arguments["Limit"])
        return real(**{**arguments, "Limit": min(arguments["Limit"], 3)})  # the index answers 3 at a time

    monkeypatch.setattr(client, "query", small_pages)
    assert read_pending(ledger, REF, limit=100) == PendingTotals(amount=280, count=7, capped=False)
    assert pages == [100, 97, 94]


def test_a_limit_as_large_as_the_pending_count_reads_them_all(ledger):
    for number in range(3):
        pending(f"mk-{number}", 1)
    result = read_pending(ledger, REF, limit=3)
    assert (result.count, result.amount) == (3, 3)
