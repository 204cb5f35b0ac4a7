"""The Umbrella adapter against the Umbrella sandbox over loopback HTTP: every endpoint, every failure mode."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from partners.errors import (
    PartnerAuthError,
    PartnerBadResponse,
    PartnerNotFound,
    PartnerRejected,
    PartnerUnavailable,
)
from partners.http import RetryPolicy, Timeouts
from partners.umbrella import (
    CampaignCreationRequest,
    CampaignDonation,
    CampaignResult,
    CampaignService,
    CampaignTotalResult,
    CampaignUpdateRequest,
    CodeInUse,
    CreateOutcome,
    UmbrellaClient,
)
from sandboxes.base import SandboxServer
from sandboxes.messages import SandboxRequest, SandboxResponse, json_response
from sandboxes.umbrella import UmbrellaSandbox
from sandboxes.umbrella_rules import SEED_SERVICES

KEY = "umb-PRIVACY-CANARY-key-5e1d"
MSISDN = "4598765432"  # the campaign creator's
DONOR = "4587654321"
SERVICE = 1
ROUTE = "abc123"
CODE = "anna-40"
CAMPAIGNS = "/public/v1/campaign"
CREATE_PATH = f"{CAMPAIGNS}/{SERVICE}"
CAMPAIGN_PATH = f"{CAMPAIGNS}/{SERVICE}/{ROUTE}/{CODE}"
READ_TIMEOUT = 0.2
SLOW = 0.45  # longer than READ_TIMEOUT: the client gives up, the sandbox carries on


def creation(**changes: Any) -> CampaignCreationRequest:
    fields: dict[str, Any] = {
        "donationCode": CODE,
        "route": ROUTE,
        "amount": 5000,
        "callbackUrl": "http://127.0.0.1:9/callback?token=t0k3n",
        "answerMessage": "Tak for din donation",
        "confirmMsisdn": MSISDN,
        "confirmText": "Din indsamling er nu oprettet",
    }
    return CampaignCreationRequest(**{**fields, **changes})


def wait_until(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.fixture(scope="module")
def running() -> Iterator[UmbrellaSandbox]:
    with UmbrellaSandbox(api_key=KEY) as server:
        yield server


@pytest.fixture
def sandbox(running: UmbrellaSandbox) -> Iterator[UmbrellaSandbox]:
    running.reset()
    yield running
    running.faults.clear()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_client(sandbox: UmbrellaSandbox, sleeps: list[float]) -> Callable[..., UmbrellaClient]:
    def make(url: str | None = None, *, sleep: Callable[[float], None] | None = None, **options: Any) -> UmbrellaClient:
        settings: dict[str, Any] = {
            "timeouts": Timeouts(connect=0.5, read=READ_TIMEOUT),
            "retry": RetryPolicy(max_attempts=3, max_retry_after=2.0),
            "sleep": sleep or sleeps.append,
            **options,
        }
        return UmbrellaClient(url or sandbox.url, lambda: KEY, **settings)

    return make


@pytest.fixture
def client(make_client: Callable[..., UmbrellaClient]) -> UmbrellaClient:
    return make_client()


def paths(sandbox: SandboxServer) -> list[str]:
    return [f"{r.method} {r.path}" for r in sandbox.requests]


# --- success paths and the key ------------------------------------------------------------------------------


def test_services_with_the_key_as_the_apikey_query_parameter(client: UmbrellaClient, sandbox: UmbrellaSandbox) -> None:
    services = client.list_services()

    assert services == [CampaignService(id=s.id, name=s.name, routes=list(s.routes)) for s in SEED_SERVICES]
    [recorded] = sandbox.requests
    assert recorded.query == {"apikey": [KEY]}
    assert "authorization" not in recorded.headers


def test_the_key_as_a_bearer_token(make_client: Callable[..., UmbrellaClient], sandbox: UmbrellaSandbox) -> None:
    client = make_client(key_placement="bearer")

    assert client.list_services()[0].routes == ["abc123", "hjerte"]
    [recorded] = sandbox.requests
    assert recorded.query == {}
    assert recorded.headers["Authorization"] == f"Bearer {KEY}"


def test_a_wrong_key_is_an_auth_error_and_not_retried(sandbox: UmbrellaSandbox, sleeps: list[float]) -> None:
    wrong = UmbrellaClient(sandbox.url, lambda: "not-the-key", sleep=sleeps.append)

    with pytest.raises(PartnerAuthError) as caught:
        wrong.create_campaign(SERVICE, creation())

    assert caught.value.status == 403
    assert caught.value.message.startswith("access denied")
    assert "UMBRELLA_PROFILE.key_parameter" in caught.value.message
    assert len(sandbox.requests) == 1
    assert sleeps == []
    assert sandbox.campaigns == []


def test_a_key_under_another_parameter_name_is_refused(
    make_client: Callable[..., UmbrellaClient], sandbox: UmbrellaSandbox
) -> None:
    client = make_client(key_parameter="apiKey")

    with pytest.raises(PartnerAuthError):
        client.list_services()
    assert sandbox.requests[0].query == {"apiKey": [KEY]}


def test_create_a_campaign(client: UmbrellaClient, sandbox: UmbrellaSandbox, sleeps: list[float]) -> None:
    outcome = client.create_campaign(SERVICE, creation())

    assert outcome == CreateOutcome(result=CampaignResult(resultText="Campaign created"), recovered=False)
    [campaign] = sandbox.campaigns
    assert campaign["serviceId"] == SERVICE
    assert (campaign["route"], campaign["donationCode"], campaign["amount"]) == (ROUTE, CODE, 5000)
    assert campaign["confirmMsisdn"] == MSISDN
    assert campaign["active"] is True
    assert paths(sandbox) == [f"POST {CREATE_PATH}"]
    assert sandbox.requests[0].body_json == creation().model_dump()
    assert sleeps == []


def test_route_and_code_are_percent_encoded_path_segments(client: UmbrellaClient, sandbox: UmbrellaSandbox) -> None:
    code = "anna & bo/2?x=1#æ"
    client.create_campaign(SERVICE, creation(donationCode=code))

    client.donations(SERVICE, ROUTE, code)
    total = client.collected_amount(SERVICE, ROUTE, code)

    assert total.amount == 0
    assert sandbox.campaigns[0]["donationCode"] == code
    assert sandbox.requests[-1].path == f"{CAMPAIGNS}/{SERVICE}/{ROUTE}/anna%20%26%20bo%2F2%3Fx%3D1%23%C3%A6"
    assert sandbox.requests[-1].query == {"apikey": [KEY]}


def test_update_sends_only_the_fields_given(client: UmbrellaClient, sandbox: UmbrellaSandbox) -> None:
    client.create_campaign(SERVICE, creation())

    result = client.update_campaign(SERVICE, ROUTE, CODE, CampaignUpdateRequest(amount=7500, confirmText="Ny tekst"))

    assert result == CampaignResult(resultText="Campaign updated")
    assert sandbox.requests[-1].body_json == {"amount": 7500, "confirmText": "Ny tekst"}
    assert sandbox.campaigns[0]["amount"] == 7500
    assert sandbox.campaigns[0]["confirmText"] == "Ny tekst"
    assert sandbox.campaigns[0]["answerMessage"] == "Tak for din donation"


def test_update_of_an_unknown_campaign_is_not_found(client: UmbrellaClient) -> None:
    with pytest.raises(PartnerNotFound) as caught:
        client.update_campaign(SERVICE, ROUTE, "nobody", CampaignUpdateRequest(amount=100))
    assert caught.value.message == "campaign does not exist"


def test_stop_then_stop_again_is_already_stopped(client: UmbrellaClient, sandbox: UmbrellaSandbox) -> None:
    client.create_campaign(SERVICE, creation())

    first = client.stop_campaign(SERVICE, ROUTE, CODE)
    second = client.stop_campaign(SERVICE, ROUTE, CODE)

    assert (first.already_stopped, first.result.resultText) == (False, "Campaign stopped")
    assert (second.already_stopped, second.result.resultText) == (True, "campaign does not exist")
    assert sandbox.campaigns[0]["active"] is False
    with pytest.raises(PartnerNotFound):
        client.collected_amount(SERVICE, ROUTE, CODE)


def test_totals_and_donations_since(client: UmbrellaClient, sandbox: UmbrellaSandbox) -> None:
    client.create_campaign(SERVICE, creation())
    start = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    for minutes, amount in ((0, 5000), (10, 2000), (20, 10000)):
        sandbox.donate(
            SERVICE,
            ROUTE,
            CODE,
            amount=amount,
            msisdn=DONOR,
            deliver=False,
            donated_at=start + timedelta(minutes=minutes),
        )
    since = start + timedelta(minutes=10)

    everything = client.collected_amount(SERVICE, ROUTE, CODE)
    recent_by_int = client.collected_amount(SERVICE, ROUTE, CODE, since=int(since.timestamp()))
    recent_by_datetime = client.collected_amount(
        SERVICE, ROUTE, CODE, since=since.astimezone(timezone(timedelta(hours=2)))
    )
    donations = client.donations(SERVICE, ROUTE, CODE, since=since + timedelta(microseconds=500))
    all_donations = client.donations(SERVICE, ROUTE, CODE)

    assert everything == CampaignTotalResult(amount=17000, timestampSince=None)
    assert (
        recent_by_int == recent_by_datetime == CampaignTotalResult(amount=12000, timestampSince=int(since.timestamp()))
    )
    assert [d.amount for d in donations] == [2000, 10000]  # floored to the second: the boundary is included
    assert donations[0].donatedAt == since
    assert donations[0].msisdn == DONOR
    assert donations[0].routeName == ROUTE
    assert donations[0].donationCode == CODE
    assert donations[0].text == "Tak for din donation"
    assert len(all_donations) == 3
    assert len({d.messageKey for d in all_donations}) == 3
    assert sandbox.requests[-2].query == {"timestampSince": [str(int(since.timestamp()))], "apikey": [KEY]}


def test_string_amounts_as_in_the_documentation_example(sleeps: list[float]) -> None:
    with UmbrellaSandbox(api_key=KEY, amounts_as_strings=True) as server:
        client = UmbrellaClient(server.url, lambda: KEY, sleep=sleeps.append)
        client.create_campaign(SERVICE, creation())
        server.donate(SERVICE, ROUTE, CODE, deliver=False)

        raw = client.http.request("GET", f"{CAMPAIGN_PATH}/donations").json()
        donations = client.donations(SERVICE, ROUTE, CODE)

    assert raw[0]["amount"] == "5000"
    assert donations[0].amount == 5000


# --- partner refusals ---------------------------------------------------------------------------------------


def test_a_code_in_use_is_final(client: UmbrellaClient, sandbox: UmbrellaSandbox, sleeps: list[float]) -> None:
    client.create_campaign(SERVICE, creation())

    with pytest.raises(CodeInUse) as caught:
        client.create_campaign(SERVICE, creation(amount=1000))

    assert isinstance(caught.value, PartnerRejected)
    assert caught.value.status == 400
    assert caught.value.message == "donation code already in use on route"
    assert paths(sandbox) == [f"POST {CREATE_PATH}"] * 2
    assert sleeps == []


def test_other_400s_are_rejections_with_the_partner_errors(client: UmbrellaClient, sandbox: UmbrellaSandbox) -> None:
    with pytest.raises(PartnerRejected) as caught:
        client.create_campaign(SERVICE, creation(route="mykeyword", confirmMsisdn="+45 12"))

    assert not isinstance(caught.value, CodeInUse)
    assert caught.value.status == 400
    assert caught.value.message == (
        "route is not a route of the service; confirmMsisdn must be an msisdn: 8 to 15 digits"
    )
    assert len(sandbox.requests) == 1
    assert sandbox.campaigns == []


def test_an_unknown_service_is_not_found(client: UmbrellaClient) -> None:
    with pytest.raises(PartnerNotFound) as caught:
        client.create_campaign(99, creation())
    assert caught.value.message == "service does not exist"


def test_a_negative_since_on_the_wire_is_a_rejection(client: UmbrellaClient, sandbox: UmbrellaSandbox) -> None:
    client.create_campaign(SERVICE, creation())

    with pytest.raises(PartnerRejected) as caught:
        client.http.request("GET", CAMPAIGN_PATH, params={"timestampSince": "-1"})

    assert "timestampSince" in caught.value.message


# --- transient failures on idempotent calls -----------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_reads_retry_5xx_with_backoff(
    client: UmbrellaClient, sandbox: UmbrellaSandbox, sleeps: list[float], status: int
) -> None:
    sandbox.faults.add("status", status=status, count=2)

    assert len(client.list_services()) == 2
    assert len(sleeps) == 2
    assert all(0 <= s <= 2.0 for s in sleeps)
    assert len(sandbox.requests) == 3


def test_persistent_5xx_is_unavailable(client: UmbrellaClient, sandbox: UmbrellaSandbox) -> None:
    client.create_campaign(SERVICE, creation())
    sandbox.faults.add("status", status=503, path_prefix=CAMPAIGN_PATH)

    with pytest.raises(PartnerUnavailable) as caught:
        client.stop_campaign(SERVICE, ROUTE, CODE)

    assert caught.value.status == 503
    assert len(sandbox.requests) == 1 + 3
    assert sandbox.campaigns[0]["active"] is True


def test_retry_after_is_honoured(client: UmbrellaClient, sandbox: UmbrellaSandbox, sleeps: list[float]) -> None:
    client.create_campaign(SERVICE, creation())
    sandbox.faults.add("rate_limit", retry_after=1, count=1)

    assert client.update_campaign(SERVICE, ROUTE, CODE, CampaignUpdateRequest(amount=10)).resultText
    assert sleeps == [1.0]
    assert sandbox.campaigns[0]["amount"] == 10


def test_a_retry_after_beyond_the_cap_is_not_slept(
    client: UmbrellaClient, sandbox: UmbrellaSandbox, sleeps: list[float]
) -> None:
    sandbox.faults.add("rate_limit", retry_after=60, count=1)

    with pytest.raises(PartnerUnavailable) as caught:
        client.list_services()

    assert caught.value.status == 429
    assert caught.value.retry_after == 60
    assert sleeps == []


def test_a_read_timeout_is_retried_then_succeeds(
    client: UmbrellaClient, sandbox: UmbrellaSandbox, sleeps: list[float]
) -> None:
    sandbox.faults.add("slow", delay=SLOW, count=1)

    assert client.list_services()
    assert len(sleeps) == 1
    assert [r.faulted for r in sandbox.requests] == [True, False]


def test_timeouts_on_every_attempt_are_unavailable(client: UmbrellaClient, sandbox: UmbrellaSandbox) -> None:
    sandbox.faults.add("slow", delay=SLOW, count=3)

    with pytest.raises(PartnerUnavailable) as caught:
        client.list_services()

    assert caught.value.message == "read timeout"
    assert caught.value.ambiguous
    assert len(sandbox.requests) == 3


@pytest.mark.parametrize("call", ["services", "total", "donations", "update", "stop"])
def test_a_malformed_body_is_a_bad_response(client: UmbrellaClient, sandbox: UmbrellaSandbox, call: str) -> None:
    client.create_campaign(SERVICE, creation())
    sandbox.faults.add("malformed", count=1)
    calls: dict[str, Callable[[], object]] = {
        "services": client.list_services,
        "total": lambda: client.collected_amount(SERVICE, ROUTE, CODE),
        "donations": lambda: client.donations(SERVICE, ROUTE, CODE),
        "update": lambda: client.update_campaign(SERVICE, ROUTE, CODE, CampaignUpdateRequest(amount=1)),
        "stop": lambda: client.stop_campaign(SERVICE, ROUTE, CODE),
    }

    with pytest.raises(PartnerBadResponse) as caught:
        calls[call]()

    assert caught.value.status == 200
    assert not caught.value.ambiguous


# --- create: not idempotent, ambiguity resolved by looking the campaign up ----------------------------------


def test_a_create_that_timed_out_but_succeeded_is_recovered_without_a_second_post(
    make_client: Callable[..., UmbrellaClient], sandbox: UmbrellaSandbox
) -> None:
    waits: list[float] = []

    def backoff(seconds: float) -> None:
        # The backoff before the look-up is when a POST still in flight at the partner lands.
        waits.append(seconds)
        wait_until(lambda: len(sandbox.campaigns) == 1)

    client = make_client(sleep=backoff)
    sandbox.faults.add("slow", delay=SLOW, count=1, path_prefix=CREATE_PATH)

    outcome = client.create_campaign(SERVICE, creation())

    assert outcome == CreateOutcome(result=CampaignResult(resultText="Campaign created"), recovered=True)
    assert len(sandbox.campaigns) == 1
    assert paths(sandbox) == [f"POST {CREATE_PATH}", f"GET {CAMPAIGN_PATH}"]
    assert len(waits) == 1


@pytest.mark.parametrize("fault", ["status", "malformed"])
def test_a_create_that_failed_before_creating_is_posted_again(
    client: UmbrellaClient, sandbox: UmbrellaSandbox, sleeps: list[float], fault: str
) -> None:
    sandbox.faults.add(fault, status=502, count=1, path_prefix=CREATE_PATH)  # type: ignore[arg-type]

    outcome = client.create_campaign(SERVICE, creation())

    assert outcome == CreateOutcome(result=CampaignResult(resultText="Campaign created"), recovered=False)
    assert len(sandbox.campaigns) == 1
    assert paths(sandbox) == [f"POST {CREATE_PATH}", f"GET {CAMPAIGN_PATH}", f"POST {CREATE_PATH}"]
    assert [r.faulted for r in sandbox.requests] == [True, False, False]
    assert len(sleeps) == 1


def test_a_retried_post_meeting_our_own_first_attempt_is_recovered(
    make_client: Callable[..., UmbrellaClient], sandbox: UmbrellaSandbox
) -> None:
    client = make_client(sleep=lambda _: wait_until(lambda: len(sandbox.campaigns) == 1))
    sandbox.faults.add("slow", delay=SLOW, count=1, path_prefix=CREATE_PATH)
    # The look-up misses the campaign (as a lagging read replica would), so the POST is sent again.
    sandbox.faults.add("status", status=404, count=1, path_prefix=CAMPAIGN_PATH)

    outcome = client.create_campaign(SERVICE, creation())

    assert outcome.recovered is True
    assert outcome.result.resultText == "Campaign created"
    assert len(sandbox.campaigns) == 1
    assert paths(sandbox) == [f"POST {CREATE_PATH}", f"GET {CAMPAIGN_PATH}", f"POST {CREATE_PATH}"]


def test_when_the_look_up_fails_too_the_original_ambiguous_failure_is_raised(
    client: UmbrellaClient, sandbox: UmbrellaSandbox
) -> None:
    sandbox.faults.add("status", status=502, count=1, path_prefix=CREATE_PATH)
    sandbox.faults.add("status", status=503, count=3, path_prefix=CAMPAIGN_PATH)

    with pytest.raises(PartnerUnavailable) as caught:
        client.create_campaign(SERVICE, creation())

    assert caught.value.status == 502
    assert caught.value.ambiguous
    assert paths(sandbox) == [f"POST {CREATE_PATH}"] + [f"GET {CAMPAIGN_PATH}"] * 3
    assert sandbox.campaigns == []


@pytest.mark.parametrize("mode", ["rate_limit", "drop_connection_refused"])
def test_a_non_ambiguous_failure_is_raised_as_is(
    client: UmbrellaClient, sandbox: UmbrellaSandbox, sleeps: list[float], mode: str
) -> None:
    if mode == "rate_limit":
        sandbox.faults.add("rate_limit", retry_after=1, count=1)
        with pytest.raises(PartnerUnavailable) as caught:
            client.create_campaign(SERVICE, creation())
        assert caught.value.status == 429
        assert caught.value.retry_after == 1
        assert paths(sandbox) == [f"POST {CREATE_PATH}"]  # no look-up, no second POST
        assert sleeps == []
    else:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        closed = UmbrellaClient(f"http://127.0.0.1:{port}", lambda: KEY, sleep=sleeps.append)
        with pytest.raises(PartnerUnavailable) as caught:
            closed.create_campaign(SERVICE, creation())
        assert len(sleeps) == 2  # the core's own retries: nothing was sent
    assert not caught.value.ambiguous


class ScriptedUmbrella(SandboxServer):
    """A partner that answers whatever the test scripts, per method: for shapes the real sandbox never sends."""

    def __init__(self) -> None:
        super().__init__()
        self.answers: dict[str, list[SandboxResponse]] = {}
        for pattern in (
            CAMPAIGNS,
            f"{CAMPAIGNS}/{{s}}",
            f"{CAMPAIGNS}/{{s}}/{{r}}/{{c}}",
            f"{CAMPAIGNS}/{{s}}/{{r}}/{{c}}/donations",
        ):
            for method in ("GET", "POST", "PUT", "DELETE"):
                self.add_route(method, pattern, self._answer)

    def _answer(self, request: SandboxRequest) -> SandboxResponse:
        queue = self.answers[request.method]
        return queue.pop(0) if len(queue) > 1 else queue[0]


@pytest.fixture(scope="module")
def scripted() -> Iterator[ScriptedUmbrella]:
    with ScriptedUmbrella() as server:
        yield server


@pytest.fixture
def fake(scripted: ScriptedUmbrella) -> ScriptedUmbrella:
    scripted.reset()
    scripted.answers.clear()
    return scripted


def test_create_gives_up_after_create_attempts(
    make_client: Callable[..., UmbrellaClient], fake: ScriptedUmbrella, sleeps: list[float]
) -> None:
    fake.answers = {
        "POST": [json_response(502, {"error": "bad gateway"})],
        "GET": [json_response(404, {"errors": ["campaign does not exist"]})],
    }
    client = make_client(fake.url, create_attempts=3)

    with pytest.raises(PartnerUnavailable) as caught:
        client.create_campaign(SERVICE, creation())

    assert caught.value.ambiguous
    assert caught.value.status == 502
    assert paths(fake) == [f"POST {CREATE_PATH}", f"GET {CAMPAIGN_PATH}"] * 3
    assert len(sleeps) == 3


def test_a_single_create_attempt_still_looks_the_campaign_up(
    make_client: Callable[..., UmbrellaClient], fake: ScriptedUmbrella
) -> None:
    fake.answers = {
        "POST": [json_response(500, {})],
        "GET": [json_response(200, {"amount": 0, "timestampSince": None})],
    }

    outcome = make_client(fake.url, create_attempts=1).create_campaign(SERVICE, creation())

    assert outcome.recovered is True


def test_a_code_in_use_on_the_first_post_is_not_ours(
    make_client: Callable[..., UmbrellaClient], fake: ScriptedUmbrella
) -> None:
    fake.answers = {"POST": [json_response(400, {"errors": ["Donation code is ALREADY IN USE on route"]})]}

    with pytest.raises(CodeInUse):
        make_client(fake.url).create_campaign(SERVICE, creation())


@pytest.mark.parametrize(
    ("call", "body"),
    [
        ("services", {"id": 1}),
        ("services", [{"id": 1, "name": "x"}]),
        ("services", [{"id": "one", "name": "x", "routes": []}]),
        ("total", {"timestampSince": 1}),
        ("total", {"amount": -5}),
        ("total", {"amount": 12.5}),
        ("donations", {"amount": "50.5"}),
        ("donations", {"amount": "-5000"}),
        ("donations", {"amount": 5000.0}),
        ("donations", {"amount": True}),
        ("donations", {"amount": None}),
        ("donations", {"donatedAt": "yesterday"}),
        ("donations", {"msisdn": None}),
        ("update", ["Campaign updated"]),
        ("stop", "Campaign stopped"),
    ],
)
def test_bodies_not_of_the_documented_shape_are_bad_responses(
    make_client: Callable[..., UmbrellaClient], fake: ScriptedUmbrella, call: str, body: Any
) -> None:
    donation = {
        "amount": 5000,
        "donatedAt": "2018-06-13T05:24:41+00:00",
        "donationCode": CODE,
        "messageKey": "xyz-qwe",
        "msisdn": DONOR,
        "routeName": ROUTE,
    }
    payload = [{**donation, **body}] if call == "donations" else body
    fake.answers = {method: [json_response(200, payload)] for method in ("GET", "PUT", "DELETE")}
    client = make_client(fake.url)
    calls: dict[str, Callable[[], object]] = {
        "services": client.list_services,
        "total": lambda: client.collected_amount(SERVICE, ROUTE, CODE),
        "donations": lambda: client.donations(SERVICE, ROUTE, CODE),
        "update": lambda: client.update_campaign(SERVICE, ROUTE, CODE, CampaignUpdateRequest(amount=1)),
        "stop": lambda: client.stop_campaign(SERVICE, ROUTE, CODE),
    }

    with pytest.raises(PartnerBadResponse) as caught:
        calls[call]()

    assert "the answer is not" in caught.value.message
    assert DONOR not in str(caught.value)


def test_documented_answers_are_read_leniently(
    make_client: Callable[..., UmbrellaClient], fake: ScriptedUmbrella
) -> None:
    donation = {
        "amount": "5000",
        "donatedAt": "2018-06-13T05:24:41",
        "donationCode": CODE,
        "messageKey": "xyz-qwe",
        "msisdn": DONOR,
        "routeName": ROUTE,
        "extra": "ignored",
    }
    fake.answers = {"GET": [json_response(200, [donation])], "PUT": [json_response(200, {})]}
    client = make_client(fake.url)

    [read] = client.donations(SERVICE, ROUTE, CODE)

    assert read.amount == 5000
    assert read.donatedAt == datetime(2018, 6, 13, 5, 24, 41, tzinfo=UTC)
    assert read.text == ""
    assert client.update_campaign(SERVICE, ROUTE, CODE, CampaignUpdateRequest()) == CampaignResult(resultText="")
    assert fake.requests[-1].body_json == {}


def test_partner_errors_are_scrubbed_of_the_key_and_msisdn(
    make_client: Callable[..., UmbrellaClient], fake: ScriptedUmbrella
) -> None:
    errors = [f"confirmMsisdn {MSISDN} is blocked", f"key {KEY} is suspended", "  "]
    fake.answers = {"PUT": [json_response(400, {"errors": errors})], "DELETE": [json_response(409, {"other": 1})]}

    for placement in ("query", "bearer"):
        client = make_client(fake.url, key_placement=placement)
        with pytest.raises(PartnerRejected) as caught:
            client.update_campaign(SERVICE, ROUTE, CODE, CampaignUpdateRequest(confirmMsisdn=MSISDN))
        assert caught.value.message == "confirmMsisdn *** is blocked; key *** is suspended"
        with pytest.raises(PartnerRejected) as other:
            client.stop_campaign(SERVICE, ROUTE, CODE)
        assert other.value.status == 409
        assert other.value.message == "Conflict"


# --- privacy ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("placement", ["query", "bearer"])
def test_log_lines_carry_neither_the_key_nor_an_msisdn(
    make_client: Callable[..., UmbrellaClient],
    sandbox: UmbrellaSandbox,
    caplog: pytest.LogCaptureFixture,
    placement: str,
) -> None:
    caplog.set_level(logging.INFO)
    client = make_client(key_placement=placement)
    sandbox.faults.add("status", status=502, count=1, path_prefix=CREATE_PATH)
    client.create_campaign(SERVICE, creation())
    with pytest.raises(CodeInUse):
        client.create_campaign(SERVICE, creation())
    with pytest.raises(PartnerRejected):
        client.create_campaign(SERVICE, creation(donationCode="other", confirmMsisdn="45123"))
    sandbox.donate(SERVICE, ROUTE, CODE, msisdn=DONOR, deliver=False)
    client.donations(SERVICE, ROUTE, CODE)
    client.update_campaign(SERVICE, ROUTE, CODE, CampaignUpdateRequest(confirmMsisdn="4511223344"))
    with pytest.raises(PartnerAuthError):
        UmbrellaClient(sandbox.url, lambda: KEY + "x", key_placement=placement).list_services()

    rendered = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    assert "partner call" in rendered
    assert "ambiguous campaign creation checked" in rendered
    assert "POST /public/v1/campaign/{serviceId}" in rendered
    for secret in (KEY, MSISDN, DONOR, "4511223344", "apikey", CODE):
        assert secret not in rendered


# --- arguments and models -----------------------------------------------------------------------------------


def test_since_must_be_epoch_seconds_or_an_aware_datetime(client: UmbrellaClient) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        client.collected_amount(SERVICE, ROUTE, CODE, since=datetime(2025, 1, 1))
    with pytest.raises(TypeError):
        client.donations(SERVICE, ROUTE, CODE, since=True)
    with pytest.raises(TypeError):
        client.donations(SERVICE, ROUTE, CODE, since=1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="negative"):
        client.donations(SERVICE, ROUTE, CODE, since=-1)


def test_path_arguments_are_checked(client: UmbrellaClient) -> None:
    with pytest.raises(ValueError, match="empty"):
        client.stop_campaign(SERVICE, "", CODE)
    with pytest.raises(TypeError):
        client.stop_campaign("1", ROUTE, CODE)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.create_campaign(True, creation())


def test_client_settings_are_checked(sandbox: UmbrellaSandbox) -> None:
    with pytest.raises(ValueError, match="key_placement"):
        UmbrellaClient(sandbox.url, lambda: KEY, key_placement="header")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="create_attempts"):
        UmbrellaClient(sandbox.url, lambda: KEY, create_attempts=0)


@pytest.mark.parametrize("amount", [50.0, 50.5, True, "5000", None])
def test_request_amounts_are_integers_of_ore(amount: Any) -> None:
    with pytest.raises(ValidationError):
        creation(amount=amount)
    with pytest.raises(ValidationError):
        CampaignUpdateRequest(amount=amount if amount is not None else "x")


def test_requests_refuse_unknown_fields_and_answers_ignore_them() -> None:
    with pytest.raises(ValidationError):
        CampaignUpdateRequest(amont=5)  # type: ignore[call-arg]
    assert CampaignDonation.model_validate(
        {
            "amount": "0",
            "donatedAt": "2018-06-13T07:24:41+02:00",
            "donationCode": "c",
            "messageKey": "k",
            "msisdn": "m",
            "routeName": "r",
            "text": "t",
            "new": 1,
        }
    ).donatedAt == datetime(2018, 6, 13, 5, 24, 41, tzinfo=UTC)
