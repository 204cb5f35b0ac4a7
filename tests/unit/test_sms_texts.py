"""The organisation's SMS templates and the rule for the one piece of text a visitor still gives (a campaign name)."""

from __future__ import annotations

import pytest

from campaign_lifecycle.texts import (
    CONFIRM_PLACEHOLDERS,
    DEFAULT_ANSWER_TEMPLATE,
    DEFAULT_CONFIRM_TEMPLATE,
    DisplayTextError,
    check_display_text,
    check_template,
    kroner,
    render,
)
from hub_core.config import ConfigError


@pytest.mark.parametrize(
    "name", ["Annas løb", "Kræftens Bekæmpelse", "Run, Anna, run!", "O'Brien", "Zoë & Åse", "Жанна", "  Anna   løb "]
)
def test_names_a_person_would_give_pass(name):
    assert check_display_text(name, max_length=30) == " ".join(name.split())


@pytest.mark.parametrize(
    ("name", "rule"),
    [
        ("https://evil.example", "letters_only"),
        ("evil.dk", "letters_only"),
        ("Log ind på www bank dk", "letters_only"),
        ("Ring 12345678", "no_digits"),
        ("Ring ٠٦١٢٣٤٥٦٧٨", "no_digits"),
        ("mail@evil", "letters_only"),
        ("a/b", "letters_only"),
        ("", "min_length"),
        ("x" * 31, "max_length"),
    ],
)
def test_urls_numbers_and_symbols_are_refused(name, rule):
    with pytest.raises(DisplayTextError) as refused:
        check_display_text(name, max_length=30)
    assert refused.value.rule == rule


def test_the_default_templates_fit_one_sms_with_the_longest_name_and_a_token():
    values = {"name": "A" * 30, "code": "c" * 20, "keyword": "k" * 40, "amount": "50000", "token": "t" * 43}
    assert render(DEFAULT_CONFIRM_TEMPLATE, values, sms_messages=1).fits
    assert render(DEFAULT_ANSWER_TEMPLATE, values, sms_messages=1).fits


def test_a_placeholder_value_is_never_read_as_a_template():
    rendered = render("Tak {name}", {"name": "{token} {name.__class__}"}, sms_messages=1)
    assert rendered.text == "Tak {token} {name.__class__}"


@pytest.mark.parametrize("template", ["no token", "{token} {url}", "{token!r}", "{token:>99}", "{token", "{0} {token}"])
def test_a_bad_confirm_template_is_a_configuration_error(template):
    with pytest.raises(ConfigError):
        check_template(template, CONFIRM_PLACEHOLDERS, setting="CONFIRM_TEXT_TEMPLATE", required=frozenset({"token"}))


@pytest.mark.parametrize(("ore", "text"), [(5000, "50"), (2550, "25,50"), (1, "0,01"), (5_000_000, "50000")])
def test_amounts_read_as_kroner(ore, text):
    assert kroner(ore) == text
