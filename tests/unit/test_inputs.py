"""The shared input rules: request bodies with numbers Python cannot hold, control characters, ASCII digits, and
the identifier keys intake stores and erasure looks up."""

from __future__ import annotations

import json

import pytest
from pydantic_core import PydanticCustomError

from hub_core.http_api import RequestRejected
from hub_core.identifiers import check_email, check_msisdn, email_key, phone_key
from hub_core.request_body import MAX_INTEGER_DIGITS, submitted_fields
from hub_core.text import ascii_digits, has_control, multi_line, single_line

JSON = {"content-type": "application/json"}


def rejected(body: str) -> RequestRejected:
    with pytest.raises(RequestRejected) as caught:
        submitted_fields({"body": body}, JSON, max_bytes=1_000_000)
    return caught.value


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ('{"amount": ' + "9" * 5000 + "}", "amount"),  # Python's int() limit is 4,300 digits: a ValueError
        ('{"amount": -' + "9" * 5000 + "}", "amount"),
        ('{"a": 1, "amount": ' + "1" * (MAX_INTEGER_DIGITS + 1) + "}", "amount"),
        ('{"lead": {"x": [1, ' + "9" * 5000 + "]}}", "lead"),  # nested: the top-level field is named
        ('{"amount": 1e999}', "amount"),  # inf
        ('{"amount": NaN}', "amount"),  # not JSON, though Python reads it
        ('{"amount": -Infinity}', "amount"),
    ],
)
def test_a_number_out_of_range_is_a_400_naming_its_field(body, field):
    error = rejected(body)
    assert error.status == 400
    assert [(p.field, p.rule) for p in error.problems] == [(field, "number_range")]


def test_numbers_in_range_pass_unchanged():
    fields = submitted_fields(
        {"body": json.dumps({"a": 10**MAX_INTEGER_DIGITS - 1, "b": -5, "c": 1.5, "d": [2**31]})},
        JSON,
        max_bytes=10_000,
    )
    assert fields == {"a": 10**MAX_INTEGER_DIGITS - 1, "b": -5, "c": 1.5, "d": [2**31]}


def test_a_body_nested_past_python_s_recursion_limit_is_a_400_naming_the_body():
    error = rejected("[" * 200_000 + "]" * 200_000)
    assert error.status == 400
    assert [(p.field, p.rule) for p in error.problems] == [("body", "nesting")]


@pytest.mark.parametrize("char", ["\x00", "\x1b", "\r", "\n", "\t", "\x7f", "\x85", "\u2028", "\u202e", "\ufeff"])
def test_single_line_text_refuses_control_and_hiding_characters(char):
    assert has_control(f"a{char}b")
    with pytest.raises(PydanticCustomError):
        single_line(f"a{char}b")


@pytest.mark.parametrize(
    "text",
    ["Zoë Ærø", "李小龍", "\u0639\u0644\u064a", "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645", "👩\u200d🌾"],
)
def test_single_line_text_keeps_every_script_and_the_joiners(text):
    assert single_line(text) == text


def test_multi_line_text_allows_only_line_breaks_and_tabs():
    assert multi_line("a\r\nb\n\tc\u2028d") == "a\r\nb\n\tc\u2028d"
    for char in ("\x00", "\x1b", "\x0b", "\u202e"):
        with pytest.raises(PydanticCustomError):
            multi_line(f"a{char}b")


@pytest.mark.parametrize(
    ("value", "expected"), [("0123", True), ("", False), ("\u0660\u0661\u0662", False), ("12\u00b2", False)]
)
def test_ascii_digits(value, expected):
    assert ascii_digits(value) is expected


@pytest.mark.parametrize(
    "typed", ["06 12 34 56 78", "06.12.34.56.78", "+33 6 12 34 56 78", "+33612345678", "0033 6 12 34 56 78"]
)
def test_a_phone_typed_any_way_has_one_key(typed):
    assert phone_key(typed) == "33612345678"


def test_a_phone_key_uses_the_configured_country_and_leaves_msisdns_alone():
    assert phone_key("0612345678", "45") == "45612345678"
    assert phone_key("4512345678") == "4512345678"


@pytest.mark.parametrize(
    "typed",
    [
        "\u0660\u0666\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668",
        "+\u0663\u0663612345678",
        "06 12 34\n56 78",
        "12345",
        "+" + "1" * 16,
        "call me",
    ],
)
def test_what_is_not_a_phone_number_has_no_key(typed):
    assert phone_key(typed) is None


@pytest.mark.parametrize(
    "value", ["\u0664\u0665\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668", "45123456\uff178", "4512345678\n"]
)
def test_an_msisdn_is_ascii_digits_even_under_a_configured_backslash_d(value):
    with pytest.raises(PydanticCustomError):
        check_msisdn(value, r"^\d{8,15}$")


def test_email_keys_fold_case_and_unicode_forms():
    assert email_key("DUP@Example.org") == email_key("dup@example.org")
    assert email_key("ZOE\u0308@example.org") == email_key("zo\u00eb@example.org")
    assert email_key("\ufb01@example.org") == email_key("fi@example.org")  # NFKC: the ligature is two letters


def test_check_email_normalises_to_nfc_and_lowers_the_domain():
    assert check_email("Zoe\u0308@EXAMPLE.org") == "Zo\u00eb@example.org"
    for bad in ("zoë@example", "zoë @example.org", "a@exa_mple.org", "ann\u202e@example.org"):
        with pytest.raises(PydanticCustomError):
            check_email(bad)
