"""SnapStart priming on the local stack: every function registers, the dry request touches nothing, restore renews."""

from __future__ import annotations

import importlib
import random

import botocore.endpoint
import pytest
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

from hub_core import appsmiles, aws, priming
from hub_local.cfn import load_yaml
from tests.conftest import ROOT

HANDLERS = {
    logical_id: resource["Properties"]["Handler"]
    for logical_id, resource in load_yaml(ROOT / "template.yaml")["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
}


@pytest.fixture
def aws_calls(monkeypatch):
    """Every request botocore sends over the wire (the rehearsed operations are answered before that)."""
    calls: list[str] = []
    original = botocore.endpoint.Endpoint._send

    def recorded(endpoint, request):
        calls.append(f"{request.method} {request.url}")
        return original(endpoint, request)

    monkeypatch.setattr(botocore.endpoint.Endpoint, "_send", recorded)
    return calls


def _registration(monkeypatch, stack, logical_id):
    for name, value in stack.function_env(logical_id).items():
        monkeypatch.setenv(name, value)
    module_name, _, function_name = HANDLERS[logical_id].rpartition(".")
    handler = getattr(importlib.import_module(module_name), function_name)
    [registration] = [r for r in priming.registered() if r.handler is handler]
    return registration


@pytest.mark.parametrize("logical_id", sorted(HANDLERS))
def test_the_dry_request_is_refused_or_static_and_touches_no_aws_service_nor_partner(
    monkeypatch, stack, aws_calls, logical_id
):
    registration = _registration(monkeypatch, stack, logical_id)
    for sandbox in stack.sandboxes.values():
        sandbox.clear_requests()
    status = priming.before_snapshot(registration)
    assert aws_calls == []
    assert all(not sandbox.requests for sandbox in stack.sandboxes.values())
    if registration.dry_event is None:
        assert status is None
    elif logical_id == "ApiDocsFunction":
        assert status == 200  # the document is static: serving it is the priming
    else:
        assert status is not None
        assert 400 <= status < 500


def test_restore_keeps_the_aws_clients_and_renews_partner_clients_and_random_state(monkeypatch, stack):
    for name, value in stack.function_env("LoyaltyRelayFunction").items():
        monkeypatch.setenv(name, value)
    dynamodb, partner = aws.dynamodb(), appsmiles.appsmiles_client()
    random.seed(1234)
    state = random.getstate()
    snapshot_draw = random.random()
    random.setstate(state)  # as every environment restored from one snapshot would start
    priming.after_restore()
    assert random.random() != snapshot_draw
    assert aws.dynamodb() is dynamodb
    assert appsmiles.appsmiles_client() is not partner


def test_restore_forgets_cached_secrets_but_keeps_the_ssm_client(monkeypatch, stack):
    registration = _registration(monkeypatch, stack, "LeadIntakeFunction")
    priming.before_snapshot(registration)
    provider = DEFAULT_PROVIDERS["ssm"]
    provider.store[("a-secret", None, ())] = "value read before the snapshot"
    priming.after_restore()
    assert DEFAULT_PROVIDERS["ssm"] is provider
    assert provider.store == {}


READS = {"dynamodb": "list_tables", "sqs": "list_queues", "events": "list_event_buses", "ssm": "describe_parameters"}


@pytest.mark.parametrize("service", sorted(priming.REHEARSALS))
def test_each_operation_is_rehearsed_without_a_request_and_the_stub_is_gone_after(
    monkeypatch, stack, aws_calls, service
):
    for name, value in stack.function_env("LeadIntakeFunction").items():
        monkeypatch.setenv(name, value)
    assert priming.rehearse(service) == len(priming.REHEARSALS[service]) > 0
    assert aws_calls == []
    getattr(aws._client(service), READS[service])()  # a real request reaches moto: nothing stubs the client now
    assert len(aws_calls) == 1
