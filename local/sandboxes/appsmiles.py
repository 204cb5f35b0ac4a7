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
import copy
import secrets
import threading
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sandboxes.appsmiles_accounts import AppsMilesAccounts
from sandboxes.appsmiles_wire import (
    BAD_REQUEST,
    DEFAULT_APP_ID,
    DEFAULT_PARTNER_ID,
    DEFAULT_PARTNER_SECRET,
    MESSAGES,
    NOT_CONNECTED,
    NOT_ENOUGH_POINTS,
    OK,
    PAGE_SIZE,
    UNKNOWN_ACTION,
    UNKNOWN_GIFT,
    UNKNOWN_USER,
    answer,
    is_text,
)
from sandboxes.base import route, serve_until_interrupted
from sandboxes.messages import SandboxRequest, SandboxResponse


class AppsMilesSandbox(AppsMilesAccounts):
    """app's miles on loopback: partner JWTs checked on every call but auth/token, state kept in memory.

    Inspection: `auth_calls` (auth/token calls answered 200), `actions` (every stored action), `users`,
    `issued_tokens`, and the base's `requests`. `token_lifetime` may be changed at any time.
    """

    # --- back end -----------------------------------------------------------------------------------------

    @route("POST", "/buffer/store")
    def buffer_store(self, request: SandboxRequest) -> SandboxResponse:
        body = self._body(request)
        if isinstance(body, SandboxResponse):
            return body
        user_id, tag_id = body.get("partnerClientId"), body.get("tagId")
        if not is_text(user_id) or not is_text(tag_id):
            return answer(BAD_REQUEST, status=400)
        code, action = self._store(str(user_id), str(tag_id), body.get("param1"), body.get("date"))
        return answer(code, None if action is None else {"action": action})

    @route("POST", "/generosity/multistore")
    def multistore(self, request: SandboxRequest) -> SandboxResponse:
        body = self._body(request)
        if isinstance(body, SandboxResponse):
            return body
        tag_id, actions = body.get("tagId"), body.get("actions")
        if not is_text(tag_id) or not isinstance(actions, list):
            return answer(BAD_REQUEST, status=400)
        if tag_id not in self.tags:
            return answer(UNKNOWN_ACTION)
        results = []
        for item in actions:
            user_id = item.get("partnerClientId") if isinstance(item, dict) else None
            param1 = item.get("param1") if isinstance(item, dict) else None
            if not is_text(user_id):
                code = BAD_REQUEST
            else:
                code, _ = self._store(str(user_id), str(tag_id), param1, body.get("date"))
            results.append(
                {"partnerClientId": user_id, "param1": param1, "errorCode": code, "errorMsg": MESSAGES[code]}
            )
        return answer(OK, {"results": results})

    @route("POST", "/user/info")
    def user_info(self, request: SandboxRequest) -> SandboxResponse:
        body = self._body(request)
        if isinstance(body, SandboxResponse):
            return body
        with self._state_lock:
            user = self._users.get(str(body.get("partnerClientId")))
            if user is None:
                return answer(UNKNOWN_USER)
            return answer(OK, {"user": self._public_user(user)})

    @route("POST", "/user/infos")
    def user_infos(self, request: SandboxRequest) -> SandboxResponse:
        body = self._body(request)
        if isinstance(body, SandboxResponse):
            return body
        ids, page = body.get("partnerClientIds"), body.get("page", 0)
        if (ids is not None and not isinstance(ids, list)) or not isinstance(page, int) or page < 0:
            return answer(BAD_REQUEST, status=400)
        with self._state_lock:
            if ids is None:
                chosen = list(self._users.values())
            else:
                chosen = [self._users[uid] for uid in ids if isinstance(uid, str) and uid in self._users]
            window = [self._public_user(user) for user in chosen[page * PAGE_SIZE : (page + 1) * PAGE_SIZE]]
        next_page = page + 1 if len(chosen) > (page + 1) * PAGE_SIZE else None
        return answer(OK, {"users": window, "nextPage": next_page})

    @route("POST", "/user/incrementalinfos")
    def incremental_infos(self, request: SandboxRequest) -> SandboxResponse:
        body = self._body(request)
        if isinstance(body, SandboxResponse):
            return body
        try:
            since = datetime.fromisoformat(str(body.get("since"))).timestamp()
        except ValueError:
            return answer(BAD_REQUEST, status=400)
        with self._state_lock:
            users = [
                self._public_user(user)
                | {"actions": copy.deepcopy(user["actions"]), "gifts": copy.deepcopy(user["gifts"])}
                for user in self._users.values()
                if user["changed_at"] >= since
            ]
        return answer(OK, {"users": users})

    @route("POST", "/user/ranking")
    def ranking(self, request: SandboxRequest) -> SandboxResponse:
        body = self._body(request)
        if isinstance(body, SandboxResponse):
            return body
        user_id, n = body.get("partnerClientId"), body.get("n", 5)
        if not isinstance(n, int) or n < 0:
            return answer(BAD_REQUEST, status=400)
        with self._state_lock:
            if user_id not in self._users:
                return answer(UNKNOWN_USER)
            ordered = sorted(self._users.values(), key=lambda user: (-user["points"], user["createdAt"]))
            ranked = [{"partnerClientId": u["partnerClientId"], "points": u["points"], "rank": i + 1}
                      for i, u in enumerate(ordered)]  # fmt: skip
        where = next(i for i, entry in enumerate(ranked) if entry["partnerClientId"] == user_id)
        return answer(OK, {"ranking": ranked[max(0, where - n) : where + n + 1]})

    @route("POST", "/user/multidelete")
    def multidelete(self, request: SandboxRequest) -> SandboxResponse:
        body = self._body(request)
        if isinstance(body, SandboxResponse):
            return body
        ids = body.get("partnerClientIds")
        if not isinstance(ids, list) or not all(isinstance(uid, str) for uid in ids):
            return answer(BAD_REQUEST, status=400)
        deleted, unknown = [], []
        with self._state_lock:
            for uid in ids:
                if self._delete(uid):
                    deleted.append(uid)
                else:
                    unknown.append(uid)
        return answer(OK, {"deleted": deleted, "unknown": unknown})

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
        return answer(OK, {"program": self._program()})

    @route("POST", "/user/clientcheckcredentials")
    def client_check_credentials(self, request: SandboxRequest) -> SandboxResponse:
        body = self._body(request)
        if isinstance(body, SandboxResponse):
            return body
        user_id = body.get("partnerClientId")
        if not is_text(user_id):
            return answer(BAD_REQUEST, status=400)
        user_token = f"ut-{secrets.token_urlsafe(24)}"
        with self._state_lock:
            user = self._user(str(user_id))
            self._user_tokens[user_token] = user["partnerClientId"]
            return answer(OK, {"user": {"userToken": user_token, **self._public_user(user)}})

    def _connected(self, request: SandboxRequest) -> tuple[dict[str, Any], dict[str, Any]] | SandboxResponse:
        """(body, user) of a front-end call, or the answer refusing it; call with the state lock held."""
        body = self._body(request)
        if isinstance(body, SandboxResponse):
            return body
        user_id = self._user_tokens.get(str(body.get("userToken")))
        if user_id is None or user_id not in self._users:
            return answer(NOT_CONNECTED)
        return body, self._users[user_id]

    @route("POST", "/partner/initialcheckstore")
    def initial_check_store(self, request: SandboxRequest) -> SandboxResponse:
        with self._state_lock:
            found = self._connected(request)
            if isinstance(found, SandboxResponse):
                return found
            return answer(OK, {"program": self._program(), "user": self._public_user(found[1])})

    @route("POST", "/user/historyburns")
    def history_burns(self, request: SandboxRequest) -> SandboxResponse:
        with self._state_lock:
            found = self._connected(request)
            if isinstance(found, SandboxResponse):
                return found
            return answer(OK, {"history": copy.deepcopy(found[1]["gifts"])})

    @route("POST", "/user/historyearns")
    def history_earns(self, request: SandboxRequest) -> SandboxResponse:
        with self._state_lock:
            found = self._connected(request)
            if isinstance(found, SandboxResponse):
                return found
            return answer(OK, {"history": copy.deepcopy(found[1]["actions"])})

    @route("POST", "/generosity/store")
    def generosity_store(self, request: SandboxRequest) -> SandboxResponse:
        with self._state_lock:
            found = self._connected(request)
            if isinstance(found, SandboxResponse):
                return found
            body, user = found
            user_id = user["partnerClientId"]
        tag_id = body.get("tagId")
        if not is_text(tag_id):
            return answer(BAD_REQUEST, status=400)
        code, action = self._store(user_id, str(tag_id), body.get("param1"), None)
        return answer(code, None if action is None else {"action": action})

    @route("POST", "/gift/list")
    def gift_list(self, request: SandboxRequest) -> SandboxResponse:
        with self._state_lock:
            found = self._connected(request)
            if isinstance(found, SandboxResponse):
                return found
            return answer(OK, {"gifts": copy.deepcopy(self.gifts)})

    @route("POST", "/gift/checkavailability")
    def gift_check_availability(self, request: SandboxRequest) -> SandboxResponse:
        with self._state_lock:
            found = self._connected(request)
            if isinstance(found, SandboxResponse):
                return found
            body, user = found
            gift = next((item for item in self.gifts if item["giftId"] == body.get("giftId")), None)
            if gift is None:
                return answer(UNKNOWN_GIFT)
            if user["points"] < gift["cost"]:
                return answer(NOT_ENOUGH_POINTS)
            return answer(OK, {"gift": dict(gift), "points": user["points"] - gift["cost"]})

    @route("POST", "/ad/bonus")
    @route("POST", "/ad/specials")
    @route("POST", "/ad/news")
    def ads(self, request: SandboxRequest) -> SandboxResponse:
        with self._state_lock:
            found = self._connected(request)
            if isinstance(found, SandboxResponse):
                return found
        kind = request.path.rsplit("/", 1)[-1]
        return answer(OK, {"ads": [{"id": f"{kind}-1", "title": f"Sandbox {kind}", "lang": found[0].get("lang")}]})

    @route("POST", "/user/logout")
    def logout(self, request: SandboxRequest) -> SandboxResponse:
        with self._state_lock:
            found = self._connected(request)
            if isinstance(found, SandboxResponse):
                return found
            user_id = found[1]["partnerClientId"]
            self._user_tokens = {token: uid for token, uid in self._user_tokens.items() if uid != user_id}
        return answer(OK, {})

    @route("POST", "/user/delete")
    def delete_user(self, request: SandboxRequest) -> SandboxResponse:
        with self._state_lock:
            found = self._connected(request)
            if isinstance(found, SandboxResponse):
                return found
            self._delete(found[1]["partnerClientId"])
        return answer(OK, {})


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
