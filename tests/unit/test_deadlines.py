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


# ------------------------------------------------------------------------------- the handler edge (hub_core)


def test_an_http_route_gets_at_most_http_api_s_30_s_minus_the_margin(clock):
    from hub_core.deadline import invocation_deadline  # noqa: PLC0415

    assert invocation_deadline(60_000, http=True, margin=2.0, clock=clock).remaining() == 28.0
    assert invocation_deadline(60_000, http=False, margin=2.0, clock=clock).remaining() == 58.0
    assert invocation_deadline(15_000, http=True, margin=2.0, clock=clock).remaining() == 13.0
    assert invocation_deadline(1_000, http=True, margin=2.0, clock=clock).remaining() == 0.0


class FakeContext:
    def __init__(self, remaining_ms: int) -> None:
        self.remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def test_the_edge_sets_the_deadline_for_the_handler_only(monkeypatch):
    from hub_core.deadline import deadline_aware  # noqa: PLC0415

    monkeypatch.setenv("DEADLINE_MARGIN_SECONDS", "1.5")
    seen: list[float | None] = []

    @deadline_aware
    def handler(event, context):
        deadline = current()
        seen.append(None if deadline is None else round(deadline.remaining()))
        return "ok"

    assert handler({"routeKey": "GET /x", "requestContext": {}}, FakeContext(60_000)) == "ok"
    assert handler({"Records": []}, FakeContext(10_000)) == "ok"
    assert handler({}, object()) == "ok"  # a bare test context: no limit
    assert seen == [28, 8, None]  # 30 - 1.5 and 10 - 1.5, rounded
    assert current() is None


def test_a_batch_record_is_bounded_by_its_budget_and_by_the_invocation(clock):
    from hub_core.deadline import fits, record_budget  # noqa: PLC0415

    assert fits(1e9)  # no deadline, no limit
    with bounded_by(Deadline.after(5.0, clock)):
        assert fits(5.0)
        assert not fits(5.1)
        with record_budget(2.0):
            assert current().remaining() == 2.0
        with record_budget(9.0):
            assert current().remaining() == 5.0


def test_the_lead_retry_queue_does_not_start_a_record_that_would_not_fit(monkeypatch, clock):
    from types import SimpleNamespace  # noqa: PLC0415

    from lead_intake import flow, retries  # noqa: PLC0415

    started: list[str] = []
    collaborators = SimpleNamespace(settings=SimpleNamespace(retry_record_seconds=2.0))
    monkeypatch.setattr(retries, "services", lambda: collaborators)

    def forward(services, lead_id):
        assert services is collaborators
        started.append(lead_id)
        clock.now += 1.5  # each forward takes 1.5 s of the 4 s left

    monkeypatch.setattr(flow, "retry", forward)
    records = [
        {"messageId": f"m{i}", "body": f'{{"lead_id": "l{i}"}}', "eventSource": "aws:sqs", "attributes": {}}
        for i in range(4)
    ]
    with bounded_by(Deadline.after(4.0, clock)):
        result = retries.handle({"Records": records}, FakeContext(4_000))
    # 4 s: l0 at 0 (fits), l1 at 1.5 (2.5 left, fits), l2 at 3.0 (1 left < 2): l2 and l3 go back untouched.
    assert started == ["l0", "l1"]
    assert result == {"batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}]}


def test_the_loyalty_relay_sends_no_action_that_would_not_fit(monkeypatch, clock):
    from types import SimpleNamespace  # noqa: PLC0415

    from loyalty_relay import flow as relay  # noqa: PLC0415
    from loyalty_relay.models import Outcome, PendingAction  # noqa: PLC0415
    from partners.appsmiles_wire import StoreResult  # noqa: PLC0415

    sent: list[str] = []

    class SlowAppsMiles:
        def store_action(self, user_id, tag_id, *, param1, date):
            sent.append(param1)
            clock.now += 1.5
            return StoreResult(already_recorded=False, code=0, action={})

    collaborators = SimpleNamespace(
        settings=SimpleNamespace(record_seconds=2.0, appsmiles_multistore=False), appsmiles=SlowAppsMiles
    )
    actions = [PendingAction(f"m{i}", f"k{i}", "LEAD", f"user-{i}", "LeadCaptured", None) for i in range(4)]
    with bounded_by(Deadline.after(4.0, clock)):
        outcomes = [settlement.outcome for _, settlement in relay._send(collaborators, actions)]
    assert sent == ["k0", "k1"]
    assert outcomes == [Outcome.RELAYED, Outcome.RELAYED, Outcome.RETRY, Outcome.RETRY]


def test_the_totals_fold_starts_no_campaign_that_would_not_fit(monkeypatch, clock):
    import json  # noqa: PLC0415
    from types import SimpleNamespace  # noqa: PLC0415

    from donation_ingester import fold as ingester  # noqa: PLC0415

    verified: list[str] = []

    def slow_verify(services, campaign_ref, hints, report):
        # One Umbrella call and the fold writes of one campaign's hints.
        verified.append(campaign_ref)
        clock.now += 0.4
        return ingester.Settled(verified=len(hints))

    monkeypatch.setattr(ingester, "_verify_campaign", slow_verify)
    collaborators = SimpleNamespace(settings=SimpleNamespace(fold_campaign_seconds=0.5))

    def record(index):
        detail = {
            "eventId": f"e{index}", "campaign": f"1/r/c{index}", "serviceId": 1, "route": "r",
            "donationCode": f"c{index}", "messageKey": f"k{index}", "amount": 100,
            "donatedAt": "2026-12-01T10:00:00+00:00",
        }  # fmt: skip
        return {"messageId": f"m{index}", "body": json.dumps({"detail": detail})}

    with bounded_by(Deadline.after(1.0, clock)):
        report = ingester.fold_batch(collaborators, [record(i) for i in range(3)])
    # 1 s: a campaign at 0 and one at 0.4 (0.6 left) fit; at 0.8 only 0.2 is left of the 0.5 a campaign may take.
    assert verified == ["1/r/c0", "1/r/c1"]
    assert report.failed_message_ids == ["m2"]
    assert (report.folded, report.not_started) == (2, 1)


def test_the_erasure_retry_queue_starts_no_record_that_would_not_fit(monkeypatch, clock):
    from types import SimpleNamespace  # noqa: PLC0415

    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord  # noqa: PLC0415

    from erasure import deferred  # noqa: PLC0415

    retried: list[str] = []

    collaborators = SimpleNamespace(settings=SimpleNamespace(retry_record_seconds=2.0))

    def slow_retry(services, request_id):
        assert services is collaborators
        retried.append(request_id)
        clock.now += 1.5

    monkeypatch.setattr(deferred, "services", lambda: collaborators)
    monkeypatch.setattr(deferred, "retry", slow_retry)
    records = [SQSRecord({"messageId": f"m{i}", "body": f'{{"erasure_request_id": "r{i}"}}'}) for i in range(3)]
    outcomes = []
    with bounded_by(Deadline.after(4.0, clock)):
        for record in records:
            try:
                deferred._record(record)
                outcomes.append("done")
            except deferred.RecordNotStarted:
                outcomes.append("back")
    # 4 s: records at 0 and 1.5 fit their 2 s; at 3.0 only 1 s is left.
    assert retried == ["r0", "r1"]
    assert outcomes == ["done", "done", "back"]
