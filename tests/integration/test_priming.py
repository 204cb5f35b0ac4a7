"""SnapStart priming on the local stack: every function registers, the dry request touches nothing, restore renews."""

from __future__ import annotations

import importlib
import random

import botocore.client
import pytest
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

from hub_core import appsmiles, aws, priming
from hub_local.template import load_yaml
from tests.conftest import ROOT

HANDLERS = {
    logical_id: resource["Properties"]["Handler"]
    for logical_id, resource in load_yaml(ROOT / "template.yaml")["Resources"].items()
    if resource["Type"] == "AWS::Serverless::Function"
}


@pytest.fixture
def aws_calls(monkeypatch):
    calls: list[str] = []
    original = botocore.client.BaseClient._make_api_call

    def recorded(client, operation, params):
        calls.append(f"{client.meta.service_model.service_name}.{operation}")
        return original(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", recorded)
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
