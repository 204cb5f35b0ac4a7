"""hub_core.openapi: self-contained request body schemas, form bodies and the responses a route documents."""

from __future__ import annotations

from enum import StrEnum

import pytest
from pydantic import BaseModel

from hub_core.openapi import ERROR_SCHEMA, FORM_MEDIA_TYPES, answers, body_schema, form_body


class Kind(StrEnum):
    DONATION = "donation"
    REWARD = "reward"


class Budget(BaseModel):
    amount: int
    currency: str = "EUR"


class Lead(BaseModel):
    email: str
    kind: Kind
    budget: Budget
    budgets: list[Budget] = []


def refs(value: object) -> list[str]:
    if isinstance(value, dict):
        own = [value["$ref"]] if "$ref" in value else []
        return own + [ref for item in value.values() for ref in refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in refs(item)]
    return []


def test_a_body_schema_holds_its_definitions_inline():
    schema = body_schema(Lead)
    assert "$defs" not in schema
    assert refs(schema) == []
    assert schema["properties"]["kind"]["enum"] == ["donation", "reward"]
    assert schema["properties"]["budget"]["properties"]["amount"]["type"] == "integer"
    assert schema["properties"]["budgets"]["items"]["required"] == ["amount"]
    assert schema["required"] == ["email", "kind", "budget"]


def test_a_model_without_definitions_is_its_own_schema():
    assert body_schema(Budget) == Budget.model_json_schema()


def test_a_form_body_offers_json_and_form_posts_with_one_schema():
    extension = form_body(Budget, "a budget")
    body = extension["requestBody"]
    assert (body["required"], body["description"]) == (True, "a budget")
    assert tuple(body["content"]) == FORM_MEDIA_TYPES
    assert all(content["schema"] == body_schema(Budget) for content in body["content"].values())
    assert tuple(form_body(Budget, "json only", ("application/json",))["requestBody"]["content"]) == (
        "application/json",
    )


def test_every_route_documents_422_and_its_errors_in_the_shared_shape():
    responses = answers({201: "created", 202: "accepted"}, 409, 503, 409)
    assert list(responses) == [201, 202, 409, 422, 503]
    assert responses[201]["description"] == "created"
    for status in (409, 422, 503):
        assert responses[status]["content"]["application/json"]["schema"] is ERROR_SCHEMA
    assert "Retry-After" in responses[503]["description"]


def test_an_error_the_document_does_not_describe_is_refused():
    with pytest.raises(KeyError):
        answers({200: "ok"}, 418)


def test_the_error_schema_names_what_every_error_body_holds():
    assert ERROR_SCHEMA["required"] == ["error", "message"]
    assert ERROR_SCHEMA["properties"]["problems"]["items"]["required"] == ["field", "rule", "message"]
