"""Loopback stand-in for the app's miles loyalty API: partner tokens (HS256 JWTs), users, actions, gifts, user tokens.

It follows the wire contract the hub assumes by default (partners/appsmiles.py lists what the documentation does
not say): every call is `POST /<path>` with a JSON body, every answer `{"errorCode", "errorMsg", "data"}`. The
document states neither the body encoding nor where the partner token goes, so `AppsMilesModes` plays each
reading: `body_encoding` "json" or "form" (application/x-www-form-urlencoded; lists as JSON text), and
`jwt_placement` "header" (`Authorization: Bearer`) or "body" (the body field `jwt_field`). A body in the other
encoding is refused with HTTP 415 (errorCode 3); a token looked for where it is not is a 401. Routes are served
under the root, so the sandbox's URL is the API root (`https://api.appsmiles.fr/api` in production).

Besides the base's faults (status, rate limit, slow, hang, malformed, drop), `script_answer` makes the next calls
of a path answer a given JSON body (an answer without errorCode, a token answer without access_token ...), and
`revoke_tokens` makes every partner token issued so far fail with 401, as app's miles would after a key rotation.
"""

from __future__ import annotations

import argparse
import base64
import copy
import hashlib
import hmac
import json
import math
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

from sandboxes.base import CONTROL_PREFIX, SandboxServer, route, serve_until_interrupted
from sandboxes.messages import SandboxRequest, SandboxResponse, json_response
from sandboxes.modes import SandboxModes

DEFAULT_APP_ID: Final = "local-app"  # the local run's AppsMilesAppId (hub_local.template)
DEFAULT_PARTNER_ID: Final = "local-partner"
DEFAULT_PARTNER_SECRET: Final = "local-appsmiles-secret"
DEFAULT_TAGS: Final[Mapping[str, int]] = {"DONATION": 50, "LEAD": 20, "LICENCE": 100}
DEFAULT_GIFTS: Final[tuple[Mapping[str, Any], ...]] = (
    {"giftId": "TOTE", "name": "Tote bag", "cost": 100},
    {"giftId": "MUG", "name": "Mug", "cost": 60},
    {"giftId": "TREE", "name": "A tree planted", "cost": 300},
)
PAGE_SIZE: Final = 100

# errorCode values of the contract.
OK: Final = 0
INVALID_CREDENTIALS: Final = 1
TOKEN_INVALID: Final = 2
BAD_REQUEST: Final = 3
NOT_CONNECTED: Final = 4
UNKNOWN_APPLICATION: Final = 10
UNKNOWN_USER: Final = 103
UNKNOWN_ACTION: Final = 104
ALREADY_RECORDED: Final = 105
NOT_ENOUGH_POINTS: Final = 201
UNKNOWN_GIFT: Final = 202
MESSAGES: Final[Mapping[int, str]] = {
    OK: "",
    INVALID_CREDENTIALS: "Invalid credentials",
    TOKEN_INVALID: "Token expired or invalid",
    BAD_REQUEST: "Bad request",
    NOT_CONNECTED: "User not connected",
    UNKNOWN_APPLICATION: "Unknown application",
    UNKNOWN_USER: "Unknown user",
    UNKNOWN_ACTION: "Unknown action",
    ALREADY_RECORDED: "Action already recorded",
    NOT_ENOUGH_POINTS: "Not enough points",
    UNKNOWN_GIFT: "Unknown gift",
}
TOKEN_PATH: Final = "/auth/token"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_jwt(claims: Mapping[str, Any], key: bytes) -> str:
    """A compact HS256 JWT (RFC 7519) of `claims`."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(dict(claims), separators=(",", ":")).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def verify_jwt(token: str, key: bytes) -> dict[str, Any] | None:
    """The claims of an HS256 JWT signed with `key`, or None when it is malformed or the signature is wrong."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    header, payload, signature = parts
    expected = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(_b64url_decode(signature), expected):
            return None
        claims = json.loads(_b64url_decode(payload))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def iso_utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _answer(code: int, data: Mapping[str, Any] | None = None, *, status: int = 200) -> SandboxResponse:
    body: dict[str, Any] = {"errorCode": code, "errorMsg": MESSAGES.get(code, "")}
    if data is not None:
        body["data"] = data
    return json_response(status, body)


def _form_value(name: str, value: str) -> Any:
    """A form field as the JSON body would have carried it: lists and objects from JSON text, numbers by name."""
    if value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if name in _NUMERIC_FORM_FIELDS and value.isdigit():
        return int(value)
    return value


def _text(value: object) -> bool:
    return isinstance(value, str) and bool(value)


class AppsMilesModes(SandboxModes):
    """The readings of app's miles' wire format this sandbox can play; the defaults are the hub's default profile."""

    body_encoding: Literal["json", "form"] = "json"
    jwt_placement: Literal["header", "body"] = "header"
    jwt_field: str = "token"
    # The errorCode of a second identical (partnerClientId, tagId, param1): the older API's 105, or another.
    already_recorded_code: int = ALREADY_RECORDED


# Form fields that carry numbers (a form has only text).
_NUMERIC_FORM_FIELDS: Final = frozenset({"page", "n"})


@dataclass
class _Script:
    path: str
    status: int
    body: Any
    remaining: int


class AppsMilesSandbox(SandboxServer):
    """app's miles on loopback: partner JWTs checked on every call but auth/token, state kept in memory.

    Inspection: `auth_calls` (auth/token calls answered 200), `actions` (every stored action), `users`,
    `issued_tokens`, and the base's `requests`. `token_lifetime` may be changed at any time.
    """

    MODES = AppsMilesModes
    modes: AppsMilesModes

    def __init__(
        self,
        app_id: str = DEFAULT_APP_ID,
        partner_id: str = DEFAULT_PARTNER_ID,
        partner_secret: str = DEFAULT_PARTNER_SECRET,
        *,
        token_lifetime: float = 3600.0,
        tags: Mapping[str, int] | None = None,
        gifts: Sequence[Mapping[str, Any]] | None = None,
        port: int = 0,
        modes: AppsMilesModes | Mapping[str, Any] | str | None = None,
    ) -> None:
        super().__init__(port, modes=modes)
        self.app_id = app_id
        self.partner_id = partner_id
        self.partner_secret = partner_secret
        self.token_lifetime = token_lifetime
        # What auth/token says in expires_in; None says the true lifetime (tests set it to tell the two apart).
        self.advertised_expires_in: int | None = None
        self.tags: dict[str, int] = dict(DEFAULT_TAGS if tags is None else tags)
        self.gifts: list[dict[str, Any]] = [dict(gift) for gift in (DEFAULT_GIFTS if gifts is None else gifts)]
        self._signing_key = secrets.token_bytes(32)
        self._state_lock = threading.Lock()
        self._auth_calls = 0
        self._valid_jwts: set[str] = set()
        self._issued: list[str] = []
        self._users: dict[str, dict[str, Any]] = {}
        self._actions: list[dict[str, Any]] = []
        self._user_tokens: dict[str, str] = {}
        self._scripts: list[_Script] = []

    # --- inspection and control ---------------------------------------------------------------------------

    @property
    def auth_calls(self) -> int:
        with self._state_lock:
            return self._auth_calls

    @property
    def issued_tokens(self) -> list[str]:
        """Every partner JWT issued, oldest first."""
        with self._state_lock:
            return list(self._issued)

    @property
    def actions(self) -> list[dict[str, Any]]:
        """Every stored action (partnerClientId, tagId, param1, date, points), oldest first; deep copies."""
        with self._state_lock:
            return copy.deepcopy(self._actions)

    @property
    def users(self) -> dict[str, dict[str, Any]]:
        """Users by partnerClientId: partnerClientId, points, createdAt, gifts (deep copies)."""
        with self._state_lock:
            return {uid: self._public_user(user) | {"gifts": copy.deepcopy(user["gifts"])} for uid, user in
                    self._users.items()}  # fmt: skip

    @property
    def user_tokens(self) -> dict[str, str]:
        """Valid user tokens → partnerClientId."""
        with self._state_lock:
            return dict(self._user_tokens)

    def revoke_tokens(self) -> int:
        """Every partner JWT issued so far stops working now (401); returns how many were valid."""
        with self._state_lock:
            revoked = len(self._valid_jwts)
            self._valid_jwts.clear()
        return revoked

    def give_gift(self, user_id: str, gift_id: str) -> dict[str, Any]:
        """The user buys a gift (what the app does, which the hub never calls): points go down, a burn is kept."""
        with self._state_lock:
            user = self._users[user_id]
            gift = next(item for item in self.gifts if item["giftId"] == gift_id)
            if user["points"] < gift["cost"]:
                raise ValueError("not enough points")
            user["points"] -= gift["cost"]
            burn = {**gift, "date": iso_utc(time.time())}
            user["gifts"].append(burn)
            return dict(burn)

    def script_answer(self, path: str, body: Any, *, status: int = 200, count: int = 1) -> None:
        """The next `count` calls of `path` (after authentication) answer `body` (JSON) with `status`."""
        if count < 1:
            raise ValueError("count must be >= 1")
        with self._state_lock:
            self._scripts.append(_Script(path, status, body, count))

    def reset(self) -> None:
        super().reset()
        with self._state_lock:
            self._auth_calls = 0
            self._valid_jwts.clear()
            self._issued.clear()
            self._users.clear()
            self._actions.clear()
            self._user_tokens.clear()
            self._scripts.clear()
        self.advertised_expires_in = None

    @route("POST", f"{CONTROL_PREFIX}/revoke-tokens")
    def _revoke(self, request: SandboxRequest) -> SandboxResponse:
        return json_response(200, {"revoked": self.revoke_tokens()})

    # --- authentication -----------------------------------------------------------------------------------

    def authorize(self, request: SandboxRequest) -> SandboxResponse | None:
        if self.payload(request) is None:
            return _answer(BAD_REQUEST, status=415)
        if request.path == TOKEN_PATH:
            return None
        if self.modes.jwt_placement == "body":
            sent = (self.payload(request) or {}).get(self.modes.jwt_field)
            scheme, token = "bearer", sent if isinstance(sent, str) else ""
        else:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
        claims = verify_jwt(token, self._signing_key) if scheme.lower() == "bearer" else None
        with self._state_lock:
            known = token in self._valid_jwts
        if (
            claims is None
            or not known
            or not isinstance(claims.get("exp"), int | float)
            or time.time() >= claims["exp"]
        ):
            return _answer(TOKEN_INVALID, status=401)
        return self._scripted(request.path)

    def _scripted(self, path: str) -> SandboxResponse | None:
        with self._state_lock:
            for script in self._scripts:
                if script.path == path:
                    script.remaining -= 1
                    if script.remaining == 0:
                        self._scripts.remove(script)
                    return json_response(script.status, script.body)
        return None

    def payload(self, request: SandboxRequest) -> dict[str, Any] | None:
        """The body in the encoding the `body_encoding` mode expects; None when it came in the other one."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if self.modes.body_encoding == "form":
            if request.body.strip() and content_type != "application/x-www-form-urlencoded":
                return None
            return {name: _form_value(name, values[0]) for name, values in request.form.items() if values}
        if request.body.strip() and content_type == "application/x-www-form-urlencoded":
            return None
        return request.json if isinstance(request.json, dict) else {}

    def _body(self, request: SandboxRequest) -> dict[str, Any] | SandboxResponse:
        """The object sent, or the answer refusing it (not an object: 3; another application: 10)."""
        body = request.json if self.modes.body_encoding == "json" else self.payload(request)
        if not isinstance(body, dict) or not body:
            return _answer(BAD_REQUEST, status=400)
        if body.get("appId") != self.app_id:
            return _answer(UNKNOWN_APPLICATION)
        return body

    @route("POST", TOKEN_PATH)
    def auth_token(self, request: SandboxRequest) -> SandboxResponse:
        body = self.payload(request) or {}
        expected = (self.app_id, self.partner_id, self.partner_secret)
        sent = (body.get("appId"), body.get("partnerId"), body.get("partnerSecret"))
        if not all(isinstance(value, str) for value in sent) or not all(
            hmac.compare_digest(str(a), b) for a, b in zip(sent, expected, strict=True)
        ):
            return _answer(INVALID_CREDENTIALS, status=401)
        scripted = self._scripted(TOKEN_PATH)
        if scripted is not None:
            return scripted
        now = time.time()
        lifetime = self.token_lifetime
        claims = {
            "sub": self.partner_id,
            "iat": int(now),
            "exp": math.ceil(now + lifetime),
            "jti": secrets.token_hex(8),
        }
        token = sign_jwt(claims, self._signing_key)
        with self._state_lock:
            self._auth_calls += 1
            self._valid_jwts.add(token)
            self._issued.append(token)
        expires_in = self.advertised_expires_in
        return json_response(
            200,
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": max(1, round(lifetime)) if expires_in is None else expires_in,
            },
        )

    # --- back end -----------------------------------------------------------------------------------------

    @route("POST", "/buffer/store")
    def buffer_store(self, request: SandboxRequest) -> SandboxResponse:
        body = self._body(request)
        if isinstance(body, SandboxResponse):
            return body
        user_id, tag_id = body.get("partnerClientId"), body.get("tagId")
        if not _text(user_id) or not _text(tag_id):
            return _answer(BAD_REQUEST, status=400)
        code, action = self._store(str(user_id), str(tag_id), body.get("param1"), body.get("date"))
        return _answer(code, None if action is None else {"action": action})

    @route("POST", "/generosity/multistore")
    def multistore(self, request: SandboxRequest) -> SandboxResponse:
        body = self._body(request)
        if isinstance(body, SandboxResponse):
            return body
        tag_id, actions = body.get("tagId"), body.get("actions")
        if not _text(tag_id) or not isinstance(actions, list):
            return _answer(BAD_REQUEST, status=400)
        if tag_id not in self.tags:
            return _answer(UNKNOWN_ACTION)
        results = []
        for item in actions:
            user_id = item.get("partnerClientId") if isinstance(item, dict) else None
            param1 = item.get("param1") if isinstance(item, dict) else None
            if not _text(user_id):
                code = BAD_REQUEST
            else:
                code, _ = self._store(str(user_id), str(tag_id), param1, body.get("date"))
            results.append(
                {"partnerClientId": user_id, "param1": param1, "errorCode": code, "errorMsg": MESSAGES[code]}
            )
        return _answer(OK, {"results": results})

    @route("POST", "/user/info")
    def user_info(self, request: SandboxRequest) -> SandboxResponse:
        body = self._body(request)
        if isinstance(body, SandboxResponse):
            return body
        with self._state_lock:
            user = self._users.get(str(body.get("partnerClientId")))
            if user is None:
                return _answer(UNKNOWN_USER)
            return _answer(OK, {"user": self._public_user(user)})

    @route("POST", "/user/infos")
    def user_infos(self, request: SandboxRequest) -> SandboxResponse:
        body = self._body(request)
        if isinstance(body, SandboxResponse):
            return body
        ids, page = body.get("partnerClientIds"), body.get("page", 0)
        if (ids is not None and not isinstance(ids, list)) or not isinstance(page, int) or page < 0:
            return _answer(BAD_REQUEST, status=400)
        with self._state_lock:
            if ids is None:
                chosen = list(self._users.values())
            else:
                chosen = [self._users[uid] for uid in ids if isinstance(uid, str) and uid in self._users]
            window = [self._public_user(user) for user in chosen[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]]
        next_page = page + 1 if len(chosen) > (page + 1) * PAGE_SIZE else None
        return _answer(OK, {"users": window, "nextPage": next_page})

    @route("POST", "/user/incrementalinfos")
    def incremental_infos(self, request: SandboxRequest) -> SandboxResponse:
        body = self._body(request)
        if isinstance(body, SandboxResponse):
            return body
        try:
            since = datetime.fromisoformat(str(body.get("since"))).timestamp()
        except ValueError:
            return _answer(BAD_REQUEST, status=400)
        with self._state_lock:
            users = [
                self._public_user(user)
                | {"actions": copy.deepcopy(user["actions"]), "gifts": copy.deepcopy(user["gifts"])}
                for user in self._users.values()
                if user["changed_at"] >= since
            ]
        return _answer(OK, {"users": users})

    @route("POST", "/user/ranking")
    def ranking(self, request: SandboxRequest) -> SandboxResponse:
        body = self._body(request)
        if isinstance(body, SandboxResponse):
            return body
        user_id, n = body.get("partnerClientId"), body.get("n", 5)
        if not isinstance(n, int) or n < 0:
            return _answer(BAD_REQUEST, status=400)
        with self._state_lock:
            if user_id not in self._users:
                return _answer(UNKNOWN_USER)
            ordered = sorted(self._users.values(), key=lambda user: (-user["points"], user["createdAt"]))
            ranked = [{"partnerClientId": u["partnerClientId"], "points": u["points"], "rank": i + 1}
                      for i, u in enumerate(ordered)]  # fmt: skip
        where = next(i for i, entry in enumerate(ranked) if entry["partnerClientId"] == user_id)
        return _answer(OK, {"ranking": ranked[max(0, where - n) : where + n + 1]})

    @route("POST", "/user/multidelete")
    def multidelete(self, request: SandboxRequest) -> SandboxResponse:
        body = self._body(request)
        if isinstance(body, SandboxResponse):
            return body
        ids = body.get("partnerClientIds")
        if not isinstance(ids, list) or not all(isinstance(uid, str) for uid in ids):
            return _answer(BAD_REQUEST, status=400)
        deleted, unknown = [], []
        with self._state_lock:
            for uid in ids:
                if self._delete(uid):
                    deleted.append(uid)
                else:
                    unknown.append(uid)
        return _answer(OK, {"deleted": deleted, "unknown": unknown})

    # --- front end ----------------------------------------------------------------------------------------

    def _program(self) -> dict[str, Any]:
        return {
            "name": "Partner hub",
            "actions": [{"tagId": tag, "points": points} for tag, points in self.tags.items()],
            "gifts": copy.deepcopy(self.gifts),
        }

    @route("POST", "/partner/getprog")
    def get_prog(self, request: SandboxRequest) -> SandboxResponse:
        body = self._body(request)
        if isinstance(body, SandboxResponse):
            return body
        return _answer(OK, {"program": self._program()})

    @route("POST", "/user/clientcheckcredentials")
    def client_check_credentials(self, request: SandboxRequest) -> SandboxResponse:
        body = self._body(request)
        if isinstance(body, SandboxResponse):
            return body
        user_id = body.get("partnerClientId")
        if not _text(user_id):
            return _answer(BAD_REQUEST, status=400)
        user_token = f"ut-{secrets.token_urlsafe(24)}"
        with self._state_lock:
            user = self._user(str(user_id))
            self._user_tokens[user_token] = user["partnerClientId"]
            return _answer(OK, {"user": {"userToken": user_token, **self._public_user(user)}})

    def _connected(self, request: SandboxRequest) -> tuple[dict[str, Any], dict[str, Any]] | SandboxResponse:
        """(body, user) of a front-end call, or the answer refusing it; call with the state lock held."""
        body = self._body(request)
        if isinstance(body, SandboxResponse):
            return body
        user_id = self._user_tokens.get(str(body.get("userToken")))
        if user_id is None or user_id not in self._users:
            return _answer(NOT_CONNECTED)
        return body, self._users[user_id]

    @route("POST", "/partner/initialcheckstore")
    def initial_check_store(self, request: SandboxRequest) -> SandboxResponse:
        with self._state_lock:
            found = self._connected(request)
            if isinstance(found, SandboxResponse):
                return found
            return _answer(OK, {"program": self._program(), "user": self._public_user(found[1])})

    @route("POST", "/user/historyburns")
    def history_burns(self, request: SandboxRequest) -> SandboxResponse:
        with self._state_lock:
            found = self._connected(request)
            if isinstance(found, SandboxResponse):
                return found
            return _answer(OK, {"history": copy.deepcopy(found[1]["gifts"])})

    @route("POST", "/user/historyearns")
    def history_earns(self, request: SandboxRequest) -> SandboxResponse:
        with self._state_lock:
            found = self._connected(request)
            if isinstance(found, SandboxResponse):
                return found
            return _answer(OK, {"history": copy.deepcopy(found[1]["actions"])})

    @route("POST", "/generosity/store")
    def generosity_store(self, request: SandboxRequest) -> SandboxResponse:
        with self._state_lock:
            found = self._connected(request)
            if isinstance(found, SandboxResponse):
                return found
            body, user = found
            user_id = user["partnerClientId"]
        tag_id = body.get("tagId")
        if not _text(tag_id):
            return _answer(BAD_REQUEST, status=400)
        code, action = self._store(user_id, str(tag_id), body.get("param1"), None)
        return _answer(code, None if action is None else {"action": action})

    @route("POST", "/gift/list")
    def gift_list(self, request: SandboxRequest) -> SandboxResponse:
        with self._state_lock:
            found = self._connected(request)
            if isinstance(found, SandboxResponse):
                return found
            return _answer(OK, {"gifts": copy.deepcopy(self.gifts)})

    @route("POST", "/gift/checkavailability")
    def gift_check_availability(self, request: SandboxRequest) -> SandboxResponse:
        with self._state_lock:
            found = self._connected(request)
            if isinstance(found, SandboxResponse):
                return found
            body, user = found
            gift = next((item for item in self.gifts if item["giftId"] == body.get("giftId")), None)
            if gift is None:
                return _answer(UNKNOWN_GIFT)
            if user["points"] < gift["cost"]:
                return _answer(NOT_ENOUGH_POINTS)
            return _answer(OK, {"gift": dict(gift), "points": user["points"] - gift["cost"]})

    @route("POST", "/ad/bonus")
    @route("POST", "/ad/specials")
    @route("POST", "/ad/news")
    def ads(self, request: SandboxRequest) -> SandboxResponse:
        with self._state_lock:
            found = self._connected(request)
            if isinstance(found, SandboxResponse):
                return found
        kind = request.path.rsplit("/", 1)[-1]
        return _answer(OK, {"ads": [{"id": f"{kind}-1", "title": f"Sandbox {kind}", "lang": found[0].get("lang")}]})

    @route("POST", "/user/logout")
    def logout(self, request: SandboxRequest) -> SandboxResponse:
        with self._state_lock:
            found = self._connected(request)
            if isinstance(found, SandboxResponse):
                return found
            user_id = found[1]["partnerClientId"]
            self._user_tokens = {token: uid for token, uid in self._user_tokens.items() if uid != user_id}
        return _answer(OK, {})

    @route("POST", "/user/delete")
    def delete_user(self, request: SandboxRequest) -> SandboxResponse:
        with self._state_lock:
            found = self._connected(request)
            if isinstance(found, SandboxResponse):
                return found
            self._delete(found[1]["partnerClientId"])
        return _answer(OK, {})

    # --- state (call with the state lock held, except _store) ---------------------------------------------

    def _user(self, user_id: str) -> dict[str, Any]:
        user = self._users.get(user_id)
        if user is None:
            now = time.time()
            user = {"partnerClientId": user_id, "points": 0, "createdAt": iso_utc(now), "changed_at": now,
                    "actions": [], "gifts": []}  # fmt: skip
            self._users[user_id] = user
        return user

    @staticmethod
    def _public_user(user: Mapping[str, Any]) -> dict[str, Any]:
        return {name: user[name] for name in ("partnerClientId", "points", "createdAt")}

    def _delete(self, user_id: str) -> bool:
        if self._users.pop(user_id, None) is None:
            return False
        self._actions = [action for action in self._actions if action["partnerClientId"] != user_id]
        self._user_tokens = {token: uid for token, uid in self._user_tokens.items() if uid != user_id}
        return True

    def _store(self, user_id: str, tag_id: str, param1: Any, date: Any) -> tuple[int, dict[str, Any] | None]:
        if tag_id not in self.tags:
            return UNKNOWN_ACTION, None
        if param1 is not None and not isinstance(param1, str):
            return BAD_REQUEST, None
        when = date if isinstance(date, str) and date else iso_utc(time.time())
        with self._state_lock:
            duplicate = param1 is not None and any(
                (a["partnerClientId"], a["tagId"], a["param1"]) == (user_id, tag_id, param1) for a in self._actions
            )
            if duplicate:
                return self.modes.already_recorded_code, None
            action = {"partnerClientId": user_id, "tagId": tag_id, "param1": param1, "points": self.tags[tag_id],
                      "date": when}  # fmt: skip
            user = self._user(user_id)
            user["points"] += action["points"]
            user["actions"].append(dict(action))
            user["changed_at"] = time.time()
            self._actions.append(action)
        return OK, dict(action)


def main(argv: Sequence[str] | None = None, stop: threading.Event | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandboxes.appsmiles", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    parser.add_argument("--app-id", default=DEFAULT_APP_ID, help="the appId to accept")
    parser.add_argument("--partner-id", default=DEFAULT_PARTNER_ID, help="the partnerId to accept")
    parser.add_argument("--partner-secret", default=DEFAULT_PARTNER_SECRET, help="the partner secret to accept")
    parser.add_argument("--token-lifetime", type=float, default=3600.0, help="seconds a partner token lasts")
    parser.add_argument("--modes", default="", help='the reading played, as JSON, e.g. {"body_encoding": "form"}')
    args = parser.parse_args(argv)
    sandbox = AppsMilesSandbox(
        args.app_id,
        args.partner_id,
        args.partner_secret,
        token_lifetime=args.token_lifetime,
        port=args.port,
        modes=args.modes,
    )
    serve_until_interrupted(sandbox, stop)
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess by the tests
    raise SystemExit(main())
