"""The warm callback path's shortcuts (hub_core.text, hub_core.dynamo) answer exactly as the general code they skip."""

from __future__ import annotations

import sys

import pytest
from boto3.dynamodb.types import TypeSerializer

from hub_core import dynamo, text


def test_no_printable_character_is_one_the_text_rules_refuse():
    # The shortcut trusts str.isprintable: every character it calls printable must pass both rules one by one.
    printable = (chr(code) for code in range(sys.maxunicode + 1) if chr(code).isprintable())
    assert not any(text._refused(c, multi_line=False) or text._refused(c, multi_line=True) for c in printable)


@pytest.mark.parametrize(
    ("value", "refused"),
    [
        ("umb-msg-7f3a9c21", False),
        ("Tak for din donation ❤️", False),
        ("zero\u200cwidth non-joiner", False),  # Cf but allowed: not printable, so the slow path decides
        ("a\u202eb", True),  # a bidirectional override
        ("two\nlines", True),
        ("nul\x00", True),
    ],
)
def test_has_control_is_the_per_character_rule(value: str, refused: bool):
    assert text.has_control(value) is refused
    assert any(text._refused(char, multi_line=False) for char in value) is refused


@pytest.mark.parametrize(
    "value", ["", "donation#k", "æøå", 0, 5000, -1, 10**38 - 1, 10**38, True, None, [1, "a"], {"a": 1}]
)
def test_to_item_writes_what_type_serializer_writes(value: object):
    if value == 10**38:
        # Over DynamoDB's 38 digits: TypeSerializer's own refusal, not the shortcut's silence.
        with pytest.raises(Exception):  # noqa: B017, PT011 - boto3 raises decimal's Inexact/Rounded
            dynamo.to_item({"n": value})
        return
    assert dynamo.to_item({"v": value}) == {"v": TypeSerializer().serialize(value)}
