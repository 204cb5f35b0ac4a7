"""LoyaltyStore and OwnerTables on moto in-process: settled events read in batches, member ids read from owners."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import boto3
import pytest

from hub_core import aws
from hub_core.config import ConfigError
from hub_core.dynamo import to_item
from loyalty_relay.models import Outcome, OwnerRecord, PendingAction, Settlement
from loyalty_relay.store import LoyaltyStore, OwnerTables, record_key
from tests.conftest import create_hash_table, in_process_aws

AT = datetime(2027, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)


@pytest.fixture
def tables(monkeypatch):
    with in_process_aws(monkeypatch):
        create_hash_table("loyalty", "pk")
        create_hash_table("leads", "lead_id")
        create_hash_table("campaigns", "campaign_ref")
        create_hash_table("licences", "pk")
        yield


def action(key: str, user: str = "member-1") -> PendingAction:
    return PendingAction(f"m-{key}", key, "DONATION", user, "DonationReceived", None)


def put(table: str, **values: Any) -> None:
    boto3.client("dynamodb").put_item(TableName=table, Item=to_item(values))


def test_the_record_key_is_prefixed_so_no_other_item_kind_collides():
    assert record_key("evt-1") == "event#evt-1"


def test_a_record_holds_only_what_was_answered(tables):
    store = LoyaltyStore("loyalty")
    store.record(action("evt-1"), Settlement(Outcome.RELAYED), now=AT)
    record = store.settled(["evt-1"])["evt-1"]
    assert record == {
        "pk": "event#evt-1", "state": "relayed", "tag_id": "DONATION", "detail_type": "DonationReceived",
        "user_id": "member-1", "settled_at": "2027-01-02T03:04:05+00:00",
    }  # fmt: skip


def test_a_record_without_a_given_time_is_stamped_now_in_utc(tables):
    store = LoyaltyStore("loyalty")
    store.record(action("evt-2"), Settlement(Outcome.ALREADY_RECORDED, code=4))
    stamped = datetime.fromisoformat(store.settled(["evt-2"])["evt-2"]["settled_at"])
    assert stamped.utcoffset() is not None
    assert stamped.utcoffset().total_seconds() == 0  # type: ignore[union-attr]


def test_more_than_a_hundred_keys_take_one_batch_get_per_hundred(tables):
    store = LoyaltyStore("loyalty")
    for number in range(0, 250, 2):
        store.record(action(f"evt-{number:03}"), Settlement(Outcome.RELAYED, code=0), now=AT)
    calls: list[int] = []
    aws.dynamodb().meta.events.register(
        "before-parameter-build.dynamodb.BatchGetItem",
        lambda params, **_: calls.append(len(params["RequestItems"]["loyalty"]["Keys"])),
    )
    found = store.settled([f"evt-{number:03}" for number in range(250)])
    assert sorted(found) == [f"evt-{number:03}" for number in range(0, 250, 2)]
    assert calls == [100, 100, 50]


def test_keys_left_unprocessed_are_asked_for_again(tables, monkeypatch):
    store = LoyaltyStore("loyalty")
    store.record(action("evt-a"), Settlement(Outcome.RELAYED), now=AT)
    store.record(action("evt-b"), Settlement(Outcome.REJECTED, reason="r"), now=AT)
    client = aws.dynamodb()
    real = client.batch_get_item
    asked: list[list[str]] = []

    def throttled_once(RequestItems: dict[str, Any]) -> dict[str, Any]:
        keys = RequestItems["loyalty"]["Keys"]
        asked.append([key["pk"]["S"] for key in keys])
        if len(asked) > 1:
            return real(RequestItems=RequestItems)
        first = real(RequestItems={"loyalty": {**RequestItems["loyalty"], "Keys": keys[:1]}})
        return {**first, "UnprocessedKeys": {"loyalty": {**RequestItems["loyalty"], "Keys": keys[1:]}}}

    monkeypatch.setattr(aws, "dynamodb", lambda: type("C", (), {"batch_get_item": staticmethod(throttled_once)}))
    found = store.settled(["evt-b", "evt-a"])
    assert set(found) == {"evt-a", "evt-b"}
    assert asked == [["event#evt-a", "event#evt-b"], ["event#evt-b"]]


def test_no_keys_make_no_request(tables, monkeypatch):
    monkeypatch.setattr(aws, "dynamodb", lambda: pytest.fail("asked DynamoDB for nothing"))
    assert LoyaltyStore("loyalty").settled([]) == {}


@pytest.mark.parametrize(
    ("owner", "table", "item"),
    [
        (OwnerRecord("leads", "lead-1"), "leads", {"lead_id": "lead-1"}),
        (OwnerRecord("campaigns", "1/hjerte/a"), "campaigns", {"campaign_ref": "1/hjerte/a"}),
        (OwnerRecord("licences", "order-9"), "licences", {"pk": "order#order-9"}),
    ],
)
def test_the_member_is_read_from_the_record_that_owns_the_event(tables, owner, table, item):
    put(table, **item, apps_miles_user_id="am-7", email="ann@example.org")
    owners = OwnerTables({"leads": "leads", "campaigns": "campaigns", "licences": "licences"})
    projected: list[str] = []
    aws.dynamodb().meta.events.register(
        "before-parameter-build.dynamodb.GetItem", lambda params, **_: projected.append(params["ProjectionExpression"])
    )
    assert owners.member_of(owner) == "am-7"
    assert projected == ["#member"]  # one attribute, never the rest of the person's record


def test_a_gone_or_memberless_owner_has_no_one_to_credit(tables):
    put("leads", lead_id="lead-2")
    put("leads", lead_id="lead-3", apps_miles_user_id="")
    owners = OwnerTables({"leads": "leads"})
    assert owners.member_of(OwnerRecord("leads", "lead-2")) is None
    assert owners.member_of(OwnerRecord("leads", "lead-3")) is None
    assert owners.member_of(OwnerRecord("leads", "never")) is None


def test_an_owner_table_without_a_name_is_a_configuration_error(tables):
    with pytest.raises(ConfigError, match="licences"):
        OwnerTables({"leads": "leads", "licences": ""}).member_of(OwnerRecord("licences", "order-1"))
    with pytest.raises(ConfigError, match="campaigns"):
        OwnerTables({}).member_of(OwnerRecord("campaigns", "1/hjerte/a"))
