"""hub_core.aws: every AWS attempt and retry fits the invocation's deadline, against a failing DynamoDB on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ReadTimeoutError

from hub_core import aws
from hub_core.http_api import AWS_RETRY_AFTER_SECONDS, aws_unavailable
from partners.deadline import Deadline, bounded_by


class FailingDynamo:
    """A DynamoDB endpoint that answers every request as told: throttled, a 500, or slowly."""

    def __init__(self) -> None:
        self.requests = 0
        self.status = 400
        self.error = "ThrottlingException"
        self.delay = 0.0
        self.headers: dict[str, str] = {}
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                endpoint.requests += 1
                time.sleep(endpoint.delay)
                if endpoint.status == 200:
                    body = json.dumps({"Item": {"pk": {"S": "a"}}}).encode()
                else:
                    body = json.dumps({"__type": f"com.amazonaws.dynamodb.v20120810#{endpoint.error}"}).encode()
                try:
                    self.send_response(endpoint.status)
                    self.send_header("Content-Type", "application/x-amz-json-1.0")
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in endpoint.headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client gave up waiting: what the test is about
                    pass

            def log_message(self, *_: Any) -> None:
                pass

        return Handler


@pytest.fixture
def dynamo() -> Iterator[FailingDynamo]:
    endpoint = FailingDynamo()
    endpoint.thread.start()
    yield endpoint
    endpoint.server.shutdown()
    endpoint.server.server_close()


def client_for(endpoint: FailingDynamo) -> Any:
    session = boto3.session.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="eu-north-1")
    client = session.client("dynamodb", endpoint_url=endpoint.url, config=aws._CONFIG)
    return aws.bound_by_deadline(client)


def get_item(client: Any) -> Any:
    return client.get_item(TableName="t", Key={"pk": {"S": "a"}})


def test_without_a_deadline_the_sdk_makes_three_attempts_in_all(dynamo: FailingDynamo) -> None:
    dynamo.status, dynamo.error = 500, "InternalServerError"
    with pytest.raises(ClientError):
        get_item(client_for(dynamo))
    assert dynamo.requests == aws.TOTAL_ATTEMPTS == 3


def test_a_retry_whose_pause_would_not_fit_is_not_started(dynamo: FailingDynamo) -> None:
    # A throttling pause after the first attempt may be up to 1 s: with 1.2 s left, pause and attempt do not fit.
    # The client is built first: on a loaded machine, loading its service model could eat the 1.2 s by itself.
    client = client_for(dynamo)
    with bounded_by(Deadline.after(1.2)), pytest.raises(ClientError) as raised:
        get_item(client)
    assert dynamo.requests == 1
    assert raised.value.response["Error"]["Code"] == "ThrottlingException"  # the SDK's own error stands
    assert aws_unavailable(raised.value)


def test_retries_that_fit_are_made(dynamo: FailingDynamo) -> None:
    dynamo.status, dynamo.error = 500, "InternalServerError"
    with bounded_by(Deadline.after(30.0)), pytest.raises(ClientError):
        get_item(client_for(dynamo))
    assert dynamo.requests == 3


def test_where_botocore_cannot_cut_a_read_timeout_a_retry_needs_room_for_a_whole_attempt(
    dynamo: FailingDynamo, monkeypatch: pytest.MonkeyPatch
) -> None:
    dynamo.status, dynamo.error = 500, "InternalServerError"
    client = client_for(dynamo)
    with bounded_by(Deadline.after(4.0)), pytest.raises(ClientError):
        get_item(client)
    assert dynamo.requests == 3  # a 5xx pause and a 0.5 s attempt fit in 4 s
    monkeypatch.setattr(aws, "CUTS_READ_TIMEOUT", False)  # the runtime's older botocore
    with bounded_by(Deadline.after(4.0)), pytest.raises(ClientError):
        get_item(client)
    assert dynamo.requests == 4  # 1 s + 5 s of a whole attempt do not: no retry


def test_the_tested_botocore_cuts_read_timeouts() -> None:
    assert aws.CUTS_READ_TIMEOUT


def test_no_attempt_starts_once_the_time_is_gone(dynamo: FailingDynamo) -> None:
    with bounded_by(Deadline.after(0.0)), pytest.raises(aws.AwsOutOfTime) as raised:
        get_item(client_for(dynamo))
    assert dynamo.requests == 0
    assert aws_unavailable(raised.value)


def test_an_attempt_waits_no_longer_than_the_time_left(dynamo: FailingDynamo) -> None:
    # The answer comes after 2 s, inside the SDK's 5 s read timeout: only the deadline's 0.6 s makes it a timeout.
    dynamo.status, dynamo.delay = 200, 2.0
    client = client_for(dynamo)  # built first, as above: loading its model could eat the 0.6 s on a loaded machine
    with bounded_by(Deadline.after(0.6)), pytest.raises(ReadTimeoutError) as raised:
        get_item(client)
    assert dynamo.requests == 1
    assert aws_unavailable(raised.value)


def test_the_same_client_answers_in_full_without_a_deadline(dynamo: FailingDynamo) -> None:
    dynamo.status, dynamo.delay = 200, 0.3
    client = client_for(dynamo)
    assert get_item(client)["Item"] == {"pk": {"S": "a"}}
    with bounded_by(Deadline.after(10.0)):
        assert get_item(client)["Item"] == {"pk": {"S": "a"}}
    assert dynamo.requests == 2


@pytest.mark.parametrize(
    ("attempts", "header", "worst"),
    [(1, None, 1.0), (2, None, 2.0), (6, None, 20.0), (1, "3000", 4.0), (1, "60000", 6.0), (1, "soon", 1.0)],
)
def test_the_worst_pause_follows_the_standard_mode(attempts: int, header: str | None, worst: float) -> None:
    class Answer:
        headers = {} if header is None else {"x-amz-retry-after": header}

    assert aws.worst_pause_seconds(attempts, Answer()) == worst


@pytest.mark.parametrize(
    ("code", "status", "unavailable"),
    [
        ("ProvisionedThroughputExceededException", 400, True),
        ("ThrottlingException", 400, True),
        ("InternalServerError", 500, True),
        ("ValidationException", 400, False),
        ("ConditionalCheckFailedException", 400, False),
    ],
)
def test_only_not_now_failures_count_as_unavailable(code: str, status: int, unavailable: bool) -> None:
    error = ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutItem")
    assert aws_unavailable(error) is unavailable
    assert AWS_RETRY_AFTER_SECONDS >= 1
