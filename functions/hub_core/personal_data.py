"""How a table's owner finds and erases one person's items: sparse KEYS_ONLY indexes, never a Scan, and one
conditional write per item, so that a repeat (or a race with another erasure) counts nothing twice."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from hub_core import aws
from hub_core.dynamo import Written, to_item, update_if


def keys_holding(table: str, index: str, attribute: str, value: str) -> Iterator[dict[str, Any]]:
    """The primary keys of the items whose `attribute` is `value` (the sparse KEYS_ONLY `index` projects them)."""
    pages = (
        aws.dynamodb()
        .get_paginator("query")
        .paginate(
            TableName=table,
            IndexName=index,
            KeyConditionExpression="#attribute = :value",
            ExpressionAttributeNames={"#attribute": attribute},
            ExpressionAttributeValues=to_item({":value": value}),
        )
    )
    for page in pages:
        for item in page.get("Items", []):
            yield {name: item[name] for name in item if name != attribute}


def count(written: Written) -> int:
    """1 when the write erased something; 0 when the item no longer held the value (erased meanwhile)."""
    return 1 if written.applied else 0


def remove_attribute(table: str, index: str, attribute: str, value: str) -> int:
    """Remove `attribute` from every item that holds `value` in it; the items themselves stay."""
    return sum(
        count(
            update_if(
                TableName=table,
                Key=key,
                UpdateExpression="REMOVE #attribute",
                ConditionExpression="#attribute = :value",
                ExpressionAttributeNames={"#attribute": attribute},
                ExpressionAttributeValues=to_item({":value": value}),
            )
        )
        for key in keys_holding(table, index, attribute, value)
    )
