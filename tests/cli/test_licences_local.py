"""`hub licences retry ORDER` against the local stack: a refused order retried with corrected data, issued once."""

from __future__ import annotations

import uuid

import pytest

from hub_local.stack import LocalStack
from tests.cli.conftest import one_line_error
from tests.conftest import ROOT, SUITE_LIMITS
from tests.integration.conftest import FUNCTION_OVERRIDES, MLM_TOKEN


@pytest.fixture(scope="module")
def live():
    with LocalStack(
        ROOT / "template.yaml",
        gateway_port=0,
        pump_queues=False,
        environ={"MLM_API_TOKEN": MLM_TOKEN},
        function_overrides=FUNCTION_OVERRIDES | SUITE_LIMITS,
    ) as stack:
        yield stack


@pytest.fixture
def mlm(live):
    sandbox = live.sandboxes["mlm"]
    sandbox.faults.clear()
    sandbox.clear_requests()
    yield sandbox
    sandbox.faults.clear()


@pytest.fixture
def local(live, hub):
    return lambda *args: hub("--url", live.gateway_url, *args)


def refused_order(live, mlm) -> str:
    mlm.faults.add("status", status=422, count=1, path_prefix="/licence/create")
    order_id = f"cli-{uuid.uuid4().hex[:10]}"
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "LicenceRequested",
        "source": "shop",
        "account": "123456789012",
        "time": "2026-11-24T10:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {
            "order_id": order_id,
            "customer_reference": "cust-77",
            "product_id": 2,
            "licence_type": 1,
            "url": "https://far-too-long.example.org",
        },
    }
    assert live.invoke("LicenceIssuanceFunction", event)["state"] == "rejected"
    mlm.clear_requests()
    return order_id


def creates(mlm):
    return [r for r in mlm.requests if r.method == "POST" and r.path == "/licence/create"]


def test_a_refused_order_is_retried_with_a_corrected_url_and_issued_once(live, local, mlm):
    order_id = refused_order(live, mlm)
    outcome = local("licences", "retry", order_id, "--url", "https://short.example.org")
    assert outcome.status == 0, outcome.err
    assert f"Order {order_id} issued" in outcome.out
    assert len(creates(mlm)) == 1
    item = live.boto3_client("dynamodb").get_item(
        TableName=live.physical("LicencesTable"), Key={"pk": {"S": f"order#{order_id}"}}, ConsistentRead=True
    )["Item"]
    assert item["state"]["S"] == "issued"
    assert len(item["history"]["L"]) == 1
    # The order is no longer refused: a second retry is refused by the command, and Pimenko sees nothing more.
    assert "not refused" in one_line_error(local("licences", "retry", order_id, "--url", "https://other.example.org"))
    assert len(creates(mlm)) == 1


def test_a_retry_that_corrects_nothing_is_a_usage_error(live, local, mlm):
    order_id = refused_order(live, mlm)
    assert "nothing corrected" in one_line_error(local("licences", "retry", order_id))
    assert creates(mlm) == []


def test_an_unknown_order_is_one_line(local):
    assert "no licence order" in one_line_error(
        local("licences", "retry", "cli-none", "--url", "https://x.example.org")
    )
