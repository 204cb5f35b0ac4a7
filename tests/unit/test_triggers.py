"""hub_core.triggers tells each real events/ file's trigger from its shape."""

from __future__ import annotations

import pytest

from hub_core.triggers import Trigger, trigger_of
from tests.conftest import EVENTS, load_event

# Every events/ file, by what invoked it: the template's HTTP routes, queues, rules and schedules.
EXPECTED = {
    "lead_intake/post_valid.json": Trigger.HTTP,
    "lead_intake/retry_batch.json": Trigger.SQS,
    "licence_issuance/licence_requested.json": Trigger.EVENT,
    "loyalty_relay/lead_captured_batch.json": Trigger.SQS,
    "erasure/post_erasure.json": Trigger.HTTP,
    "erasure/erasure_requested.json": Trigger.EVENT,
    "erasure/retry_batch.json": Trigger.SQS,
}


@pytest.mark.parametrize(("relative", "trigger"), sorted(EXPECTED.items()))
def test_an_events_file_is_told_by_its_shape(relative, trigger):
    assert (EVENTS / relative).is_file()
    assert trigger_of(load_event(relative)) is trigger


def test_a_schedule_is_not_taken_for_another_event():
    assert trigger_of({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}) is Trigger.SCHEDULE
    assert trigger_of({"detail-type": "ErasureRequested", "source": "back-office", "detail": {}}) is Trigger.EVENT


@pytest.mark.parametrize(
    "event",
    [
        {"reconcile": {"campaigns": None}},
        {"erase": {"email": "a@example.org"}},
        {"Records": []},  # no record is no SQS batch
        {"Records": [{"eventSource": "aws:sqs"}, {"eventSource": "aws:kinesis"}]},  # one source per batch
        {"routeKey": "GET /x"},  # an HTTP API request has both
    ],
)
def test_anything_else_is_a_direct_invoke(event):
    assert trigger_of(event) is Trigger.DIRECT
