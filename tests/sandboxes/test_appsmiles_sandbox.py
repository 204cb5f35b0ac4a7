"""The app's miles sandbox follows the wire contract (raw HTTP), keeps real state, and fails on demand."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sandboxes.appsmiles import AppsMilesSandbox, main
from sandboxes.appsmiles_wire import PAGE_SIZE

APP_ID = "sandbox-app"
PARTNER_ID = "sandbox-partner"
SECRET = "am-PRIVACY-CANARY-sandbox-secret"
TIMEOUT = 5.0
CREDENTIALS = {"appId": APP_ID, "partnerId": PARTNER_ID, "partnerSecret": SECRET}


@pytest.fixture(scope="module")
def running() -> Iterator[AppsMilesSandbox]:
    with AppsMilesSandbox(APP_ID, PARTNER_ID, SECRET, tags={"DONATION": 50, "LEAD": 20, "LICENCE": 100}) as server:
        yield server


@pytest.fixture
def sandbox(running: AppsMilesSandbox) -> AppsMilesSandbox:
    running.reset()
    running.token_lifetime = 3600.0
    return running


def post(sandbox: AppsMilesSandbox, path: str, body: Any, token: str | None = None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{sandbox.url}/{path}", json=body, headers=headers, timeout=TIMEOUT)


def jwt(sandbox: AppsMilesSandbox) -> str:
    response = post(sandbox, "auth/token", CREDENTIALS)
    assert response.status_code == 200
    return str(response.json()["access_token"])


def call(sandbox: AppsMilesSandbox, path: str, token: str, **body: Any) -> dict[str, Any]:
    response = post(sandbox, path, {"appId": APP_ID, **body}, token)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    result: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return result


# --- partner token ------------------------------------------------------------------------------------------


def test_auth_token_issues_an_hs256_jwt(sandbox: AppsMilesSandbox) -> None:
    before = time.time()
    answer = post(sandbox, "auth/token", CREDENTIALS).json()
    assert answer["token_type"] == "bearer"
    assert answer["expires_in"] == 3600
    header, _, signature = answer["access_token"].split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==")) == {"alg": "HS256", "typ": "JWT"}
    assert signature
    claims = claims_of(answer["access_token"])
    assert claims["sub"] == PARTNER_ID
    assert before + 3600 <= claims["exp"] <= time.time() + 3601
    assert int(before) <= claims["iat"] <= time.time()
    assert sandbox.auth_calls == 1
    assert sandbox.issued_tokens == [answer["access_token"]]


@pytest.mark.parametrize(
    "body",
    [
        {**CREDENTIALS, "partnerSecret": "wrong"},
        {**CREDENTIALS, "partnerId": "other"},
        {**CREDENTIALS, "appId": "other"},
        {"appId": APP_ID, "partnerId": PARTNER_ID},
        {**CREDENTIALS, "partnerSecret": 5},
        ["not", "an", "object"],
    ],
    ids=["secret", "partner", "app", "missing", "not-string", "not-object"],
)
def test_wrong_credentials_are_401(sandbox: AppsMilesSandbox, body: Any) -> None:
    response = post(sandbox, "auth/token", body)
    assert response.status_code == 401
    assert response.json() == {"errorCode": 1, "errorMsg": "Invalid credentials"}
    assert sandbox.auth_calls == 0


def test_calls_need_a_valid_jwt(sandbox: AppsMilesSandbox) -> None:
    token = jwt(sandbox)
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    for bad in (None, "not-a-jwt", forged):
        response = post(sandbox, "user/infos", {"appId": APP_ID}, bad)
        assert response.status_code == 401
        assert response.json() == {"errorCode": 2, "errorMsg": "Token expired or invalid"}
    response = requests.post(
        f"{sandbox.url}/user/infos", json={"appId": APP_ID}, headers={"Authorization": f"Basic {token}"}, timeout=5
    )
    assert response.status_code == 401
    assert call(sandbox, "user/infos", token)["errorCode"] == 0


def test_tokens_expire_with_their_lifetime(sandbox: AppsMilesSandbox) -> None:
    sandbox.token_lifetime = 0
    answer = post(sandbox, "auth/token", CREDENTIALS).json()
    assert answer["expires_in"] == 1
    time.sleep(max(0.0, claims_of(answer["access_token"])["exp"] - time.time()) + 0.05)
    assert post(sandbox, "user/infos", {"appId": APP_ID}, answer["access_token"]).status_code == 401


def test_revoked_tokens_fail_and_new_ones_work(sandbox: AppsMilesSandbox) -> None:
    old = jwt(sandbox)
    revoked = requests.post(f"{sandbox.url}/_sandbox/revoke-tokens", timeout=TIMEOUT).json()
    assert revoked == {"revoked": 1}
    assert post(sandbox, "user/infos", {"appId": APP_ID}, old).status_code == 401
    assert call(sandbox, "user/infos", jwt(sandbox))["errorCode"] == 0


def test_advertised_expires_in_can_differ_from_exp(sandbox: AppsMilesSandbox) -> None:
    sandbox.advertised_expires_in = 10
    answer = post(sandbox, "auth/token", CREDENTIALS).json()
    assert answer["expires_in"] == 10
    assert claims_of(answer["access_token"])["exp"] - time.time() > 3000


def test_wrong_app_id_and_bad_bodies(sandbox: AppsMilesSandbox) -> None:
    token = jwt(sandbox)
    assert post(sandbox, "user/infos", {"appId": "other"}, token).json() == {
        "errorCode": 10,
        "errorMsg": "Unknown application",
    }
    assert post(sandbox, "user/infos", ["x"], token).status_code == 400
    for path, body in (
        ("buffer/store", {"partnerClientId": "u"}),
        ("generosity/multistore", {"tagId": "LEAD", "actions": "u"}),
        ("user/infos", {"page": -1}),
        ("user/incrementalinfos", {"since": "yesterday"}),
        ("user/ranking", {"partnerClientId": "u", "n": "five"}),
        ("user/multidelete", {"partnerClientIds": "u"}),
        ("user/clientcheckcredentials", {"lang": "fr"}),
    ):
        response = post(sandbox, path, {"appId": APP_ID, **body}, token)
        assert response.status_code == 400, path
        assert response.json()["errorCode"] == 3


# --- back end -----------------------------------------------------------------------------------------------


def test_buffer_store_keeps_actions_and_refuses_duplicates(sandbox: AppsMilesSandbox) -> None:
    token = jwt(sandbox)
    first = call(sandbox, "buffer/store", token, partnerClientId="u1", tagId="LEAD", lang="fr", param1="p",
                 date="2026-11-24T10:00:00Z")  # fmt: skip
    assert first == {
        "errorCode": 0,
        "errorMsg": "",
        "data": {
            "action": {
                "partnerClientId": "u1",
                "tagId": "LEAD",
                "param1": "p",
                "points": 20,
                "date": "2026-11-24T10:00:00Z",
            }
        },
    }
    again = call(sandbox, "buffer/store", token, partnerClientId="u1", tagId="LEAD", lang="fr", param1="p")
    assert again == {"errorCode": 105, "errorMsg": "Action already recorded"}
    # Another user, tag or param1 is another action; no param1 is never a duplicate.
    for body in ({"partnerClientId": "u2", "param1": "p"}, {"param1": "q"}, {}, {}):
        assert (
            call(sandbox, "buffer/store", token, **{"partnerClientId": "u1", "tagId": "LEAD", **body})["errorCode"] == 0
        )
    unknown = call(sandbox, "buffer/store", token, partnerClientId="u1", tagId="NOPE", lang="fr")
    assert unknown == {"errorCode": 104, "errorMsg": "Unknown action"}
    assert call(sandbox, "buffer/store", token, partnerClientId="u1", tagId="LEAD", param1=7)["errorCode"] == 3
    assert len(sandbox.actions) == 5
    assert sandbox.users["u1"]["points"] == 80
    assert sandbox.users["u2"]["points"] == 20


def test_multistore_answers_each_action(sandbox: AppsMilesSandbox) -> None:
    token = jwt(sandbox)
    actions = [{"partnerClientId": "u1", "param1": "a"}, {"partnerClientId": "u1", "param1": "a"}, {"nope": 1}, 5]
    answer = call(sandbox, "generosity/multistore", token, tagId="DONATION", lang="fr", actions=actions)
    assert [result["errorCode"] for result in answer["data"]["results"]] == [0, 105, 3, 3]
    assert answer["data"]["results"][0] == {"partnerClientId": "u1", "param1": "a", "errorCode": 0, "errorMsg": ""}
    unknown = call(sandbox, "generosity/multistore", token, tagId="NOPE", lang="fr", actions=actions)
    assert unknown["errorCode"] == 104
    assert sandbox.users["u1"]["points"] == 50


def test_user_info_infos_and_pages(sandbox: AppsMilesSandbox) -> None:
    token = jwt(sandbox)
    assert call(sandbox, "user/info", token, partnerClientId="ghost") == {"errorCode": 103, "errorMsg": "Unknown user"}
    actions = [{"partnerClientId": f"u{index:03d}"} for index in range(PAGE_SIZE + 5)]
    call(sandbox, "generosity/multistore", token, tagId="LEAD", lang="fr", actions=actions)
    user = call(sandbox, "user/info", token, partnerClientId="u007")["data"]["user"]
    assert set(user) == {"partnerClientId", "points", "createdAt"}
    assert user["points"] == 20
    first = call(sandbox, "user/infos", token)["data"]
    assert (len(first["users"]), first["nextPage"]) == (PAGE_SIZE, 1)
    second = call(sandbox, "user/infos", token, page=1)["data"]
    assert (len(second["users"]), second["nextPage"]) == (5, None)
    chosen = call(sandbox, "user/infos", token, partnerClientIds=["u001", "ghost", 3])["data"]
    assert [u["partnerClientId"] for u in chosen["users"]] == ["u001"]


def test_incremental_infos_carry_actions_and_gifts(sandbox: AppsMilesSandbox) -> None:
    token = jwt(sandbox)
    call(sandbox, "buffer/store", token, partnerClientId="u1", tagId="LICENCE", lang="fr")
    sandbox.give_gift("u1", "MUG")
    with pytest.raises(ValueError, match="not enough points"):
        sandbox.give_gift("u1", "TREE")
    users = call(sandbox, "user/incrementalinfos", token, since="2020-01-01T00:00:00Z")["data"]["users"]
    assert [(u["partnerClientId"], u["points"], len(u["actions"]), len(u["gifts"])) for u in users] == [
        ("u1", 40, 1, 1)
    ]
    assert call(sandbox, "user/incrementalinfos", token, since="2999-01-01T00:00:00Z")["data"]["users"] == []


def test_ranking_shows_neighbours(sandbox: AppsMilesSandbox) -> None:
    token = jwt(sandbox)
    for user, tag in (("a", "LICENCE"), ("b", "DONATION"), ("c", "LEAD")):
        call(sandbox, "buffer/store", token, partnerClientId=user, tagId=tag, lang="fr")
    ranking = call(sandbox, "user/ranking", token, partnerClientId="c", n=1)["data"]["ranking"]
    assert ranking == [
        {"partnerClientId": "b", "points": 50, "rank": 2},
        {"partnerClientId": "c", "points": 20, "rank": 3},
    ]
    assert call(sandbox, "user/ranking", token, partnerClientId="ghost")["errorCode"] == 103


def test_multidelete_removes_users_actions_and_tokens(sandbox: AppsMilesSandbox) -> None:
    token = jwt(sandbox)
    call(sandbox, "buffer/store", token, partnerClientId="u1", tagId="LEAD", lang="fr", param1="p")
    user_token = call(sandbox, "user/clientcheckcredentials", token, partnerClientId="u1", lang="fr")["data"]["user"][
        "userToken"
    ]
    answer = call(sandbox, "user/multidelete", token, partnerClientIds=["u1", "ghost"])
    assert answer["data"] == {"deleted": ["u1"], "unknown": ["ghost"]}
    assert sandbox.users == {}
    assert sandbox.actions == []
    assert sandbox.user_tokens == {}
    assert call(sandbox, "user/historyearns", token, userToken=user_token)["errorCode"] == 4
    again = call(sandbox, "buffer/store", token, partnerClientId="u1", tagId="LEAD", lang="fr", param1="p")
    assert again["errorCode"] == 0


# --- front end ----------------------------------------------------------------------------------------------


def test_front_end_session(sandbox: AppsMilesSandbox) -> None:
    token = jwt(sandbox)
    program = call(sandbox, "partner/getprog", token, lang="fr")["data"]["program"]
    assert {"tagId": "LICENCE", "points": 100} in program["actions"]
    user = call(sandbox, "user/clientcheckcredentials", token, partnerClientId="u1", lang="fr")["data"]["user"]
    assert user["partnerClientId"] == "u1"
    assert user["points"] == 0
    user_token = user["userToken"]
    assert sandbox.user_tokens == {user_token: "u1"}
    initial = call(sandbox, "partner/initialcheckstore", token, lang="fr", userToken=user_token)["data"]
    assert initial["user"]["partnerClientId"] == "u1"
    assert initial["program"] == program
    stored = call(sandbox, "generosity/store", token, userToken=user_token, tagId="LICENCE", lang="fr", param1="g")
    assert stored["data"]["action"]["points"] == 100
    assert (
        call(sandbox, "generosity/store", token, userToken=user_token, tagId="LICENCE", param1="g")["errorCode"] == 105
    )
    missing_tag = post(sandbox, "generosity/store", {"appId": APP_ID, "userToken": user_token}, token)
    assert (missing_tag.status_code, missing_tag.json()["errorCode"]) == (400, 3)
    earns = call(sandbox, "user/historyearns", token, userToken=user_token)["data"]["history"]
    assert [item["tagId"] for item in earns] == ["LICENCE"]
    assert call(sandbox, "user/historyburns", token, userToken=user_token)["data"]["history"] == []
    gifts = call(sandbox, "gift/list", token, userToken=user_token, lang="fr")["data"]["gifts"]
    assert {gift["giftId"] for gift in gifts} == {"TOTE", "MUG", "TREE"}
    check = call(sandbox, "gift/checkavailability", token, userToken=user_token, giftId="TOTE")
    assert check["data"] == {"gift": {"giftId": "TOTE", "name": "Tote bag", "cost": 100}, "points": 0}
    assert call(sandbox, "gift/checkavailability", token, userToken=user_token, giftId="TREE")["errorCode"] == 201
    assert call(sandbox, "gift/checkavailability", token, userToken=user_token, giftId="YACHT")["errorCode"] == 202
    for kind in ("bonus", "specials", "news"):
        ads = call(sandbox, f"ad/{kind}", token, userToken=user_token, lang="en")["data"]["ads"]
        assert ads[0]["lang"] == "en"


def test_front_end_needs_a_connected_user(sandbox: AppsMilesSandbox) -> None:
    token = jwt(sandbox)
    paths = ("partner/initialcheckstore", "user/historyburns", "user/historyearns", "generosity/store", "gift/list",
             "gift/checkavailability", "ad/bonus", "ad/specials", "ad/news", "user/logout", "user/delete")  # fmt: skip
    for path in paths:
        for body in ({}, {"userToken": "ut-unknown"}):
            answer = call(sandbox, path, token, **body)
            assert answer == {"errorCode": 4, "errorMsg": "User not connected"}, path
        assert post(sandbox, path, {"appId": "other"}, token).json()["errorCode"] == 10


def test_logout_and_delete(sandbox: AppsMilesSandbox) -> None:
    token = jwt(sandbox)

    def connect(user: str) -> str:
        return str(
            call(sandbox, "user/clientcheckcredentials", token, partnerClientId=user)["data"]["user"]["userToken"]
        )

    first, second, other = connect("u1"), connect("u1"), connect("u2")
    assert call(sandbox, "user/logout", token, userToken=first)["errorCode"] == 0
    assert call(sandbox, "gift/list", token, userToken=second)["errorCode"] == 4
    assert call(sandbox, "gift/list", token, userToken=other)["errorCode"] == 0
    assert "u1" in sandbox.users
    call(sandbox, "generosity/store", token, userToken=other, tagId="LEAD")
    assert call(sandbox, "user/delete", token, userToken=other)["errorCode"] == 0
    assert "u2" not in sandbox.users
    assert sandbox.actions == []


# --- failures and inspection --------------------------------------------------------------------------------


def test_scripted_answers_and_base_faults(sandbox: AppsMilesSandbox) -> None:
    token = jwt(sandbox)
    sandbox.script_answer("/user/info", {"no": "errorCode"}, count=2)
    sandbox.script_answer("/auth/token", {"token_type": "bearer"}, status=200)
    for _ in range(2):
        assert call(sandbox, "user/info", token, partnerClientId="u") == {"no": "errorCode"}
    assert call(sandbox, "user/info", token, partnerClientId="u")["errorCode"] == 103
    assert post(sandbox, "auth/token", CREDENTIALS).json() == {"token_type": "bearer"}
    with pytest.raises(ValueError, match="count"):
        sandbox.script_answer("/user/info", {}, count=0)
    sandbox.faults.add("malformed", count=1, path_prefix="/user/info")
    with pytest.raises(ValueError):  # noqa: PT011 - requests' JSONDecodeError is a ValueError
        post(sandbox, "user/info", {"appId": APP_ID}, token).json()
    sandbox.faults.add("rate_limit", retry_after=4, count=1)
    limited = post(sandbox, "user/infos", {"appId": APP_ID}, token)
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "4")
    assert [r.path for r in sandbox.requests][-2:] == ["/user/info", "/user/infos"]
    assert sandbox.requests[-1].faulted


def test_reset_forgets_everything(sandbox: AppsMilesSandbox) -> None:
    token = jwt(sandbox)
    call(sandbox, "user/clientcheckcredentials", token, partnerClientId="u1")
    sandbox.advertised_expires_in = 5
    sandbox.reset()
    assert (sandbox.auth_calls, sandbox.users, sandbox.actions, sandbox.issued_tokens) == (0, {}, [], [])
    assert sandbox.advertised_expires_in is None
    assert post(sandbox, "user/infos", {"appId": APP_ID}, token).status_code == 401


def test_main_prints_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    stop = threading.Event()
    stop.set()
    assert main(["--port", "0", "--app-id", "a", "--token-lifetime", "5"], stop) == 0
    assert capsys.readouterr().out.startswith("http://127.0.0.1:")
