"""The local stack end to end on loopback: moto resources, invoke, the HTTP gateway, the SQS pump and the CLI."""

from __future__ import annotations

import base64
import decimal
import hashlib
import http.client
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import types
import uuid
from collections.abc import Iterator, Mapping, Sequence
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from hub_cli.app import main
from hub_cli.commands.local import build as local_build
from hub_cli.commands.local import run as local_run
from hub_local import runtime
from hub_local.gateway import Gateway
from hub_local.httpapi import CorsPolicy, RouteMatch, build_event, is_text_content_type, match_route, to_http_response
from hub_local.limits import FunctionTimedOut
from hub_local.partners import PartnerSpec, Sandbox, default_partners, secret_parameter_name
from hub_local.resources import UnknownResourceError, create_table_arguments
from hub_local.runtime import HandlerImportError, load_handler
from hub_local.specs import CorsConfig, HttpRoute, QueueSpec, SqsSource, TableSpec
from hub_local.sqs_pump import SqsPump, failed_message_ids
from hub_local.stack import LocalStack
from tests.local import fake_handlers
from tests.local.fake_handlers import TEMPLATE

REPO = Path(__file__).resolve().parents[2]


class FakeSandbox:
    """Stands in for a partner sandbox: records how it was built, serves nothing."""

    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.started = False
        self.stopped = False

    @property
    def url(self) -> str:
        return "http://127.0.0.1:9/fake"

    def start(self) -> FakeSandbox:
        self.started = True
        return self

    def stop(self) -> None:
        self.stopped = True


def _never_started(_secrets: Mapping[str, str]) -> Sandbox:
    raise AssertionError("this sandbox must not be started")


PARTNERS = [
    PartnerSpec(
        "Fake",
        "FAKE_BASE_URL",
        lambda secrets: FakeSandbox(secrets["fake/api-key"]),
        {"fake/api-key": ("FAKE_API_KEY", "local-fake-key")},
    ),
    PartnerSpec("Other", "OTHER_BASE_URL", _never_started, {"other/token": ("OTHER_TOKEN", "default-token")}),
    PartnerSpec("Unused", "UNUSED_BASE_URL", _never_started, {"unused/key": ("UNUSED_KEY", "never-seeded")}),
]
ENVIRON = {"OTHER_BASE_URL": "http://127.0.0.1:9/other", "FAKE_API_KEY": "from-environ"}


def write_template(directory: Path, text: str = TEMPLATE) -> Path:
    path = directory / "template.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    path = write_template(tmp_path_factory.mktemp("stack"))
    with LocalStack(
        path,
        partners=PARTNERS,
        environ=ENVIRON,
        sqs_retry_seconds=0,
        pump_queues=False,
        function_overrides={"EVERY_FUNCTION": "1", "SHARED": "overridden"},
    ) as local:
        yield local


def request(
    url: str,
    method: str = "GET",
    headers: Sequence[tuple[str, str]] = (),
    body: bytes | None = None,
    *,
    chunked: bool = False,
) -> tuple[int, Message, bytes]:
    """A raw HTTP request (repeated headers, chunked bodies) to the gateway."""
    split = urlsplit(url)
    connection = http.client.HTTPConnection(split.hostname or "127.0.0.1", split.port, timeout=10)
    try:
        connection.putrequest(
            method, split.path + (f"?{split.query}" if split.query else ""), skip_accept_encoding=True
        )
        for name, value in headers:
            connection.putheader(name, value)
        if body is not None:
            connection.putheader(*(("Transfer-Encoding", "chunked") if chunked else ("Content-Length", str(len(body)))))
        connection.endheaders()
        if body is not None:
            trailer = b"0\r\nX-Checksum: none\r\n\r\n"
            connection.send(f"{len(body):x}\r\n".encode() + body + b"\r\n" + trailer if chunked else body)
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


def echoed(url: str, **kwargs: Any) -> dict[str, Any]:
    status, _headers, body = request(url, **kwargs)
    assert status == 200, body
    document: dict[str, Any] = json.loads(body)
    return document


def pump_for(stack: LocalStack, queue: str) -> SqsPump:
    return next(pump for pump in stack.pumps if pump.queue.logical_id == queue)


def queue_bodies(stack: LocalStack, queue: str) -> list[str]:
    sqs = stack.boto3_client("sqs")
    messages = sqs.receive_message(QueueUrl=stack.physical(queue), MaxNumberOfMessages=10, VisibilityTimeout=0)
    return [message["Body"] for message in messages.get("Messages", [])]


# ------------------------------------------------------------------------------------------- resources


def test_every_declared_resource_exists_in_moto(stack: LocalStack) -> None:
    dynamodb = stack.boto3_client("dynamodb")
    items = dynamodb.describe_table(TableName="ItemsTable")["Table"]
    assert items["GlobalSecondaryIndexes"][0]["IndexName"] == "by-gsi"
    assert items["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    ttl = dynamodb.describe_time_to_live(TableName="ItemsTable")["TimeToLiveDescription"]
    assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": "expires_at"}
    assert dynamodb.describe_table(TableName="CountersTable")["Table"]["KeySchema"][0]["AttributeName"] == "counter"

    sqs = stack.boto3_client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=stack.physical("WorkQueue"), AttributeNames=["All"])["Attributes"]
    assert attributes["VisibilityTimeout"] == "30"
    assert json.loads(attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": "arn:aws:sqs:eu-west-1:123456789012:WorkDLQ",
        "maxReceiveCount": 2,
    }
    assert sqs.get_queue_url(QueueName="WorkQueue")["QueueUrl"] == stack.physical("WorkQueue")
    assert not sqs.list_queues(QueueNamePrefix="OnlyDeployed").get("QueueUrls")

    events = stack.boto3_client("events")
    assert events.describe_event_bus(Name="test-bus-local")["Name"] == stack.physical("Bus")

    ssm = stack.boto3_client("ssm")
    key = ssm.get_parameter(Name="/partner-hub/local/fake/api-key", WithDecryption=True)["Parameter"]
    assert (key["Type"], key["Value"]) == ("SecureString", "from-environ")
    token = ssm.get_parameter(Name=secret_parameter_name("local", "other/token"), WithDecryption=True)["Parameter"]
    assert token["Value"] == "default-token"
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name="/partner-hub/local/unused/key")


def test_partners_sandboxes_and_overrides(stack: LocalStack) -> None:
    sandbox = stack.sandboxes["Fake"]
    assert isinstance(sandbox, FakeSandbox)
    assert sandbox.started
    assert sandbox.api_key == "from-environ"
    assert set(stack.sandboxes) == {"Fake"}
    assert stack.partner_urls == {"Fake": sandbox.url, "Other": "http://127.0.0.1:9/other"}
    assert stack.function_env("EchoFunction")["FAKE_BASE_URL"] == sandbox.url
    assert stack.function_env("EnvFunction")["OTHER_BASE_URL"] == "http://127.0.0.1:9/other"


def test_function_environment_points_everything_at_loopback(stack: LocalStack) -> None:
    env = stack.function_env("EchoFunction")
    assert stack.moto_url.startswith("http://127.0.0.1:")
    assert env["AWS_ENDPOINT_URL"] == stack.moto_url
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"]) == ("testing",) * 3
    assert (env["AWS_REGION"], env["AWS_DEFAULT_REGION"]) == ("eu-west-1", "eu-west-1")
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "EchoFunction"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert env["POWERTOOLS_TRACE_DISABLED"] == "true"
    assert env["LOCAL_STACK_URL"] == stack.gateway_url
    assert env["QUEUE_URL"] == stack.physical("WorkQueue")
    assert env["TABLE_NAME"] == stack.physical("ItemsTable") == "ItemsTable"
    assert env["BUS_NAME"] == "test-bus-local"
    assert (env["EVERY_FUNCTION"], env["SHARED"]) == ("1", "overridden")


def test_unknown_logical_ids(stack: LocalStack) -> None:
    with pytest.raises(UnknownResourceError, match="Nope is not a resource"):
        stack.physical("Nope")
    with pytest.raises(UnknownResourceError, match=r"no function 'Nope' .*known: BinaryFunction"):
        stack.function_env("Nope")
    with pytest.raises(UnknownResourceError):
        stack.invoke("Nope", {})


# -------------------------------------------------------------------------------------------- invoke


def test_invoke_isolates_function_environments(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_PROFILE", "a-real-account")
    monkeypatch.setenv("HOST_ONLY", "kept")
    monkeypatch.setenv("ECHO_ONLY", "from-the-host")
    before = dict(os.environ)

    result = stack.invoke("EnvFunction", {})
    env, context = result["environ"], result["context"]
    assert env["ENV_ONLY"] == "yes"
    assert "ECHO_ONLY" not in env  # another function's variable, even when the host has it
    assert "AWS_PROFILE" not in env
    assert env["HOST_ONLY"] == "kept"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "EnvFunction"
    assert context["function_name"] == "EnvFunction"
    assert context["function_version"] == "$LATEST"
    assert context["invoked_function_arn"] == "arn:aws:lambda:eu-west-1:123456789012:function:EnvFunction"
    assert context["memory_limit_in_mb"] == 1024
    assert uuid.UUID(context["aws_request_id"])
    assert context["log_group_name"] == "/aws/lambda/EnvFunction"
    assert "[$LATEST]" in context["log_stream_name"]
    assert 0 < context["remaining"] <= 7000

    echo = json.loads(stack.invoke("EchoFunction", {})["body"])
    assert echo["env"] == {"ECHO_ONLY": "yes", "ENV_ONLY": None, "AWS_LAMBDA_FUNCTION_NAME": "EchoFunction"}
    assert dict(os.environ) == before


def test_invoke_crosses_a_json_boundary(stack: LocalStack) -> None:
    result = stack.invoke("PlainFunction", {"price": decimal.Decimal("1.5"), "count": decimal.Decimal(2)})
    assert result == {"hello": "world", "event": {"price": 1.5, "count": 2}}
    with pytest.raises(TypeError, match="not JSON serializable"):
        stack.invoke("PlainFunction", {"thing": object()})


def test_invoke_handler_errors(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        stack.invoke("BoomFunction", {})
    with pytest.raises(HandlerImportError, match=r"tests\.local\.fake_handlers\.missing"):
        load_handler("tests.local.fake_handlers.missing")
    with pytest.raises(HandlerImportError, match="no_such_module"):
        load_handler("no_such_module.handler")
    monkeypatch.setattr(stack.functions["PlainFunction"], "handler", None)
    with pytest.raises(HandlerImportError, match="has no Handler"):
        stack.invoke("PlainFunction", {})


def _slow(stack: LocalStack, monkeypatch: pytest.MonkeyPatch, function: str, timeout: float) -> None:
    """Make `function` run fake_handlers.slow under a Timeout of `timeout` seconds."""
    monkeypatch.setattr(stack.functions[function], "handler", "tests.local.fake_handlers.slow")
    monkeypatch.setitem(stack.timeout_overrides, function, timeout)


def _wait_until(check: Any, limit: float = 10.0) -> bool:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def test_an_invocation_past_its_timeout_is_abandoned_and_its_late_result_ignored(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    _slow(stack, monkeypatch, "PlainFunction", 0.2)
    before = dict(os.environ)
    request_id = str(uuid.uuid4())
    with pytest.raises(FunctionTimedOut, match=r"Task timed out after 0\.20 seconds"):
        stack.invoke("PlainFunction", {"sleep": 0.6}, request_id=request_id)
    assert request_id not in fake_handlers.SLOW_FINISHED  # the runner did not wait for it
    assert dict(os.environ) == before
    assert "PlainFunction timed out after 0.2 s" in capsys.readouterr().err
    # It runs on (Python cannot kill a thread) and its answer goes nowhere; the next invocation is not held up.
    assert stack.invoke("PlainFunction", {"sleep": 0}) == {"statusCode": 200, "body": "late", "batchItemFailures": []}
    assert _wait_until(lambda: request_id in fake_handlers.SLOW_FINISHED)


def test_a_handler_may_invoke_another_function_in_process(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    def nested(event: Any, context: Any) -> dict[str, Any]:
        inner = stack.invoke("EchoFunction", {})  # inline: the outer invocation's thread holds the lock and times it
        return {"inner_env": json.loads(inner["body"])["env"]["ECHO_ONLY"], "outer_env": os.environ.get("ENV_ONLY")}

    monkeypatch.setitem(runtime._HANDLERS, "tests.local.fake_handlers.nested", nested)
    monkeypatch.setattr(stack.functions["EnvFunction"], "handler", "tests.local.fake_handlers.nested")
    monkeypatch.setitem(stack.timeout_overrides, "EnvFunction", 5)
    # Each function sees its own variables; the outer one gets them back after the inner call.
    assert stack.invoke("EnvFunction", {}) == {"inner_env": "yes", "outer_env": "yes"}


def test_the_context_counts_down_from_the_enforced_timeout(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(stack.timeout_overrides, "EnvFunction", 2.5)
    context = stack.invoke("EnvFunction", {})["context"]
    assert 2000 < context["remaining"] <= 2500


def test_a_timed_out_route_is_http_api_s_503(stack: LocalStack, monkeypatch: pytest.MonkeyPatch) -> None:
    _slow(stack, monkeypatch, "PlainFunction", 0.2)
    # The route's event says nothing of sleeping: the slow handler is told through the event the gateway passes.
    real_invoke = stack.invoke

    def with_sleep(name: str, event: Any, **options: Any) -> Any:
        return real_invoke(name, {**event, "sleep": 0.6}, **options)

    assert stack._gateway is not None
    monkeypatch.setattr(stack._gateway, "invoke", with_sleep)
    status, _, body = request(f"{stack.gateway_url}/items/special")
    assert (status, json.loads(body)) == (503, {"message": "Service Unavailable"})


def test_the_gateway_stops_waiting_after_the_integration_timeout(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    released = threading.Event()

    def hanging(name: str, event: Any, **_: Any) -> Any:
        released.wait(5)
        return {"statusCode": 200, "body": "too late"}

    assert stack._gateway is not None
    monkeypatch.setattr(stack._gateway, "invoke", hanging)
    monkeypatch.setattr(stack._gateway, "integration_timeout", 0.2)
    try:
        status, _, body = request(f"{stack.gateway_url}/items/special")
    finally:
        released.set()
    assert (status, json.loads(body)) == (503, {"message": "Service Unavailable"})


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_payload_limit_is_a_413_without_invoking(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch, chunked: bool
) -> None:
    assert stack._gateway is not None
    calls: list[str] = []
    monkeypatch.setattr(stack._gateway, "invoke", lambda name, event, **_: calls.append(name))
    monkeypatch.setattr(stack._gateway, "max_payload_bytes", 100)
    status, headers, body = request(f"{stack.gateway_url}/items", method="POST", body=b"x" * 101, chunked=chunked)
    assert (status, json.loads(body)) == (413, {"message": "Request Entity Too Large"})
    assert headers["Connection"] == "close"
    assert calls == []
    status, _, _ = request(f"{stack.gateway_url}/items", method="POST", body=b"x" * 100, chunked=chunked)
    assert calls == ["EchoFunction"]


def test_a_timed_out_batch_comes_back_whole_then_goes_to_its_dlq(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert stack.drain("WorkQueue")
    sqs = stack.boto3_client("sqs")
    _empty(sqs, stack.physical("WorkDLQ"))
    _slow(stack, monkeypatch, "WorkerFunction", 0.2)
    sqs.send_message(QueueUrl=stack.physical("WorkQueue"), MessageBody="0.5")
    # Each receive times out, so the message is never deleted; its third receive exceeds maxReceiveCount (2).
    assert stack.drain("WorkQueue", timeout=10)
    assert queue_bodies(stack, "WorkDLQ") == ["0.5"]
    _empty(sqs, stack.physical("WorkDLQ"))


def _empty(sqs: Any, url: str) -> None:
    """Delete every message of a queue (PurgeQueue may run once a minute only)."""
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        sqs.delete_message_batch(
            QueueUrl=url, Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)]
        )


# ------------------------------------------------------------------------------------------- gateway


def test_payload_v2_event(stack: LocalStack) -> None:
    document = echoed(
        f"{stack.gateway_url}/items/abc%20d?x=1&x=2&y=&z=%C3%A9",
        headers=[
            ("X-Multi", "a"),
            ("X-Multi", "b"),
            ("Cookie", "c1=1; c2=2"),
            ("User-Agent", "tests/1.0"),
        ],
    )
    event = document["event"]
    assert document["function"] == "EchoFunction"
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /items/{id}"
    assert event["rawPath"] == "/items/abc%20d"
    assert event["rawQueryString"] == "x=1&x=2&y=&z=%C3%A9"
    assert event["queryStringParameters"] == {"x": "1,2", "y": "", "z": "é"}
    assert event["cookies"] == ["c1=1", "c2=2"]
    assert event["headers"]["x-multi"] == "a,b"
    assert "cookie" not in event["headers"]
    assert event["headers"]["host"] == urlsplit(stack.gateway_url).netloc
    assert event["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert event["pathParameters"] == {"id": "abc d"}
    assert event["isBase64Encoded"] is False
    assert "body" not in event
    context = event["requestContext"]
    assert {key: context[key] for key in ("accountId", "apiId", "domainName", "domainPrefix", "routeKey", "stage")} == {
        "accountId": "123456789012",
        "apiId": "local",
        "domainName": "127.0.0.1",
        "domainPrefix": "127",
        "routeKey": "GET /items/{id}",
        "stage": "$default",
    }
    assert context["http"] == {
        "method": "GET",
        "path": "/items/abc%20d",
        "protocol": "HTTP/1.1",
        "sourceIp": "127.0.0.1",
        "userAgent": "tests/1.0",
    }
    assert re.fullmatch(r"\d{2}/[A-Z][a-z]{2}/\d{4}:\d{2}:\d{2}:\d{2} \+0000", context["time"])
    assert abs(context["timeEpoch"] - time.time() * 1000) < 60_000
    assert context["requestId"]


def test_event_without_query_or_path_parameters(stack: LocalStack) -> None:
    event = echoed(
        f"{stack.gateway_url}/items", method="POST", headers=[("Content-Type", "application/json")], body=b""
    )["event"]
    assert "queryStringParameters" not in event
    assert "pathParameters" not in event
    assert "cookies" not in event


@pytest.mark.parametrize(
    ("content_type", "base64_encoded"),
    [
        ("application/json; charset=utf-8", False),
        ("text/plain", False),
        ("application/x-www-form-urlencoded", False),
        ("application/xml", False),
        ("application/problem+json", False),
        ("image/png", True),
        ("application/octet-stream", True),
        (None, True),
    ],
)
def test_request_bodies(stack: LocalStack, content_type: str | None, base64_encoded: bool) -> None:
    body = b'{"name":"\xc3\xa9"}' if not base64_encoded else b"\x89PNG\x00\xff"
    headers = [("Content-Type", content_type)] if content_type else []
    event = echoed(f"{stack.gateway_url}/files/a/b.png", method="PUT", headers=headers, body=body)["event"]
    assert event["routeKey"] == "ANY /files/{proxy+}"
    assert event["pathParameters"] == {"proxy": "a/b.png"}
    assert event["isBase64Encoded"] is base64_encoded
    assert (base64.b64decode(event["body"]) if base64_encoded else event["body"].encode()) == body


def test_chunked_request_body(stack: LocalStack) -> None:
    event = echoed(
        f"{stack.gateway_url}/items",
        method="POST",
        headers=[("Content-Type", "application/json")],
        body=b'{"chunked":true}',
        chunked=True,
    )["event"]
    assert event["body"] == '{"chunked":true}'


def test_most_specific_route_wins_and_a_bare_result_is_json(stack: LocalStack) -> None:
    status, headers, body = request(f"{stack.gateway_url}/items/special")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert json.loads(body)["hello"] == "world"
    assert headers["apigw-requestid"]


@pytest.mark.parametrize(("method", "path"), [("GET", "/nope"), ("DELETE", "/items/1"), ("GET", "/items/1/more")])
def test_no_route_is_api_gateway_404(stack: LocalStack, method: str, path: str) -> None:
    status, headers, body = request(f"{stack.gateway_url}{path}", method=method)
    assert (status, json.loads(body)) == (404, {"message": "Not Found"})
    assert headers["Content-Type"] == "application/json"


def test_head_without_a_route(stack: LocalStack) -> None:
    status, headers, body = request(f"{stack.gateway_url}/items/1", method="HEAD")
    assert (status, body) == (404, b"")
    assert headers["Content-Length"] == str(len(b'{"message":"Not Found"}'))


def test_handler_exception_is_500(stack: LocalStack, capsys: Any) -> None:
    status, _headers, body = request(f"{stack.gateway_url}/boom")
    assert (status, json.loads(body)) == (500, {"message": "Internal Server Error"})
    error = capsys.readouterr().err
    assert "BoomFunction failed on GET /boom" in error
    assert "RuntimeError: boom" in error


def test_binary_response_cookies_and_multi_value_headers(stack: LocalStack) -> None:
    status, headers, body = request(f"{stack.gateway_url}/binary")
    assert status == 201
    assert body == b"\x89PNG\x00\xff"
    assert headers["Content-Type"] == "image/png"
    assert headers.get_all("x-multi") == ["one", "two"]
    assert headers.get_all("Set-Cookie") == ["a=1; Path=/", "b=2"]


@pytest.mark.parametrize(
    ("origin", "method", "allowed"),
    [
        ("https://site.example", "POST", True),
        ("https://OTHER.example/", "GET", True),
        ("https://evil.example", "POST", False),
        ("https://site.example", "DELETE", False),
    ],
)
def test_cors_preflight(stack: LocalStack, origin: str, method: str, allowed: bool) -> None:
    status, headers, body = request(
        f"{stack.gateway_url}/items",
        method="OPTIONS",
        headers=[("Origin", origin), ("Access-Control-Request-Method", method)],
    )
    assert (status, body) == (204, b"")
    if allowed:
        assert headers["Access-Control-Allow-Origin"] == origin
        assert headers["Access-Control-Allow-Methods"] == "GET,POST"
        assert headers["Access-Control-Allow-Headers"] == "content-type,idempotency-key"
        assert headers["Access-Control-Max-Age"] == "300"
        assert headers["Vary"] == "Origin"
    else:
        assert "Access-Control-Allow-Origin" not in headers
        assert "Access-Control-Allow-Methods" not in headers


def test_cors_preflight_for_the_gateway_origin_and_unrouted_paths(stack: LocalStack) -> None:
    assert stack.gateway_url is not None
    preflight = [("Origin", stack.gateway_url), ("Access-Control-Request-Method", "GET")]
    _status, headers, _body = request(f"{stack.gateway_url}/not-a-route", method="OPTIONS", headers=preflight)
    assert headers["Access-Control-Allow-Origin"] == stack.gateway_url
    # Not a preflight (no Access-Control-Request-Method): routed, and there is no OPTIONS route.
    status, _headers, _body = request(f"{stack.gateway_url}/items", method="OPTIONS")
    assert status == 404


def test_cors_headers_on_responses(stack: LocalStack) -> None:
    _status, headers, _body = request(f"{stack.gateway_url}/items/1", headers=[("Origin", "https://site.example")])
    assert headers.get_all("Access-Control-Allow-Origin") == ["https://site.example"]
    assert headers["Vary"] == "Origin"
    _status, headers, _body = request(f"{stack.gateway_url}/items/1", headers=[("Origin", "https://evil.example")])
    assert "Access-Control-Allow-Origin" not in headers  # the function's own header is dropped too
    _status, headers, _body = request(f"{stack.gateway_url}/nope", headers=[("Origin", "https://site.example")])
    assert headers["Access-Control-Allow-Origin"] == "https://site.example"


def test_routes_listing(stack: LocalStack) -> None:
    status, _headers, body = request(f"{stack.gateway_url}/_local/routes")
    routes = json.loads(body)
    assert status == 200
    assert routes == stack.routes
    keys = [(route["routeKey"], route["function"]) for route in routes]
    assert keys[0] == ("GET /items/special", "PlainFunction")
    assert ("ANY /files/{proxy+}", "EchoFunction") in keys
    assert len(keys) == 6
    assert routes[0]["url"] == f"{stack.gateway_url}/items/special"


# ---------------------------------------------------------------------------------------- gateway units


def route(path: str | None, method: str = "GET", function: str = "F") -> HttpRoute:
    return HttpRoute(function, "E", method, path, "Api")


def test_match_route_precedence() -> None:
    routes = [
        route(None, "ANY", "default"),
        route("/a/{proxy+}", "ANY", "greedy"),
        route("/a/{id}", "ANY", "any-variable"),
        route("/a/{id}", "GET", "variable"),
        route("/a/b", "GET", "literal"),
        route("/", "GET", "root"),
    ]

    def target(method: str, path: str) -> str | None:
        match = match_route(routes, method, path)
        return None if match is None else match.route.function

    assert target("GET", "/a/b") == "literal"
    assert target("GET", "/a/c") == "variable"
    assert target("POST", "/a/c") == "any-variable"
    assert target("GET", "/a/c/d") == "greedy"
    assert target("GET", "/") == "root"
    assert target("GET", "/a") == "default"
    assert target("GET", "/a//") == "greedy"
    assert match_route(routes[1:], "GET", "/a/") is None
    assert match_route([route("/a/{proxy+}")], "GET", "/a") is None


def test_build_event_without_host_header() -> None:
    event = build_event(
        method="POST",
        target="/x",
        headers=[],
        body=b"hi",
        match=RouteMatch(route("/x", "POST"), {}),
        request_id="id",
        now=0,
    )
    assert event["requestContext"]["domainName"] == "127.0.0.1"
    assert event["requestContext"]["time"] == "01/Jan/1970:00:00:00 +0000"
    assert event["headers"]["x-forwarded-port"] == "80"
    assert (event["body"], event["isBase64Encoded"]) == ("aGk=", True)


@pytest.mark.parametrize(
    ("content_type", "text"),
    [
        ("text/csv", True),
        ("application/vnd.api+json", True),
        ("image/svg+xml", True),
        ("", False),
        ("video/mp4", False),
    ],
)
def test_text_content_types(content_type: str, text: bool) -> None:
    assert is_text_content_type(content_type) is text


@pytest.mark.parametrize(
    ("result", "status", "body"),
    [
        ({"statusCode": "204"}, 204, b""),
        ({"statusCode": "abc"}, 500, b'{"message":"Internal Server Error"}'),
        ({"statusCode": 200, "body": {"a": 1}}, 200, b'{"a": 1}'),
        ("text", 200, b'"text"'),
        (None, 200, b"null"),
    ],
)
def test_to_http_response(result: Any, status: int, body: bytes) -> None:
    response = to_http_response(result)
    assert (response.status, response.body) == (status, body)


def test_gateway_without_cors_routes_preflights_and_stops_unstarted() -> None:
    gateway = Gateway([route("/x")], lambda _name, _event: {"statusCode": 200})
    try:
        response = gateway.handle(
            "OPTIONS", "/x", [("Origin", "https://a.example"), ("Access-Control-Request-Method", "GET")], b"", "::1"
        )
        assert (response.status, response.body) == (404, b'{"message":"Not Found"}')
        assert gateway.handle("GET", "/x", [("Origin", "https://a.example")], b"", "::1").headers == []
    finally:
        gateway.stop()


def test_to_http_response_drops_hop_by_hop_headers() -> None:
    response = to_http_response({"statusCode": 200, "headers": {"Content-Length": "99", "X-A": 1}})
    assert response.headers == [("X-A", "1")]


def test_cors_policy_wildcards() -> None:
    anything = CorsPolicy(CorsConfig(allow_origins=("*",), allow_methods=("*",), allow_headers=("*",)))
    assert anything.allow_origin(None) is None
    assert anything.preflight("https://a.example", "patch", "x-one,x-two") == [
        ("Access-Control-Allow-Origin", "*"),
        ("Access-Control-Allow-Methods", "PATCH"),
        ("Access-Control-Allow-Headers", "x-one,x-two"),
    ]
    with_credentials = CorsPolicy(
        CorsConfig(allow_origins=("*",), allow_methods=("GET",), allow_credentials=True, expose_headers=("x-id",))
    )
    assert with_credentials.preflight("https://a.example", "GET", "")[-2:] == [
        ("Access-Control-Allow-Credentials", "true"),
        ("Vary", "Origin"),
    ]
    response = to_http_response({"statusCode": 200})
    with_credentials.decorate(response, "https://a.example")
    assert response.headers == [
        ("Access-Control-Allow-Origin", "https://a.example"),
        ("Access-Control-Allow-Credentials", "true"),
        ("Access-Control-Expose-Headers", "x-id"),
        ("Vary", "Origin"),
    ]
    response = to_http_response({"statusCode": 200})
    anything.decorate(response, "https://a.example")
    assert response.headers == [("Access-Control-Allow-Origin", "*")]


def test_provisioned_tables_with_local_indexes() -> None:
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]
    index = {"IndexName": "i", "KeySchema": keys, "Projection": {"ProjectionType": "KEYS_ONLY"}, "Extra": 1}
    table = TableSpec(
        "T",
        "T",
        keys,
        [],
        billing_mode="PROVISIONED",
        global_secondary_indexes=[index],
        local_secondary_indexes=[index],
        stream_specification={"StreamEnabled": False},
    )
    arguments = create_table_arguments(table)
    throughput = {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
    assert arguments["ProvisionedThroughput"] == throughput
    assert arguments["GlobalSecondaryIndexes"] == [
        {
            "IndexName": "i",
            "KeySchema": keys,
            "Projection": {"ProjectionType": "KEYS_ONLY"},
            "ProvisionedThroughput": throughput,
        }
    ]
    assert arguments["LocalSecondaryIndexes"] == [
        {"IndexName": "i", "KeySchema": keys, "Projection": {"ProjectionType": "KEYS_ONLY"}}
    ]
    assert "StreamSpecification" not in arguments


# --------------------------------------------------------------------------------------------- SQS pump


def test_partial_batch_failure_retries_only_the_failed_message(stack: LocalStack) -> None:
    sqs = stack.boto3_client("sqs")
    url = stack.physical("WorkQueue")
    fake_handlers.SEEN.clear()
    fake_handlers.EVENTS.clear()
    sqs.send_message(
        QueueUrl=url,
        MessageBody="ok-1",
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "lead"},
            "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
        },
    )
    sqs.send_message(QueueUrl=url, MessageBody="fail-2")
    sqs.send_message(QueueUrl=url, MessageBody="ok-3")

    assert pump_for(stack, "WorkQueue").cycle(wait_seconds=1) == 3
    assert sorted(fake_handlers.SEEN) == ["fail-2", "ok-1", "ok-3"]

    (event,) = fake_handlers.EVENTS
    record = next(record for record in event["Records"] if record["body"] == "ok-1")
    assert set(record["attributes"]) == {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["messageAttributes"] == {
        "kind": {"stringValue": "lead", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "blob": {"binaryValue": "AAE=", "stringListValues": [], "binaryListValues": [], "dataType": "Binary"},
    }
    assert record["md5OfBody"] == hashlib.md5(b"ok-1").hexdigest()  # noqa: S324 - SQS's own checksum
    assert (record["eventSource"], record["awsRegion"]) == ("aws:sqs", "eu-west-1")
    assert record["eventSourceARN"] == "arn:aws:sqs:eu-west-1:123456789012:WorkQueue"
    assert record["messageId"]
    assert record["receiptHandle"]

    retried = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0, AttributeNames=["All"])
    assert [(message["Body"], message["Attributes"]["ApproximateReceiveCount"]) for message in retried["Messages"]] == [
        ("fail-2", "2")
    ]
    # Its third receive exceeds maxReceiveCount (2): moto moves it to the DLQ and the queue drains.
    assert stack.drain("WorkQueue", timeout=10)
    assert queue_bodies(stack, "WorkDLQ") == ["fail-2"]


def test_a_failing_batch_is_redriven_after_max_receive_count(stack: LocalStack, capsys: Any) -> None:
    sqs = stack.boto3_client("sqs")
    fake_handlers.SEEN.clear()
    sqs.send_message(QueueUrl=stack.physical("PoisonQueue"), MessageBody="raise")

    assert stack.drain("PoisonQueue", timeout=10)
    assert fake_handlers.SEEN == ["raise", "raise"]
    assert queue_bodies(stack, "PoisonDLQ") == ["raise"]
    assert "invocation failed, the whole batch is retried" in capsys.readouterr().err


def test_drain_arguments(stack: LocalStack) -> None:
    with pytest.raises(ValueError, match="no function consumes WorkDLQ"):
        stack.drain("WorkDLQ")
    with pytest.raises(UnknownResourceError):
        stack.drain("Nope")
    stack.boto3_client("sqs").send_message(QueueUrl=stack.physical("WorkQueue"), MessageBody="none")
    assert stack.drain(timeout=0) is False
    assert stack.drain(timeout=10) is True


@pytest.mark.parametrize(
    ("response", "report", "failed"),
    [
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, True, {"b"}),
        ({"batchItemFailures": [{"itemIdentifier": "b"}]}, False, set()),
        ({"batchItemFailures": []}, True, set()),
        ({"batchItemFailures": None}, True, set()),
        ({}, True, set()),
        (None, True, set()),
        ({"batchItemFailures": [{"itemIdentifier": "zzz"}]}, True, {"a", "b"}),
        ({"batchItemFailures": [{"itemIdentifier": ""}]}, True, {"a", "b"}),
        ({"batchItemFailures": [{"id": "a"}]}, True, {"a", "b"}),
        ({"batchItemFailures": ["a"]}, True, {"a", "b"}),
        ({"batchItemFailures": "a"}, True, {"a", "b"}),
        ("not an object", True, {"a", "b"}),
    ],
)
def test_batch_item_failure_rules(response: Any, report: bool, failed: set[str]) -> None:
    assert failed_message_ids(response, ["a", "b"], report_batch_item_failures=report) == failed


def test_an_identifier_outside_the_batch_fails_it_all(stack: LocalStack) -> None:
    sqs = stack.boto3_client("sqs")
    url = stack.physical("WorkQueue")
    sqs.send_message(QueueUrl=url, MessageBody="bogus")
    fake_handlers.SEEN.clear()
    assert pump_for(stack, "WorkQueue").cycle(wait_seconds=1) == 1
    assert pump_for(stack, "WorkQueue").cycle(wait_seconds=1) == 1
    assert fake_handlers.SEEN == ["bogus", "bogus"]
    assert stack.drain("WorkQueue", timeout=10)
    assert "bogus" in queue_bodies(stack, "WorkDLQ")


class _FailingClient:
    """An SQS client whose receive fails: the pump thread must survive it, and stop when asked."""

    def __init__(self, stop_first: bool) -> None:
        self.stop_first = stop_first
        self.pump: SqsPump | None = None
        self.calls = 0

    def receive_message(self, **_arguments: Any) -> dict[str, Any]:
        self.calls += 1
        assert self.pump is not None
        if self.stop_first or self.calls > 1:
            self.pump.stop()
        raise ConnectionError("moto went away")


@pytest.mark.parametrize("stop_first", [True, False])
def test_pump_thread_survives_and_stops(stop_first: bool, capsys: Any) -> None:
    client = _FailingClient(stop_first)
    queue = QueueSpec("Q", "Q", "http://127.0.0.1:1/123456789012/Q", "arn:aws:sqs:eu-west-1:123456789012:Q")
    pump = SqsPump(
        function="F",
        source=SqsSource("E", "Q"),
        queue=queue,
        client=client,  # type: ignore[arg-type]
        invoke=lambda _name, _event: None,
        retry_seconds=0.5,
    )
    client.pump = pump
    assert pump.retry_seconds == 1
    pump.start()
    pump.join(timeout=5)
    assert client.calls == (1 if stop_first else 2)
    assert ("polling failed" in capsys.readouterr().err) is not stop_first


def test_pump_threads_consume_in_the_background(
    tmp_path: Path, stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_PROFILE", "no-such-profile")  # the host's AWS configuration plays no part
    fake_handlers.SEEN.clear()
    with LocalStack(
        write_template(tmp_path), gateway_port=None, partners=PARTNERS, environ=ENVIRON, sqs_retry_seconds=0
    ) as background:
        assert background.gateway_url is None
        assert background.routes == []
        assert "LOCAL_STACK_URL" not in background.function_env("EchoFunction")
        background.boto3_client("sqs").send_message(QueueUrl=background.physical("WorkQueue"), MessageBody="ok")
        deadline = time.monotonic() + 10
        while "ok" not in fake_handlers.SEEN and time.monotonic() < deadline:
            time.sleep(0.05)
    assert fake_handlers.SEEN == ["ok"]
    assert background.sandboxes == {}


# ------------------------------------------------------------------------------------------ lifecycle


def test_lifecycle_errors(tmp_path: Path) -> None:
    idle = LocalStack(write_template(tmp_path), partners=[])
    for accessor in ("template", "moto_url"):
        with pytest.raises(RuntimeError, match="not started"):
            getattr(idle, accessor)
    with pytest.raises(RuntimeError, match="not started"):
        idle.boto3_client("sqs")

    def broken(_secrets: Mapping[str, str]) -> Sandbox:
        raise OSError("sandbox port in use")

    failing = LocalStack(
        write_template(tmp_path), partners=[PartnerSpec("Broken", "FAKE_BASE_URL", broken)], environ={}
    )
    with pytest.raises(OSError, match="sandbox port in use"):
        failing.start()
    with pytest.raises(RuntimeError, match="not started"):
        _ = failing.moto_url
    failing.stop()


def test_start_twice_and_sandbox_stop_errors(tmp_path: Path, capsys: Any) -> None:
    class StubbornSandbox(FakeSandbox):
        def stop(self) -> None:
            raise RuntimeError("will not stop")

    spec = PartnerSpec("Stubborn", "FAKE_BASE_URL", lambda _secrets: StubbornSandbox("k"))
    local = LocalStack(write_template(tmp_path), gateway_port=None, pump_queues=False, partners=[spec], environ={})
    with local, pytest.raises(RuntimeError, match="already started"):
        local.start()
    assert "stopping sandbox Stubborn failed: will not stop" in capsys.readouterr().err
    local.stop()


def test_default_partner_registry_imports_its_sandbox_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    partners = {spec.name: spec for spec in default_partners()}
    assert set(partners) == {"miimosa", "umbrella", "mlm", "appsmiles"}
    base_url_envs = {spec.base_url_env for spec in partners.values()}
    assert base_url_envs == {"MIIMOSA_BASE_URL", "UMBRELLA_BASE_URL", "MLM_BASE_URL", "APPSMILES_BASE_URL"}
    miimosa = partners["miimosa"]
    assert (miimosa.name, miimosa.base_url_env) == ("miimosa", "MIIMOSA_BASE_URL")
    assert miimosa.secret_values({}) == {"miimosa/api-key": "local-miimosa-key"}
    assert miimosa.secret_values({"MIIMOSA_API_KEY": "k"}) == {"miimosa/api-key": "k"}

    module = types.ModuleType("sandboxes.miimosa")
    module.MiimosaSandbox = FakeSandbox  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "sandboxes.miimosa", module)
    sandbox = miimosa.sandbox_factory({"miimosa/api-key": "k"})
    assert isinstance(sandbox, FakeSandbox)
    assert sandbox.api_key == "k"


# ------------------------------------------------------------------------------------------------- CLI


@pytest.fixture
def template_file(tmp_path: Path) -> Path:
    return write_template(tmp_path)


def event_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "event.json"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_cli_invoke(template_file: Path, tmp_path: Path, capsys: Any) -> None:
    status = main(["local", "invoke", "-t", str(template_file), "PlainFunction", event_file(tmp_path, '{"a": 1}')])
    out, err = capsys.readouterr()
    assert status == 0
    assert json.loads(out) == {"hello": "world", "event": {"a": 1}}
    assert out.count("\n") == 1
    assert "plain was here" in err


def test_cli_invoke_env_vars_and_stdin(
    template_file: Path, tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    env_vars = tmp_path / "env.json"
    env_vars.write_text(json.dumps({"EnvFunction": {"ENV_ONLY": "overridden"}, "Parameters": {"EVERYONE": 1}}))
    monkeypatch.setattr(sys, "stdin", io.StringIO("{}"))
    argv = ["local", "invoke", "-t", str(template_file), "--env-vars", str(env_vars), "EnvFunction", "-"]
    assert main([*argv, "--parameter-overrides", "Stage=qa"]) == 0
    environ = json.loads(capsys.readouterr().out)["environ"]
    assert (environ["ENV_ONLY"], environ["EVERYONE"], environ["STAGE"]) == ("overridden", "1", "qa")


def test_cli_invoke_handler_exception(template_file: Path, tmp_path: Path, capsys: Any) -> None:
    assert main(["local", "invoke", "-t", str(template_file), "BoomFunction", event_file(tmp_path, "{}")]) == 1
    out, err = capsys.readouterr()
    assert json.loads(out)["errorType"] == "RuntimeError"
    assert "RuntimeError: boom" in err


def test_cli_invoke_handler_that_cannot_be_imported(tmp_path: Path, capsys: Any) -> None:
    text = TEMPLATE.replace("tests.local.fake_handlers.boom", "tests.local.fake_handlers.missing")
    assert (
        main(["local", "invoke", "-t", str(write_template(tmp_path, text)), "BoomFunction", event_file(tmp_path, "{}")])
        == 1
    )
    out, err = capsys.readouterr()
    assert out == ""
    assert "cannot import handler 'tests.local.fake_handlers.missing'" in err


@pytest.mark.parametrize(
    ("arguments", "event", "message"),
    [
        (["Nope"], "{}", "no function 'Nope'"),
        (["PlainFunction"], None, "cannot read event file"),
        (["PlainFunction"], "{not json", "is not valid JSON"),
        (["PlainFunction"], "[1]", "must hold a JSON object, not list"),
        (["--parameter-overrides", "Stage", "--", "PlainFunction"], "{}", "'Stage' is not NAME=VALUE"),
        (["--parameter-overrides", "Nope=1", "--", "PlainFunction"], "{}", "undeclared parameter(s): Nope"),
        (["--env-vars", "/nonexistent/env.json", "PlainFunction"], "{}", "cannot read --env-vars"),
        (["--env-vars", "{event}", "PlainFunction"], "[]", "--env-vars"),
        (["-t", "/nonexistent/template.yaml", "PlainFunction"], "{}", "template /nonexistent/template.yaml not found"),
    ],
)
def test_cli_invoke_usage_errors(
    tmp_path: Path, capsys: Any, arguments: list[str], event: str | None, message: str
) -> None:
    path = event_file(tmp_path, event) if event is not None else str(tmp_path / "missing.json")
    arguments = [argument.replace("{event}", path) for argument in arguments]
    assert main(["local", "invoke", "-t", str(write_template(tmp_path)), *arguments, path]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1
    assert err.startswith("hub local invoke: ")
    assert message in err


def test_cli_invoke_invalid_template(tmp_path: Path, capsys: Any) -> None:
    path = write_template(tmp_path, "Resources: [unclosed\n")
    assert main(["local", "invoke", "-t", str(path), "F", event_file(tmp_path, "{}")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def test_cli_run_serves_until_sigterm(template_file: Path, capsys: Any) -> None:
    port = free_port()
    served: list[int] = []

    def stop_when_serving() -> None:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                served.append(request(f"http://127.0.0.1:{port}/_local/routes")[0])
            except OSError:
                time.sleep(0.05)
                continue
            os.kill(os.getpid(), signal.SIGTERM)
            return

    watcher = threading.Thread(target=stop_when_serving)
    watcher.start()
    previous = signal.getsignal(signal.SIGTERM)
    status = main(["local", "run", "-t", str(template_file), "--port", str(port), "--retry-seconds", "0"])
    watcher.join()
    out, err = capsys.readouterr()
    assert (status, served) == (0, [200])
    assert signal.getsignal(signal.SIGTERM) is previous
    assert f"gateway  http://127.0.0.1:{port}" in out
    assert f"GET     http://127.0.0.1:{port}/items/{{id}}  -> EchoFunction" in out
    assert "queue    WorkQueue -> WorkerFunction (batch 5, retry after 0 s)" in out
    assert "moto     http://127.0.0.1:" in out
    assert "stopping" in err


def test_cli_run_reports_a_busy_port(template_file: Path, capsys: Any) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["local", "run", "-t", str(template_file), "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("hub local run: cannot start:")
    assert err.count("\n") == 1


def test_cli_run_banner_lists_partners(capsys: Any) -> None:
    banner = types.SimpleNamespace(
        template_path="t.yaml",
        template=types.SimpleNamespace(stage="local"),
        gateway_url="http://127.0.0.1:3000",
        routes=[],
        partner_urls={"Fake": "http://127.0.0.1:1", "Other": "https://other.example"},
        sandboxes={"Fake": object()},
        web_pages={"lead": "http://127.0.0.1:3001/lead.html"},
        moto_url="http://127.0.0.1:2",
        pumps=[],
    )
    local_run.print_banner(banner, sys.stdout)  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert "partner  Fake       http://127.0.0.1:1  (sandbox)" in out
    assert "partner  Other      https://other.example  (override)" in out
    assert "web      http://127.0.0.1:3001/lead.html  (lead)" in out


def test_cli_layer_size(tmp_path: Path, capsys: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    layer = tmp_path / "AdaptersLayer"
    (layer / "python" / "pkg").mkdir(parents=True)
    (layer / "python" / "pkg" / "module.py").write_text("x = 1\n" * 2000)
    (layer / "python" / "data.bin").write_bytes(os.urandom(3000))

    assert main(["local", "layer-size", str(layer)]) == 0
    out = capsys.readouterr().out.strip()
    match = re.fullmatch(
        r"layer AdaptersLayer: 14\.6 KiB \(15000 bytes\) unzipped, [\d.]+ KiB \((\d+) bytes\) zipped "
        r"\(limit 250\.0 MiB unzipped\)",
        out,
    )
    assert match, out
    assert 3000 < int(match.group(1)) < 15000

    monkeypatch.setattr(local_build, "LAYER_LIMIT_UNZIPPED", 1000)
    assert main(["local", "layer-size", str(layer), "--name", "Big"]) == 1
    assert "layer Big is over Lambda's unzipped limit" in capsys.readouterr().err

    assert main(["local", "layer-size", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


@pytest.mark.parametrize(
    ("size", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (7.9 * 2**20, "7.9 MiB"), (3 * 2**30, "3.0 GiB")],
)
def test_human_size(size: float, text: str) -> None:
    assert local_build.human_size(int(size)) == text


def test_python_dash_m_entry_point(tmp_path: Path) -> None:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "local"), str(REPO)])}
    completed = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "hub_cli", "local", "layer-size", str(tmp_path)],
        capture_output=True,
        text=True,
        env=environment,
        check=False,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.startswith(f"layer {tmp_path.name}: 0 B (0 bytes) unzipped")


def test_a_batch_size_above_ten_is_gathered_over_several_receives(stack: LocalStack) -> None:
    """SQS hands out 10 messages a receive; Lambda's poller still delivers BatchSize (here 25) in one invocation."""
    sqs = stack.boto3_client("sqs")
    spec = stack.template.queues["WorkQueue"]
    for start in range(0, 30, 10):
        sqs.send_message_batch(
            QueueUrl=spec.url, Entries=[{"Id": str(n), "MessageBody": f"m{n}"} for n in range(start, start + 10)]
        )
    batches: list[int] = []
    pump = SqsPump(
        function="F",
        source=SqsSource("E", "WorkQueue", batch_size=25),
        queue=spec,
        client=sqs,
        invoke=lambda _name, event: batches.append(len(event["Records"])),
        retry_seconds=0,
    )
    assert pump.cycle(wait_seconds=0) == 25
    assert pump.cycle(wait_seconds=0) == 5
    assert pump.cycle(wait_seconds=0) == 0
    assert batches == [25, 5]
