"""hub_core.retry_queue on moto in-process: the body sent as JSON, the delay clamped to what SQS allows."""

from __future__ import annotations

import json

import boto3
import pytest

from hub_core import aws
from hub_core.caches import reset_all
from hub_core.retry_queue import MAX_DELAY_SECONDS, retry_sender
from tests.conftest import in_process_aws


@pytest.fixture
def queue(monkeypatch):
    with in_process_aws(monkeypatch):
        reset_all()  # hub_core.aws's clients, made against this mock
        yield boto3.client("sqs").create_queue(QueueName="retries")["QueueUrl"]
        reset_all()


def sent_delays() -> list[int]:
    delays: list[int] = []
    aws.sqs().meta.events.register(
        "provide-client-params.sqs.SendMessage", lambda params, **_: delays.append(params["DelaySeconds"])
    )
    return delays


@pytest.mark.parametrize(
    ("asked", "sent"), [(-5, 0), (0, 0), (42.9, 42), (MAX_DELAY_SECONDS, 900), (3_600, MAX_DELAY_SECONDS)]
)
def test_the_delay_is_clamped_to_what_sqs_allows(queue, asked, sent):
    delays = sent_delays()
    retry_sender(queue)({"lead_id": "l1"}, asked)  # type: ignore[arg-type]
    assert delays == [sent]  # SQS itself refuses a DelaySeconds above 900 with InvalidParameterValue


def test_the_body_is_the_ids_as_json(queue):
    retry_sender(queue)({"lead_id": "l1", "attempt": 2}, 0)
    [message] = boto3.client("sqs").receive_message(QueueUrl=queue)["Messages"]
    assert json.loads(message["Body"]) == {"lead_id": "l1", "attempt": 2}
