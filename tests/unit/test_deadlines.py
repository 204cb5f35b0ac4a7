"""Deadline arithmetic of the HTTP core, on an injected clock: attempts shrink to fit, no retry starts late."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from partners import http as http_core
from partners.deadline import Deadline, bounded_by, current
from partners.errors import OutOfTime, PartnerUnavailable
from partners.http import PartnerHttp, RetryPolicy, Timeouts


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class ScriptedSession:
    """Stands in for the pooled session: each call takes `took` seconds of the fake clock, then answers or raises."""

    def __init__(self, clock: FakeClock, outcomes: list[Any], took: float | None = None) -> None:
        self.clock = clock
        self.outcomes = outcomes
        self.took = took
        self.timeouts: list[tuple[float, float]] = []

    def request(self, method: str, url: str, *, timeout: tuple[float, float], **_: Any) -> requests.Response:
        self.timeouts.append(timeout)
        outcome = self.outcomes.pop(0)
        # A hanging partner uses the whole timeout; an answering one the time it takes.
        self.clock.now += sum(timeout) if isinstance(outcome, requests.Timeout) else (self.took or 0.0)
        if isinstance(outcome, Exception):
            raise outcome
        response = requests.Response()
        response.status_code = outcome
        response._content = b"{}"
        response.headers["Retry-After"] = "2"
        return response


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def _http(clock: FakeClock, session: ScriptedSession, **retry: Any) -> PartnerHttp:
    http_core._SESSIONS["fake"] = session  # type: ignore[assignment]

    def sleep(seconds: float) -> None:
        clock.now += seconds

    return PartnerHttp(
        "fake",
        "http://127.0.0.1:9",
        timeouts=Timeouts(connect=3.0, read=8.0),
        retry=RetryPolicy(max_attempts=3, backoff_base=0.5, backoff_max=0.5, **retry),
        sleep=sleep,
    )


@pytest.fixture(autouse=True)
def _forget_fake_session():
    yield
    http_core._SESSIONS.pop("fake", None)


def test_without_a_deadline_the_configured_timeouts_hold(clock):
    session = ScriptedSession(clock, [200])
    _http(clock, session).request("GET", "/x")
    assert session.timeouts == [(3.0, 8.0)]


def test_each_attempt_shrinks_to_what_is_left_and_the_sum_fits(clock):
    session = ScriptedSession(clock, [requests.ReadTimeout(), requests.ReadTimeout(), 200])
    http = _http(clock, session)
    deadline = Deadline.after(12.0, clock)
    with bounded_by(deadline), pytest.raises(PartnerUnavailable) as raised:
        http.request("GET", "/x")
    # 12 s: connect 3, read 8 (11 s); then 1 s left minus the backoff: no room for another attempt of 0.5 s.
    assert session.timeouts[0] == (3.0, 8.0)
    assert all(connect + read <= 12.0 for connect, read in session.timeouts)
    assert clock.now <= deadline.at
    assert raised.value.message == "read timeout"  # the real failure, not a made-up one


def test_a_retry_gets_only_the_rest(clock):
    session = ScriptedSession(clock, [503, 200], took=0.2)
    deadline = Deadline.after(6.0, clock)
    with bounded_by(deadline):
        _http(clock, session).request("GET", "/x")
    first, second = session.timeouts
    assert first == pytest.approx((1.8, 4.2))  # 30 % of 6 s to connect, the rest to read
    # After 0.2 s of answer and the 2 s Retry-After: 3.8 s left, all of it and no more for the retry.
    assert second == pytest.approx((1.14, 2.66))


def test_no_retry_after_wait_starts_that_could_not_finish(clock):
    # A 503 with Retry-After: 2 and 2.3 s left: waiting 2 s would leave 0.3 s, less than an attempt needs.
    session = ScriptedSession(clock, [503, 200], took=0.2)
    http = _http(clock, session)
    with bounded_by(Deadline.after(2.5, clock)), pytest.raises(PartnerUnavailable) as raised:
        http.request("GET", "/x")
    assert raised.value.status == 503
    assert len(session.timeouts) == 1
    assert clock.now == pytest.approx(1000.2)  # given up at once, no sleep


def test_retry_after_that_fits_is_waited_for(clock):
    session = ScriptedSession(clock, [503, 200], took=0.2)
    with bounded_by(Deadline.after(10.0, clock)):
        response = _http(clock, session).request("GET", "/x")
    assert response.status_code == 200
    assert len(session.timeouts) == 2


def test_no_call_at_all_when_too_little_is_left(clock):
    session = ScriptedSession(clock, [200])
    with bounded_by(Deadline.after(0.2, clock)), pytest.raises(OutOfTime) as raised:
        _http(clock, session).request("POST", "/x")
    assert session.timeouts == []
    assert not raised.value.ambiguous  # nothing was sent
    assert isinstance(raised.value, PartnerUnavailable)  # every caller's "try later" path applies


def test_inner_deadlines_never_extend_the_outer_one(clock):
    outer = Deadline.after(5.0, clock)
    with bounded_by(outer):
        with bounded_by(Deadline.after(20.0, clock)) as inner:
            assert inner is outer
        with bounded_by(outer.within(2.0)) as part:
            assert part is not None
            assert part.remaining() == 2.0
        with bounded_by(None) as same:
            assert same is outer
        assert current() is outer
    assert current() is None


def test_deadline_arithmetic(clock):
    deadline = Deadline.after(3.0, clock)
    assert deadline.fits(3.0)
    assert not deadline.fits(3.01)
    clock.now += 4.0
    assert deadline.remaining() == 0.0
    assert deadline.expired()
