"""Cached boto3 clients whose every attempt and retry fits the invocation's deadline: one per service per container.

The SDK's own timeouts and standard retries stay; two hooks on each client bound them by the deadline that
`hub_core.deadline` sets from the Lambda context (`partners.deadline.current()`):
- before each attempt is sent, its read timeout is cut to the time left, and none starts once the time is gone
  (`AwsOutOfTime`);
- a retry is refused, leaving the last answer or error to the caller, unless its pause (at the most the standard
  mode may choose, a throttling pause) and a useful attempt both still fit.
Without a deadline (a bare test context, the CLI) the SDK behaves as configured.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.httpsession import URLLib3Session

from hub_core.aws_errors import AwsOutOfTime
from hub_core.caches import container_cached
from partners.deadline import current

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_sqs import SQSClient

CONNECT_TIMEOUT_SECONDS = 1.0
READ_TIMEOUT_SECONDS = 5.0
# Three attempts in all ("max_attempts" would count retries only: four). Their worst case, 3 x (1 + 5) s plus the
# pauses, no longer decides whether an invocation ends in time: the deadline hooks below do.
TOTAL_ATTEMPTS = 3
_CONFIG = Config(
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
    read_timeout=READ_TIMEOUT_SECONDS,
    retries={"total_max_attempts": TOTAL_ATTEMPTS, "mode": "standard"},
)
# Less than this left is no attempt worth starting: DynamoDB, SQS, EventBridge and SSM answer in tens of ms, but a
# cold connection's TLS handshake alone may take a few hundred.
SHORTEST_USEFUL_ATTEMPT_SECONDS = 0.5
# Only botocore 1.43.x reads a per-request read timeout (httpsession._get_request_timeout). The layer ships that
# botocore, ahead of the Lambda runtime's; should an older one ever be loaded, a retry leaves room for a whole attempt.
CUTS_READ_TIMEOUT = hasattr(URLLib3Session, "_get_request_timeout")
# The standard mode's pauses (botocore.retries.standard.ExponentialBackoff): random up to scale x 2^(attempt-1),
# capped at 20 s, with scale 1 s for throttling (less for other errors), and an x-amz-retry-after header may add
# up to 5 s. A retry is judged by the throttling bound: the mode does not say beforehand which pause it will take.
_MAX_BACKOFF_SECONDS = 20.0
_RETRY_AFTER_HEADER = "x-amz-retry-after"
_RETRY_AFTER_MAX_ADDITIONAL_SECONDS = 5.0


def worst_pause_seconds(attempts: int, http_response: Any = None) -> float:
    """The longest pause the standard mode may take after `attempts` attempts before the next one."""
    pause = min(2.0 ** (attempts - 1), _MAX_BACKOFF_SECONDS)
    header = getattr(http_response, "headers", {}).get(_RETRY_AFTER_HEADER) if http_response is not None else None
    try:
        asked = float(header) / 1000 if header is not None else 0.0
    except ValueError:
        asked = 0.0
    return pause + min(max(asked, 0.0), _RETRY_AFTER_MAX_ADDITIONAL_SECONDS)


def _bound_attempt(request: Any, **_: Any) -> None:
    """before-send: an attempt's read timeout is never longer than the time left."""
    deadline = current()
    if deadline is None:
        return
    left = deadline.remaining()
    if left <= 0.0:
        raise AwsOutOfTime()
    # botocore reads a per-request read timeout from the request's context (httpsession._get_request_timeout).
    request.context["read_timeout"] = min(READ_TIMEOUT_SECONDS, left)


def _refuse_late_retry(attempts: int, response: Any = None, **_: Any) -> bool | None:
    """needs-retry, ahead of the standard handler: False (no retry, the last answer or error stands) when the
    pause and a useful attempt would not fit; None lets the standard handler decide."""
    deadline = current()
    if deadline is None:
        return None
    http_response = response[0] if response else None
    attempt = SHORTEST_USEFUL_ATTEMPT_SECONDS if CUTS_READ_TIMEOUT else CONNECT_TIMEOUT_SECONDS + READ_TIMEOUT_SECONDS
    if deadline.fits(worst_pause_seconds(attempts, http_response) + attempt):
        return None
    return False


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
        client = _session().client(service, config=_CONFIG)  # type: ignore[call-overload]
    bound_by_deadline(client)
    return client


def bound_by_deadline(client: Any) -> Any:
    """Register the deadline hooks on a boto3 client (this module's, or one a test builds)."""
    service = client.meta.service_model.service_id.hyphenize()
    # The standard retry handler sits on "needs-retry.<service>"; the emitter calls a more specific event's
    # handlers first, so ours must sit on the same one, first, for its False to be the answer that counts.
    client.meta.events.register_first(f"needs-retry.{service}", _refuse_late_retry, unique_id="hub-deadline-retry")
    client.meta.events.register_first(f"before-send.{service}", _bound_attempt, unique_id="hub-deadline-attempt")
    return client


def dynamodb() -> DynamoDBClient:
    return _client("dynamodb")  # type: ignore[no-any-return]


def sqs() -> SQSClient:
    return _client("sqs")  # type: ignore[no-any-return]


def events() -> EventBridgeClient:
    return _client("events")  # type: ignore[no-any-return]


def ssm() -> Any:
    """The SSM client Powertools' parameter provider reads secrets with (hub_core.secrets)."""
    return _client("ssm")
