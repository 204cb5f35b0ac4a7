"""The app's miles partner token, shared by the container, and one authenticated call with its answer checked."""

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
from typing import Any

import requests

from partners.appsmiles_wire import (
    PARTNER,
    AppsMilesFields,
    AppsMilesPaths,
    AppsMilesRejected,
    BodyEncoding,
    JwtPlacement,
    StoreResult,
    UserNotConnected,
    form_fields,
    hint,
    is_code,
)
from partners.errors import PartnerAuthError, PartnerBadResponse, PartnerRejected
from partners.http import Credentials, PartnerHttp, RetryPolicy, Timeouts, default_message
from partners.redact import scrub_text

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
def in_flight(token: str, secrets: Sequence[str]) -> Iterator[None]:
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


def _message_of(response: requests.Response) -> str:
    return _scrub(default_message(response))


# --- the transport ----------------------------------------------------------------------------------------


class AppsMilesTransport:
    """The partner token and one call with it (renewed once on a 401); AppsMilesClient adds the endpoints."""

    def __init__(
        self,
        base_url: str,
        app_id: str,
        partner_id: str,
        partner_secret: Callable[[], str],
        *,
        fields: AppsMilesFields = AppsMilesFields(),  # noqa: B008 - frozen, as before
        already_recorded_codes: Collection[int] = (105,),
        lang: str = "fr",
        token_refresh_margin: float = 60.0,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] | None = None,
        user_not_connected_codes: Collection[int] = (4,),
        paths: AppsMilesPaths = AppsMilesPaths(),  # noqa: B008 - frozen, as before
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
        self.http = PartnerHttp(
            PARTNER, base_url, self._credentials, message_of=_message_of, timeouts=timeouts, retry=retry, sleep=sleep
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
        with in_flight("", (secret,)):
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
                if not is_code(code):
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

    # --- plumbing -----------------------------------------------------------------------------------------

    def _with_secret(self, secrets: Sequence[str]) -> tuple[str, ...]:
        """`secrets` and what else a message must never show: our partner secret and the cached token."""
        cached = _TOKENS.get(self._cache_key)
        known = (_SECRETS.get(self._cache_key, ""), cached.value if cached else "")
        return (*secrets, *(value for value in known if value))

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
        with in_flight(token, self._with_secret(secrets)):
            answer = self.http.json(response)
            status = response.status_code
            if not isinstance(answer, dict) or not is_code(answer.get(f.error_code)):
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
        with in_flight(token, self._with_secret(secrets)):
            return self._post(path, wire, idempotent=idempotent)

    def _post(self, path: str, body: Mapping[str, Any], *, idempotent: bool) -> requests.Response:
        """One POST in the profile's body encoding; a 400/415 says which settings could explain it."""
        encoded: dict[str, Any] = {"json": dict(body)} if self.body_encoding == "json" else {"data": form_fields(body)}
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
