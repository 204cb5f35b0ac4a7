"""hub_core.deadline at the handler's edge: the margin setting, which events are HTTP routes, budgets inside."""

from __future__ import annotations

import pytest

from hub_core.deadline import (
    DEFAULT_MARGIN_SECONDS,
    deadline_aware,
    fits,
    invocation_deadline,
    is_http_api_event,
    margin_seconds,
    record_budget,
)
from partners.deadline import Deadline, bounded_by, current


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("value", "margin"),
    [(None, DEFAULT_MARGIN_SECONDS), ("0.25", 0.25), ("0", 0.0), ("-3", 0.0), ("soon", DEFAULT_MARGIN_SECONDS)],
)
def test_the_margin_is_read_per_call_never_negative_and_a_bad_value_is_the_default(monkeypatch, value, margin):
    if value is None:
        monkeypatch.delenv("DEADLINE_MARGIN_SECONDS", raising=False)
    else:
        monkeypatch.setenv("DEADLINE_MARGIN_SECONDS", value)
    assert margin_seconds() == margin


@pytest.mark.parametrize(
    ("event", "http"),
    [
        ({"routeKey": "POST /leads", "requestContext": {"http": {}}}, True),
        ({"routeKey": "POST /leads"}, False),  # no request context: not API Gateway's
        ({"Records": [{"eventSource": "aws:sqs"}]}, False),
        ({"detail-type": "LicenceRequested", "requestContext": {}}, False),
        (["routeKey", "requestContext"], False),
        (None, False),
    ],
)
def test_only_an_http_api_event_is_an_http_route(event, http):
    assert is_http_api_event(event) is http


def test_the_deadline_counts_from_its_clock():
    clock = Clock()
    deadline = invocation_deadline(10_000, http=False, margin=1.0, clock=clock)
    assert deadline.remaining() == 9.0
    clock.now += 4.5
    assert deadline.remaining() == 4.5
    clock.now += 10
    assert deadline.remaining() <= 0
    assert not deadline.fits(0.1)


class Context:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_the_deadline_ends_with_the_invocation_even_when_the_handler_raises(monkeypatch):
    monkeypatch.setenv("DEADLINE_MARGIN_SECONDS", "1")

    @deadline_aware
    def handler(event, context):
        assert current() is not None
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        handler({}, Context(5_000))
    assert current() is None


def test_the_wrapped_handler_keeps_its_name_for_the_runtime():
    def lambda_handler(event, context):
        return None

    assert deadline_aware(lambda_handler).__name__ == "lambda_handler"


def test_a_record_budget_without_an_invocation_deadline_is_its_own_bound():
    assert current() is None
    with record_budget(3.0):
        assert fits(2.9)
        assert not fits(3.5)
    assert current() is None
    assert fits(1e9)


def test_a_record_budget_never_outlasts_the_invocation():
    clock = Clock()
    with bounded_by(Deadline.after(2.0, clock)), record_budget(10.0):
        remaining = current().remaining()  # type: ignore[union-attr]
        assert remaining <= 2.0
        assert not fits(2.5)
