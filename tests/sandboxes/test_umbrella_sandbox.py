"""The Umbrella sandbox behaves as the Umbrella Indsamlings documentation says, plays the donor, and fails on demand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from requests import Response

from sandboxes.umbrella import UmbrellaSandbox, main
from sandboxes.umbrella_callbacks import deliver_callback, is_loopback_url
from sandboxes.umbrella_rules import DEFAULT_API_KEY, SEED_SERVICES, CampaignNotFound, DonationRefused

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY = "test-umbrella-key"
TIMEOUT = 5.0
CAMPAIGNS = "/public/v1/campaign"
CAMPAIGN = f"{CAMPAIGNS}/1/abc123/anna-40"
# A value no rule message could contain by chance: if it shows up in an answer, the answer echoes input.
CANARY = "zz-canary-7f3a"


def campaign_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "donationCode": "anna-40",
        "route": "abc123",
        "amount": 5000,
        "callbackUrl": "http://127.0.0.1:9/callback",
        "answerMessage": "Tak for din donation",
        "confirmMsisdn": "4512345678",
        "confirmText": "Din indsamling er nu oprettet",
    }
    body.update(changes)
    return {name: value for name, value in body.items() if value is not ...}


@pytest.fixture(scope="module")
def running() -> Iterator[UmbrellaSandbox]:
    with UmbrellaSandbox(api_key=KEY) as server:
        yield server


@pytest.fixture
def sandbox(running: UmbrellaSandbox) -> UmbrellaSandbox:
    running.reset()
    return running


def call(server: UmbrellaSandbox, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> Response:
    params = kwargs.pop("params", {})
    if auth:
        params = {**params, "apikey": KEY}
    return requests.request(method, f"{server.url}{path}", params=params, timeout=TIMEOUT, **kwargs)


def create(server: UmbrellaSandbox, service: int = 1, **changes: Any) -> Response:
    return call(server, "POST", f"{CAMPAIGNS}/{service}", json=campaign_body(**changes))


@dataclass
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str | None
    body: bytes


@dataclass
class CallbackReceiver:
    """A tiny loopback HTTP server standing in for our donation-callback route."""

    url: str
    received: list[Received] = field(default_factory=list)
    status: int = 200
    location: str | None = None
    delay: float = 0.0


@pytest.fixture
def receiver() -> Iterator[CallbackReceiver]:
    state = CallbackReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _record(self) -> None:
            time.sleep(state.delay)
            length = int(self.headers.get("Content-Length") or 0)
            split = urlsplit(self.path)
            state.received.append(
                Received(
                    self.command,
                    split.path,
                    parse_qs(split.query),
                    self.headers.get("Content-Type"),
                    self.rfile.read(length),
                )
            )
            self.send_response(state.status)
            if state.location:
                self.send_header("Location", state.location)
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = _record

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/donations/callback?token=c4mp41gn"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- authentication and services ----------------------------------------------------------------------------


def test_services_with_the_key_as_apikey_or_bearer(sandbox: UmbrellaSandbox) -> None:
    by_query = call(sandbox, "GET", CAMPAIGNS)
    by_bearer = call(sandbox, "GET", CAMPAIGNS, auth=False, headers={"Authorization": f"Bearer {KEY}"})

    expected = [{"id": 1, "name": "donation service", "routes": ["abc123", "hjerte"]}, SEED_SERVICES[1].to_json()]
    assert by_query.status_code == by_bearer.status_code == 200
    assert by_query.json() == by_bearer.json() == expected


@pytest.mark.parametrize(
    ("params", "headers"),
    [
        ({}, {}),
        ({"apikey": "wrong"}, {}),
        ({"apiKey": KEY}, {}),
        ({}, {"Authorization": f"Basic {KEY}"}),
        ({}, {"Authorization": "Bearer wrong"}),
        ({"apikey": "wrong"}, {"Authorization": f"Bearer {KEY}"}),
    ],
)
def test_a_missing_or_wrong_key_is_403(
    sandbox: UmbrellaSandbox, params: dict[str, str], headers: dict[str, str]
) -> None:
    for method, path in (("GET", CAMPAIGNS), ("POST", f"{CAMPAIGNS}/1"), ("DELETE", CAMPAIGN)):
        response = call(sandbox, method, path, auth=False, params=params, headers=headers, json=campaign_body())

        assert response.status_code == 403
        assert response.json() == {"errors": ["access denied"]}
    assert sandbox.campaigns == []


def test_services_given_as_mappings() -> None:
    with UmbrellaSandbox(api_key=KEY, services=[{"id": 7, "name": "x", "routes": ["r1"]}]) as server:
        assert call(server, "GET", CAMPAIGNS).json() == [{"id": 7, "name": "x", "routes": ["r1"]}]
        assert create(server, 7, route="r1").status_code == 200
        assert create(server, 1).status_code == 404


# --- create -------------------------------------------------------------------------------------------------


def test_create_a_campaign(sandbox: UmbrellaSandbox) -> None:
    response = create(sandbox, extra="ignored")

    assert response.status_code == 200
    assert response.json() == {"resultText": "Campaign created"}
    assert sandbox.campaigns == [
        {
            "serviceId": 1,
            "route": "abc123",
            "donationCode": "anna-40",
            "amount": 5000,
            "answerMessage": "Tak for din donation",
            "confirmMsisdn": "4512345678",
            "confirmText": "Din indsamling er nu oprettet",
            "callbackUrl": "http://127.0.0.1:9/callback",
            "active": True,
            "donations": [],
        }
    ]


@pytest.mark.parametrize(
    ("changes", "errors"),
    [
        ({"donationCode": ...}, ["donationCode is required"]),
        ({"amount": None}, ["amount is required"]),
        ({"amount": "5000"}, ["amount must be an integer (øre)"]),
        ({"amount": 50.5}, ["amount must be an integer (øre)"]),
        ({"amount": True}, ["amount must be an integer (øre)"]),
        ({"amount": 0}, ["amount must be from 1 to 2147483647"]),
        ({"amount": -100}, ["amount must be from 1 to 2147483647"]),
        ({"amount": 2**31}, ["amount must be from 1 to 2147483647"]),
        ({"route": "mykeyword"}, ["route is not a route of the service"]),
        ({"route": 5}, ["route must be a string"]),
        ({"confirmMsisdn": "+4512345678"}, ["confirmMsisdn must be an msisdn: 8 to 15 digits"]),
        ({"confirmMsisdn": "1234567"}, ["confirmMsisdn must be an msisdn: 8 to 15 digits"]),
        ({"confirmMsisdn": "1" * 16}, ["confirmMsisdn must be an msisdn: 8 to 15 digits"]),
        ({"confirmText": "  "}, ["confirmText must not be blank"]),
        ({"callbackUrl": "ftp://127.0.0.1/x"}, ["callbackUrl must be an http or https URL"]),
        (
            {"donationCode": ..., "amount": 0, "confirmMsisdn": CANARY},
            [
                "donationCode is required",
                "amount must be from 1 to 2147483647",
                "confirmMsisdn must be an msisdn: 8 to 15 digits",
            ],
        ),
    ],
)
def test_create_validation_names_the_field_never_the_value(
    sandbox: UmbrellaSandbox, changes: dict[str, Any], errors: list[str]
) -> None:
    response = create(sandbox, **changes)

    assert response.status_code == 400
    assert response.json() == {"errors": errors}
    assert CANARY not in response.text
    assert sandbox.campaigns == []


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"[1, 2]", "body must be a JSON object"),
        (b"", "body must be a JSON object"),
        (b"{nope", "body is not valid JSON"),
    ],
)
def test_create_needs_a_json_object(sandbox: UmbrellaSandbox, body: bytes, error: str) -> None:
    response = call(sandbox, "POST", f"{CAMPAIGNS}/1", data=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 400
    assert response.json() == {"errors": [error]}


@pytest.mark.parametrize(("service", "status"), [("9", 404), ("abc", 400), ("-1", 400)])
def test_unknown_or_invalid_service(sandbox: UmbrellaSandbox, service: str, status: int) -> None:
    created = call(sandbox, "POST", f"{CAMPAIGNS}/{service}", json=campaign_body())
    total = call(sandbox, "GET", f"{CAMPAIGNS}/{service}/abc123/anna-40")

    assert created.status_code == total.status_code == status
    assert created.json()["errors"]


def test_a_donation_code_is_unique_per_route_among_active_campaigns(sandbox: UmbrellaSandbox) -> None:
    first = create(sandbox)
    same = create(sandbox, amount=100)
    other_route = create(sandbox, route="hjerte")
    other_service = create(sandbox, 2, route="stoet")
    other_code = create(sandbox, donationCode="anna-41")
    stopped = call(sandbox, "DELETE", CAMPAIGN)
    again = create(sandbox, amount=200)

    assert first.status_code == 200
    assert same.status_code == 400
    assert same.json() == {"errors": ["donation code already in use on route"]}
    assert [r.status_code for r in (other_route, other_service, other_code, stopped, again)] == [200] * 5
    assert [(c["route"], c["amount"], c["active"]) for c in sandbox.campaigns if c["donationCode"] == "anna-40"] == [
        ("abc123", 5000, False),
        ("hjerte", 5000, True),
        ("stoet", 5000, True),
        ("abc123", 200, True),
    ]


def test_concurrent_creates_of_one_code_make_one_campaign(sandbox: UmbrellaSandbox) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: create(sandbox).status_code, range(16)))

    assert sorted(statuses) == [200] + [400] * 15
    assert len(sandbox.campaigns) == 1


# --- update, stop, and the 404 of a campaign that is not there ----------------------------------------------


def test_update_changes_the_fields_given(sandbox: UmbrellaSandbox) -> None:
    create(sandbox)

    updated = call(sandbox, "PUT", CAMPAIGN, json={"amount": 7500, "confirmMsisdn": "4531503823", "route": "x"})
    empty = call(sandbox, "PUT", CAMPAIGN, json={})

    assert updated.json() == {"resultText": "Campaign updated"}
    assert empty.status_code == 200
    [campaign] = sandbox.campaigns
    assert (campaign["amount"], campaign["confirmMsisdn"], campaign["route"]) == (7500, "4531503823", "abc123")


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"amount": 0}, ["amount must be from 1 to 2147483647"]),
        ({"confirmMsisdn": "45-12"}, ["confirmMsisdn must be an msisdn: 8 to 15 digits"]),
        (
            {"answerMessage": 3, "callbackUrl": "mailto:x"},
            ["callbackUrl must be an http or https URL", "answerMessage must be a string"],
        ),
        ([], ["body must be a JSON object"]),
    ],
)
def test_update_validation(sandbox: UmbrellaSandbox, body: Any, errors: list[str]) -> None:
    create(sandbox)

    response = call(sandbox, "PUT", CAMPAIGN, json=body)

    assert response.status_code == 400
    assert response.json() == {"errors": errors}
    assert sandbox.campaigns[0]["amount"] == 5000


def test_update_with_a_body_that_is_not_json(sandbox: UmbrellaSandbox) -> None:
    create(sandbox)

    response = call(sandbox, "PUT", CAMPAIGN, data=b"{", headers={"Content-Type": "application/json"})

    assert response.json() == {"errors": ["body is not valid JSON"]}


def test_stop_then_every_call_on_the_campaign_is_404(sandbox: UmbrellaSandbox) -> None:
    create(sandbox)

    stopped = call(sandbox, "DELETE", CAMPAIGN)
    after = [
        call(sandbox, "DELETE", CAMPAIGN),
        call(sandbox, "PUT", CAMPAIGN, json={"amount": 1}),
        call(sandbox, "GET", CAMPAIGN),
        call(sandbox, "GET", f"{CAMPAIGN}/donations"),
        call(sandbox, "GET", f"{CAMPAIGNS}/1/abc123/never-created"),
    ]

    assert stopped.json() == {"resultText": "Campaign stopped"}
    assert [r.status_code for r in after] == [404] * 5
    assert all(r.json() == {"errors": ["campaign does not exist"]} for r in after)
    assert sandbox.campaigns[0]["active"] is False
    with pytest.raises(CampaignNotFound):
        sandbox.donate(1, "abc123", "anna-40")


# --- totals and donations -----------------------------------------------------------------------------------


def test_totals_and_donations_since_a_timestamp(sandbox: UmbrellaSandbox) -> None:
    create(sandbox)
    start = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    for minutes, amount in ((0, 5000), (10, 2000), (20, 10000)):
        sandbox.donate(
            1, "abc123", "anna-40", amount=amount, deliver=False, donated_at=start + timedelta(minutes=minutes)
        )
    since = int((start + timedelta(minutes=10)).timestamp())

    total = call(sandbox, "GET", CAMPAIGN)
    recent = call(sandbox, "GET", CAMPAIGN, params={"timestampSince": str(since)})
    future = call(sandbox, "GET", CAMPAIGN, params={"timestampSince": str(since + 3600)})
    donations = call(sandbox, "GET", f"{CAMPAIGN}/donations", params={"timestampSince": str(since)})

    assert total.json() == {"amount": 17000, "timestampSince": None}
    assert recent.json() == {"amount": 12000, "timestampSince": since}
    assert future.json() == {"amount": 0, "timestampSince": since + 3600}
    assert [d["amount"] for d in donations.json()] == [2000, 10000]
    assert donations.json()[0]["donatedAt"] == "2025-03-01T12:10:00+00:00"
    assert set(donations.json()[0]) == {
        "amount",
        "donatedAt",
        "donationCode",
        "messageKey",
        "msisdn",
        "routeName",
        "text",
    }


@pytest.mark.parametrize("since", ["soon", "-5", "1.5", ""])
def test_an_invalid_timestamp_is_400(sandbox: UmbrellaSandbox, since: str) -> None:
    create(sandbox)

    response = call(sandbox, "GET", f"{CAMPAIGN}/donations", params={"timestampSince": since})

    assert response.status_code == 400
    assert response.json() == {"errors": ["timestampSince must be an integer (seconds since 1970)"]}


def test_amounts_as_strings_like_the_documentation_example() -> None:
    with UmbrellaSandbox(api_key=KEY, amounts_as_strings=True) as server:
        create(server)
        outcome = server.donate(1, "abc123", "anna-40", deliver=False)

        donations = call(server, "GET", f"{CAMPAIGN}/donations").json()
        total = call(server, "GET", CAMPAIGN).json()

    assert outcome["donation"]["amount"] == "5000"
    assert donations[0]["amount"] == "5000"
    assert total["amount"] == 5000
    assert server.campaigns[0]["donations"][0]["amount"] == 5000


# --- the donor ----------------------------------------------------------------------------------------------


def test_donate_records_and_calls_back_with_json(sandbox: UmbrellaSandbox, receiver: CallbackReceiver) -> None:
    create(sandbox, callbackUrl=receiver.url)
    before = datetime.now(UTC).replace(microsecond=0)

    outcome = sandbox.donate(1, "abc123", "anna-40", msisdn="4587654321")

    donation = outcome["donation"]
    assert outcome["deliveries"] == [{"status": 200}]
    assert donation["amount"] == 5000
    assert donation["text"] == "Tak for din donation"
    assert donation["msisdn"] == "4587654321"
    assert (donation["routeName"], donation["donationCode"]) == ("abc123", "anna-40")
    assert donation["donatedAt"].endswith("+00:00")
    assert datetime.fromisoformat(donation["donatedAt"]) >= before
    assert len(donation["messageKey"]) == 36
    [received] = receiver.received
    assert (received.method, received.path, received.content_type) == (
        "POST",
        "/donations/callback",
        "application/json",
    )
    assert received.query == {"token": ["c4mp41gn"]}
    assert json.loads(received.body) == donation
    assert sandbox.campaigns[0]["donations"] == [donation]


def test_donate_calls_back_with_a_form(sandbox: UmbrellaSandbox, receiver: CallbackReceiver) -> None:
    create(sandbox, callbackUrl=receiver.url)

    outcome = sandbox.donate(1, "abc123", "anna-40", amount=2500, text="Mange tak", payload_form="form")

    [received] = receiver.received
    assert received.method == "POST"
    assert received.content_type == "application/x-www-form-urlencoded"
    form = {name: values[0] for name, values in parse_qs(received.body.decode()).items()}
    assert form == {name: str(value) for name, value in outcome["donation"].items()}
    assert form["amount"] == "2500"
    assert form["text"] == "Mange tak"


def test_donate_calls_back_with_query_parameters_keeping_the_token(
    sandbox: UmbrellaSandbox, receiver: CallbackReceiver
) -> None:
    create(sandbox, callbackUrl=receiver.url)

    outcome = sandbox.donate(1, "abc123", "anna-40", payload_form="query")

    [received] = receiver.received
    assert (received.method, received.body) == ("GET", b"")
    assert received.query["token"] == ["c4mp41gn"]
    assert received.query["messageKey"] == [outcome["donation"]["messageKey"]]
    assert received.query["amount"] == ["5000"]


def test_donate_to_a_callback_url_without_a_query(sandbox: UmbrellaSandbox, receiver: CallbackReceiver) -> None:
    create(sandbox, callbackUrl=receiver.url.split("?")[0])

    sandbox.donate(1, "abc123", "anna-40", payload_form="query")

    assert set(receiver.received[0].query) == {
        "amount",
        "donatedAt",
        "donationCode",
        "messageKey",
        "msisdn",
        "routeName",
        "text",
    }


def test_a_dropped_callback_records_the_donation_only(sandbox: UmbrellaSandbox, receiver: CallbackReceiver) -> None:
    create(sandbox, callbackUrl=receiver.url)

    outcome = sandbox.donate(1, "abc123", "anna-40", deliver=False, repeat=3)

    assert outcome["deliveries"] == []
    assert receiver.received == []
    assert call(sandbox, "GET", CAMPAIGN).json()["amount"] == 5000


def test_repeat_delivers_the_same_donation_again(sandbox: UmbrellaSandbox, receiver: CallbackReceiver) -> None:
    create(sandbox, callbackUrl=receiver.url)

    outcome = sandbox.donate(1, "abc123", "anna-40", repeat=3)

    assert outcome["deliveries"] == [{"status": 200}] * 3
    assert len({json.loads(r.body)["messageKey"] for r in receiver.received}) == 1
    assert len(receiver.received) == 3
    assert len(sandbox.campaigns[0]["donations"]) == 1


def test_callback_failures_are_reported_not_raised(sandbox: UmbrellaSandbox, receiver: CallbackReceiver) -> None:
    create(sandbox, callbackUrl=receiver.url)
    receiver.status = 500
    failing = sandbox.donate(1, "abc123", "anna-40")
    receiver.status, receiver.location = 302, "http://example.com/elsewhere"
    redirected = sandbox.donate(1, "abc123", "anna-40")
    sandbox.reset()
    create(sandbox, callbackUrl="http://127.0.0.1:9/closed")
    refused = sandbox.donate(1, "abc123", "anna-40")

    assert failing["deliveries"] == [{"status": 500}]
    assert redirected["deliveries"] == [{"status": 302}]  # not followed: it could lead off loopback
    assert len(receiver.received) == 2
    assert refused["deliveries"] == [{"status": None, "error": "ConnectionRefusedError"}]


def test_a_callback_that_answers_too_late_is_reported(
    sandbox: UmbrellaSandbox, receiver: CallbackReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    create(sandbox, callbackUrl=receiver.url)
    monkeypatch.setattr("sandboxes.umbrella_callbacks.CALLBACK_TIMEOUT_SECONDS", 0.05)
    receiver.delay = 0.3

    outcome = sandbox.donate(1, "abc123", "anna-40")

    assert outcome["deliveries"] == [{"status": None, "error": "TimeoutError"}]
    assert len(sandbox.campaigns[0]["donations"]) == 1


@pytest.mark.parametrize(
    "url",
    ["http://example.com/callback", "http://10.0.0.1/cb", "http://127.0.0.1.nip.io/cb", "https://localhost.evil.test/"],
)
def test_a_callback_off_loopback_is_refused_and_never_sent(sandbox: UmbrellaSandbox, url: str) -> None:
    create(sandbox, callbackUrl=url)

    with pytest.raises(DonationRefused, match="loopback"):
        sandbox.donate(1, "abc123", "anna-40")
    over_http = call(
        sandbox,
        "POST",
        "/_sandbox/donate",
        auth=False,
        json={"serviceId": 1, "route": "abc123", "donationCode": "anna-40"},
    )
    recorded_only = sandbox.donate(1, "abc123", "anna-40", deliver=False)

    assert over_http.status_code == 400
    assert "loopback" in over_http.json()["errors"][0]
    assert recorded_only["deliveries"] == []
    assert len(sandbox.campaigns[0]["donations"]) == 1
    with pytest.raises(DonationRefused):
        deliver_callback(url, {"amount": 1}, "json")


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:3000/cb", True),
        ("https://localhost/cb?x=1", True),
        ("http://LOCALHOST:1/", True),
        ("http://[::1]:8080/cb", True),
        ("ftp://127.0.0.1/cb", False),
        ("http://127.0.0.2/cb", False),
        ("http://127.0.0.1@example.com/", False),
        ("http://127.0.0.1:notaport/", False),
        ("not a url", False),
    ],
)
def test_is_loopback_url(url: str, loopback: bool) -> None:
    assert is_loopback_url(url) is loopback


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"amount": 0}, "amount must be a positive integer"),
        ({"amount": 1.5}, "amount must be a positive integer"),
        ({"msisdn": "+45 12"}, "msisdn must be 8 to 15 digits"),
        ({"text": 5}, "text must be a string"),
        ({"deliver": "yes"}, "deliver must be true or false"),
        ({"payload_form": "xml"}, "payload_form must be one of: form, json, query"),
        ({"repeat": 0}, "repeat must be an integer from 1 to 100"),
        ({"repeat": True}, "repeat must be an integer from 1 to 100"),
        ({"donated_at": datetime(2025, 1, 1)}, "donated_at must be a timezone-aware datetime"),
    ],
)
def test_donate_options_are_checked(sandbox: UmbrellaSandbox, options: dict[str, Any], problem: str) -> None:
    create(sandbox)

    with pytest.raises(DonationRefused, match=problem):
        sandbox.donate(1, "abc123", "anna-40", **options)
    assert sandbox.campaigns[0]["donations"] == []


def test_donate_over_http(sandbox: UmbrellaSandbox, receiver: CallbackReceiver) -> None:
    create(sandbox, callbackUrl=receiver.url)
    spec = {
        "serviceId": 1,
        "route": "abc123",
        "donationCode": "anna-40",
        "amount": 1000,
        "msisdn": "4511223344",
        "text": "Tak!",
        "payload_form": "form",
        "repeat": 2,
        "donated_at": "2025-03-01T13:00:00+01:00",
    }

    response = call(sandbox, "POST", "/_sandbox/donate", auth=False, json=spec)

    assert response.status_code == 200
    body = response.json()
    assert body["deliveries"] == [{"status": 200}, {"status": 200}]
    assert body["donation"]["donatedAt"] == "2025-03-01T12:00:00+00:00"
    assert (body["donation"]["amount"], body["donation"]["msisdn"], body["donation"]["text"]) == (
        1000,
        "4511223344",
        "Tak!",
    )
    assert len(receiver.received) == 2
    assert [r.path for r in sandbox.requests] == [f"{CAMPAIGNS}/1"]  # control traffic is not recorded


@pytest.mark.parametrize(
    ("spec", "status", "errors"),
    [
        ([], 400, ["body must be a JSON object"]),
        (
            {"serviceId": 1, "route": "abc123", "donationCode": "anna-40", "color": "red"},
            400,
            ["unknown fields: color"],
        ),
        (
            {"serviceId": "1", "route": 2},
            400,
            ["serviceId must be an integer", "route must be a string", "donationCode must be a string"],
        ),
        (
            {"serviceId": 1, "route": "abc123", "donationCode": "anna-40", "donated_at": "today"},
            400,
            ["donated_at must be an ISO-8601 date-time with an offset"],
        ),
        (
            {"serviceId": 1, "route": "abc123", "donationCode": "anna-40", "donated_at": "2025-01-01T00:00:00"},
            400,
            ["donated_at must be an ISO-8601 date-time with an offset"],
        ),
        (
            {"serviceId": 1, "route": "abc123", "donationCode": "anna-40", "repeat": 0},
            400,
            ["repeat must be an integer from 1 to 100"],
        ),
        (
            {"serviceId": 1, "route": "abc123", "donationCode": "nobody", "deliver": False},
            404,
            ["campaign does not exist"],
        ),
        ({"serviceId": 2, "route": "abc123", "donationCode": "anna-40"}, 404, ["campaign does not exist"]),
    ],
)
def test_donate_over_http_refusals(sandbox: UmbrellaSandbox, spec: Any, status: int, errors: list[str]) -> None:
    create(sandbox)

    response = call(sandbox, "POST", "/_sandbox/donate", auth=False, json=spec)

    assert response.status_code == status
    assert response.json() == {"errors": errors}
    assert sandbox.campaigns[0]["donations"] == []


# --- inspection, faults, reset ------------------------------------------------------------------------------


def test_campaigns_are_a_snapshot(sandbox: UmbrellaSandbox) -> None:
    create(sandbox)
    sandbox.donate(1, "abc123", "anna-40", deliver=False)

    snapshot = sandbox.campaigns
    snapshot[0]["amount"] = 1
    snapshot[0]["donations"][0]["amount"] = 1

    assert sandbox.campaigns[0]["amount"] == 5000
    assert sandbox.campaigns[0]["donations"][0]["amount"] == 5000


def test_a_status_fault_answers_before_any_effect(sandbox: UmbrellaSandbox) -> None:
    sandbox.faults.add("status", status=502, count=1, path_prefix=f"{CAMPAIGNS}/1")

    faulted = create(sandbox)
    healthy = create(sandbox)

    assert (faulted.status_code, healthy.status_code) == (502, 200)
    assert len(sandbox.campaigns) == 1
    assert [r.faulted for r in sandbox.requests] == [True, False]


def test_faults_over_the_control_route(sandbox: UmbrellaSandbox) -> None:
    added = call(
        sandbox, "POST", "/_sandbox/faults", auth=False, json={"mode": "rate_limit", "retry_after": 3, "count": 1}
    )

    limited = call(sandbox, "GET", CAMPAIGNS)

    assert added.status_code == 201
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "3"


def test_reset_forgets_campaigns(sandbox: UmbrellaSandbox) -> None:
    create(sandbox)

    assert call(sandbox, "POST", "/_sandbox/reset", auth=False).json() == {"reset": True}
    assert sandbox.campaigns == []
    assert sandbox.requests == []


# --- standalone ---------------------------------------------------------------------------------------------


def test_main_prints_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    stop = threading.Event()
    stop.set()

    assert main(["--port", "0", "--api-key", "k", "--amounts-as-strings"], stop) == 0

    assert capsys.readouterr().out.startswith("http://127.0.0.1:")


def test_python_dash_m_runs_the_sandbox() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "local")}
    command = [sys.executable, "-m", "sandboxes.umbrella", "--port", "0", "--api-key", "cli-key"]
    options: dict[str, Any] = {"stdout": subprocess.PIPE, "text": True, "env": env, "cwd": REPO_ROOT}
    with subprocess.Popen(command, **options) as process:  # noqa: S603 - our own interpreter and module
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            response = requests.get(f"{url}{CAMPAIGNS}", params={"apikey": "cli-key"}, timeout=TIMEOUT)
        finally:
            process.terminate()

    assert url.startswith("http://127.0.0.1:")
    assert response.status_code == 200
    assert response.json()[0]["routes"] == ["abc123", "hjerte"]


def test_the_default_key_matches_the_local_stack() -> None:
    assert UmbrellaSandbox().api_key == DEFAULT_API_KEY == "local-umbrella-key"


def test_the_sms_the_platform_sends_are_kept_as_a_phone_would_receive_them(sandbox: UmbrellaSandbox) -> None:
    assert create(sandbox).status_code == 200
    assert create(sandbox, donationCode="other").status_code == 200
    assert create(sandbox, donationCode="third", confirmMsisdn="4599999999").status_code == 200
    confirm = {"to": "4512345678", "kind": "confirm", "text": "Din indsamling er nu oprettet"}
    assert sandbox.sent_sms("4512345678") == [confirm, confirm]
    sandbox.donate(1, "abc123", "anna-40", msisdn="4587654321", deliver=False)
    answer = {"to": "4587654321", "kind": "answer", "text": "Tak for din donation"}
    assert sandbox.sent_sms("4587654321") == [answer]
    assert len(sandbox.sent_sms()) == 4
    listed = call(sandbox, "GET", "/_sandbox/sms", auth=False, params={"to": "4587654321"})
    assert listed.json() == [answer]
    # A refused create sends nothing.
    assert create(sandbox, donationCode="other").status_code == 400
    assert len(sandbox.sent_sms("4512345678")) == 2
    sandbox.reset()
    assert sandbox.sent_sms() == []
