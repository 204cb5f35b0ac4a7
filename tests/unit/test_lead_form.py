"""Every validation rule of the lead form, as MiiMOSA documents it plus our limits."""

import pytest
from pydantic import ValidationError

from hub_core.http_api import problems_from
from lead_intake.models import LeadForm

VALID = {
    "email": "Ann.Bee@Example.ORG",
    "firstname": "Ann",
    "lastname": "Bee",
    "phone": "+33 6 12 34 56 78",
    "collect_type": "donation",
    "project_description": "Une miellerie pour 200 ruches",
    "project_total_budget": "15000",
    "publication_timeframe": "within_month",
}


def problems(**changes):
    data = {**VALID, **changes}
    data = {k: v for k, v in data.items() if v is not ...}
    with pytest.raises(ValidationError) as caught:
        LeadForm.model_validate(data)
    return {(p.field, p.rule) for p in problems_from(caught.value.errors(include_input=False))}


def test_a_valid_lead_is_normalised():
    lead = LeadForm.model_validate({**VALID, "category": "apiculture", "siret": "123 456 789 00012", "city": " Lyon "})
    body = lead.for_partner()
    assert body["email"] == "Ann.Bee@example.org"
    assert body["siret"] == "12345678900012"
    assert body["city"] == "Lyon"
    assert "birthdate" not in body


@pytest.mark.parametrize(
    "field",
    [
        "email",
        "firstname",
        "lastname",
        "phone",
        "collect_type",
        "project_description",
        "project_total_budget",
        "publication_timeframe",
    ],
)
def test_each_required_field_is_required_even_when_blank(field):
    assert (field, "required") in problems(**{field: ...})
    assert (field, "required") in problems(**{field: "   "})


@pytest.mark.parametrize(
    ("field", "value"),
    [("collect_type", "gift"), ("publication_timeframe", "someday"), ("category", "fishing")],
)
def test_enumerations_are_enforced(field, value):
    assert (field, "one_of") in problems(**{field: value})


@pytest.mark.parametrize("email", ["ann", "ann@", "@example.org", "ann@example", "ann bee@example.org", "a@b..org"])
def test_email_syntax(email):
    assert ("email", "email_syntax") in problems(email=email)


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("phone", "12-34", "phone_format"),
        ("phone", "call me maybe", "phone_format"),
        ("project_total_budget", "a lot", "amount_format"),
        ("turnover", "-5", "amount_format"),
        ("siret", "1234", "siret_format"),
        ("department", "999x", "max_length"),
        ("department", "7", "department_format"),
        ("post_code", "75@01", "post_code_format"),
        ("social_link", "javascript:alert(1)", "url_format"),
        ("firstname", "x" * 101, "max_length"),
        ("project_description", "x" * 5001, "max_length"),
        ("email", "a" * 250 + "@example.org", "max_length"),
    ],
)
def test_formats_and_length_limits(field, value, rule):
    assert (field, rule) in problems(**{field: value})


def test_unknown_fields_are_refused():
    assert ("nickname", "unknown_field") in problems(nickname="x")


def test_non_strings_are_refused_but_numbers_become_strings():
    assert ("firstname", "string") in problems(firstname=["Ann"])
    lead = LeadForm.model_validate({**VALID, "project_total_budget": 15000})
    assert lead.project_total_budget == "15000"


def test_problems_never_carry_the_submitted_value():
    with pytest.raises(ValidationError) as caught:
        LeadForm.model_validate({**VALID, "email": "secret-person@nowhere"})
    rendered = str([p.as_dict() for p in problems_from(caught.value.errors(include_input=False))])
    assert "secret-person" not in rendered


def test_fingerprint_is_stable_under_normalisation():
    a = LeadForm.model_validate(VALID)
    b = LeadForm.model_validate({**VALID, "firstname": "  Ann ", "email": "Ann.Bee@example.org"})
    assert a.fingerprint() == b.fingerprint()
    assert a.fingerprint() != LeadForm.model_validate({**VALID, "firstname": "Bob"}).fingerprint()


def test_a_double_submit_with_the_e_mail_in_another_case_or_unicode_form_has_the_same_fingerprint():
    lower = LeadForm.model_validate({**VALID, "email": "dup@example.org"})
    upper = LeadForm.model_validate({**VALID, "email": "DUP@example.org"})
    assert lower.fingerprint() == upper.fingerprint()
    composed = LeadForm.model_validate({**VALID, "email": "zo\u00eb@example.org"})
    decomposed = LeadForm.model_validate({**VALID, "email": "ZOE\u0308@example.org"})
    assert composed.fingerprint() == decomposed.fingerprint()
    # MiiMOSA still receives the address as typed (NFC), its local part's case kept.
    assert upper.for_partner()["email"] == "DUP@example.org"
    assert decomposed.for_partner()["email"] == "ZO\u00cb@example.org"


@pytest.mark.parametrize(
    "email", ["zo\u00eb@example.org", "j\u00fcrgen@m\u00fcller.de", "\u674e@\u4f8b\u5b50.\u4e2d\u56fd"]
)
def test_internationalised_addresses_are_accepted(email):
    assert LeadForm.model_validate({**VALID, "email": email}).email == email


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("firstname", "Ann\x00"),
        ("lastname", "Bee\x1b[2J"),
        ("lastname", "Bee\r\nBcc: x@example.org"),
        ("city", "Ly\u2028on"),
        ("firstname", "Ann\u202eeeB"),  # a right-to-left override: displays as something else
        ("project_name", "Miel\x7f"),
        ("birthdate", "1990\x0001"),
        ("social_link", "https://example.org/\x00"),
        ("campaign_id", "c\x85d"),
        ("project_description", "Une miellerie\x00"),
        ("email", "ann\x00@example.org"),
    ],
)
def test_control_characters_are_refused_in_every_text_field(field, value):
    found = problems(**{field: value})
    assert {f for f, _ in found} == {field}
    assert found & {(field, "control_character"), (field, "email_syntax"), (field, "url_format")}


def test_a_description_keeps_its_line_breaks_and_tabs():
    text = "Une miellerie\r\npour 200 ruches\n\tet un verger"
    assert LeadForm.model_validate({**VALID, "project_description": text}).project_description == text


@pytest.mark.parametrize(
    ("field", "value", "rule"),
    [
        ("phone", "\u0660\u0666\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668", "phone_format"),
        ("phone", "+\u0663\u0663 6 12 34 56 78", "phone_format"),
        (
            "siret",
            "\u0661\u0662\u0663\u0664\u0665\u0666\u0667\u0668\u0669\u0660\u0661\u0662\u0663\u0664",
            "siret_format",
        ),
        ("siret", "1234567890123\u00b2", "siret_format"),  # str.isdigit says yes to a superscript two
        ("project_total_budget", "\u0661\u0665\u0660\u0660\u0660", "amount_format"),
        ("department", "\u0663\u0663", "department_format"),
        ("post_code", "\u0667\u0665\u0660\u0660\u0661", "post_code_format"),
        ("phone", "06\x1c12345678", "control_character"),  # \s took the ASCII separators
    ],
)
def test_numbers_take_ascii_digits_only(field, value, rule):
    assert (field, rule) in problems(**{field: value})
