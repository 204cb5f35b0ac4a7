"""The shared core: settings, secrets, caches, events and the HTTP error shape."""

from __future__ import annotations

import base64
import json

import boto3
import pytest
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.stub import Stubber

from hub_core import aws, events
from hub_core.caches import TtlCache
from hub_core.config import ConfigError, Settings
from hub_core.http_api import RequestRejected, error_response, install_error_handlers
from hub_core.request_body import submitted_fields
from hub_core.secrets import secret
from partners.errors import PartnerAuthError, PartnerBadResponse, PartnerRejected, PartnerUnavailable
from tests.conftest import in_process_aws, load_event


class ExampleSettings(Settings):
    table_name: str
    retries: int = 3


@pytest.fixture
def aws_env(monkeypatch):
    with in_process_aws(monkeypatch):
        yield


def test_settings_come_from_upper_cased_variables(monkeypatch):
    monkeypatch.setenv("TABLE_NAME", "Leads")
    monkeypatch.setenv("RETRIES", "5")
    assert ExampleSettings.from_env() == ExampleSettings(table_name="Leads", retries=5)


def test_bad_settings_name_the_variable_not_the_value(monkeypatch):
    monkeypatch.delenv("TABLE_NAME", raising=False)
    monkeypatch.setenv("RETRIES", "many-secret-value")
    with pytest.raises(ConfigError) as caught:
        ExampleSettings.from_env()
    assert "TABLE_NAME (missing)" in str(caught.value)
    assert "RETRIES (int_parsing)" in str(caught.value)
    assert "many-secret-value" not in str(caught.value)


def test_a_secret_is_read_decrypted_and_cached(aws_env, monkeypatch):

    client = boto3.client("ssm")
    client.put_parameter(Name="/partner-hub/test/key", Value="s3cr3t-value", Type="SecureString")
    monkeypatch.setenv("EXAMPLE_KEY_PARAM", "/partner-hub/test/key")
    assert secret("EXAMPLE_KEY_PARAM") == "s3cr3t-value"
    client.put_parameter(Name="/partner-hub/test/key", Value="rotated", Type="SecureString", Overwrite=True)
    assert secret("EXAMPLE_KEY_PARAM") == "s3cr3t-value"  # cached for max_age


def test_the_first_secret_read_fetches_all_the_functions_secrets_in_one_request(aws_env, monkeypatch):
    client = boto3.client("ssm")
    for variable, name in {
        "FIRST_KEY_PARAM": "/partner-hub/test/first",
        "SECOND_KEY_PARAM": "/partner-hub/test/second",
    }.items():
        client.put_parameter(Name=name, Value=f"{name}-value", Type="SecureString")
        monkeypatch.setenv(variable, name)
    monkeypatch.setenv("MISSING_KEY_PARAM", "/partner-hub/test/missing")  # not created: must not fail the others
    requests: list[str] = []
    aws.ssm().meta.events.register("before-call.ssm", lambda model, **_: requests.append(model.name))
    assert secret("FIRST_KEY_PARAM") == "/partner-hub/test/first-value"
    assert secret("SECOND_KEY_PARAM") == "/partner-hub/test/second-value"
    assert requests == ["GetParameters"]
    with pytest.raises(ConfigError, match="MISSING_KEY_PARAM could not be read"):
        secret("MISSING_KEY_PARAM")
    assert requests == ["GetParameters", "GetParameters"]  # a missing one is asked again, never cached as found


def test_a_throttled_ssm_is_the_sdks_error_not_a_config_error(aws_env, monkeypatch):
    # A ClientError is what hub_core.http_api answers 503 with Retry-After; a ConfigError would be a 500.
    monkeypatch.setenv("EXAMPLE_KEY_PARAM", "/partner-hub/test/key")
    with Stubber(aws.ssm()) as stub:
        stub.add_client_error("get_parameters", service_error_code="ThrottlingException", http_status_code=400)
        with pytest.raises(ClientError) as caught:
            secret("EXAMPLE_KEY_PARAM")
    assert caught.value.response["Error"]["Code"] == "ThrottlingException"


def test_a_missing_secret_or_name_is_a_config_error_without_values(aws_env, monkeypatch):
    monkeypatch.delenv("EXAMPLE_KEY_PARAM", raising=False)
    with pytest.raises(ConfigError, match="EXAMPLE_KEY_PARAM is not set"):
        secret("EXAMPLE_KEY_PARAM")
    monkeypatch.setenv("EXAMPLE_KEY_PARAM", "/partner-hub/test/absent")
    with pytest.raises(ConfigError, match="could not be read"):
        secret("EXAMPLE_KEY_PARAM")


def test_ttl_cache_expires_and_stays_bounded():
    now = [0.0]
    cache = TtlCache(max_entries=2, clock=lambda: now[0])
    loads = []

    def load(value):
        loads.append(value)
        return value

    assert cache.get_or_load("a", lambda: load("A"), ttl_seconds=10) == "A"
    assert cache.get_or_load("a", lambda: load("A2"), ttl_seconds=10) == "A"
    now[0] = 11
    assert cache.get_or_load("a", lambda: load("A3"), ttl_seconds=10) == "A3"
    cache.get_or_load("b", lambda: load("B"), ttl_seconds=10)
    cache.get_or_load("c", lambda: load("C"), ttl_seconds=10)
    assert len(cache._entries) == 2
    assert loads == ["A", "A3", "B", "C"]


def test_an_event_refused_by_eventbridge_raises(aws_env, monkeypatch):
    # moto accepts every entry; a partial failure (throttling, say) is what botocore's Stubber can play.
    monkeypatch.setenv("EVENT_BUS_NAME", "hub")
    with Stubber(aws.events()) as stub:
        stub.add_response(
            "put_events",
            {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "x"}]},
        )
        with pytest.raises(events.EventNotPublished, match="ThrottlingException"):
            events.publish("test", "Something", {"id": 1})


def test_many_events_go_ten_to_a_request_and_only_the_refused_ones_are_reported(aws_env, monkeypatch):
    monkeypatch.setenv("EVENT_BUS_NAME", "hub")
    details = [{"id": number} for number in range(23)]
    with Stubber(aws.events()) as stub:
        first = [{"EventId": f"e{n}"} for n in range(10)]
        first[3] = {"ErrorCode": "ThrottlingException", "ErrorMessage": "x"}
        stub.add_response("put_events", {"FailedEntryCount": 1, "Entries": first})
        stub.add_client_error("put_events", service_error_code="InternalException", http_status_code=500)
        stub.add_response("put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "f"}] * 3})
        put = events.publish_many("test", "Something", details)
        stub.assert_no_pending_responses()
    assert put == [n != 3 for n in range(10)] + [False] * 10 + [True] * 3


def test_no_events_make_no_request(aws_env, monkeypatch):
    monkeypatch.setenv("EVENT_BUS_NAME", "hub")
    with Stubber(aws.events()):  # any request would fail: nothing is queued
        assert events.publish_many("test", "Something", []) == []


# ---------------------------------------------------------------- the shared HTTP error mapping


def _app_raising(exc):
    app = APIGatewayHttpResolver()
    install_error_handlers(app, __import__("logging").getLogger("test"))

    @app.get("/boom")
    def boom():
        raise exc

    return app


def _get(app, path="/boom"):
    event = load_event("lead_intake/get_projects.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    event["routeKey"] = f"GET {path}"
    response = app.resolve(event, None)
    return response["statusCode"], json.loads(response["body"]), response.get("headers", {})


@pytest.mark.parametrize(
    ("exc", "status", "error"),
    [
        (PartnerUnavailable("p", "down", retry_after=12.2), 503, "partner_unavailable"),
        (PartnerBadResponse("p", "garbage"), 502, "partner_unavailable"),
        (PartnerAuthError("p", "bad key"), 502, "partner_misconfigured"),
        (PartnerRejected("p", "nope"), 502, "partner_rejected"),
        (ConfigError("TABLE_NAME missing"), 500, "internal_error"),
        (RuntimeError("with /internal/detail"), 500, "internal_error"),
    ],
)
def test_failures_map_to_a_json_error_that_leaks_nothing(exc, status, error):
    code, body, headers = _get(_app_raising(exc))
    assert (code, body["error"]) == (status, error)
    assert "internal/detail" not in json.dumps(body)
    assert "TABLE_NAME" not in json.dumps(body)
    if status == 503:
        assert headers["Retry-After"] == "13"


@pytest.mark.parametrize(
    ("exc", "status", "error"),
    [
        (ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "pk=+4712"}}, "Put"), 503,
         "service_unavailable"),
        (ClientError({"Error": {"Code": "X"}, "ResponseMetadata": {"HTTPStatusCode": 500}}, "PutItem"), 503,
         "service_unavailable"),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1/pk=+4712"), 503, "service_unavailable"),
        (aws.AwsOutOfTime(), 503, "service_unavailable"),
        (ClientError({"Error": {"Code": "ValidationException", "Message": "pk=+4712"}}, "PutItem"), 500,
         "internal_error"),
    ],
)  # fmt: skip
def test_aws_failures_that_pass_are_a_503_with_retry_after_and_the_rest_a_500(exc, status, error, caplog):
    code, body, headers = _get(_app_raising(exc))
    assert (code, body["error"]) == (status, error)
    assert ("Retry-After" in headers) is (status == 503)
    assert "4712" not in json.dumps(body)
    if status == 503:  # logged by its code alone (the catch-all's traceback is the operator's, as for any bug)
        assert "4712" not in caplog.text


def test_an_unknown_route_is_a_json_404():
    code, body, _ = _get(_app_raising(RuntimeError()), "/elsewhere")
    assert (code, body["error"]) == (404, "not_found")


def test_error_response_shape():
    response = error_response(418, "teapot", "short and stout", retryable=False)
    assert json.loads(response.body) == {"error": "teapot", "message": "short and stout", "retryable": False}


@pytest.mark.parametrize(
    ("body", "is_base64", "rule"),
    [
        ("{not json", False, "json"),
        ("[1, 2]", False, "object"),
        ("", False, "json"),
        (base64.b64encode(b"\xff\xfe").decode(), True, "utf8"),
        ("%%% not base64", True, "base64"),
    ],
)
def test_a_malformed_body_names_the_body_and_the_rule_it_breaks(body, is_base64, rule):
    """Found by the API fuzz: a 400 malformed_body had no `problems`, so a form could not point at anything."""
    event = {"body": body, "isBase64Encoded": is_base64}
    with pytest.raises(RequestRejected) as rejected:
        submitted_fields(event, {"content-type": "application/json"}, max_bytes=1024)
    assert (rejected.value.status, rejected.value.error) == (400, "malformed_body")
    assert [(p.field, p.rule) for p in rejected.value.problems] == [("body", rule)]


def test_a_form_field_without_a_name_given_twice_is_the_bodys_problem():
    """Found by the API fuzz: `=a&=b` was a 422 whose problem named the field ""."""
    event = {"body": "=a&=b", "isBase64Encoded": False}
    with pytest.raises(RequestRejected) as rejected:
        submitted_fields(event, {"content-type": "application/x-www-form-urlencoded"}, max_bytes=1024)
    assert [(p.field, p.rule) for p in rejected.value.problems] == [("body", "single_value")]
