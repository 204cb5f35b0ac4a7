"""Campaign creation limits with the template's own values: confirm SMSs per number, creates per client IP."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from hub_core.ratelimit import subject_key
from hub_core.tokens import hashing_key
from hub_local.stack import LocalStack
from tests.conftest import ROOT, SUITE_LIMITS, load_event
from tests.integration.conftest import FUNCTION_OVERRIDES, MIIMOSA_KEY, MLM_TOKEN, UMBRELLA_KEY, response_json

FUNCTION = "CampaignLifecycleFunction"
TEMPLATE_LIMITS = {"msisdn": 3, "ip": 10}


@pytest.fixture(scope="module")
def stack():
    overrides = {name: value for name, value in FUNCTION_OVERRIDES.items() if name not in SUITE_LIMITS}
    with LocalStack(
        ROOT / "template.yaml",
        gateway_port=None,
        pump_queues=False,
        environ={"MIIMOSA_API_KEY": MIIMOSA_KEY, "UMBRELLA_API_KEY": UMBRELLA_KEY, "MLM_API_TOKEN": MLM_TOKEN},
        function_overrides=overrides,
    ) as local:
        yield local


def unique_msisdn() -> str:
    return "45" + str(uuid.uuid4().int)[:8]


def unique_ip() -> str:
    number = uuid.uuid4().int
    return f"198.51.{number % 250}.{number // 250 % 250 + 1}"


def create_event(msisdn: str, ip: str) -> dict[str, Any]:
    event = load_event("campaign_lifecycle/post_campaign.json")
    fields = json.loads(event["body"]) | {"donationCode": f"l{uuid.uuid4().hex[:10]}", "confirmMsisdn": msisdn}
    event["body"] = json.dumps(fields)
    event["requestContext"]["http"]["sourceIp"] = ip
    return event


def confirms_to(stack, msisdn: str) -> int:
    return sum(1 for sms in stack.sandboxes["umbrella"].sent_sms(msisdn) if sms["kind"] == "confirm")


def test_the_template_sets_the_limits_this_module_checks(stack):
    env = stack.function_env(FUNCTION)
    assert int(env["CREATE_LIMIT_PER_MSISDN"]) == TEMPLATE_LIMITS["msisdn"]
    assert int(env["CREATE_LIMIT_PER_IP"]) == TEMPLATE_LIMITS["ip"]


def test_a_number_gets_no_more_confirm_sms_than_the_limit(stack):
    msisdn = unique_msisdn()
    statuses = [stack.invoke(FUNCTION, create_event(msisdn, unique_ip()))["statusCode"] for _ in range(6)]
    assert statuses == [201] * TEMPLATE_LIMITS["msisdn"] + [429] * 3
    assert confirms_to(stack, msisdn) == TEMPLATE_LIMITS["msisdn"]


def test_the_429_is_json_naming_the_number_with_retry_after(stack):
    msisdn = unique_msisdn()
    for _ in range(TEMPLATE_LIMITS["msisdn"]):
        assert stack.invoke(FUNCTION, create_event(msisdn, unique_ip()))["statusCode"] == 201
    umbrella = stack.sandboxes["umbrella"]
    umbrella.clear_requests()
    refused = stack.invoke(FUNCTION, create_event(msisdn, unique_ip()))
    assert refused["statusCode"] == 429
    body = response_json(refused)
    assert (body["error"], body["retryable"]) == ("rate_limited", True)
    assert [(p["field"], p["rule"]) for p in body["problems"]] == [("confirmMsisdn", "rate_limit")]
    retry_after = int(refused["headers"]["Retry-After"])
    assert 1 <= retry_after <= 86_400
    assert body["retryAfterSeconds"] == retry_after
    assert msisdn not in refused["body"]
    # Refused before anything reached Umbrella.
    assert [r.method for r in umbrella.requests if r.method == "POST"] == []


def test_one_client_ip_is_limited_across_numbers(stack):
    ip = unique_ip()
    statuses = [stack.invoke(FUNCTION, create_event(unique_msisdn(), ip))["statusCode"] for _ in range(12)]
    assert statuses == [201] * TEMPLATE_LIMITS["ip"] + [429] * 2
    refused = stack.invoke(FUNCTION, create_event(unique_msisdn(), ip))
    assert response_json(refused)["error"] == "rate_limited"
    assert "problems" not in response_json(refused)
    assert int(refused["headers"]["Retry-After"]) <= 3600


def test_the_counters_hold_no_number_or_address_and_expire(stack, monkeypatch):
    msisdn, ip = unique_msisdn(), unique_ip()
    assert stack.invoke(FUNCTION, create_event(msisdn, ip))["statusCode"] == 201
    items = stack.boto3_client("dynamodb").scan(TableName=stack.physical("RateLimitTable"))["Items"]
    dumped = json.dumps(items)
    assert msisdn not in dumped
    assert ip not in dumped
    # Keyed: a number's plain hash, which anyone can compute for every Danish number, is not what is stored.
    assert subject_key("confirm-msisdn", msisdn) not in dumped
    for name, value in stack.function_env(FUNCTION).items():
        monkeypatch.setenv(name, value)
    keyed = subject_key("confirm-msisdn", msisdn, hashing_key())
    mine = [item for item in items if keyed in item["id"]["S"]]
    assert len(mine) == 1
    assert int(mine[0]["expires_at"]["N"]) > int(mine[0]["id"]["S"].rsplit("#", 1)[1])
    ttl = stack.boto3_client("dynamodb").describe_time_to_live(TableName=stack.physical("RateLimitTable"))
    assert ttl["TimeToLiveDescription"] == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
