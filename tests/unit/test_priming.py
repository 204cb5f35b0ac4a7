"""SnapStart priming's steps in-process: rehearsals send nothing, restore renews what each environment must own."""

from __future__ import annotations

import random
from typing import Any

import pytest
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

from hub_core import appsmiles, aws, priming
from tests.conftest import in_process_aws

APPSMILES = {
    "APPSMILES_BASE_URL": "http://127.0.0.1:9/appsmiles",
    "APPSMILES_APP_ID": "app",
    "APPSMILES_PARTNER_ID": "partner",
}
READS = {"dynamodb": "list_tables", "sqs": "list_queues", "events": "list_event_buses", "ssm": "describe_parameters"}


@pytest.fixture
def sent(monkeypatch) -> Any:
    """The requests each client would send: counted at before-send, ahead of moto's own answer there."""
    with in_process_aws(monkeypatch):
        requests: list[str] = []

        def watch(service: str) -> None:
            aws._client(service).meta.events.register_first(
                "before-send", lambda request, **_: requests.append(f"{request.method} {service}")
            )

        yield requests, watch


@pytest.mark.parametrize("service", sorted(priming.REHEARSALS))
def test_each_operation_is_rehearsed_without_a_request_and_the_stub_is_gone_after(sent, service):
    requests, watch = sent
    watch(service)
    assert priming.rehearse(service) == len(priming.REHEARSALS[service]) > 0
    assert requests == []
    getattr(aws._client(service), READS[service])()  # a real request reaches moto: nothing stubs the client now
    assert len(requests) == 1


def test_a_service_without_rehearsals_rehearses_nothing(sent):
    assert priming.rehearse("sts") == 0


def test_restore_keeps_the_aws_clients_and_renews_partner_clients_and_random_state(sent, monkeypatch):
    for name, value in APPSMILES.items():
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


def test_restore_forgets_cached_secrets_but_keeps_the_ssm_client(sent):
    requests, watch = sent
    registration = priming.Registration(handler=lambda event, context: None, dry_event=None, services=("ssm",))
    watch("ssm")
    assert priming.before_snapshot(registration) is None  # no dry request: no status
    assert requests == []
    provider = DEFAULT_PROVIDERS["ssm"]
    provider.store[("a-secret", None, ())] = "value read before the snapshot"
    priming.after_restore()
    assert DEFAULT_PROVIDERS["ssm"] is provider
    assert provider.store == {}


def test_the_dry_request_runs_through_the_handler_with_a_far_deadline(sent):
    seen: list[Any] = []

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append((event, context.get_remaining_time_in_millis(), context.function_name))
        return {"statusCode": 422}

    event = priming.dry_http_request("POST", "/leads")
    registration = priming.Registration(handler, event, services=())
    assert priming.before_snapshot(registration) == 422
    [(given, remaining, name)] = seen
    assert given == event
    assert given is not event  # a copy: the handler may change it, the registration keeps its own
    assert (remaining, name) == (60_000, "priming")


@pytest.mark.parametrize("answer", [None, "ok", {"statusCode": "200"}, {"body": "{}"}])
def test_an_answer_without_an_integer_status_is_no_status(sent, answer):
    registration = priming.Registration(lambda event, context: answer, {"x": 1}, services=())
    assert priming.before_snapshot(registration) is None


def test_the_dry_callback_names_a_token_no_campaign_was_given():
    event = priming.dry_callback()
    assert event["routeKey"] == "POST /donations/callback/{serviceId}/{route}/{donationCode}/{token}"
    names = {"serviceId": "0", "route": "priming", "donationCode": "priming", "token": "priming"}
    assert event["pathParameters"] == names
    assert event["rawPath"] == "/donations/callback/0/priming/priming/priming"
    assert event["requestContext"]["http"]["sourceIp"] == "192.0.2.1"  # a documentation address


def test_registering_outside_lambda_only_records_the_function(monkeypatch):
    monkeypatch.setattr(priming, "_REGISTERED", [])

    def handler(event: Any, context: Any) -> None:
        return None

    priming.register(handler, services=("sqs",))
    assert priming.registered() == [priming.Registration(handler, None, ("sqs",))]
    priming.registered().clear()  # a copy: the record stays
    assert len(priming.registered()) == 1
