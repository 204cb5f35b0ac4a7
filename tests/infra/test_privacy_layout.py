"""template.yaml keeps personal data and secrets where they belong: each function's idempotency records in a table
only it may use, the public lead function off every table holding licence data, and every DLQ fed with ids."""

from __future__ import annotations

import json

import pytest

from campaign_lifecycle import personal_data as campaigns
from donation_ingester import personal_data as donations
from hub_cli.deadletters import dead_letter_queues
from hub_local.cfn import load_yaml
from lead_intake import personal_data as leads
from licence_issuance import personal_data as licences
from loyalty_relay import personal_data as loyalty
from tests.conftest import ROOT

TEMPLATE = ROOT / "template.yaml"
LICENCE_TABLES = {"LicencesTable"}


@pytest.fixture(scope="module")
def resources():
    return load_yaml(TEMPLATE)["Resources"]


def tables_in_policies(function):
    text = json.dumps(function["Properties"].get("Policies", []))
    return {name for name in ("LicencesTable", "IdempotencyTable") if f'"{name}"' in text}


def idempotency_table(function):
    return function["Properties"]["Environment"]["Variables"].get("IDEMPOTENCY_TABLE_NAME", {}).get("Ref")


def test_each_function_using_idempotency_has_a_table_of_its_own(resources):
    functions = {name: r for name, r in resources.items() if r["Type"] == "AWS::Serverless::Function"}
    users = {name: idempotency_table(f) for name, f in functions.items() if idempotency_table(f)}
    # Neither keeps Powertools Idempotency records: a lead's and an order's own record answer their repeats
    # (docs/exactly-once.md), so no second table holds what they hold.
    assert users == {}
    assert not {"IdempotencyTable", "LicenceIdempotencyTable"} & set(resources)
    for name, table in users.items():
        others = [other for other, f in functions.items() if other != name and table in tables_in_policies(f)]
        assert others == [], f"{table} is {name}'s, yet {others} may use it"


# Each owner's personal_data module: the indexes erasure queries in the owner's table, and their attributes.
OWNERS_INDEXES = {
    "LeadsTable": leads.INDEXES,
    "CampaignsTable": campaigns.INDEXES,
    "DonationsTable": {donations.DONOR_INDEX: donations.DONOR_ATTRIBUTE},
    "LoyaltyTable": {loyalty.USER_INDEX: loyalty.USER_ATTRIBUTE},
    "LicencesTable": {licences.MEMBER_INDEX: licences.MEMBER_ATTRIBUTE},
}


@pytest.mark.parametrize("table", sorted(OWNERS_INDEXES))
def test_erasure_finds_a_person_through_sparse_keys_only_indexes_the_owner_names(resources, table):
    """KEYS_ONLY: the index holds the person's identifier and the item's key, no other personal data."""
    declared = {index["IndexName"]: index for index in resources[table]["Properties"]["GlobalSecondaryIndexes"]}
    for name, attribute in OWNERS_INDEXES[table].items():
        assert declared[name]["KeySchema"] == [{"AttributeName": attribute, "KeyType": "HASH"}], (table, name)
        assert declared[name]["Projection"] == {"ProjectionType": "KEYS_ONLY"}, (table, name)


def test_the_public_lead_function_has_no_access_to_licence_data(resources):
    assert not tables_in_policies(resources["LeadIntakeFunction"]) & LICENCE_TABLES


def test_erasure_retries_by_id_through_a_queue_whose_dlq_is_erasure_dlq(resources):
    queue = resources["ErasureRetryQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["ErasureDLQ", "Arn"]}
    events = resources["ErasureFunction"]["Properties"]["Events"]
    assert events["RetryQueue"]["Properties"]["Queue"] == {"Fn::GetAtt": ["ErasureRetryQueue", "Arn"]}
    # Deferred requests live no longer than ErasureDLQ keeps a message (14 days), and not in a backup.
    table = resources["ErasureRequestsTable"]["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert "PointInTimeRecoverySpecification" not in table


def test_erasure_dlq_is_fed_by_the_retry_queue_alone(resources):
    config = resources["ErasureFunction"]["Properties"]["EventInvokeConfig"]
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == {"Fn::GetAtt": ["ErasureRetryQueue", "Arn"]}
    dead_letters = dead_letter_queues(TEMPLATE)
    assert dead_letters["ErasureDLQ"].sources == ("ErasureRetryQueue",)
    assert dead_letters["ErasureDLQ"].kind == "sqs-redrive"  # `hub dlq redrive ErasureDLQ` moves it back
