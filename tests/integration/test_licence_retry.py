"""An order Pimenko refused, asked for again with corrected data: issued once, the refusal kept in its history."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from licence_issuance import flow
from licence_issuance.models import LicenceRequest
from licence_issuance.services import services
from tests.integration.conftest import response_json
from tests.integration.test_licence_issuance import (
    FUNCTION,
    bridge_event,
    creates,
    invoke,
    order,
    post_event,
    table_item,
)


def refused(stack, mlm, **changes):
    mlm.faults.add("status", status=422, count=1, path_prefix="/licence/create")
    fields = order(**changes)
    response = invoke(stack, post_event(fields))
    assert response["statusCode"] == 422, response["body"]
    mlm.clear_requests()
    return fields


def test_a_corrected_request_for_a_refused_order_is_issued_once_and_recorded(stack, mlm):
    fields = refused(stack, mlm, url="https://too-long.example.org")
    corrected = fields | {"url": "https://short.example.org"}
    response = invoke(stack, post_event(corrected))
    assert response["statusCode"] == 201, response["body"]
    licence = response_json(response)["licence"]
    assert licence["sites"] == ["https://short.example.org"]
    # Asked again, the corrected order gets its licence back and Pimenko sees no second create.
    again = invoke(stack, post_event(corrected))
    assert again["statusCode"] == 201
    assert response_json(again)["licence"]["licence_id"] == licence["licence_id"]
    assert len(creates(mlm)) == 1
    # The refused data is not the order any more.
    assert invoke(stack, post_event(fields))["statusCode"] == 409
    item = table_item(stack, f"order#{fields['order_id']}")
    assert item["state"]["S"] == "issued"
    assert item["retries"]["N"] == "1"
    (entry,) = item["history"]["L"]
    assert entry["M"]["fingerprint"]["S"] == LicenceRequest.model_validate(fields).fingerprint()
    assert entry["M"]["message"]["S"]


def test_two_corrected_retries_at_once_make_one_licence(stack, mlm, monkeypatch):
    for name, value in stack.function_env(FUNCTION).items():
        monkeypatch.setenv(name, value)
    fields = refused(stack, mlm)
    corrected = LicenceRequest.model_validate(fields | {"url": "https://both.example.org"})

    def attempt(_: int) -> str:
        for _ in range(100):
            try:
                return flow.issue(services(), corrected).state.value
            except flow.OrderInProgress:
                continue
        return "never"

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(attempt, range(4)))
    assert outcomes == ["issued"] * 4
    assert len(creates(mlm)) == 1
    assert table_item(stack, f"order#{fields['order_id']}")["retries"]["N"] == "1"


def test_a_corrected_event_for_a_refused_order_issues_it(stack, mlm):
    fields = refused(stack, mlm)
    result = invoke(stack, bridge_event(fields | {"url": "https://from-the-shop.example.org"}))
    assert result["state"] == "issued"
    assert len(creates(mlm)) == 1


def test_a_corrected_request_naming_an_unknown_product_is_refused_and_the_order_stays_refused(stack, mlm):
    fields = refused(stack, mlm)
    response = invoke(stack, post_event(fields | {"product_id": 77}))
    assert response["statusCode"] == 422
    assert table_item(stack, f"order#{fields['order_id']}")["state"]["S"] == "rejected"
    assert creates(mlm) == []
