"""Adapter for the app's miles loyalty API: partner tokens, actions (points) for our users, users, the web SDK's calls.

The partner's documentation lists the endpoints but not their bodies. Known from the older public API: `auth/token`
answers `{"access_token", "token_type": "bearer", "expires_in"}` and the token travels as `Authorization: Bearer`;
`buffer/store` takes `appId`, `partnerClientId` (our user id), `tagId` (the action code), `lang`, an optional `date`
and an optional `param1`, and app's miles refuses a second identical (partnerClientId, tagId, param1); answers carry
`errorCode` (0 = ok) and `errorMsg`, even with HTTP 200.

Everything else is our assumption (each names the `AppsMilesClient` setting that changes it, where one can):

- Every call is `POST {base_url}/{path}` with a JSON body, and every answer is JSON `{"errorCode", "errorMsg",
  "data": {...}}` (`data` may be absent on errors). Every JSON field name is a setting of `AppsMilesFields` and
  every path one of `AppsMilesPaths` (`fields=`, `paths=`).
- `auth/token` takes `{"appId", "partnerId", "partnerSecret"}` and answers a three-part JWT. Its lifetime is read
  from the JWT's `exp` claim (decoded without checking the signature: we are not its audience), else from
  `expires_in`; it is refreshed `token_refresh_margin` seconds before it ends, but never earlier than half its
  lifetime. One token per (base_url, app_id, partner_id) is shared by every client and thread of the container.
- A 401 on any call but `auth/token` means our token expired or was revoked: it is dropped, a new one fetched and
  the call repeated once; a second 401 is `PartnerAuthError`, as is a 401/403 on `auth/token`.
- `errorCode` other than 0 is a refusal even on HTTP 200 (`AppsMilesRejected`, final), except the "already
  recorded" codes (`already_recorded_codes`, default 105: a second identical action), which are a success with
  `StoreResult.already_recorded`, and the "user not connected" codes (`user_not_connected_codes`, default 4: a
  missing, unknown or logged-out user token), which are `UserNotConnected`. Unknown tag 104, unknown user 103,
  unknown application 10, not enough points 201 and unknown gift 202 are plain `AppsMilesRejected` with their code.
- `buffer/store` and `generosity/multistore` with `param1` on every action are idempotent at app's miles, so they
  may be retried; without it they are sent once. Reads, `user/multidelete` and `auth/token` are idempotent; the
  front end's `generosity/store` is retried only with `param1`, `user/logout` and `user/delete` are idempotent.
- An action for a user app's miles has never seen creates that user (its buffer credits users before they first
  open the app). `date` is sent as ISO 8601 UTC (`2026-11-24T10:00:00Z`); a naive datetime is read as UTC.
- `generosity/multistore` answers one result per action, in request order, each with the errorCode buffer/store
  would give; `user/infos` pages by `page` (100 users) and `nextPage`, which `user_infos` follows to the end.
- The front end's calls carry our partner token too, and the user's token in the body field `userToken`.
- The wire format is a setting too (`body_encoding`: "json" or "form", form values of lists and objects being JSON
  text; `jwt_placement`: "header" for `Authorization: Bearer`, or "body" for the body field `jwt_field`), as
  are the codes, `lang`, and every field and path name: on a deployed stack all of them come from the
  `APPSMILES_PROFILE` JSON (partners.profiles.AppsMilesProfile). A refusal they could explain names them: a 401
  after a fresh token names `jwt_placement`/`body_encoding`, a 400/415 names `body_encoding`/`fields`, an
  answer without errorCode names `fields`.
- Nothing logs a user id, a user token, the JWT or the secret: log lines carry the path template; error messages
  from the partner are scrubbed of the secret, the JWT, the call's user tokens and user ids.
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import requests

from partners.errors import PartnerAuthError, PartnerBadResponse, PartnerRejected
from partners.http import Credentials, PartnerHttp, RetryPolicy, Timeouts, default_message
from partners.redact import scrub_text

PARTNER = "appsmiles"
PROFILE_VARIABLE = "APPSMILES_PROFILE"
# The web SDK's lists are short; a partner that keeps announcing pages is looping, not listing.
MAX_PAGES = 10_000


class AppsMilesRejected(PartnerRejected):
    """app's miles answered an errorCode other than 0 that is not "already recorded": final."""

    def __init__(self, partner: str, message: str, *, code: int, status: int | None = None) -> None:
        super().__init__(partner, message, status=status)
        self.code = code


class UserNotConnected(AppsMilesRejected):
    """The user token is missing, unknown or logged out (errorCode 4 by default): the user must reconnect."""


@dataclass(frozen=True)
class AppsMilesFields:
    """The wire names of every JSON field; defaults are our reading of the partner's API (see the module)."""

    app_id: str = "appId"
    partner_id: str = "partnerId"
    partner_secret: str = "partnerSecret"  # noqa: S105 - a wire name, not a secret
    access_token: str = "access_token"  # noqa: S105 - a wire name, not a secret
    expires_in: str = "expires_in"
    error_code: str = "errorCode"
    error_msg: str = "errorMsg"
    data: str = "data"
    partner_client_id: str = "partnerClientId"
    partner_client_ids: str = "partnerClientIds"
    tag_id: str = "tagId"
    lang: str = "lang"
    date: str = "date"
    param1: str = "param1"
    action: str = "action"
    actions: str = "actions"
    results: str = "results"
    user: str = "user"
    users: str = "users"
    page: str = "page"
    next_page: str = "nextPage"
    since: str = "since"
    ranking: str = "ranking"
    ranking_size: str = "n"
    deleted: str = "deleted"
    unknown: str = "unknown"
    user_token: str = "userToken"  # noqa: S105 - a wire name, not a secret
    program: str = "program"
    history: str = "history"
    gifts: str = "gifts"
    gift_id: str = "giftId"
    ads: str = "ads"


@dataclass(frozen=True)
class AppsMilesPaths:
    """The path of every call, relative to the base URL."""

    token: str = "auth/token"  # noqa: S105 - a wire name, not a secret
    store: str = "buffer/store"
    multistore: str = "generosity/multistore"
    user_info: str = "user/info"
    user_infos: str = "user/infos"
    incremental_infos: str = "user/incrementalinfos"
    ranking: str = "user/ranking"
    multidelete: str = "user/multidelete"
    get_prog: str = "partner/getprog"
    client_check_credentials: str = "user/clientcheckcredentials"
    initial_check_store: str = "partner/initialcheckstore"
    history_burns: str = "user/historyburns"
    history_earns: str = "user/historyearns"
    generosity_store: str = "generosity/store"
    gift_list: str = "gift/list"
    gift_check_availability: str = "gift/checkavailability"
    ad_bonus: str = "ad/bonus"
    ad_specials: str = "ad/specials"
    ad_news: str = "ad/news"
    logout: str = "user/logout"
    delete_user: str = "user/delete"


@dataclass(frozen=True)
class StoreResult:
    already_recorded: bool  # True when app's miles answered an "already recorded" code
    code: int  # the errorCode (0, or the already-recorded code)
    action: dict[str, Any]  # data.action when given, else {}


@dataclass(frozen=True)
class MultideleteResult:
    deleted: list[str]
    unknown: list[str]


@dataclass(frozen=True)
class UserSession:
    user_token: str
    user: dict[str, Any]


# --- the partner token, shared by the container -----------------------------------------------------------


@dataclass(frozen=True)
class _Answer:
    data: dict[str, Any]
    status: int
    code: int


@dataclass(frozen=True)
class _Token:
    value: str
    refresh_at: float  # on the client's clock


_TOKENS: dict[tuple[str, str, str], _Token] = {}
# The secret last sent for each token key: a partner message echoing it is scrubbed on any call, not only auth/token.
_SECRETS: dict[tuple[str, str, str], str] = {}
# Held while a token is fetched, so that concurrent first calls wait for the one fetch instead of each making one.
_TOKEN_LOCK = threading.Lock()
_fetch_count = 0


def token_fetches() -> int:
    """How many auth/token calls this process has made (the benchmark counts them; never reset)."""
    return _fetch_count


def reset_tokens() -> None:
    """Forget every cached partner token, as a fresh container would."""
    with _TOKEN_LOCK:
        _TOKENS.clear()
        _SECRETS.clear()


def jwt_expiry(token: str) -> float | None:
    """The `exp` claim (epoch seconds) of a JWT, read without verifying it; None when there is none to read."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    payload = parts[1]
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (ValueError, binascii.Error):
        return None
    exp = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return float(exp)
    return None


def refresh_time(now: float, lifetime: float, margin: float) -> float:
    """When to replace a token of `lifetime` seconds fetched at `now`: `margin` early, at most half its life early."""
    return now + lifetime - min(margin, lifetime / 2)


# --- what a call in flight must keep out of its error messages --------------------------------------------


@dataclass(frozen=True)
class _InFlight:
    token: str = ""
    secrets: tuple[str, ...] = ()


_IN_FLIGHT: ContextVar[_InFlight] = ContextVar("appsmiles_in_flight", default=_InFlight())  # noqa: B039 - immutable


@contextmanager
def _in_flight(token: str, secrets: Sequence[str]) -> Iterator[None]:
    reset = _IN_FLIGHT.set(_InFlight(token=token, secrets=tuple(secrets)))
    try:
        yield
    finally:
        _IN_FLIGHT.reset(reset)


def _scrub(text: str) -> str:
    in_flight = _IN_FLIGHT.get()
    # Longest first, so that a user id inside a longer secret does not leave the rest of the secret behind.
    known = sorted((value for value in (in_flight.token, *in_flight.secrets) if value), key=len, reverse=True)
    return scrub_text(text, known)


def hint(*settings: str) -> str:
    """` (check APPSMILES_PROFILE.x, ...)`: appended to an error these profile settings could explain."""
    return f" (check {', '.join(f'{PROFILE_VARIABLE}.{name}' for name in settings)})"


BodyEncoding = Literal["json", "form"]
JwtPlacement = Literal["header", "body"]


def _form(body: Mapping[str, Any]) -> dict[str, str]:
    """A body as form fields: lists and objects as JSON text, the rest as text."""
    return {
        key: json.dumps(value, separators=(",", ":")) if isinstance(value, list | dict) else str(value)
        for key, value in body.items()
    }


def _message_of(response: requests.Response) -> str:
    return _scrub(default_message(response))


def _utc(moment: datetime) -> str:
    aware = moment.replace(tzinfo=UTC) if moment.utcoffset() is None else moment
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- client -----------------------------------------------------------------------------------------------


class AppsMilesClient:
    """Calls app's miles through the shared HTTP core; `base_url` is the API root (…/api)."""

    def __init__(
        self,
        base_url: str,
        app_id: str,
        partner_id: str,
        partner_secret: Callable[[], str],
        *,
        fields: AppsMilesFields = AppsMilesFields(),
        already_recorded_codes: Collection[int] = (105,),
        lang: str = "fr",
        token_refresh_margin: float = 60.0,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] | None = None,
        user_not_connected_codes: Collection[int] = (4,),
        paths: AppsMilesPaths = AppsMilesPaths(),
        body_encoding: BodyEncoding = "json",
        jwt_placement: JwtPlacement = "header",
        jwt_field: str = "token",
    ) -> None:
        if body_encoding not in ("json", "form"):
            raise ValueError("body_encoding must be 'json' or 'form'")
        if jwt_placement not in ("header", "body"):
            raise ValueError("jwt_placement must be 'header' or 'body'")
        self.body_encoding = body_encoding
        self.jwt_placement = jwt_placement
        self.jwt_field = jwt_field
        self.app_id = app_id
        self.partner_id = partner_id
        self._partner_secret = partner_secret
        self.fields = fields
        self.paths = paths
        self.already_recorded_codes = frozenset(already_recorded_codes)
        self.user_not_connected_codes = frozenset(user_not_connected_codes)
        self.lang = lang
        self.token_refresh_margin = token_refresh_margin
        self._clock = clock
        extra: dict[str, Any] = {"sleep": sleep} if sleep else {}
        self.http = PartnerHttp(
            PARTNER,
            base_url,
            credentials=self._credentials,
            timeouts=timeouts,
            retry=retry,
            message_of=_message_of,
            **extra,
        )
        self._cache_key = (self.http.base_url, app_id, partner_id)

    # --- the partner token --------------------------------------------------------------------------------

    def token(self) -> str:
        """The cached partner JWT, fetched when absent or near its expiry."""
        with _TOKEN_LOCK:
            cached = _TOKENS.get(self._cache_key)
            if cached is not None and self._clock() < cached.refresh_at:
                return cached.value
            fresh = self._fetch_token()
            _TOKENS[self._cache_key] = fresh
            return fresh.value

    def _drop_token(self, failed: str) -> None:
        # Another thread may have replaced the token already; dropping that new one would cost a needless fetch.
        with _TOKEN_LOCK:
            cached = _TOKENS.get(self._cache_key)
            if cached is not None and cached.value == failed:
                del _TOKENS[self._cache_key]

    def _fetch_token(self) -> _Token:
        global _fetch_count  # noqa: PLW0603 - a process-wide count, read by token_fetches()
        f = self.fields
        secret = self._partner_secret()
        _SECRETS[self._cache_key] = secret
        body = {f.app_id: self.app_id, f.partner_id: self.partner_id, f.partner_secret: secret}
        with _in_flight("", (secret,)):
            _fetch_count += 1
            try:
                response = self._post(self.paths.token, body, idempotent=True)
            except PartnerAuthError as refused:
                # Our ids and secret refused, or not found where app's miles reads them.
                message = refused.message + hint("body_encoding", "fields")
                raise PartnerAuthError(PARTNER, message, status=refused.status) from None
            answer = self.http.json(response)
            if not isinstance(answer, dict):
                raise PartnerBadResponse(PARTNER, "the token answer is not a JSON object", status=response.status_code)
            code = answer.get(f.error_code, 0)
            if code != 0:
                if not _is_code(code):
                    raise PartnerBadResponse(PARTNER, "the token answer's errorCode is not an integer")
                raise self._rejection(code, answer, response.status_code)
            value = answer.get(f.access_token)
            if not isinstance(value, str) or not value:
                message = "the token answer has no access_token" + hint("fields")
                raise PartnerBadResponse(PARTNER, message, status=response.status_code)
        now = self._clock()
        exp = jwt_expiry(value)
        expires_in = answer.get(f.expires_in)
        if exp is not None and exp > now:
            lifetime = exp - now
        elif isinstance(expires_in, int | float) and not isinstance(expires_in, bool) and expires_in > 0:
            lifetime = float(expires_in)
        else:
            # Neither says how long it lasts: use it for this call only, and let a 401 tell us when it ends.
            lifetime = 0.0
        return _Token(value, refresh_time(now, lifetime, self.token_refresh_margin))

    def _credentials(self) -> Credentials:
        token = _IN_FLIGHT.get().token
        if not token or self.jwt_placement != "header":
            return Credentials()
        return Credentials(headers={"Authorization": f"Bearer {token}"})

    # --- back end -----------------------------------------------------------------------------------------

    def store_action(
        self, user_id: str, tag_id: str, *, param1: str | None = None, date: datetime | None = None
    ) -> StoreResult:
        """buffer/store: credit `user_id` with the action `tag_id` (creating the user at app's miles if new)."""
        f = self.fields
        body: dict[str, Any] = {f.partner_client_id: user_id, f.tag_id: tag_id, f.lang: self.lang}
        if date is not None:
            body[f.date] = _utc(date)
        if param1 is not None:
            body[f.param1] = param1
        return self._store(self.paths.store, body, idempotent=param1 is not None, secrets=(user_id,))

    def multistore(
        self, tag_id: str, actions: Sequence[tuple[str, str | None]], *, date: datetime | None = None
    ) -> list[StoreResult | AppsMilesRejected]:
        """generosity/multistore: one action `tag_id` for each (user_id, param1); one outcome per action, in order."""
        f = self.fields
        wire_actions: list[dict[str, Any]] = []
        for user_id, param1 in actions:
            item: dict[str, Any] = {f.partner_client_id: user_id}
            if param1 is not None:
                item[f.param1] = param1
            wire_actions.append(item)
        body: dict[str, Any] = {f.tag_id: tag_id, f.lang: self.lang, f.actions: wire_actions}
        if date is not None:
            body[f.date] = _utc(date)
        user_ids = tuple(user_id for user_id, _ in actions)
        idempotent = all(param1 is not None for _, param1 in actions)
        data, status = self._call(self.paths.multistore, body, idempotent=idempotent, secrets=user_ids)
        results = data.get(f.results)
        if not isinstance(results, list) or len(results) != len(actions):
            raise PartnerBadResponse(PARTNER, "multistore answered no result per action", status=status)
        outcomes: list[StoreResult | AppsMilesRejected] = []
        with _in_flight("", self._with_secret(user_ids)):
            for index, result in enumerate(results):
                if not isinstance(result, dict) or not _is_code(result.get(f.error_code)):
                    raise PartnerBadResponse(PARTNER, f"multistore result {index} has no errorCode", status=status)
                code = result[f.error_code]
                action = {k: v for k, v in result.items() if k not in (f.error_code, f.error_msg)}
                if code == 0 or code in self.already_recorded_codes:
                    outcomes.append(StoreResult(already_recorded=code != 0, code=code, action=action))
                else:
                    outcomes.append(self._rejection(code, result, status))
        return outcomes

    def user_info(self, user_id: str) -> dict[str, Any]:
        """user/info: the user (partnerClientId, points, createdAt); unknown → AppsMilesRejected code 103."""
        f = self.fields
        data, status = self._call(self.paths.user_info, {f.partner_client_id: user_id}, secrets=(user_id,))
        return _object(data, f.user, status)

    def user_infos(self, user_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """user/infos: these users (every user when None), following nextPage to the end."""
        f = self.fields
        body: dict[str, Any] = {}
        if user_ids is not None:
            body[f.partner_client_ids] = list(user_ids)
        users: list[dict[str, Any]] = []
        seen_pages: set[int] = set()
        while True:
            data, status = self._call(self.paths.user_infos, body, secrets=tuple(user_ids or ()))
            users.extend(_objects(data, f.users, status))
            next_page = data.get(f.next_page)
            if next_page is None:
                return users
            if not _is_code(next_page) or next_page in seen_pages or len(seen_pages) >= MAX_PAGES:
                raise PartnerBadResponse(PARTNER, "user/infos announced a next page it cannot have", status=status)
            seen_pages.add(next_page)
            body = {**body, f.page: next_page}

    def incremental_infos(self, since: datetime) -> list[dict[str, Any]]:
        """user/incrementalinfos: users changed since `since`, each with their actions and gifts."""
        data, status = self._call(self.paths.incremental_infos, {self.fields.since: _utc(since)})
        return _objects(data, self.fields.users, status)

    def ranking(self, user_id: str, n: int = 5) -> list[dict[str, Any]]:
        """user/ranking: up to `n` users above and below `user_id`, with their rank."""
        f = self.fields
        body = {f.partner_client_id: user_id, f.ranking_size: n}
        data, status = self._call(self.paths.ranking, body, secrets=(user_id,))
        return _objects(data, f.ranking, status)

    def multidelete(self, user_ids: Sequence[str]) -> MultideleteResult:
        """user/multidelete: delete these users with their actions and gifts; unknown ones are reported, not refused."""
        f = self.fields
        ids = list(user_ids)
        data, status = self._call(self.paths.multidelete, {f.partner_client_ids: ids}, secrets=tuple(ids))
        deleted, unknown = data.get(f.deleted), data.get(f.unknown, [])
        if not isinstance(deleted, list) or not isinstance(unknown, list):
            raise PartnerBadResponse(PARTNER, "multidelete answered no deleted/unknown lists", status=status)
        return MultideleteResult(deleted=[str(item) for item in deleted], unknown=[str(item) for item in unknown])

    # --- front end (the web SDK's calls) ------------------------------------------------------------------

    def get_prog(self) -> dict[str, Any]:
        """partner/getprog: the programme (name, actions and their points, gifts)."""
        data, status = self._call(self.paths.get_prog, {self.fields.lang: self.lang})
        return _object(data, self.fields.program, status)

    def client_check_credentials(self, user_id: str) -> UserSession:
        """user/clientcheckcredentials: a user token for `user_id` (the user is created when unknown)."""
        f = self.fields
        body = {f.partner_client_id: user_id, f.lang: self.lang}
        data, status = self._call(self.paths.client_check_credentials, body, secrets=(user_id,))
        user = _object(data, f.user, status)
        user_token = user.get(f.user_token)
        if not isinstance(user_token, str) or not user_token:
            raise PartnerBadResponse(PARTNER, "clientcheckcredentials answered no user token", status=status)
        return UserSession(user_token=user_token, user=user)

    def initial_check_store(self, user_token: str) -> dict[str, Any]:
        """partner/initialcheckstore: {"program", "user"} for the connected user."""
        data, _ = self._user_call(self.paths.initial_check_store, user_token, {self.fields.lang: self.lang})
        return data

    def history_burns(self, user_token: str) -> list[dict[str, Any]]:
        """user/historyburns: the gifts the user bought."""
        data, status = self._user_call(self.paths.history_burns, user_token)
        return _objects(data, self.fields.history, status)

    def history_earns(self, user_token: str) -> list[dict[str, Any]]:
        """user/historyearns: the actions the user was credited for."""
        data, status = self._user_call(self.paths.history_earns, user_token)
        return _objects(data, self.fields.history, status)

    def generosity_store(self, user_token: str, tag_id: str, *, param1: str | None = None) -> StoreResult:
        """generosity/store: the connected user performs `tag_id`; answered as buffer/store."""
        f = self.fields
        body: dict[str, Any] = {f.user_token: user_token, f.tag_id: tag_id, f.lang: self.lang}
        if param1 is not None:
            body[f.param1] = param1
        return self._store(self.paths.generosity_store, body, idempotent=param1 is not None, secrets=(user_token,))

    def gift_list(self, user_token: str) -> list[dict[str, Any]]:
        """gift/list: the gifts on offer, with their cost in points."""
        data, status = self._user_call(self.paths.gift_list, user_token, {self.fields.lang: self.lang})
        return _objects(data, self.fields.gifts, status)

    def gift_check_availability(self, user_token: str, gift_id: str) -> dict[str, Any]:
        """gift/checkavailability: {"gift", "points"}; not enough points → code 201, unknown gift → 202."""
        data, _ = self._user_call(self.paths.gift_check_availability, user_token, {self.fields.gift_id: gift_id})
        return data

    def ad_bonus(self, user_token: str) -> list[dict[str, Any]]:
        return self._ads(self.paths.ad_bonus, user_token)

    def ad_specials(self, user_token: str) -> list[dict[str, Any]]:
        return self._ads(self.paths.ad_specials, user_token)

    def ad_news(self, user_token: str) -> list[dict[str, Any]]:
        return self._ads(self.paths.ad_news, user_token)

    def logout(self, user_token: str) -> None:
        """user/logout: every user token of that user stops working."""
        self._user_call(self.paths.logout, user_token)

    def delete_user(self, user_token: str) -> None:
        """user/delete: the connected user and their history are deleted."""
        self._user_call(self.paths.delete_user, user_token)

    # --- plumbing -----------------------------------------------------------------------------------------

    def _with_secret(self, secrets: Sequence[str]) -> tuple[str, ...]:
        """`secrets` and what else a message must never show: our partner secret and the cached token."""
        cached = _TOKENS.get(self._cache_key)
        known = (_SECRETS.get(self._cache_key, ""), cached.value if cached else "")
        return (*secrets, *(value for value in known if value))

    def _ads(self, path: str, user_token: str) -> list[dict[str, Any]]:
        data, status = self._user_call(path, user_token, {self.fields.lang: self.lang})
        return _objects(data, self.fields.ads, status)

    def _user_call(
        self, path: str, user_token: str, body: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], int]:
        return self._call(path, {self.fields.user_token: user_token, **(body or {})}, secrets=(user_token,))

    def _store(self, path: str, body: dict[str, Any], *, idempotent: bool, secrets: Sequence[str]) -> StoreResult:
        answer = self._call_answer(path, body, idempotent=idempotent, secrets=secrets, already_recorded_ok=True)
        action = answer.data.get(self.fields.action, {})
        if not isinstance(action, dict):
            raise PartnerBadResponse(PARTNER, "the stored action is not a JSON object", status=answer.status)
        return StoreResult(already_recorded=answer.code != 0, code=answer.code, action=action)

    def _call(
        self, path: str, body: Mapping[str, Any], *, idempotent: bool = True, secrets: Sequence[str] = ()
    ) -> tuple[dict[str, Any], int]:
        """POST one call with our token (renewed once on a 401): its `data` and the HTTP status."""
        answer = self._call_answer(path, body, idempotent=idempotent, secrets=secrets)
        return answer.data, answer.status

    def _call_answer(
        self,
        path: str,
        body: Mapping[str, Any],
        *,
        idempotent: bool = True,
        secrets: Sequence[str] = (),
        already_recorded_ok: bool = False,
    ) -> _Answer:
        """With `already_recorded_ok`, an "already recorded" code is an answer rather than a refusal."""
        f = self.fields
        wire = {f.app_id: self.app_id, **body}
        token = self.token()
        try:
            response = self._send(path, wire, token, secrets, idempotent)
        except PartnerAuthError as refused:
            if refused.status != 401:
                raise
            # Expired early or revoked: one new token, one more try; a second 401 is an operator's problem.
            self._drop_token(token)
            token = self.token()
            try:
                response = self._send(path, wire, token, secrets, idempotent)
            except PartnerAuthError as again:
                # A token fresh from auth/token refused: it did not travel where app's miles looks for it.
                message = again.message + hint("jwt_placement", "jwt_field", "body_encoding")
                raise PartnerAuthError(PARTNER, message, status=again.status) from None
        with _in_flight(token, self._with_secret(secrets)):
            answer = self.http.json(response)
            status = response.status_code
            if not isinstance(answer, dict) or not _is_code(answer.get(f.error_code)):
                raise PartnerBadResponse(PARTNER, "the answer has no errorCode" + hint("fields"), status=status)
            code: int = answer[f.error_code]
            data = answer.get(f.data)
            data = dict(data) if isinstance(data, dict) else {}
            if code == 0 or (already_recorded_ok and code in self.already_recorded_codes):
                return _Answer(data, status, code)
            rejection = self._rejection(code, answer, status)
            if already_recorded_ok and type(rejection) is AppsMilesRejected:
                # A refused store may be app's miles' "already recorded" under another code: never taken as done.
                rejection = AppsMilesRejected(
                    PARTNER, rejection.message + hint("already_recorded_codes"), code=code, status=status
                )
            raise rejection

    def _send(
        self, path: str, wire: Mapping[str, Any], token: str, secrets: Sequence[str], idempotent: bool
    ) -> requests.Response:
        if self.jwt_placement == "body":
            wire = {**wire, self.jwt_field: token}
        with _in_flight(token, self._with_secret(secrets)):
            return self._post(path, wire, idempotent=idempotent)

    def _post(self, path: str, body: Mapping[str, Any], *, idempotent: bool) -> requests.Response:
        """One POST in the profile's body encoding; a 400/415 says which settings could explain it."""
        encoded: dict[str, Any] = {"json": dict(body)} if self.body_encoding == "json" else {"data": _form(body)}
        try:
            return self.http.request("POST", path, template=f"POST {path}", idempotent=idempotent, **encoded)
        except PartnerRejected as refused:
            if refused.status not in (400, 415):
                raise
            message = refused.message + hint("body_encoding", "fields")
            raise PartnerRejected(PARTNER, message, status=refused.status) from None

    def _rejection(self, code: int, answer: Mapping[str, Any], status: int) -> AppsMilesRejected:
        message = answer.get(self.fields.error_msg)
        text = _scrub(message if isinstance(message, str) and message else "refused")
        kind = UserNotConnected if code in self.user_not_connected_codes else AppsMilesRejected
        return kind(PARTNER, f"errorCode {code}: {text}", code=code, status=status)


def _is_code(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _object(data: Mapping[str, Any], name: str, status: int) -> dict[str, Any]:
    value = data.get(name)
    if not isinstance(value, dict):
        raise PartnerBadResponse(PARTNER, f"the answer has no {name} object", status=status)
    return value


def _objects(data: Mapping[str, Any], name: str, status: int) -> list[dict[str, Any]]:
    value = data.get(name)
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise PartnerBadResponse(PARTNER, f"the answer has no {name} list", status=status)
    return value
