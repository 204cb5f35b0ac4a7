"""The app's miles sandbox's state: partner tokens issued and checked, users, actions and user tokens, in memory."""

from __future__ import annotations

import copy
import hmac
import math
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sandboxes.appsmiles_wire import (
    BAD_REQUEST,
    DEFAULT_APP_ID,
    DEFAULT_GIFTS,
    DEFAULT_PARTNER_ID,
    DEFAULT_PARTNER_SECRET,
    DEFAULT_TAGS,
    INVALID_CREDENTIALS,
    OK,
    TOKEN_INVALID,
    TOKEN_PATH,
    UNKNOWN_ACTION,
    UNKNOWN_APPLICATION,
    AppsMilesModes,
    answer,
    form_value,
    iso_utc,
    sign_jwt,
    verify_jwt,
)
from sandboxes.base import CONTROL_PREFIX, SandboxServer, route
from sandboxes.messages import SandboxRequest, SandboxResponse, json_response


@dataclass
class _Script:
    path: str
    status: int
    body: Any
    remaining: int


class AppsMilesAccounts(SandboxServer):
    """The sandbox's state and its checks: partner JWTs issued and verified, users, actions and user tokens kept
    in memory, with inspection and control. AppsMilesSandbox adds the partner's routes on top."""

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
            return answer(BAD_REQUEST, status=415)
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
            return answer(TOKEN_INVALID, status=401)
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
            return {name: form_value(name, values[0]) for name, values in request.form.items() if values}
        if request.body.strip() and content_type == "application/x-www-form-urlencoded":
            return None
        return request.json if isinstance(request.json, dict) else {}

    def _body(self, request: SandboxRequest) -> dict[str, Any] | SandboxResponse:
        """The object sent, or the answer refusing it (not an object: 3; another application: 10)."""
        body = request.json if self.modes.body_encoding == "json" else self.payload(request)
        if not isinstance(body, dict) or not body:
            return answer(BAD_REQUEST, status=400)
        if body.get("appId") != self.app_id:
            return answer(UNKNOWN_APPLICATION)
        return body

    @route("POST", TOKEN_PATH)
    def auth_token(self, request: SandboxRequest) -> SandboxResponse:
        body = self.payload(request) or {}
        expected = (self.app_id, self.partner_id, self.partner_secret)
        sent = (body.get("appId"), body.get("partnerId"), body.get("partnerSecret"))
        if not all(isinstance(value, str) for value in sent) or not all(
            hmac.compare_digest(str(a), b) for a, b in zip(sent, expected, strict=True)
        ):
            return answer(INVALID_CREDENTIALS, status=401)
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
