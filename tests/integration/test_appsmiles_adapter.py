"""The app's miles adapter against its sandbox over loopback HTTP: every call, the shared token, every failure mode."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from partners.appsmiles import AppsMilesClient
from partners.appsmiles_transport import reset_tokens, token_fetches
from partners.appsmiles_wire import AppsMilesFields, AppsMilesRejected, MultideleteResult, StoreResult, UserNotConnected
from partners.errors import PartnerAuthError, PartnerBadResponse, PartnerRejected, PartnerUnavailable
from partners.http import RetryPolicy, Timeouts
from sandboxes.appsmiles import AppsMilesSandbox
from sandboxes.appsmiles_wire import PAGE_SIZE
from tests.canaries import APPSMILES_SECRET, CANARY_APPSMILES_USER

APP_ID = "hub-app-7"
PARTNER_ID = "hub-partner-3"
USER = CANARY_APPSMILES_USER
OTHER = "amu-other-0001"


class Clock:
    """Wall-clock time plus an offset the test moves forward."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset


@pytest.fixture(scope="module")
def running() -> Iterator[AppsMilesSandbox]:
    with AppsMilesSandbox(APP_ID, PARTNER_ID, APPSMILES_SECRET) as server:
        yield server


@pytest.fixture
def sandbox(running: AppsMilesSandbox) -> Iterator[AppsMilesSandbox]:
    running.reset()
    running.token_lifetime = 3600.0
    reset_tokens()
    yield running
    running.reset()
    reset_tokens()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make_client(sandbox: AppsMilesSandbox, sleeps: list[float] | None = None, **options: Any) -> AppsMilesClient:
    options.setdefault("timeouts", Timeouts(connect=0.5, read=0.5))
    options.setdefault("retry", RetryPolicy(max_attempts=3, max_retry_after=5.0))
    return AppsMilesClient(
        sandbox.url,
        options.pop("app_id", APP_ID),
        PARTNER_ID,
        options.pop("partner_secret", lambda: APPSMILES_SECRET),
        sleep=(sleeps.append if sleeps is not None else lambda _s: None),
        **options,
    )


@pytest.fixture
def client(sandbox: AppsMilesSandbox, sleeps: list[float], clock: Clock) -> AppsMilesClient:
    return make_client(sandbox, sleeps, clock=clock)


def bodies(sandbox: AppsMilesSandbox, path: str) -> list[Any]:
    return [request.body_json for request in sandbox.requests if request.path == path]


# --- back end -----------------------------------------------------------------------------------------------


def test_store_action_sends_the_contract_and_returns_the_action(client: AppsMilesClient, sandbox: Any) -> None:
    when = datetime(2026, 11, 24, 11, 0, tzinfo=timezone(timedelta(hours=1)))
    result = client.store_action(USER, "LEAD", param1="lead-1", date=when)
    assert result == StoreResult(
        already_recorded=False,
        code=0,
        action={
            "partnerClientId": USER,
            "tagId": "LEAD",
            "param1": "lead-1",
            "points": 20,
            "date": "2026-11-24T10:00:00Z",
        },
    )
    (sent,) = bodies(sandbox, "/buffer/store")
    assert sent == {
        "appId": APP_ID,
        "partnerClientId": USER,
        "tagId": "LEAD",
        "lang": "fr",
        "date": "2026-11-24T10:00:00Z",
        "param1": "lead-1",
    }
    (request,) = [r for r in sandbox.requests if r.path == "/buffer/store"]
    assert request.headers["authorization"] == f"Bearer {sandbox.issued_tokens[0]}"
    assert sandbox.users[USER]["points"] == 20


def test_naive_date_is_utc_and_no_param1_is_not_sent(client: AppsMilesClient, sandbox: AppsMilesSandbox) -> None:
    client.store_action(USER, "DONATION", date=datetime(2026, 1, 2, 3, 4, 5))
    (sent,) = bodies(sandbox, "/buffer/store")
    assert sent["date"] == "2026-01-02T03:04:05Z"
    assert "param1" not in sent


def test_second_identical_action_is_already_recorded(client: AppsMilesClient, sandbox: AppsMilesSandbox) -> None:
    assert not client.store_action(USER, "DONATION", param1="d-1").already_recorded
    again = client.store_action(USER, "DONATION", param1="d-1")
    assert again == StoreResult(already_recorded=True, code=105, action={})
    assert len(sandbox.actions) == 1
    assert sandbox.users[USER]["points"] == 50


def test_already_recorded_codes_are_a_setting(sandbox: AppsMilesSandbox) -> None:
    strict = make_client(sandbox, already_recorded_codes=(999,))
    strict.store_action(USER, "DONATION", param1="d-1")
    with pytest.raises(AppsMilesRejected) as refused:
        strict.store_action(USER, "DONATION", param1="d-1")
    assert refused.value.code == 105


def test_unknown_tag_on_http_200_is_rejected_with_its_code(client: AppsMilesClient) -> None:
    with pytest.raises(AppsMilesRejected) as refused:
        client.store_action(USER, "NO-SUCH-TAG", param1="x")
    assert refused.value.code == 104
    assert refused.value.status == 200
    assert "Unknown action" in refused.value.message


def test_wrong_app_id_is_rejected_with_code_10(client: AppsMilesClient, sandbox: AppsMilesSandbox) -> None:
    # auth/token checks the app id with the credentials: a valid token first, then the application goes away.
    client.token()
    sandbox.app_id = "renamed-app"
    try:
        with pytest.raises(AppsMilesRejected) as refused:
            client.user_infos()
    finally:
        sandbox.app_id = APP_ID
    assert refused.value.code == 10
    assert "Unknown application" in refused.value.message


def test_multistore_answers_one_outcome_per_action_in_order(client: AppsMilesClient, sandbox: Any) -> None:
    client.store_action(OTHER, "DONATION", param1="p-2")
    outcomes = client.multistore("DONATION", [(USER, "p-1"), (OTHER, "p-2"), (USER, None)], date=datetime(2026, 5, 1))
    assert [type(outcome) for outcome in outcomes] == [StoreResult, StoreResult, StoreResult]
    assert [outcome.already_recorded for outcome in outcomes if isinstance(outcome, StoreResult)] == [
        False,
        True,
        False,
    ]
    assert outcomes[0].action["partnerClientId"] == USER  # type: ignore[union-attr]
    (sent,) = bodies(sandbox, "/generosity/multistore")
    assert sent["actions"] == [
        {"partnerClientId": USER, "param1": "p-1"},
        {"partnerClientId": OTHER, "param1": "p-2"},
        {"partnerClientId": USER},
    ]
    assert sent["date"] == "2026-05-01T00:00:00Z"
    assert sandbox.users[USER]["points"] == 100


def test_multistore_result_refused_and_unknown_tag(client: AppsMilesClient, sandbox: AppsMilesSandbox) -> None:
    sandbox.script_answer(
        "/generosity/multistore",
        {"errorCode": 0, "data": {"results": [{"partnerClientId": USER, "errorCode": 103, "errorMsg": "no"}]}},
    )
    (outcome,) = client.multistore("DONATION", [(USER, "p")])
    assert isinstance(outcome, AppsMilesRejected)
    assert outcome.code == 103
    with pytest.raises(AppsMilesRejected) as refused:
        client.multistore("NOPE", [(USER, "p")])
    assert refused.value.code == 104


@pytest.mark.parametrize(
    "answer",
    [
        {"errorCode": 0, "data": {"results": []}},
        {"errorCode": 0, "data": {"results": [{"partnerClientId": "x"}]}},
        {"errorCode": 0, "data": {}},
    ],
    ids=["too-few", "no-code", "no-results"],
)
def test_multistore_unreadable_results(client: AppsMilesClient, sandbox: AppsMilesSandbox, answer: Any) -> None:
    sandbox.script_answer("/generosity/multistore", answer)
    with pytest.raises(PartnerBadResponse):
        client.multistore("DONATION", [(USER, "p")])


def test_multistore_without_param1_is_sent_once(client: AppsMilesClient, sandbox: AppsMilesSandbox) -> None:
    sandbox.faults.add("status", status=503, count=1, path_prefix="/generosity/multistore")
    with pytest.raises(PartnerUnavailable):
        client.multistore("DONATION", [(USER, "p"), (OTHER, None)])
    assert len(bodies(sandbox, "/generosity/multistore")) == 1
    sandbox.faults.add("status", status=503, count=1, path_prefix="/generosity/multistore")
    assert len(client.multistore("DONATION", [(USER, "p"), (OTHER, "q")])) == 2
    assert len(bodies(sandbox, "/generosity/multistore")) == 3


def test_user_info_and_unknown_user(client: AppsMilesClient) -> None:
    client.store_action(USER, "LICENCE", param1="l-1")
    user = client.user_info(USER)
    assert (user["partnerClientId"], user["points"]) == (USER, 100)
    assert user["createdAt"].endswith("Z")
    with pytest.raises(AppsMilesRejected) as refused:
        client.user_info("nobody")
    assert refused.value.code == 103


def test_user_infos_follows_next_page(client: AppsMilesClient, sandbox: AppsMilesSandbox) -> None:
    many = [(f"amu-{index:04d}", None) for index in range(PAGE_SIZE + 30)]
    client.multistore("LEAD", many)
    users = client.user_infos()
    assert [user["partnerClientId"] for user in users] == [user_id for user_id, _ in many]
    pages = [body.get("page") for body in bodies(sandbox, "/user/infos")]
    assert pages == [None, 1]
    chosen = client.user_infos(["amu-0003", "amu-0120", "unknown"])
    assert [user["partnerClientId"] for user in chosen] == ["amu-0003", "amu-0120"]
    assert bodies(sandbox, "/user/infos")[-1]["partnerClientIds"] == ["amu-0003", "amu-0120", "unknown"]


@pytest.mark.parametrize("next_page", [0, "2"], ids=["repeated", "not-int"])
def test_user_infos_refuses_a_looping_next_page(client: AppsMilesClient, sandbox: Any, next_page: Any) -> None:
    answer = {"errorCode": 0, "data": {"users": [], "nextPage": next_page}}
    sandbox.script_answer("/user/infos", answer, count=2)
    with pytest.raises(PartnerBadResponse):
        client.user_infos()


def test_incremental_infos_and_ranking(client: AppsMilesClient, sandbox: AppsMilesSandbox) -> None:
    client.store_action(USER, "LICENCE", param1="l")
    client.store_action(OTHER, "LEAD", param1="l")
    changed = client.incremental_infos(datetime.now(UTC) - timedelta(minutes=1))
    assert {user["partnerClientId"] for user in changed} == {USER, OTHER}
    assert next(u for u in changed if u["partnerClientId"] == USER)["actions"][0]["tagId"] == "LICENCE"
    assert client.incremental_infos(datetime.now(UTC) + timedelta(minutes=1)) == []
    ranking = client.ranking(OTHER, n=1)
    assert [(entry["partnerClientId"], entry["rank"]) for entry in ranking] == [(USER, 1), (OTHER, 2)]
    assert bodies(sandbox, "/user/ranking")[-1]["n"] == 1
    with pytest.raises(AppsMilesRejected) as refused:
        client.ranking("nobody")
    assert refused.value.code == 103


def test_multidelete_forgets_users_and_their_actions(client: AppsMilesClient, sandbox: AppsMilesSandbox) -> None:
    client.store_action(USER, "DONATION", param1="d-1")
    assert client.multidelete([USER, "nobody"]) == MultideleteResult(deleted=[USER], unknown=["nobody"])
    assert USER not in sandbox.users
    assert sandbox.actions == []
    # Deleted with its history: the same param1 is a new action now.
    assert not client.store_action(USER, "DONATION", param1="d-1").already_recorded
    sandbox.script_answer("/user/multidelete", {"errorCode": 0, "data": {"deleted": "all"}})
    with pytest.raises(PartnerBadResponse):
        client.multidelete([USER])


# --- front end ----------------------------------------------------------------------------------------------


def test_front_end_calls(client: AppsMilesClient, sandbox: AppsMilesSandbox) -> None:
    program = client.get_prog()
    assert {"tagId": "DONATION", "points": 50} in program["actions"]
    session = client.client_check_credentials(USER)
    assert session.user["partnerClientId"] == USER
    assert USER in sandbox.users
    token = session.user_token
    assert client.initial_check_store(token)["user"]["partnerClientId"] == USER
    stored = client.generosity_store(token, "LICENCE", param1="g-1")
    assert stored.action["points"] == 100
    assert client.generosity_store(token, "LICENCE", param1="g-1").already_recorded
    assert [item["tagId"] for item in client.history_earns(token)] == ["LICENCE"]
    assert {gift["giftId"] for gift in client.gift_list(token)} == {"TOTE", "MUG", "TREE"}
    availability = client.gift_check_availability(token, "MUG")
    assert availability == {"gift": {"giftId": "MUG", "name": "Mug", "cost": 60}, "points": 40}
    assert client.history_burns(token) == []
    sandbox.give_gift(USER, "MUG")
    assert [item["giftId"] for item in client.history_burns(token)] == ["MUG"]
    with pytest.raises(AppsMilesRejected) as poor:
        client.gift_check_availability(token, "TREE")
    assert poor.value.code == 201
    with pytest.raises(AppsMilesRejected) as unknown:
        client.gift_check_availability(token, "YACHT")
    assert unknown.value.code == 202
    for ads in (client.ad_bonus(token), client.ad_specials(token), client.ad_news(token)):
        assert ads
        assert ads[0]["lang"] == "fr"
    assert bodies(sandbox, "/gift/checkavailability")[-1] == {"appId": APP_ID, "userToken": token, "giftId": "YACHT"}


def test_logout_ends_every_user_token(client: AppsMilesClient, sandbox: AppsMilesSandbox) -> None:
    first = client.client_check_credentials(USER).user_token
    second = client.client_check_credentials(USER).user_token
    client.logout(first)
    for token in (first, second):
        with pytest.raises(UserNotConnected) as refused:
            client.history_earns(token)
        assert refused.value.code == 4
    assert sandbox.users[USER]["partnerClientId"] == USER


def test_delete_user_removes_the_user(client: AppsMilesClient, sandbox: AppsMilesSandbox) -> None:
    token = client.client_check_credentials(USER).user_token
    client.generosity_store(token, "LEAD")
    client.delete_user(token)
    assert USER not in sandbox.users
    assert sandbox.actions == []
    with pytest.raises(UserNotConnected):
        client.gift_list(token)


def test_user_not_connected_codes_are_a_setting(sandbox: AppsMilesSandbox) -> None:
    plain = make_client(sandbox, user_not_connected_codes=())
    with pytest.raises(AppsMilesRejected) as refused:
        plain.gift_list("ut-unknown")
    assert not isinstance(refused.value, UserNotConnected)
    assert refused.value.code == 4


def test_client_check_credentials_without_user_token_is_bad(client: AppsMilesClient, sandbox: Any) -> None:
    sandbox.script_answer("/user/clientcheckcredentials", {"errorCode": 0, "data": {"user": {"points": 1}}})
    with pytest.raises(PartnerBadResponse):
        client.client_check_credentials(USER)


def test_field_names_are_settings(sandbox: AppsMilesSandbox) -> None:
    renamed = make_client(sandbox, fields=AppsMilesFields(tag_id="actionCode"))
    with pytest.raises(PartnerRejected):
        renamed.store_action(USER, "LEAD")  # the sandbox wants tagId: a 400
    assert bodies(sandbox, "/buffer/store")[-1]["actionCode"] == "LEAD"


# --- the partner token --------------------------------------------------------------------------------------


def test_token_is_shared_by_client_instances(sandbox: AppsMilesSandbox) -> None:
    before = token_fetches()
    make_client(sandbox).store_action(USER, "LEAD")
    make_client(sandbox).user_info(USER)
    assert sandbox.auth_calls == 1
    assert token_fetches() == before + 1
    (sent,) = bodies(sandbox, "/auth/token")
    assert sent == {"appId": APP_ID, "partnerId": PARTNER_ID, "partnerSecret": APPSMILES_SECRET}


def test_twenty_threads_fetch_one_token(sandbox: AppsMilesSandbox) -> None:
    clients = [make_client(sandbox) for _ in range(20)]
    barrier = threading.Barrier(len(clients))
    failures: list[BaseException] = []

    def work(index: int) -> None:
        try:
            barrier.wait()
            clients[index].store_action(f"amu-thread-{index}", "LEAD", param1="t")
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(len(clients))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert failures == []
    assert sandbox.auth_calls == 1
    assert len(sandbox.actions) == 20


def test_token_refreshed_before_exp(client: AppsMilesClient, sandbox: AppsMilesSandbox, clock: Clock) -> None:
    client.user_infos()
    clock.offset = 3600 - 61
    client.user_infos()
    assert sandbox.auth_calls == 1
    clock.offset = 3600 - 59  # within the 60 s margin
    client.user_infos()
    assert sandbox.auth_calls == 2
    first, second = sandbox.issued_tokens
    requests = [r for r in sandbox.requests if r.path == "/user/infos"]
    assert [r.headers["authorization"] for r in requests] == [f"Bearer {first}"] * 2 + [f"Bearer {second}"]


def test_short_token_is_refreshed_at_half_its_life(sandbox: AppsMilesSandbox, clock: Clock) -> None:
    sandbox.token_lifetime = 20  # exp is rounded up to the second: 20-21 s away
    client = make_client(sandbox, clock=clock)
    client.token()
    clock.offset = 9
    client.token()
    assert sandbox.auth_calls == 1
    clock.offset = 11
    client.token()
    assert sandbox.auth_calls == 2


def test_exp_is_preferred_to_expires_in(client: AppsMilesClient, sandbox: AppsMilesSandbox, clock: Clock) -> None:
    sandbox.advertised_expires_in = 10
    client.token()
    clock.offset = 600
    client.token()
    assert sandbox.auth_calls == 1


def test_expires_in_when_the_token_has_no_exp(sandbox: AppsMilesSandbox, clock: Clock) -> None:
    client = make_client(sandbox, clock=clock)
    sandbox.script_answer("/auth/token", {"access_token": "opaque-token-1", "token_type": "bearer", "expires_in": 100})
    assert client.token() == "opaque-token-1"
    clock.offset = 49
    assert client.token() == "opaque-token-1"
    clock.offset = 51
    assert client.token() != "opaque-token-1"
    sandbox.script_answer("/auth/token", {"access_token": "opaque-token-2"})
    reset_tokens()
    # Neither exp nor expires_in: used for one call, fetched again for the next.
    assert client.token() == "opaque-token-2"
    assert client.token() != "opaque-token-2"


def test_revoked_token_is_replaced_once(client: AppsMilesClient, sandbox: AppsMilesSandbox) -> None:
    client.user_infos()
    assert sandbox.revoke_tokens() == 1
    assert client.user_infos() == []
    assert sandbox.auth_calls == 2
    assert [r.faulted for r in sandbox.requests if r.path == "/user/infos"] == [False, False, False]


def test_second_401_is_an_auth_error(client: AppsMilesClient, sandbox: AppsMilesSandbox) -> None:
    sandbox.script_answer("/user/info", {"errorCode": 2, "errorMsg": "Token expired or invalid"}, status=401, count=2)
    with pytest.raises(PartnerAuthError) as failed:
        client.user_info(USER)
    assert failed.value.status == 401
    assert sandbox.auth_calls == 2
    assert len(bodies(sandbox, "/user/info")) == 2


def test_403_on_a_call_is_not_retried_with_a_new_token(client: AppsMilesClient, sandbox: AppsMilesSandbox) -> None:
    sandbox.script_answer("/user/info", {"errorCode": 9, "errorMsg": "Forbidden"}, status=403)
    with pytest.raises(PartnerAuthError):
        client.user_info(USER)
    assert sandbox.auth_calls == 1


def test_wrong_secret_is_an_auth_error(sandbox: AppsMilesSandbox) -> None:
    wrong = make_client(sandbox, partner_secret=lambda: "am-PRIVACY-CANARY-wrong")
    with pytest.raises(PartnerAuthError) as failed:
        wrong.store_action(USER, "LEAD")
    assert failed.value.status == 401
    assert "Invalid credentials" in failed.value.message
    assert bodies(sandbox, "/buffer/store") == []


def test_secret_is_read_on_every_fetch(sandbox: AppsMilesSandbox) -> None:
    reads: list[int] = []

    def secret() -> str:
        reads.append(1)
        return APPSMILES_SECRET

    client = make_client(sandbox, partner_secret=secret)
    client.token()
    client.token()
    reset_tokens()
    client.token()
    assert len(reads) == 2


@pytest.mark.parametrize(
    "answer",
    [{"token_type": "bearer", "expires_in": 3600}, ["not", "an", "object"], {"access_token": ""}],
    ids=["no-access-token", "not-object", "empty"],
)
def test_unreadable_token_answer(sandbox: AppsMilesSandbox, answer: Any) -> None:
    sandbox.script_answer("/auth/token", answer)
    with pytest.raises(PartnerBadResponse):
        make_client(sandbox).token()


@pytest.mark.parametrize(("code", "kind"), [(7, AppsMilesRejected), ("x", PartnerBadResponse)])
def test_token_answer_with_error_code(sandbox: AppsMilesSandbox, code: Any, kind: type[Exception]) -> None:
    sandbox.script_answer("/auth/token", {"errorCode": code, "errorMsg": "nope"})
    with pytest.raises(kind):
        make_client(sandbox).token()


# --- partner failures ---------------------------------------------------------------------------------------


def test_4xx_is_rejected(client: AppsMilesClient, sandbox: AppsMilesSandbox) -> None:
    sandbox.faults.add("status", status=400, count=1, path_prefix="/user/info")
    with pytest.raises(PartnerRejected) as refused:
        client.user_info(USER)
    assert refused.value.status == 400
    assert not isinstance(refused.value, AppsMilesRejected)


def test_5xx_is_retried_for_reads(client: AppsMilesClient, sandbox: AppsMilesSandbox, sleeps: list[float]) -> None:
    sandbox.faults.add("status", status=502, count=2, path_prefix="/user/infos")
    assert client.user_infos() == []
    assert len(sleeps) == 2
    sandbox.faults.add("status", status=503, count=3, path_prefix="/user/infos")
    with pytest.raises(PartnerUnavailable) as failed:
        client.user_infos()
    assert failed.value.status == 503


def test_store_without_param1_is_sent_once_on_5xx(client: AppsMilesClient, sandbox: AppsMilesSandbox) -> None:
    sandbox.faults.add("status", status=500, count=1, path_prefix="/buffer/store")
    with pytest.raises(PartnerUnavailable) as failed:
        client.store_action(USER, "LEAD")
    assert failed.value.ambiguous
    assert len(bodies(sandbox, "/buffer/store")) == 1
    sandbox.faults.add("status", status=500, count=1, path_prefix="/buffer/store")
    assert not client.store_action(USER, "LEAD", param1="p").already_recorded
    assert len(bodies(sandbox, "/buffer/store")) == 3


def test_timeout_is_unavailable(sandbox: AppsMilesSandbox) -> None:
    client = make_client(sandbox, timeouts=Timeouts(connect=0.5, read=0.2), retry=RetryPolicy(max_attempts=1))
    client.token()
    sandbox.faults.add("hang", delay=1.0, count=1, path_prefix="/user/info")
    with pytest.raises(PartnerUnavailable) as failed:
        client.user_info(USER)
    assert failed.value.ambiguous
    assert "timeout" in failed.value.message


def test_429_honours_retry_after(client: AppsMilesClient, sandbox: AppsMilesSandbox, sleeps: list[float]) -> None:
    sandbox.faults.add("rate_limit", retry_after=2, count=1, path_prefix="/buffer/store")
    assert not client.store_action(USER, "LEAD", param1="p").already_recorded
    assert sleeps == [2.0]
    sandbox.faults.add("rate_limit", retry_after=30, count=1, path_prefix="/buffer/store")
    with pytest.raises(PartnerUnavailable) as failed:
        client.store_action(USER, "LEAD", param1="q")
    assert (failed.value.status, failed.value.retry_after) == (429, 30.0)


@pytest.mark.parametrize(
    "answer",
    [{"data": {"user": {}}}, {"errorCode": True}, {"errorCode": 0, "data": {"user": "x"}}, [1]],
    ids=["no-code", "bool-code", "no-user-object", "not-object"],
)
def test_answers_without_error_code_are_bad(client: AppsMilesClient, sandbox: Any, answer: Any) -> None:
    sandbox.script_answer("/user/info", answer)
    with pytest.raises(PartnerBadResponse):
        client.user_info(USER)


def test_body_that_is_not_json_is_bad(client: AppsMilesClient, sandbox: AppsMilesSandbox) -> None:
    client.token()
    sandbox.faults.add("malformed", count=3, path_prefix="/user/info")
    with pytest.raises(PartnerBadResponse):
        client.user_info(USER)
    sandbox.faults.clear()
    sandbox.faults.add("malformed", count=1, path_prefix="/auth/token")
    reset_tokens()
    with pytest.raises(PartnerBadResponse):
        client.token()


def test_stored_action_that_is_not_an_object_is_bad(client: AppsMilesClient, sandbox: AppsMilesSandbox) -> None:
    sandbox.script_answer("/buffer/store", {"errorCode": 0, "data": {"action": "stored"}})
    with pytest.raises(PartnerBadResponse):
        client.store_action(USER, "LEAD", param1="p")


# --- privacy ------------------------------------------------------------------------------------------------


def test_messages_and_logs_carry_no_secret_token_or_user_id(
    client: AppsMilesClient, sandbox: AppsMilesSandbox, caplog: pytest.LogCaptureFixture
) -> None:
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    partners_logger = logging.getLogger("partners")
    partners_logger.addHandler(handler)
    try:
        user_token = client.client_check_credentials(USER).user_token
        jwt = sandbox.issued_tokens[0]
        echo = f"user {USER} token {user_token} jwt {jwt} secret {APPSMILES_SECRET} Bearer {jwt}"
        # A front-end call names no user id (the adapter cannot know whose token it is): the rest is scrubbed.
        token_echo = f"token {user_token} jwt {jwt} secret {APPSMILES_SECRET}"
        failures: list[Exception] = []
        for path, call, status, message in (
            ("/user/info", lambda: client.user_info(USER), 200, echo),
            ("/gift/list", lambda: client.gift_list(user_token), 200, token_echo),
            ("/user/ranking", lambda: client.ranking(USER), 422, echo),
        ):
            sandbox.script_answer(path, {"errorCode": 103, "errorMsg": message}, status=status)
            with pytest.raises((AppsMilesRejected, PartnerRejected)) as refused:
                call()
            failures.append(refused.value)
        sandbox.script_answer(
            "/generosity/multistore",
            {"errorCode": 0, "data": {"results": [{"partnerClientId": USER, "errorCode": 103, "errorMsg": echo}]}},
        )
        (outcome,) = client.multistore("DONATION", [(USER, "p")])
        assert isinstance(outcome, AppsMilesRejected)
        failures.append(outcome)
        # auth/token knows no user: its message can only echo what it was sent.
        auth_echo = f"partner {PARTNER_ID} secret {APPSMILES_SECRET}"
        sandbox.script_answer("/auth/token", {"errorCode": 1, "errorMsg": auth_echo}, status=401)
        reset_tokens()
        with pytest.raises(PartnerAuthError) as auth_failed:
            client.token()
        failures.append(auth_failed.value)
    finally:
        partners_logger.removeHandler(handler)
    rendered = " ".join(f"{r.getMessage()} {r.__dict__}" for r in records)
    assert "POST buffer/store" in rendered or "POST user/info" in rendered
    texts = [f"{failure} {failure.__dict__}" for failure in failures] + [rendered]
    for text in texts:
        for value in (USER, user_token, jwt, APPSMILES_SECRET):
            assert value not in text
