"""DynamoDB item conversion and the one error code every conditional write must tell apart."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

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
