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
