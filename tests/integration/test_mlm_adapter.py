"""The Pimenko MLM adapter and the HTTP core against the MLM sandbox over loopback HTTP: every failure mode."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from partners.errors import (
    PartnerAuthError,
    PartnerBadResponse,
    PartnerNotFound,
    PartnerRejected,
    PartnerUnavailable,
)
from partners.http import RetryPolicy, Timeouts
from partners.mlm import (
    PARTNER,
    InvalidLicenceData,
    MaxSitesReached,
    MlmClient,
    mask_key,
    mask_keys,
)
from sandboxes.base import SandboxServer, route
from sandboxes.messages import SandboxRequest, SandboxResponse, json_response
from sandboxes.mlm import (
    INTERNAL_ERROR,
    MAX_SITES_REACHED,
    SEED_LICENCE_TYPES,
    SEED_PRODUCTS,
    MlmSandbox,
)

TOKEN = "mlm-PRIVACY-CANARY-token-5c1d"
STANDARD, SOLO, CAMPUS = 1, 2, 3
PRODUCT = 2
SITE = "https://moodle.example.org"
DOC_KEY = "550E8400-E29B-41D4-A716-446655440000-2Q7x9VxvR3m9y5m1n8W4k1qQ9aXhY2Z0mJfP8cT1eUo"


@pytest.fixture(scope="module")
def running() -> Iterator[MlmSandbox]:
    with MlmSandbox(api_token=TOKEN) as server:
        yield server


@pytest.fixture
def sandbox(running: MlmSandbox) -> MlmSandbox:
    running.reset()
    return running


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_client(url: str, sleeps: list[float], token: str = TOKEN, **options: Any) -> MlmClient:
    return MlmClient(
        url,
        api_token=lambda: token,
        timeouts=Timeouts(connect=0.5, read=0.3),
        retry=RetryPolicy(max_attempts=3, max_retry_after=2.0),
        sleep=sleeps.append,
        **options,
    )


@pytest.fixture
def client(sandbox: MlmSandbox, sleeps: list[float]) -> MlmClient:
    return make_client(sandbox.url, sleeps)


def posts(sandbox: MlmSandbox) -> list[str]:
    return [r.path for r in sandbox.requests if r.method == "POST"]


def wait_until(condition: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


# --- success paths ----------------------------------------------------------------------------------------


def test_catalogue_reads_send_the_bearer_token_and_ask_for_json(client: MlmClient, sandbox: MlmSandbox) -> None:
    types = client.licence_types()
    products = client.products()

    assert [(t.id, t.name, t.max_sites) for t in types] == [(t.id, t.name, t.max_sites) for t in SEED_LICENCE_TYPES]
    assert [p.slug for p in products] == [p.slug for p in SEED_PRODUCTS]
    assert products[0].created_at == datetime(2024, 1, 1, tzinfo=UTC)
    first = sandbox.requests[0]
    assert first.headers["authorization"] == f"Bearer {TOKEN}"
    assert first.headers["accept"] == "application/json"


def test_create_licence_returns_the_licence_and_its_first_site(client: MlmClient, sandbox: MlmSandbox) -> None:
    issued = client.create_licence(STANDARD, PRODUCT, SITE)

    stored = sandbox.licences[0]
    assert issued.licence.key == stored["key"]
    assert (issued.licence.product_id, issued.licence.licence_type_id, issued.licence.status) == (
        PRODUCT,
        STANDARD,
        "active",
    )
    assert issued.licence.expires_at is not None
    assert issued.licence.expires_at > datetime.now(UTC)
    assert issued.site.url == SITE
    assert issued.site.licence_id == issued.licence.id  # not in the answer: filled in by the adapter
    assert sandbox.requests[0].body_json == {"licence_type": STANDARD, "product_id": PRODUCT, "url": SITE}


def test_list_licences_and_newest_id(client: MlmClient) -> None:
    assert client.list_licences() == []
    assert client.newest_licence_id() == 0
    first = client.create_licence(STANDARD, PRODUCT, SITE).licence
    second = client.create_licence(SOLO, 1, "https://lms.example.net").licence

    assert client.list_licences() == [first, second]
    assert client.newest_licence_id() == second.id


def test_add_site_to_a_licence(client: MlmClient, sandbox: MlmSandbox) -> None:
    licence = client.create_licence(STANDARD, PRODUCT, SITE).licence

    site = client.add_site(licence.key, "https://second.example.org")

    assert (site.licence_id, site.url) == (licence.id, "https://second.example.org")
    assert [s["url"] for s in sandbox.licences[0]["sites"]] == [SITE, "https://second.example.org"]


def test_the_key_is_percent_encoded_in_the_path(client: MlmClient, sandbox: MlmSandbox) -> None:
    with pytest.raises(PartnerNotFound) as caught:
        client.add_site("AB/CD EF?x=1#frag", SITE)

    assert posts(sandbox) == ["/licences/AB%2FCD%20EF%3Fx%3D1%23frag/sites"]
    assert caught.value.status == 404


# --- refusals ---------------------------------------------------------------------------------------------


def test_a_wrong_token_is_an_auth_error(sandbox: MlmSandbox, sleeps: list[float]) -> None:
    wrong = make_client(sandbox.url, sleeps, token="not-the-token")
    empty = make_client(sandbox.url, sleeps, token="")

    with pytest.raises(PartnerAuthError) as on_read:
        wrong.products()
    with pytest.raises(PartnerAuthError) as on_create:
        wrong.create_licence(STANDARD, PRODUCT, SITE)
    with pytest.raises(PartnerAuthError) as without_token:
        empty.licence_types()

    assert on_read.value.status == on_create.value.status == 401
    assert on_read.value.message == without_token.value.message == "Unauthenticated."
    assert len(sandbox.requests) == 3
    assert sandbox.licences == []


def test_max_sites_is_final_and_never_retried(client: MlmClient, sandbox: MlmSandbox) -> None:
    licence = client.create_licence(SOLO, PRODUCT, SITE).licence
    sandbox.clear_requests()

    with pytest.raises(MaxSitesReached) as caught:
        client.add_site(licence.key, "https://second.example.org")

    assert isinstance(caught.value, PartnerRejected)
    assert caught.value.status == 422
    assert caught.value.message == MAX_SITES_REACHED
    assert len(sandbox.requests) == 1
    assert len(sandbox.licences[0]["sites"]) == 1


def test_max_sites_markers_are_a_setting(sandbox: MlmSandbox, sleeps: list[float]) -> None:
    other = make_client(sandbox.url, sleeps, max_sites_markers=("quota exceeded",))
    licence = other.create_licence(SOLO, PRODUCT, SITE).licence

    with pytest.raises(InvalidLicenceData):
        other.add_site(licence.key, "https://second.example.org")


@pytest.mark.parametrize(
    ("licence_type", "product_id", "url", "field"),
    [
        (99, PRODUCT, SITE, "licence type"),
        (STANDARD, 99, SITE, "product id"),
        (STANDARD, PRODUCT, "ftp://moodle.example.org", "url"),
    ],
)
def test_invalid_data_is_final_with_the_partner_message(
    client: MlmClient, sandbox: MlmSandbox, licence_type: int, product_id: int, url: str, field: str
) -> None:
    with pytest.raises(InvalidLicenceData) as caught:
        client.create_licence(licence_type, product_id, url)

    assert not isinstance(caught.value, MaxSitesReached)
    assert caught.value.status == 422
    assert caught.value.message.startswith("The given data was invalid.")
    assert field in caught.value.message
    assert len(sandbox.requests) == 1
    assert sandbox.licences == []


def test_an_invalid_site_url_is_invalid_data(client: MlmClient) -> None:
    licence = client.create_licence(STANDARD, PRODUCT, SITE).licence

    with pytest.raises(InvalidLicenceData, match="url"):
        client.add_site(licence.key, "not a url")


def test_an_unknown_key_is_not_found(client: MlmClient) -> None:
    with pytest.raises(PartnerNotFound) as caught:
        client.add_site(DOC_KEY, SITE)

    assert caught.value.message == "Licence not found."


# --- partner unavailable ----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_on_create_is_ambiguous_and_not_retried(client: MlmClient, sandbox: MlmSandbox, status: int) -> None:
    sandbox.faults.add("status", status=status, count=1, path_prefix="/licence/create")

    with pytest.raises(PartnerUnavailable) as caught:
        client.create_licence(STANDARD, PRODUCT, SITE)

    assert caught.value.ambiguous
    assert caught.value.status == status
    assert caught.value.message == f"sandbox fault: HTTP {status}"  # the partner's {"error": ...}
    assert posts(sandbox) == ["/licence/create"]


def test_a_5xx_on_add_site_is_ambiguous_and_not_retried(client: MlmClient, sandbox: MlmSandbox) -> None:
    licence = client.create_licence(STANDARD, PRODUCT, SITE).licence
    sandbox.clear_requests()
    sandbox.faults.add("status", status=500, count=1)

    with pytest.raises(PartnerUnavailable) as caught:
        client.add_site(licence.key, "https://second.example.org")

    assert caught.value.ambiguous
    assert len(sandbox.requests) == 1


def test_429_on_create_is_not_retried_but_says_when(
    client: MlmClient, sandbox: MlmSandbox, sleeps: list[float]
) -> None:
    sandbox.faults.add("rate_limit", retry_after=7, count=1)

    with pytest.raises(PartnerUnavailable) as caught:
        client.create_licence(STANDARD, PRODUCT, SITE)

    assert (caught.value.status, caught.value.retry_after, caught.value.ambiguous) == (429, 7, False)
    assert sleeps == []
    assert len(sandbox.requests) == 1


def test_reads_retry_5xx_with_backoff_then_succeed(client: MlmClient, sandbox: MlmSandbox, sleeps: list[float]) -> None:
    sandbox.faults.add("status", status=503, count=2, path_prefix="/products")

    assert len(client.products()) == len(SEED_PRODUCTS)
    assert len(sleeps) == 2
    assert all(0 <= wait <= 2.0 for wait in sleeps)
    assert len(sandbox.requests) == 3


def test_reads_honour_retry_after(client: MlmClient, sandbox: MlmSandbox, sleeps: list[float]) -> None:
    sandbox.faults.add("rate_limit", retry_after=1, count=1)

    client.licence_types()

    assert sleeps == [1.0]


def test_a_retry_after_beyond_the_cap_is_not_slept(client: MlmClient, sandbox: MlmSandbox, sleeps: list[float]) -> None:
    sandbox.faults.add("rate_limit", retry_after=60, count=1)

    with pytest.raises(PartnerUnavailable) as caught:
        client.list_licences()

    assert caught.value.retry_after == 60
    assert sleeps == []


def test_reads_time_out_and_give_up_after_max_attempts(client: MlmClient, sandbox: MlmSandbox) -> None:
    sandbox.faults.add("slow", delay=1.0, count=3)

    with pytest.raises(PartnerUnavailable) as caught:
        client.list_licences()

    assert caught.value.message == "read timeout"
    assert len(sandbox.requests) == 3


def test_a_create_that_times_out_is_ambiguous_and_may_land_later(client: MlmClient, sandbox: MlmSandbox) -> None:
    sandbox.faults.add("slow", delay=0.5, count=1)

    with pytest.raises(PartnerUnavailable) as caught:
        client.create_licence(STANDARD, PRODUCT, SITE)

    assert caught.value.ambiguous
    assert caught.value.message == "read timeout"
    assert posts(sandbox) == ["/licence/create"]
    wait_until(lambda: len(sandbox.licences) == 1)  # the partner took it after we stopped waiting


def test_a_refused_connection_is_retried_even_for_a_create(sleeps: list[float]) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    closed = make_client(f"http://127.0.0.1:{port}/api", sleeps)

    with pytest.raises(PartnerUnavailable) as caught:
        closed.create_licence(STANDARD, PRODUCT, SITE)

    assert not caught.value.ambiguous
    assert len(sleeps) == 2


def test_a_dropped_connection_is_unavailable(client: MlmClient, sandbox: MlmSandbox) -> None:
    sandbox.faults.add("drop", count=3)

    with pytest.raises(PartnerUnavailable):
        client.products()


# --- malformed bodies -------------------------------------------------------------------------------------


def test_a_body_that_is_not_json_is_a_bad_response(client: MlmClient, sandbox: MlmSandbox) -> None:
    sandbox.faults.add("malformed", count=1)

    with pytest.raises(PartnerBadResponse) as caught:
        client.list_licences()

    assert not caught.value.ambiguous
    assert len(sandbox.requests) == 1


def test_an_unreadable_success_to_a_create_is_ambiguous(client: MlmClient, sandbox: MlmSandbox) -> None:
    sandbox.faults.add("malformed", count=1, path_prefix="/licence/create")

    with pytest.raises(PartnerBadResponse) as caught:
        client.create_licence(STANDARD, PRODUCT, SITE)

    assert caught.value.ambiguous
    assert posts(sandbox) == ["/licence/create"]


class ScriptedMlm(SandboxServer):
    """Answers every MLM route with what a test scripts: shapes and messages the real partner should not send."""

    def __init__(self) -> None:
        super().__init__()
        self.script: dict[str, tuple[int, Any]] = {}

    def _answer(self, name: str) -> SandboxResponse:
        status, body = self.script[name]
        return json_response(status, body)

    @route("GET", "/licences")
    def licences(self, request: SandboxRequest) -> SandboxResponse:
        return self._answer("licences")

    @route("POST", "/licence/create")
    def create(self, request: SandboxRequest) -> SandboxResponse:
        return self._answer("create")

    @route("POST", "/licences/{key}/sites")
    def sites(self, request: SandboxRequest) -> SandboxResponse:
        return self._answer("sites")

    @route("GET", "/licencestypes")
    def types(self, request: SandboxRequest) -> SandboxResponse:
        return self._answer("types")

    @route("GET", "/products")
    def products(self, request: SandboxRequest) -> SandboxResponse:
        return self._answer("products")


@pytest.fixture(scope="module")
def running_scripted() -> Iterator[ScriptedMlm]:
    with ScriptedMlm() as server:
        yield server


@pytest.fixture
def scripted(running_scripted: ScriptedMlm, sleeps: list[float]) -> tuple[ScriptedMlm, MlmClient]:
    running_scripted.reset()
    running_scripted.script.clear()
    return running_scripted, make_client(running_scripted.url, sleeps)


LICENCE = {
    "id": 4,
    "product_id": 2,
    "key": DOC_KEY,
    "status": "active",
    "expires_at": "2027-06-02T00:00:00.000000Z",
    "licence_type_id": 1,
}


@pytest.mark.parametrize(
    ("name", "body", "call", "expected"),
    [
        ("licences", [{**LICENCE, "id": "four"}], "list_licences", "Licence (item 0): id int_parsing"),
        ("licences", [{k: v for k, v in LICENCE.items() if k != "key"}], "list_licences", "Licence (item 0): key"),
        ("licences", {"licences": [LICENCE]}, "list_licences", "expected a JSON list of Licence"),
        ("types", [{"id": 1, "name": "Standard"}], "licence_types", "LicenceType (item 0): max_sites missing"),
        ("products", [None], "products", "Product (item 0): (root) model_type"),
        ("products", "Plugin Moodle 1", "products", "expected a JSON list of Product"),
        ("licences", {"data": [LICENCE], "next_page_url": "x?page=2"}, "list_licences", "paginated"),
        ("licences", {"data": [LICENCE], "links": {"next": "x?page=2"}}, "list_licences", "paginated"),
    ],
)
def test_a_body_of_the_wrong_shape_is_a_bad_response_naming_no_value(
    scripted: tuple[ScriptedMlm, MlmClient], name: str, body: Any, call: str, expected: str
) -> None:
    server, client = scripted
    server.script[name] = (200, body)

    with pytest.raises(PartnerBadResponse) as caught:
        getattr(client, call)()

    assert expected in caught.value.message
    assert "four" not in caught.value.message
    assert DOC_KEY not in str(caught.value)


def test_a_site_id_in_the_create_answer_is_kept(scripted: tuple[ScriptedMlm, MlmClient]) -> None:
    server, client = scripted
    server.script["create"] = (201, {"licence": LICENCE, "site": {"id": 10, "url": SITE, "licence_id": 77}})

    assert client.create_licence(STANDARD, PRODUCT, SITE).site.licence_id == 77


def test_an_unpaginated_data_envelope_is_read(scripted: tuple[ScriptedMlm, MlmClient]) -> None:
    server, client = scripted
    server.script["licences"] = (200, {"data": [LICENCE], "next_page_url": None, "links": {"next": None}})

    assert [licence.key for licence in client.list_licences()] == [DOC_KEY]


def test_a_create_answer_without_its_site_is_an_ambiguous_bad_response(
    scripted: tuple[ScriptedMlm, MlmClient],
) -> None:
    server, client = scripted
    server.script["create"] = (201, {"licence": LICENCE})

    with pytest.raises(PartnerBadResponse) as caught:
        client.create_licence(STANDARD, PRODUCT, SITE)

    assert caught.value.ambiguous
    assert "IssuedLicence: site missing" in caught.value.message
    assert DOC_KEY not in str(caught.value)


def test_a_site_answer_of_the_wrong_shape_is_an_ambiguous_bad_response(
    scripted: tuple[ScriptedMlm, MlmClient],
) -> None:
    server, client = scripted
    server.script["sites"] = (201, {"id": 11, "url": SITE})

    with pytest.raises(PartnerBadResponse) as caught:
        client.add_site(DOC_KEY, SITE)

    assert caught.value.ambiguous
    assert "SiteAnswer: site missing" in caught.value.message


def test_keys_and_the_token_in_partner_messages_are_masked(scripted: tuple[ScriptedMlm, MlmClient]) -> None:
    server, client = scripted
    short_key = "ABC123"  # the documentation's own example of a key in a list
    server.script["sites"] = (422, {"message": f"Licence {short_key}: nombre maximal de sites atteint ({TOKEN})"})
    server.script["create"] = (422, {"message": f"Key {DOC_KEY} already bound", "errors": {"url": [DOC_KEY]}})
    server.script["licences"] = (500, {"error": f"lost licence {DOC_KEY}"})

    with pytest.raises(MaxSitesReached) as full:
        client.add_site(short_key, SITE)
    with pytest.raises(InvalidLicenceData) as invalid:
        client.create_licence(STANDARD, PRODUCT, SITE)
    with pytest.raises(PartnerUnavailable) as down:
        client.list_licences()

    assert full.value.message == "Licence ***: nombre maximal de sites atteint (***)"
    assert invalid.value.message == f"Key {mask_key(DOC_KEY)} already bound: url: {mask_key(DOC_KEY)}"
    assert down.value.message == f"lost licence {mask_key(DOC_KEY)}"
    for caught in (full, invalid, down):
        for secret in (short_key, DOC_KEY, TOKEN):
            assert secret not in str(caught.value)


@pytest.mark.parametrize(
    ("key", "masked"),
    [(DOC_KEY, "550E…1eUo"), ("ABC123", "***"), ("0123456789AB", "0123…89AB"), ("", "***")],
)
def test_mask_key(key: str, masked: str) -> None:
    assert mask_key(key) == masked


def test_mask_keys_finds_documented_keys_and_known_ones() -> None:
    text = f"key {DOC_KEY} and {DOC_KEY[:36]} and XYZ987"

    assert mask_keys(text, ["XYZ987"]) == "key 550E…1eUo and 550E…0000 and ***"


# --- the ambiguous create and the look-up that settles it --------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "options", "message"),
    [("status", {"status": 500}, INTERNAL_ERROR), ("slow", {"delay": 0.6}, "read timeout")],
)
def test_an_ambiguous_create_is_found_by_the_look_up(
    client: MlmClient, sandbox: MlmSandbox, mode: Any, options: dict[str, Any], message: str
) -> None:
    client.create_licence(STANDARD, PRODUCT, "https://older.example.org")  # someone else's, before ours
    after_id = client.newest_licence_id()
    sandbox.clear_requests()
    sandbox.fail_after_commit(mode=mode, **options)

    with pytest.raises(PartnerUnavailable) as caught:
        client.create_licence(STANDARD, PRODUCT, SITE)

    assert caught.value.ambiguous
    assert caught.value.message == message
    assert posts(sandbox) == ["/licence/create"]  # the core did not repeat the POST
    ours = sandbox.licences[-1]
    assert ours["sites"][0]["url"] == SITE
    found = client.find_new_licence(after_id=after_id, product_id=PRODUCT, licence_type=STANDARD)
    assert found is not None
    assert (found.id, found.key) == (ours["id"], ours["key"])
    claimed = client.find_new_licence(
        after_id=after_id, product_id=PRODUCT, licence_type=STANDARD, exclude_keys={ours["key"]}
    )
    assert claimed is None
    assert posts(sandbox) == ["/licence/create"]


def test_the_look_up_takes_the_lowest_new_id_of_the_same_product_and_type(client: MlmClient) -> None:
    before = client.create_licence(STANDARD, PRODUCT, SITE).licence
    after_id = client.newest_licence_id()
    other_type = client.create_licence(CAMPUS, PRODUCT, SITE).licence
    other_product = client.create_licence(STANDARD, 1, SITE).licence
    first = client.create_licence(STANDARD, PRODUCT, SITE).licence
    second = client.create_licence(STANDARD, PRODUCT, SITE).licence

    def look(**changes: Any) -> Any:
        query: dict[str, Any] = {"after_id": after_id, "product_id": PRODUCT, "licence_type": STANDARD, **changes}
        return client.find_new_licence(**query)

    assert after_id == before.id
    assert look() == first
    assert look(exclude_keys=[first.key]) == second
    assert look(exclude_keys=[first.key, second.key]) is None
    assert look(licence_type=CAMPUS) == other_type
    assert look(product_id=1) == other_product
    assert look(after_id=second.id) is None


def test_the_look_up_fails_like_any_read(client: MlmClient, sandbox: MlmSandbox) -> None:
    sandbox.faults.add("status", status=503, count=3, path_prefix="/licences")

    with pytest.raises(PartnerUnavailable):
        client.find_new_licence(after_id=0, product_id=PRODUCT, licence_type=STANDARD)


# --- privacy ----------------------------------------------------------------------------------------------


def test_logs_and_errors_carry_neither_the_token_nor_a_full_key(
    client: MlmClient, sandbox: MlmSandbox, sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    failures: list[BaseException] = []
    solo = client.create_licence(SOLO, PRODUCT, SITE).licence
    standard = client.create_licence(STANDARD, PRODUCT, SITE).licence
    client.add_site(standard.key, "https://second.example.org")
    sandbox.fail_after_commit(mode="status")
    for attempt in (
        lambda: client.add_site(solo.key, "https://second.example.org"),
        lambda: client.add_site(DOC_KEY, SITE),
        lambda: client.create_licence(STANDARD, PRODUCT, SITE),
        lambda: make_client(sandbox.url, sleeps, token=TOKEN + "-wrong").add_site(standard.key, SITE),
    ):
        with pytest.raises(Exception) as caught:  # noqa: PT011 - each one is a different PartnerError
            attempt()
        failures.append(caught.value)
    client.list_licences()

    rendered = " ".join(f"{r.getMessage()} {r.__dict__}" for r in caplog.records)
    rendered += " ".join(f"{failure!s} {failure!r} {vars(failure)}" for failure in failures)
    assert "POST /licences/{key}/sites" in rendered
    assert all(failure.partner == PARTNER for failure in failures)  # type: ignore[attr-defined]
    keys = [licence["key"] for licence in sandbox.licences]
    assert len(keys) == 3
    for secret in (TOKEN, DOC_KEY, *keys):
        assert secret not in rendered
