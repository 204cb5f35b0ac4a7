"""hub_core.reconcile_index on moto in-process: active campaigns and those stopped since T, read as one key range."""

from __future__ import annotations

import boto3
import pytest

from hub_core import reconcile_index
from hub_core.dynamo import to_item
from hub_core.reconcile_index import INDEX_NAME, STILL_OPEN, open_values, query_since
from tests.conftest import in_process_aws

TABLE = "Campaigns"


@pytest.fixture
def campaigns(monkeypatch):
    with in_process_aws(monkeypatch):
        client = boto3.client("dynamodb")
        client.create_table(
            TableName=TABLE,
            AttributeDefinitions=[
                {"AttributeName": "campaign_ref", "AttributeType": "S"},
                {"AttributeName": reconcile_index.PARTITION_ATTRIBUTE, "AttributeType": "S"},
                {"AttributeName": reconcile_index.OPEN_UNTIL_ATTRIBUTE, "AttributeType": "N"},
            ],
            KeySchema=[{"AttributeName": "campaign_ref", "KeyType": "HASH"}],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": INDEX_NAME,
                    "KeySchema": [
                        {"AttributeName": reconcile_index.PARTITION_ATTRIBUTE, "KeyType": "HASH"},
                        {"AttributeName": reconcile_index.OPEN_UNTIL_ATTRIBUTE, "KeyType": "RANGE"},
                    ],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        yield client


def refs_since(client, since: int) -> list[str]:
    request = query_since(TABLE, since, "#ref", {"#ref": "campaign_ref"})
    pages = client.get_paginator("query").paginate(**request)
    return sorted(item["campaign_ref"]["S"] for page in pages for item in page["Items"])


def test_an_active_campaign_is_open_past_every_stop_time():
    assert open_values() == {"reconcilable": "campaign", "open_until": STILL_OPEN}
    assert open_values(stopped_at=1_800_000_000) == {"reconcilable": "campaign", "open_until": 1_800_000_000}
    assert STILL_OPEN > 2**32  # after any epoch second the hub will see


def test_the_query_reads_the_index_range_only_and_projects_what_it_is_told():
    request = query_since("T", 500, "#ref, amount", {"#ref": "campaign_ref"})
    assert request["IndexName"] == INDEX_NAME
    assert request["KeyConditionExpression"] == "#partition = :partition AND #open_until >= :since"
    assert request["ExpressionAttributeValues"] == {":partition": {"S": "campaign"}, ":since": {"N": "500"}}
    assert request["ExpressionAttributeNames"]["#ref"] == "campaign_ref"
    assert request["ProjectionExpression"] == "#ref, amount"


def test_active_campaigns_and_those_stopped_since_are_found_never_older_ones_nor_unindexed(campaigns):
    rows = {
        "active": open_values(),
        "stopped-late": open_values(1000),
        "stopped-at": open_values(900),
        "stopped-early": open_values(100),
    }
    for ref, values in rows.items():
        campaigns.put_item(TableName=TABLE, Item=to_item({"campaign_ref": ref, **values}))
    campaigns.put_item(TableName=TABLE, Item=to_item({"campaign_ref": "creating"}))  # never active: not indexed
    assert refs_since(campaigns, 900) == ["active", "stopped-at", "stopped-late"]  # stopped at T still counts
    assert refs_since(campaigns, 1001) == ["active"]
    assert refs_since(campaigns, 0) == ["active", "stopped-at", "stopped-early", "stopped-late"]
