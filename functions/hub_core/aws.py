"""Cached boto3 clients with explicit timeouts: built on first use, one per service per container."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from hub_core.caches import container_cached

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

# Short timeouts and the SDK's adaptive retries: AWS calls must fit well inside an API Gateway request.
_CONFIG = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3, "mode": "standard"})


# A boto3 Session is not thread-safe (the clients it makes are): the local runner serves invocations in threads.
_SESSION_LOCK = threading.Lock()


@container_cached
def _session() -> boto3.session.Session:
    # One per container, shared by every client: each Session parses the SDK's shared data (endpoints, partitions,
    # retry modes) afresh, so four clients from four Sessions cost about 3.5x four from one on a cold start.
    return boto3.session.Session()


@container_cached
def _client(service: str) -> Any:
    # AWS_ENDPOINT_URL (set by the local runner) points every client at moto; boto3 reads it itself.
    with _SESSION_LOCK:
        return _session().client(service, config=_CONFIG)  # type: ignore[call-overload]


def dynamodb() -> DynamoDBClient:
    return _client("dynamodb")  # type: ignore[no-any-return]


def sqs() -> SQSClient:
    return _client("sqs")  # type: ignore[no-any-return]


def events() -> EventBridgeClient:
    return _client("events")  # type: ignore[no-any-return]


def ssm() -> Any:
    """The SSM client Powertools' parameter provider reads secrets with (hub_core.secrets)."""
    return _client("ssm")
