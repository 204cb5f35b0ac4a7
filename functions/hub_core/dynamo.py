"""DynamoDB item conversion, and conditional writes whose refusal is an outcome (the race lost), not an error."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from hub_core import aws

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

_SERIALIZER = TypeSerializer()
_DESERIALIZER = TypeDeserializer()


# Below DynamoDB's 38 digits, TypeSerializer writes an int as str(int) too: it is only its Decimal check that the
# shortcut skips, and that check can only fail above this.
_INT_SHORTCUT_LIMIT = 10**38


def _attribute(value: Any) -> AttributeValueTypeDef:
    # Strings and ints are nearly every attribute the hub writes (a record per donation, per lead): written as
    # TypeSerializer writes them, without its type dispatch. Everything else goes through it.
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is int and -_INT_SHORTCUT_LIMIT < value < _INT_SHORTCUT_LIMIT:
        return {"N": str(value)}
    return _SERIALIZER.serialize(value)


def to_item(values: dict[str, Any]) -> dict[str, AttributeValueTypeDef]:
    """Plain values (str, int, bool, list, dict, None) as DynamoDB attribute values."""
    return {key: _attribute(value) for key, value in values.items()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    """A DynamoDB item as plain values (numbers come back as Decimal)."""
    return {key: _DESERIALIZER.deserialize(value) for key, value in item.items()}


def is_condition_failure(exc: ClientError) -> bool:
    """The write's condition did not hold: an expected outcome of a race, not an error."""
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


@dataclass(frozen=True)
class Written:
    """What one conditional write did: `applied`, with the attributes it returned (ReturnValues), or refused by
    its condition, with the item that refused it (given ReturnValuesOnConditionCheckFailure="ALL_OLD"); either
    is empty when not asked for, or when there was none."""

    applied: bool
    attributes: dict[str, Any] = field(default_factory=dict)
    existing: dict[str, Any] = field(default_factory=dict)


def _write_if(operation: Callable[..., Any], request: dict[str, Any]) -> Written:
    try:
        response = operation(**request)
    except ClientError as exc:
        if not is_condition_failure(exc):
            raise
        existing: Any = exc.response.get("Item")
        return Written(applied=False, existing=dict(existing or {}))
    return Written(applied=True, attributes=dict(response.get("Attributes") or {}))


def put_if(**request: Any) -> Written:
    """PutItem with its ConditionExpression: every store's one way to write exactly once."""
    return _write_if(aws.dynamodb().put_item, request)


def update_if(**request: Any) -> Written:
    """UpdateItem with its ConditionExpression."""
    return _write_if(aws.dynamodb().update_item, request)


def delete_if(**request: Any) -> Written:
    """DeleteItem with its ConditionExpression."""
    return _write_if(aws.dynamodb().delete_item, request)
