"""ErasureStore on moto in-process, through each table owner's personal_data module: a person's items found through
the sparse indexes, each erased once."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from campaign_lifecycle import personal_data as campaigns
from donation_ingester import personal_data as donations
from erasure.store import ErasureStore
from hub_core import personal_data
from hub_core.dynamo import from_item, to_item
from lead_intake import personal_data as leads
from licence_issuance import personal_data as licences
from loyalty_relay import personal_data as loyalty
from tests.conftest import in_process_aws

NOW = 1_800_000_000
TABLES: dict[str, tuple[str, dict[str, str]]] = {
    "leads": ("lead_id", leads.INDEXES),
    "campaigns": ("campaign_ref", campaigns.INDEXES),
    "donations": ("pk", {donations.DONOR_INDEX: donations.DONOR_ATTRIBUTE}),
    "loyalty": ("pk", {loyalty.USER_INDEX: loyalty.USER_ATTRIBUTE}),
    "licences": ("pk", {licences.MEMBER_INDEX: licences.MEMBER_ATTRIBUTE}),
}


def create_indexed_table(name: str, key: str, indexes: dict[str, str]) -> None:
    """A table with a sparse KEYS_ONLY index per attribute, as template.yaml declares them."""
    boto3.client("dynamodb").create_table(
        TableName=name,
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}]
        + [{"AttributeName": attribute, "AttributeType": "S"} for attribute in sorted(set(indexes.values()))],
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": index,
                "KeySchema": [{"AttributeName": attribute, "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
            for index, attribute in indexes.items()
        ],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def store(monkeypatch):
    with in_process_aws(monkeypatch):
        for name, (key, indexes) in TABLES.items():
            create_indexed_table(name, key, indexes)
        yield ErasureStore(leads="leads", campaigns="campaigns", donations="donations", loyalty="loyalty",
                           licences="licences")  # fmt: skip


def put(table: str, **values: Any) -> None:
    boto3.client("dynamodb").put_item(TableName=table, Item=to_item(values))


def items(table: str) -> dict[str, dict[str, Any]]:
    key = TABLES[table][0]
    return {
        str(values[key]): values
        for values in (from_item(item) for item in boto3.client("dynamodb").scan(TableName=table)["Items"])
    }


def test_every_lead_of_the_address_phone_or_member_is_deleted_once(store):
    put("leads", lead_id="l1", email_key="e-ann", phone_key="p-ann")
    put("leads", lead_id="l2", phone_key="p-ann")
    put("leads", lead_id="l3", apps_miles_user_id="am-ann")
    put("leads", lead_id="l4", email_key="e-bob", phone_key="p-bob")
    assert store.erase_leads(email_key="e-ann", user_id="am-ann", phone_key="p-ann") == 3  # l1 counted once
    assert set(items("leads")) == {"l4"}
    assert store.erase_leads(email_key="e-ann", user_id="am-ann", phone_key="p-ann") == 0  # a repeat: nothing


def test_no_identifier_erases_no_lead(store):
    put("leads", lead_id="l1", email_key="e-ann")
    assert store.erase_leads(email_key=None, user_id=None) == 0
    assert store.erase_leads(email_key="", user_id="", phone_key="") == 0
    assert set(items("leads")) == {"l1"}


def test_a_campaign_keeps_its_state_and_money_but_loses_its_creator(store):
    put("campaigns", campaign_ref="1/hjerte/a", confirm_msisdn="4512345678", apps_miles_user_id="am-ann",
        state="active", amount=5000, history=[{"at": 1, "action": "created"}])  # fmt: skip
    put("campaigns", campaign_ref="1/hjerte/b", apps_miles_user_id="am-ann", state="stopped", amount=10)
    put("campaigns", campaign_ref="1/hjerte/c", confirm_msisdn="4587654321", state="active", amount=20)
    assert store.erase_campaign_creator(msisdn="4512345678", user_id="am-ann", now=NOW) == 2
    campaigns = items("campaigns")
    first = campaigns["1/hjerte/a"]
    assert "confirm_msisdn" not in first
    assert "apps_miles_user_id" not in first
    assert (first["state"], first["amount"], first["erased_at"]) == ("active", 5000, NOW)
    assert first["history"][-1] == {"at": NOW, "action": "creator_erased"}
    assert campaigns["1/hjerte/b"]["history"] == [{"at": NOW, "action": "creator_erased"}]  # none before
    assert campaigns["1/hjerte/c"]["confirm_msisdn"] == "4587654321"  # another creator's
    assert store.erase_campaign_creator(msisdn="4512345678", user_id="am-ann", now=NOW + 1) == 0


def test_a_campaign_found_by_number_only_is_matched_by_number_only(store):
    put("campaigns", campaign_ref="1/hjerte/d", confirm_msisdn="4512345678", apps_miles_user_id="am-other")
    assert store.erase_campaign_creator(msisdn="4512345678", user_id=None, now=NOW) == 1
    # Both attributes go: the campaign's creator is one person.
    assert "apps_miles_user_id" not in items("campaigns")["1/hjerte/d"]
    assert store.erase_campaign_creator(msisdn=None, user_id=None, now=NOW) == 0


def test_a_donor_is_erased_under_every_key_of_the_ring_and_the_plain_number(store):
    put("donations", pk="donation#m1", msisdn="hash-key-1", text="Go Anna", amount=100)
    put("donations", pk="donation#m2", msisdn="hash-key-0", text="Hej", amount=200)
    put("donations", pk="donation#m3", msisdn="4512345678", amount=300)  # stored before numbers were hashed
    put("donations", pk="donation#m4", msisdn="hash-someone-else", text="Other", amount=400)
    erased = store.erase_donor(["hash-key-1", "hash-key-0", "4512345678", "hash-key-1"])
    assert erased == 3  # the doubled key counts once
    donations = items("donations")
    for pk, amount in (("donation#m1", 100), ("donation#m2", 200), ("donation#m3", 300)):
        assert set(donations[pk]) == {"pk", "amount"}
        assert donations[pk]["amount"] == amount
    assert donations["donation#m4"]["text"] == "Other"
    assert store.erase_donor(["hash-key-1"]) == 0


def test_a_loyalty_record_keeps_its_settlement_without_its_user(store):
    put("loyalty", pk="event#e1", user_id="am-ann", state="relayed")
    put("loyalty", pk="event#e2", user_id="am-bob", state="relayed")
    assert store.erase_loyalty_user("am-ann") == 1
    records = items("loyalty")
    assert records["event#e1"] == {"pk": "event#e1", "state": "relayed"}
    assert records["event#e2"]["user_id"] == "am-bob"
    assert store.erase_loyalty_user("am-ann") == 0


def test_a_licence_order_keeps_its_licence_without_its_member(store):
    put("licences", pk="order#o1", apps_miles_user_id="am-ann", state="issued")
    put("licences", pk="licence#9001", order_id="o1")
    assert store.erase_licence_member("am-ann") == 1
    assert items("licences")["order#o1"] == {"pk": "order#o1", "state": "issued"}


def test_without_a_licences_table_no_licence_is_looked_for(store, monkeypatch):
    put("licences", pk="order#o1", apps_miles_user_id="am-ann")
    older = ErasureStore(leads="leads", campaigns="campaigns", donations="donations", loyalty="loyalty")
    assert older.erase_licence_member("am-ann") == 0
    assert items("licences")["order#o1"]["apps_miles_user_id"] == "am-ann"


def test_an_item_changed_between_the_index_and_the_write_is_not_counted(store, monkeypatch):
    put("loyalty", pk="event#e1", user_id="am-ann")
    keys = list(personal_data.keys_holding("loyalty", loyalty.USER_INDEX, "user_id", "am-ann"))
    assert keys == [{"pk": {"S": "event#e1"}}]  # the index's key, without the looked-up attribute
    put("loyalty", pk="event#e1", user_id="am-someone-else")  # a concurrent write changed it meanwhile

    monkeypatch.setattr(personal_data, "keys_holding", lambda *_: iter(keys))
    assert store.erase_loyalty_user("am-ann") == 0
    assert items("loyalty")["event#e1"]["user_id"] == "am-someone-else"
