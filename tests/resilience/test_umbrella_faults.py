"""Umbrella down or slow while campaigns are created and donations reconciled, and EventBridge refusing the donation
events: no campaign doubled, no donation lost, every donation counted once in the campaign's total."""

from __future__ import annotations

import time
from typing import Any

import pytest
import requests

from hub_core import aws
from sandboxes.umbrella_rules import API_PREFIX
from tests.conftest import manage_token_from_sms
from tests.resilience.conftest import READ_TIMEOUT, unique, wait_for

pytestmark = pytest.mark.e2e

INGESTER = "DonationIngesterFunction"


def campaign_fields(code: str) -> dict[str, Any]:
    return {
        "serviceId": 1,
        "route": "hjerte",
        "donationCode": code,
        "amount": 5000,
        "campaignName": "Annas løb",
        "confirmMsisdn": "4512345678",
    }


def post_campaign(live: Any, fields: dict[str, Any]) -> requests.Response:
    return requests.post(f"{live.gateway_url}/campaigns", json=fields, timeout=30)


def at_umbrella(umbrella: Any, code: str) -> list[dict[str, Any]]:
    return [campaign for campaign in umbrella.campaigns if campaign["donationCode"] == code]


def create_until_created(live: Any, fields: dict[str, Any], *, recover: Any, attempts: int = 4) -> list[Any]:
    """The website's retry: the same request again after each 503; Umbrella comes back (`recover`) after two."""
    answers = []
    for attempt in range(attempts):
        if attempt == 2:
            recover()
        answer = post_campaign(live, fields)
        answers.append(answer)
        if answer.status_code != 503:
            break
    return answers


def collected(live: Any, code: str) -> dict[str, Any]:
    """The verified total a page shows (callbacks Umbrella has not confirmed yet, `pending`, are left out)."""
    page = requests.get(f"{live.gateway_url}/campaigns/1/hjerte/{code}", timeout=10)
    assert page.status_code == 200, page.text
    return {key: value for key, value in page.json()["collected"].items() if key != "pending"}


def new_campaign(live: Any, umbrella: Any) -> str:
    code = unique("rs")
    assert post_campaign(live, campaign_fields(code)).status_code == 201
    umbrella.clear_requests()
    return code


@pytest.fixture
def services_cached(live):
    """GET /services once, so that a create during the outage reaches Umbrella's create rather than its list."""
    assert requests.get(f"{live.gateway_url}/services", timeout=10).status_code == 200


@pytest.mark.parametrize(
    "outage",
    [{"mode": "status", "status": 503}, {"mode": "hang", "delay": 2 * READ_TIMEOUT}],
    ids=["5xx", "timeouts"],
)
def test_a_campaign_created_while_umbrella_is_down_resumes_on_the_same_request(live, umbrella, services_cached, outage):
    umbrella.faults.add(path_prefix=API_PREFIX, **outage)
    code = unique("rs")
    answers = create_until_created(live, campaign_fields(code), recover=umbrella.faults.clear)

    assert [answer.status_code for answer in answers] == [503, 503, 201], [a.text for a in answers]
    assert answers[0].json()["error"] == "partner_unavailable"
    assert int(answers[0].headers["Retry-After"]) >= 1
    assert manage_token_from_sms(umbrella, "4512345678") in at_umbrella(umbrella, code)[0]["confirmText"]
    assert len(at_umbrella(umbrella, code)) == 1
    page = requests.get(f"{live.gateway_url}/campaigns/1/hjerte/{code}", timeout=10).json()
    assert page["campaign"]["state"] == "active"
    posts = [r for r in umbrella.requests if r.method == "POST"]
    assert any(r.faulted for r in posts)  # the creates did meet the outage


def test_a_create_umbrella_finishes_after_our_timeout_is_not_made_twice(live, umbrella, services_cached):
    umbrella.faults.add("slow", delay=3 * READ_TIMEOUT, count=1, path_prefix=f"{API_PREFIX}/1")
    code = unique("rs")
    answers = create_until_created(live, campaign_fields(code), recover=lambda: None)

    assert answers[-1].status_code == 201, [a.text for a in answers]
    time.sleep(4 * READ_TIMEOUT)  # the slow create has landed (or been refused) by now
    assert len(at_umbrella(umbrella, code)) == 1
    assert post_campaign(live, campaign_fields(code)).status_code == 409  # the code is taken, by this campaign
    assert len(at_umbrella(umbrella, code)) == 1


def test_donations_whose_callbacks_were_lost_during_an_outage_are_recovered_once(live, umbrella):
    code = new_campaign(live, umbrella)
    ref = f"1/hjerte/{code}"
    umbrella.donate(1, "hjerte", code, amount=500)  # delivered
    lost = [umbrella.donate(1, "hjerte", code, amount=amount, deliver=False)["donation"] for amount in (1000, 2000)]
    assert wait_for(lambda: collected(live, code)["amount"] == 500, timeout=15)

    umbrella.faults.add("status", status=503, path_prefix=API_PREFIX)
    during = live.invoke(INGESTER, {"reconcile": {"campaigns": [ref]}})
    assert [(c["status"], c["recovered"]) for c in during["campaigns"]] == [("partner_unavailable", 0)]
    umbrella.faults.clear()

    after = live.invoke(INGESTER, {"reconcile": {"campaigns": [ref]}})
    assert [(c["status"], c["recovered"]) for c in after["campaigns"]] == [("ok", 2)]
    assert wait_for(lambda: collected(live, code) == {"amount": 3500, "count": 3, "note": None}, timeout=15)

    again = live.invoke(INGESTER, {"reconcile": {"campaigns": [ref]}})
    assert [(c["status"], c["recovered"]) for c in again["campaigns"]] == [("ok", 0)]
    # Umbrella's own late retry of a lost callback: a duplicate, not a second donation.
    callback = at_umbrella(umbrella, code)[0]["callbackUrl"]
    late = requests.post(callback, json=lost[0], timeout=10)
    assert late.json()["status"] == "duplicate"
    assert live.drain_events(timeout=10)
    assert live.drain("DonationTotalsQueue", timeout=10)
    assert collected(live, code) == {"amount": 3500, "count": 3, "note": None}


class RefusingBus:
    """EventBridge answering PutEvents with a failed entry (as it does when throttled) while `refusing`."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.refusing = True
        self.refused = 0

    def put_events(self, **kwargs: Any) -> Any:
        if self.refusing:
            self.refused += 1
            return {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "ThrottlingException"}]}
        return self.real.put_events(**kwargs)


def test_a_donation_whose_event_eventbridge_refused_is_published_by_the_repeat_and_counted_once(
    live, umbrella, monkeypatch
):
    """Through real HTTP: the gateway runs the handler in this process, so its EventBridge client can be swapped
    for one that refuses; Umbrella's sandbox calls the callback as Umbrella would."""
    code = new_campaign(live, umbrella)
    real_events = aws.events
    bus = RefusingBus(None)
    monkeypatch.setattr(aws, "events", lambda: bus if bus.refusing else real_events())

    first = umbrella.donate(1, "hjerte", code, amount=700)
    assert first["deliveries"] == [{"status": 503}]  # recorded, not announced: Umbrella is asked to send it again
    assert bus.refused == 1
    time.sleep(0.5)
    assert live.drain("DonationTotalsQueue", timeout=10)
    assert collected(live, code)["count"] == 0  # nothing announced, nothing folded

    bus.refusing = False
    callback = at_umbrella(umbrella, code)[0]["callbackUrl"]
    repeat = requests.post(callback, json=first["donation"], timeout=10)
    assert repeat.status_code == 200, repeat.text
    assert repeat.json()["status"] == "duplicate"
    assert wait_for(lambda: collected(live, code) == {"amount": 700, "count": 1, "note": None}, timeout=15)

    # More repeats (Umbrella retries, at least once): once folded, none is published or counted again.
    for _ in range(3):
        assert requests.post(callback, json=first["donation"], timeout=10).json()["status"] == "duplicate"
    assert live.drain_events(timeout=10)
    assert live.drain("DonationTotalsQueue", timeout=10)
    assert collected(live, code) == {"amount": 700, "count": 1, "note": None}
