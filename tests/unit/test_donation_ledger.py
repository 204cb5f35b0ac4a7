"""DonationLedger, CampaignDirectory and CampaignCache on moto in-process: the ingester's reads and the writes
around verification and reconciliation (the race outcomes moto cannot stage are in test_donation_store.py)."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from donation_ingester import store
from donation_ingester.store import CampaignCache, CampaignDirectory, DonationLedger, FoldEntry, ReconcileState
from hub_core import aws, reconcile_index
from hub_core.dynamo import from_item, to_item
from hub_core.ledger import PENDING, PENDING_INDEX, UNCONFIRMED, VERIFIED, donation_pk, read_totals, reconcile_pk
from tests.conftest import in_process_aws

REF = "1/hjerte/anna50"
NOW = 1_800_000_000


def _table(name: str, key: str, index: str, attributes: list[tuple[str, str]], index_keys: list[str]) -> None:
    boto3.client("dynamodb").create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}]
        + [{"AttributeName": attribute, "AttributeType": kind} for attribute, kind in attributes],
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index,
                "KeySchema": [
                    {"AttributeName": attribute, "KeyType": kind}
                    for attribute, kind in zip(index_keys, ("HASH", "RANGE"), strict=False)
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def tables(monkeypatch):
    with in_process_aws(monkeypatch):
        _table("donations", "pk", PENDING_INDEX, [("pending_campaign", "S")], ["pending_campaign"])
        _table(
            "campaigns", "campaign_ref", reconcile_index.INDEX_NAME,
            [(reconcile_index.PARTITION_ATTRIBUTE, "S"), (reconcile_index.OPEN_UNTIL_ATTRIBUTE, "N")],
            [reconcile_index.PARTITION_ATTRIBUTE, reconcile_index.OPEN_UNTIL_ATTRIBUTE],
        )  # fmt: skip
        yield DonationLedger("donations")


def donation(key: str, amount: int = 500, ref: str = REF, **extra: Any) -> dict[str, Any]:
    return {
        "pk": donation_pk(key), "campaign_ref": ref, "amount": amount, "donated_at": NOW, "received_at": NOW + 1,
        "verification": PENDING, "pending_campaign": ref, **extra,
    }  # fmt: skip


def raw(pk: str) -> dict[str, Any]:
    item = boto3.client("dynamodb").get_item(TableName="donations", Key={"pk": {"S": pk}}).get("Item")
    return from_item(item) if item else {}


def test_pending_donations_are_listed_per_campaign_with_their_keys_and_times(tables):
    tables.record(donation("k1", 500))
    tables.record(donation("k2", 700))
    tables.record(donation("k3", 900, ref="1/hjerte/other"))
    pending = sorted(tables.pending(REF), key=lambda p: p.message_key)
    assert [(p.message_key, p.amount, p.received_at) for p in pending] == [("k1", 500, NOW + 1), ("k2", 700, NOW + 1)]


def test_an_unconfirmed_donation_leaves_the_pending_list_and_is_never_folded(tables):
    tables.record(donation("k1"))
    assert tables.mark_unconfirmed("k1", now=NOW + 600)
    item = raw(donation_pk("k1"))
    assert (item["verification"], item["unconfirmed_at"]) == (UNCONFIRMED, NOW + 600)
    assert "pending_campaign" not in item
    assert tables.pending(REF) == []
    assert not tables.mark_unconfirmed("never-recorded", now=NOW)  # nothing is created for an unknown key
    assert raw(donation_pk("never-recorded")) == {}


def test_a_fold_writes_umbrellas_amount_and_campaign_over_the_callbacks(tables):
    tables.record(donation("k1", 999, ref="1/hjerte/claimed"))
    outcome = tables.fold(REF, [FoldEntry("k1", 450)], now=NOW + 5, attempts=1)
    assert (outcome.folded, outcome.amount) == (1, 450)
    item = raw(donation_pk("k1"))
    assert (item["amount"], item["campaign_ref"], item["verification"]) == (450, REF, VERIFIED)
    assert (item["folded_at"], item["verified_at"]) == (NOW + 5, NOW + 5)
    assert read_totals("donations", REF).amount == 450
    assert read_totals("donations", REF).updated_at == NOW + 5


def test_an_empty_fold_writes_nothing(tables):
    assert tables.fold(REF, [], now=NOW, attempts=3) == store.FoldOutcome(folded=0, amount=0, skipped=0)
    assert raw(f"total#{REF}") == {}


def test_known_reads_only_the_keys_held_in_batches_of_a_hundred(tables, monkeypatch):
    for number in range(0, 230, 3):
        tables.record(donation(f"k{number:03}"))
    calls: list[int] = []
    aws.dynamodb().meta.events.register(
        "before-parameter-build.dynamodb.BatchGetItem",
        lambda params, **_: calls.append(len(params["RequestItems"]["donations"]["Keys"])),
    )
    wanted = [f"k{number:03}" for number in range(230)] + ["k000"]  # a repeat is asked for once
    found = tables.known(wanted)
    assert sorted(found) == [f"k{number:03}" for number in range(0, 230, 3)]
    assert calls == [100, 100, 30]
    assert found["k003"].verification == PENDING


def test_unprocessed_keys_are_asked_for_again_after_a_pause(tables, monkeypatch):
    tables.record(donation("k1"))
    tables.record(donation("k2"))
    real = aws.dynamodb().batch_get_item
    asked: list[int] = []
    pauses: list[float] = []

    def one_at_a_time(RequestItems: dict[str, Any]) -> dict[str, Any]:
        request = RequestItems["donations"]
        asked.append(len(request["Keys"]))
        answer = real(RequestItems={"donations": {**request, "Keys": request["Keys"][:1]}})
        rest = request["Keys"][1:]
        return {**answer, "UnprocessedKeys": {"donations": {**request, "Keys": rest}} if rest else {}}

    monkeypatch.setattr(aws, "dynamodb", lambda: type("C", (), {"batch_get_item": staticmethod(one_at_a_time)}))
    monkeypatch.setattr(store.time, "sleep", pauses.append)
    assert sorted(tables.known(["k1", "k2", "k3"])) == ["k1", "k2"]
    assert asked == [3, 2, 1]
    assert len(pauses) == 2
    assert all(0.05 <= pause <= 0.2 for pause in pauses)


def test_a_campaign_never_reconciled_has_no_state_and_the_watermark_only_moves_forward(tables):
    assert tables.reconcile_state(REF) is None
    tables.save_reconcile_state(REF, watermark=100, now=NOW, ledger_amount=500, partner_amount=700)
    tables.save_reconcile_state(REF, watermark=90, now=NOW + 1, ledger_amount=0, partner_amount=0)  # an older run
    assert tables.reconcile_state(REF) == ReconcileState(watermark=100, last_run_at=NOW)
    item = raw(reconcile_pk(REF))
    assert (item["ledger_amount"], item["partner_amount"], item["campaign_ref"]) == (500, 700, REF)
    tables.save_reconcile_state(REF, watermark=100, now=NOW + 2, ledger_amount=None, partner_amount=None)
    assert tables.reconcile_state(REF).last_run_at == NOW + 2  # type: ignore[union-attr]
    assert raw(reconcile_pk(REF))["ledger_amount"] == 500  # not given: left as it was


def test_a_reconcile_at_the_stop_is_kept_beside_the_watermark(tables):
    tables.mark_reconciled_at_stop(REF, now=NOW + 10)  # before any run: the state item is made
    assert raw(reconcile_pk(REF)) == {"pk": reconcile_pk(REF), "reconciled_at_stop": NOW + 10, "campaign_ref": REF}
    tables.save_reconcile_state(REF, watermark=5, now=NOW + 20, ledger_amount=None, partner_amount=None)
    assert tables.reconcile_state(REF) == ReconcileState(watermark=5, last_run_at=NOW + 20, reconciled_at_stop=NOW + 10)


def put_campaign(ref: str, **values: Any) -> None:
    boto3.client("dynamodb").put_item(TableName="campaigns", Item=to_item({"campaign_ref": ref, **values}))


def test_the_directory_reads_what_the_ingester_needs_of_a_campaign(tables):
    personal = {"confirm_msisdn": "4512345678", "manage_token_hash": "secret"}  # not read: not needed
    put_campaign(REF, state="active", created_at=NOW, apps_miles_user_id="am-1", callback_token_hash="h", **personal)
    info = CampaignDirectory("campaigns").get(REF)
    expected = store.CampaignInfo(
        REF, "active", NOW, stopped_at=None, apps_miles_user_id="am-1", callback_token_hash="h"
    )
    assert info == expected
    assert CampaignDirectory("campaigns").get("9/none/none") is None


def test_the_directory_lists_active_campaigns_and_those_stopped_since(tables):
    put_campaign("1/a/live", state="active", created_at=1, **reconcile_index.open_values())
    put_campaign("1/a/late", state="stopped", created_at=1, stopped_at=500, **reconcile_index.open_values(500))
    put_campaign("1/a/old", state="stopped", created_at=1, stopped_at=100, **reconcile_index.open_values(100))
    put_campaign("1/a/creating", state="creating", created_at=1)
    found = {info.ref: info for info in CampaignDirectory("campaigns").reconcilable(stopped_since=400)}
    assert sorted(found) == ["1/a/late", "1/a/live"]
    assert found["1/a/late"].stopped_at == 500


class CountingDirectory:
    def __init__(self, answers: list[store.CampaignInfo | None]) -> None:
        self.answers = answers
        self.reads = 0

    def get(self, ref: str) -> store.CampaignInfo | None:
        self.reads += 1
        return self.answers[min(self.reads, len(self.answers)) - 1]


def test_the_cache_reads_a_campaign_once_per_ttl_and_fresh_reads_replace_it():
    now = [0.0]
    active = store.CampaignInfo(ref=REF, state="active", created_at=1, callback_token_hash="old")
    renewed = store.CampaignInfo(ref=REF, state="active", created_at=1, callback_token_hash="new")
    directory = CountingDirectory([active, renewed])
    cache = CampaignCache(directory, ttl_seconds=60, clock=lambda: now[0])  # type: ignore[arg-type]
    assert cache.get(REF) is active
    assert cache.get(REF) is active
    assert directory.reads == 1
    assert cache.fresh(REF) is renewed  # a PUT moments ago: its token works at once
    assert cache.get(REF) is renewed
    assert directory.reads == 2
    now[0] = 61
    cache.get(REF)
    assert directory.reads == 3


def test_an_unknown_campaign_is_cached_as_unknown_for_the_ttl():
    directory = CountingDirectory([None])
    cache = CampaignCache(directory, ttl_seconds=60, clock=lambda: 0.0)  # type: ignore[arg-type]
    assert cache.get("9/x/y") is None
    assert cache.get("9/x/y") is None
    assert directory.reads == 1  # a flood of forged callbacks for one ref reads it once
