"""What a licence request may hold, named by field and rule as the 422 names them (app.py: problems_from), no emulator.

The catalogue's own refusals (unknown_product, unknown_licence_type) are the flow's: tests/unit/test_licence_flow.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from hub_core.http_api import problems_from
from licence_issuance.models import LicenceRequest

ORDER = {
    "order_id": "order-1",
    "customer_reference": "cust-42",
    "product_id": 2,
    "licence_type": 1,
    "url": "https://moodle.example.org",
}


def named(changes: dict[str, Any]) -> set[tuple[str, str]]:
    fields = {key: value for key, value in (ORDER | changes).items() if value is not None}
    with pytest.raises(ValidationError) as refused:
        LicenceRequest.model_validate(fields)
    errors = refused.value.errors(include_input=False, include_url=False)
    return {(problem.field, problem.rule) for problem in problems_from(errors)}


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"url": "http://moodle.example.org"}, "url", "https_url"),
        ({"url": "moodle.example.org"}, "url", "https_url"),
        ({"url": "https://user:secret@moodle.example.org"}, "url", "url_credentials"),
        ({"url": "https://moodle.example.org/#x"}, "url", "https_url"),
        ({"url": "https://moodle.example.org:99999"}, "url", "https_url"),
        ({"product_id": "2"}, "product_id", "integer"),
        ({"licence_type": 0}, "licence_type", "minimum"),
        ({"order_id": "has spaces"}, "order_id", "pattern"),
        ({"order_id": None}, "order_id", "required"),
        ({"customer_reference": ""}, "customer_reference", "min_length"),
        ({"colour": "red"}, "colour", "unknown_field"),
    ],
)
def test_each_rule_of_a_licence_request_is_named(changes, field, rule):
    assert (field, rule) in named(changes)


def test_the_credentials_in_a_refused_url_are_not_echoed():
    with pytest.raises(ValidationError) as refused:
        LicenceRequest.model_validate(ORDER | {"url": "https://user:secret@moodle.example.org"})
    problems = problems_from(refused.value.errors(include_input=False, include_url=False))
    assert "secret" not in str([problem.as_dict() for problem in problems])


def test_a_valid_request_passes():
    assert LicenceRequest.model_validate(ORDER).url == ORDER["url"]
