"""SnapStart priming on the local stack: every function of the template registers, its dry request touches nothing
(the steps themselves, rehearsals and restore, are unit tested in tests/unit/test_priming.py)."""

from __future__ import annotations

import importlib

import botocore.endpoint
import pytest

from hub_core import priming
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
