"""hub_core.dynamo: item conversion both ways, and conditional writes whose refusal is a Written, not an error."""

from __future__ import annotations

from decimal import Decimal, Inexact

import boto3
import pytest
from botocore.exceptions import ClientError

from hub_core.dynamo import Written, delete_if, from_item, is_condition_failure, put_if, to_item, update_if
from tests.conftest import create_hash_table, in_process_aws

TABLE = "Items"


@pytest.fixture
def table(monkeypatch):
    with in_process_aws(monkeypatch):
        create_hash_table(TABLE, "pk")
        yield TABLE


def key(name: str) -> dict:
    return {"pk": {"S": name}}


def stored(name: str) -> dict | None:
    item = boto3.client("dynamodb").get_item(TableName=TABLE, Key=key(name)).get("Item")
    return from_item(item) if item else None


def test_plain_values_round_trip_with_numbers_as_decimals():
    values = {"s": "tekst", "n": 42, "neg": -7, "b": True, "none": None, "l": [1, "a"], "m": {"x": 1}}
    item = to_item(values)
    assert item["s"] == {"S": "tekst"}
    assert item["n"] == {"N": "42"}
    assert item["b"] == {"BOOL": True}
    assert item["none"] == {"NULL": True}
    back = from_item(item)
    assert back == {
        "s": "tekst",
        "n": Decimal(42),
        "neg": Decimal(-7),
        "b": True,
        "none": None,
        "l": [Decimal(1), "a"],
        "m": {"x": Decimal(1)},
    }


def test_a_bool_is_written_as_a_bool_not_by_the_int_shortcut():
    assert to_item({"flag": False}) == {"flag": {"BOOL": False}}  # bool is an int subclass: not the int shortcut


def test_an_int_past_dynamodbs_38_digits_is_refused_as_the_serializer_refuses_it():
    assert to_item({"n": 10**37})["n"] == {"N": str(10**37)}
    with pytest.raises(Inexact):
        to_item({"n": 10**38 + 1})


def test_a_float_is_refused_as_dynamodb_has_no_binary_float():
    with pytest.raises(TypeError):
        to_item({"f": 1.5})


def test_only_a_failed_condition_is_a_lost_race():
    failed = ClientError({"Error": {"Code": "ConditionalCheckFailedException"}}, "PutItem")
    assert is_condition_failure(failed)
    for code in ("TransactionConflictException", "ProvisionedThroughputExceededException", "ValidationException"):
        assert not is_condition_failure(ClientError({"Error": {"Code": code}}, "PutItem"))
    assert not is_condition_failure(ClientError({}, "PutItem"))  # no Error at all


def test_a_put_whose_condition_holds_is_applied_and_one_whose_does_not_is_refused(table):
    first = put_if(TableName=table, Item=to_item({"pk": "a", "v": 1}), ConditionExpression="attribute_not_exists(pk)")
    assert first == Written(applied=True)
    second = put_if(TableName=table, Item=to_item({"pk": "a", "v": 2}), ConditionExpression="attribute_not_exists(pk)")
    assert second == Written(applied=False)  # no ReturnValuesOnConditionCheckFailure: no item
    assert stored("a") == {"pk": "a", "v": 1}


def test_a_refused_write_brings_the_item_that_refused_it_when_asked(table):
    put_if(TableName=table, Item=to_item({"pk": "b", "v": 1}))
    refused = put_if(
        TableName=table,
        Item=to_item({"pk": "b", "v": 2}),
        ConditionExpression="attribute_not_exists(pk)",
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
    )
    assert not refused.applied
    assert from_item(refused.existing) == {"pk": "b", "v": 1}
    assert refused.attributes == {}


def test_an_applied_update_returns_the_attributes_asked_for(table):
    counted = [
        update_if(
            TableName=table,
            Key=key("c"),
            UpdateExpression="ADD hits :one",
            ExpressionAttributeValues=to_item({":one": 1}),
            ReturnValues="UPDATED_NEW",
        )
        for _ in range(2)
    ]
    assert [written.attributes["hits"] for written in counted] == [{"N": "1"}, {"N": "2"}]
    assert all(written.applied and written.existing == {} for written in counted)


def test_of_two_writers_from_one_version_only_the_first_wins(table):
    put_if(TableName=table, Item=to_item({"pk": "d", "version": 1, "owner": "nobody"}))

    def take(owner: str) -> Written:
        return update_if(
            TableName=table,
            Key=key("d"),
            UpdateExpression="SET version = :next, #owner = :owner",
            ConditionExpression="version = :read",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues=to_item({":next": 2, ":read": 1, ":owner": owner}),
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )

    assert take("first").applied
    lost = take("second")
    assert not lost.applied
    assert from_item(lost.existing)["owner"] == "first"
    assert stored("d")["owner"] == "first"  # type: ignore[index]


def test_a_conditional_delete_removes_only_what_still_matches(table):
    put_if(TableName=table, Item=to_item({"pk": "e", "holder": "h1"}))
    refused = delete_if(
        TableName=table,
        Key=key("e"),
        ConditionExpression="holder = :h",
        ExpressionAttributeValues=to_item({":h": "h2"}),
    )
    assert not refused.applied
    assert stored("e") is not None
    deleted = delete_if(
        TableName=table,
        Key=key("e"),
        ConditionExpression="holder = :h",
        ExpressionAttributeValues=to_item({":h": "h1"}),
        ReturnValues="ALL_OLD",
    )
    assert deleted.applied
    assert from_item(deleted.attributes) == {"pk": "e", "holder": "h1"}
    assert stored("e") is None


def test_an_unconditional_delete_of_nothing_is_applied_with_no_attributes(table):
    assert delete_if(TableName=table, Key=key("never"), ReturnValues="ALL_OLD") == Written(applied=True)


def test_every_other_failure_is_raised(table):
    for write in (
        lambda: put_if(TableName="no-such-table", Item=to_item({"pk": "x"})),
        lambda: update_if(
            TableName="no-such-table",
            Key=key("x"),
            UpdateExpression="SET a = :a",
            ExpressionAttributeValues=to_item({":a": 1}),
        ),
        lambda: delete_if(TableName="no-such-table", Key=key("x")),
    ):
        with pytest.raises(ClientError, match="ResourceNotFound"):
            write()
    with pytest.raises(ClientError, match="ValidationException"):
        update_if(TableName=table, Key=key("x"), UpdateExpression="SET a = :missing")
