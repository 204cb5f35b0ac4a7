"""The local stack for handler tests: template.yaml's resources in moto, the partner sandboxes, the real events."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from hub_local.stack import LocalStack

# Recognisable values: the privacy check (tests/privacy.py) looks for them in every captured log line.
from tests.canaries import (  # noqa: F401 - re-exported for the test modules
    CANARY_BIRTHDATE,
    CANARY_EMAIL,
    CANARY_LASTNAME,
    CANARY_MSISDN,
    CANARY_PHONE,
    MIIMOSA_KEY,
    MLM_TOKEN,
    UMBRELLA_KEY,
)
from tests.conftest import ROOT, SUITE_LIMITS, load_event

# Settings a test needs shorter than production: timeouts and the safety-net delay.
FUNCTION_OVERRIDES = {
    "MIIMOSA_READ_TIMEOUT": "0.4",
    "MIIMOSA_CONNECT_TIMEOUT": "0.4",
    "LEAD_RETRY_DELAY_SECONDS": "0",
    "ERASURE_RETRY_DELAY_SECONDS": "0",
    "FORWARD_LEASE_SECONDS": "30",
    "UMBRELLA_READ_TIMEOUT": "0.4",
    "UMBRELLA_CONNECT_TIMEOUT": "0.4",
    "MLM_READ_TIMEOUT": "0.4",
    "MLM_CONNECT_TIMEOUT": "0.4",
    # The sandbox lists a donation before it calls back, so a real callback is verified by its first fold; a forged
    # one is marked unconfirmed there and then instead of coming back for 15 minutes. Tests of the window set it.
    "CONFIRM_WINDOW_SECONDS": "0",
    # A licence order whose turn is taken waits half a second, then is re-queued with no delay (tests drain it).
    "TURN_WAIT_SECONDS": "0.5",
    "REQUEUE_DELAY_MIN_SECONDS": "0",
    "REQUEUE_DELAY_MAX_SECONDS": "0",
} | SUITE_LIMITS


# Module-scoped: moto's state is per process, so two stacks must not live at once (each recreates its resources).
@pytest.fixture(scope="module")
def stack():
    with LocalStack(
        ROOT / "template.yaml",
        gateway_port=None,
        pump_queues=False,
        environ={"MIIMOSA_API_KEY": MIIMOSA_KEY, "UMBRELLA_API_KEY": UMBRELLA_KEY, "MLM_API_TOKEN": MLM_TOKEN},
        function_overrides=FUNCTION_OVERRIDES,
        async_retry_seconds=0.05,
        # A failed message is back in 1 s, not 2: the paths that end in a DLQ (5 receives) take half as long.
        sqs_retry_seconds=1,
    ) as local:
        yield local


def _fresh_sandbox(stack, name):
    """A partner sandbox of the module's stack with no fault and no recorded request left by an earlier test."""
    sandbox = stack.sandboxes[name]
    sandbox.faults.clear()
    sandbox.clear_requests()
    yield sandbox
    sandbox.faults.clear()


@pytest.fixture
def miimosa(stack):
    yield from _fresh_sandbox(stack, "miimosa")


@pytest.fixture
def umbrella(stack):
    yield from _fresh_sandbox(stack, "umbrella")


@pytest.fixture
def mlm(stack):
    yield from _fresh_sandbox(stack, "mlm")


def lead_fields(**changes: Any) -> dict[str, Any]:
    """A valid lead, unique per call (so body-hash de-duplication does not join two tests)."""
    fields = {
        "email": CANARY_EMAIL,
        "firstname": "Zelda",
        "lastname": CANARY_LASTNAME,
        "phone": CANARY_PHONE,
        "collect_type": "donation",
        "project_description": "Verger conservatoire de pommiers anciens",
        "project_total_budget": "12000",
        "publication_timeframe": "next_months",
        "category": "nature",
        "campaign_id": f"test-{uuid.uuid4()}",
    }
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not None}


def post_event(
    body: Any = None, *, content_type: str = "application/json", headers: dict[str, str] | None = None
) -> dict[str, Any]:
    """events/lead_intake/post_valid.json with another body or headers."""
    event = load_event("lead_intake/post_valid.json")
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    event["headers"]["content-type"] = content_type
    event["headers"].update(headers or {})
    return event


def response_json(response: dict[str, Any]) -> Any:
    return json.loads(response["body"])
