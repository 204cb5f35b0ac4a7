"""The local stack as `make run` serves it — gateway, SQS pump, event bus — with short timeouts and fast retries, so
that partner outages of a second or two can be played end to end; and helpers to count effects at the partners."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from hub_local.stack import LocalStack
from sandboxes.base import SandboxServer
from tests.conftest import ROOT, SUITE_LIMITS

# Timeouts short enough that a "hang" or "slow" fault of 0.6 s is beyond them; retries that come back in a second.
READ_TIMEOUT = 0.3
FUNCTION_OVERRIDES = {
    "MIIMOSA_READ_TIMEOUT": str(READ_TIMEOUT),
    "MIIMOSA_CONNECT_TIMEOUT": str(READ_TIMEOUT),
    "UMBRELLA_READ_TIMEOUT": str(READ_TIMEOUT),
    "UMBRELLA_CONNECT_TIMEOUT": str(READ_TIMEOUT),
    "MLM_READ_TIMEOUT": str(READ_TIMEOUT),
    "MLM_CONNECT_TIMEOUT": str(READ_TIMEOUT),
    "APPSMILES_READ_TIMEOUT": str(READ_TIMEOUT),
    "APPSMILES_CONNECT_TIMEOUT": str(READ_TIMEOUT),
    "LEAD_RETRY_DELAY_SECONDS": "0",
    # After a licence create Pimenko did not answer, only look-ups for this long: the slow create lands meanwhile.
    "RECREATE_GRACE_SECONDS": "2",
    # A licence order whose turn (or grace) has not come is re-queued within a second, not 2-20 s.
    "REQUEUE_DELAY_MIN_SECONDS": "0",
    "REQUEUE_DELAY_MAX_SECONDS": "1",
} | SUITE_LIMITS
# Deliveries of a lead's retry message before it is dead-lettered: outages here last seconds, deliveries are 1 s apart.
LEAD_RETRY_MAX_RECEIVES = "15"


@pytest.fixture(scope="module")
def live() -> Iterator[LocalStack]:
    with LocalStack(
        ROOT / "template.yaml",
        gateway_port=0,
        pump_queues=True,
        sqs_retry_seconds=1,
        parameter_overrides={"LeadRetryMaxReceives": LEAD_RETRY_MAX_RECEIVES},
        function_overrides=FUNCTION_OVERRIDES,
        async_retry_seconds=0.2,
        # As strict as AWS (issue 16): some SQS messages and EventBridge events come twice, some late.
        at_least_once=True,
    ) as stack:
        yield stack


def _sandbox(live: LocalStack, name: str) -> Iterator[SandboxServer]:
    """The partner with no fault and no request recorded by an earlier test; its data (leads, campaigns) stays,
    so every test counts by ids of its own."""
    sandbox = live.sandboxes[name]
    sandbox.faults.clear()
    sandbox.clear_requests()
    yield sandbox
    sandbox.faults.clear()


@pytest.fixture
def miimosa(live: LocalStack) -> Iterator[Any]:
    yield from _sandbox(live, "miimosa")


@pytest.fixture
def umbrella(live: LocalStack) -> Iterator[Any]:
    yield from _sandbox(live, "umbrella")


@pytest.fixture
def mlm(live: LocalStack) -> Iterator[Any]:
    yield from _sandbox(live, "mlm")


@pytest.fixture
def appsmiles(live: LocalStack) -> Iterator[Any]:
    yield from _sandbox(live, "appsmiles")


def wait_for(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:10]}"


def concurrently[T](count: int, call: Callable[[int], T], workers: int = 100) -> list[T]:
    """`call(i)` for i in range(count), all at once from a thread pool (the gateway is a ThreadingHTTPServer)."""
    with ThreadPoolExecutor(max_workers=min(workers, count)) as pool:
        return list(pool.map(call, range(count)))
