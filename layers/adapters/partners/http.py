"""The one HTTP core every partner adapter calls through: sessions, timeouts, retries, typed errors, redaction."""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import NameResolutionError, NewConnectionError

from partners import deadline as deadlines
from partners.deadline import Deadline
from partners.errors import (
    OutOfTime,
    PartnerAuthError,
    PartnerBadResponse,
    PartnerError,
    PartnerNotFound,
    PartnerRejected,
    PartnerUnavailable,
)
from partners.redact import redact_url, scrub_text

logger = logging.getLogger("partners.http")

USER_AGENT = "partner-hub/0.1 (+python-requests)"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
TRANSIENT_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
# Of what is left before a deadline, the connect may take at most this share and the read the rest, so that one
# attempt always ends before the deadline; a connect is quick or fails, a partner's slowness is in the read.
CONNECT_SHARE = 0.3

ErrorType = type[PartnerError]
DEFAULT_STATUS_ERRORS: Mapping[int, ErrorType] = {
    401: PartnerAuthError,
    403: PartnerAuthError,
    404: PartnerNotFound,
}


@dataclass(frozen=True)
class Timeouts:
    """Connect and read timeouts in seconds; every partner call has both."""

    connect: float = 3.05
    read: float = 10.0


@dataclass(frozen=True)
class RetryPolicy:
    """How idempotent calls are retried.

    Under a deadline (`partners.deadline`), each attempt's connect and read timeouts shrink to what is left, and no
    attempt, backoff or `Retry-After` wait starts unless an attempt of at least `min_attempt` would still fit after
    it: the last failure is raised instead, early enough for the caller to answer on its own.

    Backoff is "full jitter" (a random wait up to base * 2**attempt, capped), so a fleet of containers does not
    retry in step. A `Retry-After` is honoured when it is at most `max_retry_after`; a longer one is not waited for
    inside a Lambda invocation: the caller gets `PartnerUnavailable.retry_after` and defers the work instead.
    """

    max_attempts: int = 3
    backoff_base: float = 0.2
    backoff_max: float = 2.0
    max_retry_after: float = 5.0
    # Under a deadline, an attempt is started only with at least this long left: a shorter one could not get an
    # answer from any partner, and would only turn a clean "not sent" into an ambiguous read timeout.
    min_attempt: float = 0.5

    def backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.backoff_max, self.backoff_base * (2**attempt)))  # noqa: S311


@dataclass(frozen=True)
class Credentials:
    """What one call carries to authenticate, and the secret values to scrub from anything logged."""

    headers: Mapping[str, str] = field(default_factory=dict)
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def secret_values(self) -> list[str]:
        return [*self.headers.values(), *self.params.values()]


_SESSIONS: dict[str, requests.Session] = {}


def session_for(partner: str) -> requests.Session:
    """One pooled session per partner per container: warm invocations reuse its TCP and TLS connections."""
    session = _SESSIONS.get(partner)
    if session is None:
        session = requests.Session()
        # Retries are ours (typed, jittered, idempotency-aware); urllib3 must not retry behind our back.
        adapter = HTTPAdapter(max_retries=0, pool_connections=4, pool_maxsize=16)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        session.headers["User-Agent"] = USER_AGENT
        _SESSIONS[partner] = session
    return session


def reset_sessions() -> None:
    """Close every pooled session (tests, and a runner that swaps partner servers)."""
    for session in _SESSIONS.values():
        session.close()
    _SESSIONS.clear()


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header: delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _never_sent(exc: requests.RequestException) -> bool:
    """True when the request provably did not reach the partner (no connection was made)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, NewConnectionError | NameResolutionError):
            return True
        nested = getattr(cause, "reason", None)
        if nested is None and cause.args and isinstance(cause.args[0], BaseException):
            nested = cause.args[0]
        cause = nested if isinstance(nested, BaseException) else cause.__cause__
    return False


MessageExtractor = Callable[[requests.Response], str]


def default_message(response: requests.Response) -> str:
    """The partner's own words from a JSON error body, else the HTTP reason."""
    try:
        body = response.json()
    except ValueError:
        return response.reason or f"HTTP {response.status_code}"
    if isinstance(body, dict):
        # A summary and its details, e.g. {"error": "invalid record", "errors": {"email": [...]}}.
        parts = [_flatten(body[key]) for key in ("message", "error", "errorMsg", "detail", "errors") if body.get(key)]
        if parts:
            return ": ".join(parts)
    return response.reason or f"HTTP {response.status_code}"


def _flatten(value: Any) -> str:
    if isinstance(value, list):
        return "; ".join(_flatten(item) for item in value)
    if isinstance(value, dict):
        return "; ".join(f"{key}: {_flatten(item)}" for key, item in value.items())
    return str(value)


class PartnerHttp:
    """Calls one partner's API and turns every outcome into a response or a typed `PartnerError`.

    Nothing here logs a URL with its query, a header or a body: a log line carries the partner, the method, the
    path template the adapter names, the status, the attempt and the time taken.
    """

    def __init__(
        self,
        partner: str,
        base_url: str,
        credentials: Callable[[], Credentials] = Credentials,
        *,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        message_of: MessageExtractor = default_message,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self.partner = partner
        self.base_url = base_url.rstrip("/")
        self._origin = urlsplit(self.base_url)[:2]
        self._credentials = credentials
        self.timeouts = timeouts or Timeouts()
        self.retry = retry or RetryPolicy()
        self._message_of = message_of
        self._sleep = sleep or time.sleep

    def url_for(self, path_or_url: str) -> str:
        """An absolute URL on this partner's origin; a URL pointing elsewhere is refused (it would get our key)."""
        if path_or_url.startswith(("http://", "https://")):
            if urlsplit(path_or_url)[:2] != self._origin:
                raise PartnerBadResponse(self.partner, "the partner linked to another origin; not followed")
            return path_or_url
        return f"{self.base_url}/{path_or_url.lstrip('/')}"

    def request(
        self,
        method: str,
        path: str,
        *,
        template: str | None = None,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        status_errors: Mapping[int, ErrorType] | None = None,
    ) -> requests.Response:
        """Send one logical call, retrying it only where that is safe, and return a 2xx/3xx response.

        `template` names the call in logs (e.g. "GET /projects/{id}"); `idempotent` defaults to the method's
        semantics; `status_errors` lets an adapter say what a status means at its partner (e.g. a 403 that is a
        refusal, not an authentication failure).
        """
        method = method.upper()
        may_retry = method in IDEMPOTENT_METHODS if idempotent is None else idempotent
        errors = {**DEFAULT_STATUS_ERRORS, **(status_errors or {})}
        url = self.url_for(path)
        label = template or f"{method} {redact_url(url)}"
        deadline = deadlines.current()
        attempt = 0
        while True:
            attempt += 1
            timeout = self.attempt_timeouts(deadline)
            if timeout is None:
                # Only a first attempt gets here: a retry is not waited for unless it fits (`_pause`).
                raise OutOfTime(self.partner, "no time left in this invocation for the call")
            creds = self._credentials()
            started = time.perf_counter()
            try:
                response = session_for(self.partner).request(
                    method,
                    url,
                    params={**(params or {}), **creds.params},
                    json=json,
                    data=data,
                    headers={**(headers or {}), **creds.headers},
                    timeout=timeout,
                    allow_redirects=False,
                )
            except requests.RequestException as exc:
                self._log(label, attempt, started, None, type(exc).__name__)
                retry_allowed = may_retry or _never_sent(exc)
                if not retry_allowed or attempt >= self.retry.max_attempts:
                    raise self._transport_failure(exc) from None
                if not self._pause(self.retry.backoff(attempt), deadline):
                    raise self._transport_failure(exc) from None
                continue

            self._log(label, attempt, started, response.status_code, None)
            if response.status_code < 400:
                return response
            failure = self._status_failure(response, errors, creds.secret_values)
            if not isinstance(failure, PartnerUnavailable) or not may_retry:
                raise failure
            if attempt >= self.retry.max_attempts:
                raise failure
            wait = failure.retry_after
            if wait is not None and wait > self.retry.max_retry_after:
                raise failure
            if not self._pause(wait if wait is not None else self.retry.backoff(attempt), deadline):
                raise failure

    def attempt_timeouts(self, deadline: Deadline | None) -> tuple[float, float] | None:
        """(connect, read) for the next attempt: the configured ones, shrunk so that their sum fits before
        `deadline`; None when not even `min_attempt` is left."""
        if deadline is None:
            return self.timeouts.connect, self.timeouts.read
        budget = deadline.remaining()
        if budget < self.retry.min_attempt:
            return None
        connect = min(self.timeouts.connect, budget * CONNECT_SHARE)
        return connect, min(self.timeouts.read, budget - connect)

    def _pause(self, seconds: float, deadline: Deadline | None) -> bool:
        """Wait before a retry, unless the retry would then not fit before the deadline (False: give up now)."""
        if deadline is not None and not deadline.fits(seconds + self.retry.min_attempt):
            return False
        self._sleep(seconds)
        return True

    def json(self, response: requests.Response) -> Any:
        """The response's JSON body, or `PartnerBadResponse` when it is not JSON."""
        try:
            return response.json()
        except ValueError:
            raise PartnerBadResponse(
                self.partner, "the partner answered with a body that is not JSON", status=response.status_code
            ) from None

    def _transport_failure(self, exc: requests.RequestException) -> PartnerUnavailable:
        if isinstance(exc, requests.ConnectTimeout):
            return PartnerUnavailable(self.partner, "connect timeout")
        if isinstance(exc, requests.Timeout):
            return PartnerUnavailable(self.partner, "read timeout", ambiguous=True)
        if _never_sent(exc):
            return PartnerUnavailable(self.partner, "connection refused or host unknown")
        return PartnerUnavailable(self.partner, f"connection failed ({type(exc).__name__})", ambiguous=True)

    def _status_failure(
        self, response: requests.Response, errors: Mapping[int, ErrorType], secrets: Iterable[str]
    ) -> PartnerError:
        status = response.status_code
        message = scrub_text(self._message_of(response), secrets)
        if status in errors:
            return errors[status](self.partner, message, status=status)
        if status in TRANSIENT_STATUSES or status >= 500:
            return PartnerUnavailable(
                self.partner,
                message,
                status=status,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                ambiguous=status >= 500,
            )
        return PartnerRejected(self.partner, message, status=status)

    def _log(self, label: str, attempt: int, started: float, status: int | None, failure: str | None) -> None:
        logger.info(
            "partner call",
            extra={
                "partner": self.partner,
                "call": label,
                "attempt": attempt,
                "status": status,
                "failure": failure,
                "elapsed_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )
