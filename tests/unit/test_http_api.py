"""hub_core.http_api's pieces: pydantic errors as field problems, Refusal answers, JSON and partner responses."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from hub_core.http_api import (
    FieldProblem,
    Refusal,
    RequestRejected,
    error_response,
    json_response,
    partner_error_response,
    problems_from,
)
from partners.errors import PartnerAuthError, PartnerBadResponse, PartnerNotFound, PartnerRejected, PartnerUnavailable


class Form(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(max_length=10)
    amount: int = Field(ge=1)
    kind: str = "donation"

    @field_validator("kind")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ("donation", "reward"):
            raise ValueError("must be donation or reward")
        return value


def problems(**fields: Any) -> list[tuple[str, str]]:
    with pytest.raises(ValidationError) as caught:
        Form.model_validate(fields)
    return [(p.field, p.rule) for p in problems_from(caught.value.errors(include_input=False))]


def body_of(response: Any) -> dict[str, Any]:
    return json.loads(response.body)


def test_pydantic_errors_become_the_rules_a_form_author_knows():
    assert problems(amount="x", extra="y") == [("email", "required"), ("amount", "integer"), ("extra", "unknown_field")]
    assert problems(email="a" * 11, amount=0) == [("email", "max_length"), ("amount", "minimum")]


def test_a_validators_own_words_are_the_message_without_pydantics_prefix():
    with pytest.raises(ValidationError) as caught:
        Form.model_validate({"email": "a", "amount": 1, "kind": "secret-kind"})
    [problem] = problems_from(caught.value.errors(include_input=False))
    assert problem == FieldProblem("kind", "value_error", "must be donation or reward")


def test_a_location_is_no_part_of_a_fields_name_and_nothing_left_is_the_body():
    errors = [
        {"loc": ("body", "lead", 0, "email"), "type": "missing", "msg": "Field required"},
        {"loc": ("query", "since"), "type": "int_parsing", "msg": "bad"},
        {"loc": ("body",), "type": "json_invalid", "msg": "JSON"},
        {"loc": (), "type": "something_new", "msg": "new"},
        {},
    ]
    assert [(p.field, p.rule) for p in problems_from(errors)] == [
        ("lead.0.email", "required"),
        ("since", "integer"),
        ("body", "json"),
        ("body", "something_new"),  # an unknown type passes as it is
        ("body", "invalid"),
    ]


def test_an_error_response_is_compact_json_with_problems_only_when_there_are_some():
    plain = error_response(409, "conflict", "taken")
    assert (plain.status_code, body_of(plain)) == (409, {"error": "conflict", "message": "taken"})
    assert plain.body == '{"error":"conflict","message":"taken"}'
    full = error_response(429, "rate_limited", "slow down", [FieldProblem("msisdn", "rate_limit", "too many")],
                          {"Retry-After": "60"}, retryable=True, retryAfterSeconds=60)  # fmt: skip
    assert body_of(full) == {
        "error": "rate_limited", "message": "slow down", "retryable": True, "retryAfterSeconds": 60,
        "problems": [{"field": "msisdn", "rule": "rate_limit", "message": "too many"}],
    }  # fmt: skip
    assert full.headers["Retry-After"] == "60"


def test_a_json_response_is_never_cached_unless_told():
    assert json_response(200, {"a": 1}).headers["Cache-Control"] == "no-store"
    cached = json_response(200, [1], cache_seconds=300, headers={"ETag": '"x"'})
    assert (cached.headers["Cache-Control"], cached.headers["ETag"]) == ("public, max-age=300", '"x"')
    assert json_response(200, {}, cache_seconds=0).headers["Cache-Control"] == "no-store"


class Taken(Exception):
    def __init__(self, field: str) -> None:
        super().__init__(f"{field} is taken")
        self.field = field
        self.message = f"the {field} is taken"


def test_a_refusal_answers_with_its_status_the_errors_message_and_what_the_error_adds(caplog):
    refusal = Refusal(
        409, "code_taken",
        problems=lambda exc: [FieldProblem(exc.field, "unique", "is taken")],
        headers=lambda exc: {"X-Field": exc.field},
        body_fields=lambda exc: {"retryable": False},
    )  # fmt: skip
    with caplog.at_level(logging.INFO):
        response = refusal.answer(Taken("donationCode"), logging.getLogger("test.refusal"))
    assert response.status_code == 409
    assert body_of(response) == {
        "error": "code_taken", "message": "the donationCode is taken", "retryable": False,
        "problems": [{"field": "donationCode", "rule": "unique", "message": "is taken"}],
    }  # fmt: skip
    assert response.headers["X-Field"] == "donationCode"
    [record] = [r for r in caplog.records if r.name == "test.refusal"]
    assert (record.getMessage(), record.error, record.fields) == ("request rejected", "code_taken", ["donationCode"])


def test_a_refusals_own_message_replaces_the_errors_and_a_plain_error_is_its_str():
    named = Refusal(404, "not_found", message="no such campaign").answer(Taken("x"), logging.getLogger())
    plain = Refusal(400, "bad").answer(ValueError("plain words"), logging.getLogger())
    assert (body_of(named)["message"], body_of(plain)["message"]) == ("no such campaign", "plain words")


def test_a_request_rejected_keeps_what_it_was_given():
    rejected = RequestRejected(413, "payload_too_large", "too big", retryable=False)
    assert (rejected.status, rejected.error, rejected.message, str(rejected)) == (
        413, "payload_too_large", "too big", "too big",
    )  # fmt: skip
    assert (rejected.problems, rejected.extra) == ([], {"retryable": False})


@pytest.mark.parametrize(
    ("exc", "status", "error", "retry_after"),
    [
        (PartnerNotFound("miimosa", "no project"), 404, "not_found", None),
        (PartnerUnavailable("miimosa", "down"), 503, "partner_unavailable", "5"),  # no Retry-After given: 5 s
        (PartnerUnavailable("miimosa", "down", retry_after=0.2), 503, "partner_unavailable", "1"),
        (PartnerUnavailable("miimosa", "down", retry_after=30.01), 503, "partner_unavailable", "31"),
        (PartnerBadResponse("mlm", "garbage", retry_after=2), 502, "partner_unavailable", "2"),
        (PartnerAuthError("mlm", "bad token"), 502, "partner_misconfigured", None),
        (PartnerRejected("umbrella", "code in use"), 502, "partner_rejected", None),
    ],
)
def test_a_partner_failure_says_whether_retrying_can_help(exc, status, error, retry_after):
    response = partner_error_response(exc)
    body = body_of(response)
    assert (response.status_code, body["error"]) == (status, error)
    assert response.headers.get("Retry-After") == retry_after
    if status != 404:
        assert body["retryable"] is (retry_after is not None)


def test_a_partners_refusal_passes_its_scrubbed_message_and_names_the_partner_otherwise():
    assert body_of(partner_error_response(PartnerRejected("umbrella", "code in use")))["message"] == "code in use"
    assert "mlm" in body_of(partner_error_response(PartnerAuthError("mlm", "bad token")))["message"]
    assert "bad token" not in body_of(partner_error_response(PartnerAuthError("mlm", "bad token")))["message"]
