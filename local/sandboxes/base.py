"""The loopback HTTP server every partner sandbox builds on: routing, request recording, failure on demand."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from functools import cached_property
from typing import Any, ClassVar, Final, Literal, Self, get_args, overload
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from pydantic import BaseModel, ConfigDict, ValidationError

from sandboxes.httpserver import HOST, BodyRefused, LoopbackHandler, LoopbackHTTPServer, ServerThread

logger = logging.getLogger("sandboxes")

CONTROL_PREFIX: Final = "/_sandbox"
# A sandbox only ever receives small JSON documents; a larger Content-Length is a broken client, not a lead.
MAX_BODY_BYTES: Final = 1 << 20

FaultMode = Literal["status", "rate_limit", "slow", "hang", "malformed", "drop"]
FAULT_MODES: Final[frozenset[str]] = frozenset(get_args(FaultMode))
_MODE_NAMES: Final = ", ".join(sorted(FAULT_MODES))
# Looks like the start of a real answer so that a client which sniffs the first bytes is still fooled.
MALFORMED_BODY: Final = b'{"data": [{"id": 1, "title": "truncat'

_ROUTE_ATTR: Final = "__sandbox_routes__"
_PARAM: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Only what a loopback Host header can hold, so a hostile header cannot inject text into Link URLs.
_HOST_HEADER: Final = re.compile(r"[A-Za-z0-9.\-:\[\]]+")
_FAULT_FIELDS: Final = frozenset(
    ("mode", "count", "for_seconds", "status", "retry_after", "delay", "path_prefix"),
)


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only request headers; a repeated header is joined with ", "."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        merged: dict[str, str] = {}
        for name, value in items:
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        self._items = merged

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({sorted(self._items)})"


@dataclass(frozen=True)
class SandboxRequest:
    """One request as a route handler sees it."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Headers
    body: bytes
    base_url: str
    path_params: Mapping[str, str] = field(default_factory=dict)

    @overload
    def query_value(self, name: str) -> str | None: ...
    @overload
    def query_value(self, name: str, default: str) -> str: ...
    def query_value(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter, or `default` when it is absent."""
        values = self.query.get(name)
        return values[0] if values else default

    @cached_property
    def _decoded(self) -> tuple[Any, str | None]:
        if not self.body.strip():
            return None, None
        try:
            return json.loads(self.body), None
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting is "not JSON" too
            return None, "body is not valid JSON"

    @property
    def json(self) -> Any:
        """The parsed JSON body; None when the body is empty or not JSON (see `json_error`)."""
        return self._decoded[0]

    @property
    def json_error(self) -> str | None:
        """Why the body could not be parsed as JSON, or None when it could (or was empty)."""
        return self._decoded[1]

    @cached_property
    def form(self) -> Mapping[str, list[str]]:
        """Fields of an application/x-www-form-urlencoded body; empty for any other content type."""
        content_type = self.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return {}
        return parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    def form_value(self, name: str, default: str | None = None) -> str | None:
        values = self.form.get(name)
        return values[0] if values else default

    def url_for(self, path: str, query: Mapping[str, str] | Sequence[tuple[str, str]] | None = None) -> str:
        """An absolute URL on this sandbox, as the client addressed it (Host header), for Link headers."""
        url = f"{self.base_url}{path}"
        return f"{url}?{urlencode(query)}" if query else url


@dataclass(frozen=True)
class SandboxResponse:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> SandboxResponse:
    """A JSON answer; `headers` are added to (and may override) the Content-Type."""
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return SandboxResponse(status, payload, {"Content-Type": "application/json", **(headers or {})})


@dataclass(frozen=True)
class RecordedRequest:
    """A partner request as received; holds keys and personal data, so it never leaves the process."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Headers
    body_json: Any
    faulted: bool = False
    # Wall-clock seconds when the request arrived: fault tests measure a client's pauses (Retry-After) by it.
    received_at: float = 0.0


@dataclass
class Fault:
    mode: FaultMode
    status: int = 503
    retry_after: int | None = None
    delay: float | None = None
    path_prefix: str | None = None
    remaining: int | None = None
    expires_at: float | None = None  # on the injector's monotonic clock

    def matches(self, path: str) -> bool:
        return self.path_prefix is None or path.startswith(self.path_prefix)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def describe(self, now: float) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "status": self.status,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "path_prefix": self.path_prefix,
            "remaining": self.remaining,
            "expires_in": None if self.expires_at is None else max(0.0, self.expires_at - now),
        }


def _is_int(value: object) -> bool:
    # bool is an int subclass, and `"count": true` in a control request is a mistake, not a count of 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return _is_int(value) or isinstance(value, float)


def _is_path(value: object) -> bool:
    return isinstance(value, str) and value.startswith("/")


class FaultInjector:
    """Failures on demand, consumed in the order they were added; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        mode: FaultMode,
        *,
        count: int | None = None,
        for_seconds: float | None = None,
        status: int = 503,
        retry_after: int | None = None,
        delay: float | None = None,
        path_prefix: str | None = None,
    ) -> Fault:
        """Queue a fault; with neither `count` nor `for_seconds` it lasts until `clear()`."""
        checks = (
            (isinstance(mode, str) and mode in FAULT_MODES, f"mode must be one of {_MODE_NAMES}"),
            (count is None or (_is_int(count) and count >= 1), "count must be a positive integer"),
            (for_seconds is None or (_is_number(for_seconds) and for_seconds > 0), "for_seconds must be > 0"),
            (_is_int(status) and 200 <= status <= 599, "status must be an integer from 200 to 599"),
            (retry_after is None or (_is_int(retry_after) and retry_after >= 0), "retry_after must be >= 0"),
            (delay is None or (_is_number(delay) and delay >= 0), "delay must be a number >= 0"),
            (mode not in ("slow", "hang") or delay is not None, f"a {mode} fault needs a delay"),
            (path_prefix is None or _is_path(path_prefix), "path_prefix must be a string starting with /"),
        )
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise ValueError("; ".join(problems))
        fault = Fault(
            mode=mode,
            status=status,
            retry_after=retry_after,
            delay=delay,
            path_prefix=path_prefix,
            remaining=count,
            expires_at=None if for_seconds is None else self._clock() + for_seconds,
        )
        with self._lock:
            self._faults.append(fault)
        return replace(fault)

    def clear(self) -> int:
        """Remove every fault; returns how many were pending."""
        with self._lock:
            cleared = len(self._faults)
            self._faults.clear()
        return cleared

    def active(self) -> list[Fault]:
        """Copies of the faults still pending, in consumption order."""
        with self._lock:
            self._prune()
            return [replace(fault) for fault in self._faults]

    def describe(self) -> list[dict[str, Any]]:
        now = self._clock()
        return [fault.describe(now) for fault in self.active()]

    def take(self, path: str) -> Fault | None:
        """Consume the first pending fault that applies to `path`, if any."""
        with self._lock:
            self._prune()
            for fault in self._faults:
                if not fault.matches(path):
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                return replace(fault)
        return None

    def __len__(self) -> int:
        return len(self.active())

    def _prune(self) -> None:
        now = self._clock()
        self._faults = [fault for fault in self._faults if not fault.expired(now)]


Handler = Callable[[SandboxRequest], SandboxResponse]


def route[F: Callable[..., SandboxResponse]](method: str, pattern: str) -> Callable[[F], F]:
    """Make a SandboxServer method the handler of `method pattern`; `{name}` segments are path params."""

    def decorate(func: F) -> F:
        # Stacked decorators apply bottom-up; prepending keeps the routes in the order they read.
        setattr(func, _ROUTE_ATTR, ((method, pattern), *getattr(func, _ROUTE_ATTR, ())))
        return func

    return decorate


@dataclass(frozen=True)
class _Route:
    method: str
    literals: tuple[str | None, ...]  # None where the segment is a parameter
    params: tuple[str | None, ...]
    handler: Handler

    def match(self, parts: Sequence[str]) -> dict[str, str] | None:
        if len(parts) != len(self.literals):
            return None
        found: dict[str, str] = {}
        for literal, param, part in zip(self.literals, self.params, parts, strict=True):
            if param is None:
                if part != literal:
                    return None
            elif not part:
                return None
            else:
                found[param] = part
        return found


class _Outcome(Enum):
    PROCEED = "proceed"
    DROP = "drop"


class _Exchange(LoopbackHandler):
    # HTTP/1.0, what the sandboxes have always spoken (the base speaks 1.1): each exchange closes its connection.
    protocol_version = "HTTP/1.0"
    # Bounds how long a client that announced a body but never sent it can hold a thread.
    timeout = 10.0
    server_version = "PartnerSandbox/1.0"

    def serve(self) -> None:
        self.server.owner._serve(self)


class _SandboxHTTPServer(LoopbackHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that give up (read timeouts, dropped connections) are part of the job, not news for stderr.
        logger.debug("connection from %s ended with an error", client_address, exc_info=True)


class SandboxModes(BaseModel):
    """Which reading of its partner's document a sandbox plays; each subclass lists the plausible readings."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ModesError(ValueError):
    """A mode that is not one of the sandbox's readings (the message names it)."""


def parse_modes[M: SandboxModes](kind: type[M], given: M | Mapping[str, Any] | str | None) -> M:
    """`given` (modes, a mapping, a JSON object's text or None for the defaults) as `kind`."""
    if isinstance(given, kind):
        return given
    values: Any = given or {}
    if isinstance(given, str):
        try:
            values = json.loads(given) if given.strip() else {}
        except ValueError:
            raise ModesError(f"{kind.__name__}: not a JSON object") from None
    try:
        return kind.model_validate(dict(values) if isinstance(values, Mapping) else values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc']))}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise ModesError(f"{kind.__name__}: {problems}") from None


class SandboxServer:
    """A partner API on 127.0.0.1: subclasses declare routes with `@route`, the base does the rest.

    Requests under /_sandbox/ control the sandbox itself: they are neither recorded nor faulted. A sandbox with
    `MODES` plays one reading of its partner's document at a time: `modes=` at construction, `set_modes(...)`,
    or `PUT /_sandbox/modes` with a JSON object of the modes to change (`GET` shows them).
    """

    # The address it listens on; its URL always names 127.0.0.1. `hub_local run --host 0.0.0.0` widens it so
    # that a container can reach it.
    bind_host: str = HOST
    MODES: ClassVar[type[SandboxModes]] = SandboxModes

    def __init__(self, port: int = 0, *, modes: SandboxModes | Mapping[str, Any] | str | None = None) -> None:
        self.modes: Any = parse_modes(self.MODES, modes)
        self.faults = FaultInjector()
        self._port = port
        self._routes: list[_Route] = []
        self._recorded: list[RecordedRequest] = []
        self._lock = threading.Lock()
        # (server, its thread): the server first, where tools look for the address it is bound to.
        self._serving: tuple[LoopbackHTTPServer, ServerThread] | None = None
        self._stopping = threading.Event()
        self._register_declared_routes()

    # --- routes -------------------------------------------------------------------------------------------

    def add_route(self, method: str, pattern: str, handler: Handler) -> None:
        if not pattern.startswith("/"):
            raise ValueError(f"route pattern must start with /: {pattern!r}")
        literals: list[str | None] = []
        params: list[str | None] = []
        for segment in pattern.split("/")[1:]:
            param = _PARAM.fullmatch(segment)
            if param is None and ("{" in segment or "}" in segment):
                raise ValueError(f"a route parameter must be a whole segment: {pattern!r}")
            literals.append(None if param else segment)
            params.append(param[1] if param else None)
        self._routes.append(_Route(method.upper(), tuple(literals), tuple(params), handler))

    def authorize(self, request: SandboxRequest) -> SandboxResponse | None:
        """Hook run before every partner route handler: return a response to refuse the request."""
        return None

    def _register_declared_routes(self) -> None:
        # Base classes first and definition order within a class, so earlier routes win a tie.
        names: dict[str, None] = {}
        for klass in reversed(type(self).__mro__):
            declared = [name for name, attr in vars(klass).items() if hasattr(attr, _ROUTE_ATTR)]
            names.update(dict.fromkeys(declared))
        for name in names:
            handler = getattr(self, name)
            for method, pattern in getattr(handler, _ROUTE_ATTR, ()):
                self.add_route(method, pattern, handler)

    def _resolve(self, method: str, path: str) -> tuple[Handler, dict[str, str]] | list[str]:
        """The handler and path params for a request, or the methods the path does allow."""
        parts = [unquote(part) for part in path.split("/")[1:]]
        allowed: list[str] = []
        for candidate in self._routes:
            params = candidate.match(parts)
            if params is None:
                continue
            if candidate.method == method:
                return candidate.handler, params
            allowed.append(candidate.method)
        return allowed

    # --- lifecycle ----------------------------------------------------------------------------------------

    def start(self) -> Self:
        if self._serving is not None:
            raise RuntimeError(f"{type(self).__name__} is already running at {self.url}")
        self._stopping = threading.Event()
        serving = ServerThread(
            _Exchange,
            self,
            name=type(self).__name__,
            host=self.bind_host,
            port=self._port,
            # A short poll interval keeps stop() fast: shutdown() waits for the serving loop to notice.
            poll_interval=0.05,
            server_class=_SandboxHTTPServer,
        )
        serving.start()
        self._serving = (serving.httpd, serving)
        return self

    def stop(self) -> None:
        if self._serving is None:
            return
        # Wakes handlers sleeping in a slow fault so that teardown does not wait for them.
        self._stopping.set()
        self._serving[1].stop(timeout=5)
        self._serving = None

    @property
    def running(self) -> bool:
        return self._serving is not None

    @property
    def port(self) -> int:
        if self._serving is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        return self._serving[1].port

    @property
    def address(self) -> tuple[str, int]:
        """The (host, port) the listening socket is actually bound to."""
        if self._serving is None:
            raise RuntimeError(f"{type(self).__name__} is not running")
        host, port = self._serving[0].socket.getsockname()[:2]
        return str(host), int(port)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> Self:
        return self if self.running else self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --- recording ----------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """The partner requests received so far, oldest first (a copy)."""
        with self._lock:
            return list(self._recorded)

    def clear_requests(self) -> int:
        with self._lock:
            cleared = len(self._recorded)
            self._recorded.clear()
        return cleared

    def reset(self) -> None:
        """Back to the state of a fresh sandbox, so one running server can serve many tests."""
        self.faults.clear()
        self.clear_requests()

    def _record(self, request: SandboxRequest, *, faulted: bool) -> None:
        method, path, query, headers = request.method, request.path, request.query, request.headers
        recorded = RecordedRequest(method, path, query, headers, request.json, faulted, time.time())
        with self._lock:
            self._recorded.append(recorded)

    # --- serving ------------------------------------------------------------------------------------------

    def _serve(self, exchange: _Exchange) -> None:
        split = urlsplit(exchange.path)
        try:
            body = exchange.read_body(MAX_BODY_BYTES)
        except BodyRefused as refused:
            # The unread body would otherwise be parsed as the next request on this connection.
            exchange.close_connection = True
            _write(exchange, json_response(refused.status, {"error": refused.reason}))
            return
        request = SandboxRequest(
            method=exchange.command,
            path=split.path or "/",
            query=parse_qs(split.query, keep_blank_values=True),
            headers=Headers(exchange.headers.items()),
            body=body,
            base_url=self._base_url(exchange.headers.get("Host")),
        )
        control = request.path == CONTROL_PREFIX or request.path.startswith(f"{CONTROL_PREFIX}/")
        if not control:
            fault = self.faults.take(request.path)
            self._record(request, faulted=fault is not None)
            outcome = _Outcome.PROCEED if fault is None else self._fault_outcome(fault)
            if outcome is _Outcome.DROP:
                exchange.close_connection = True
                return
            if isinstance(outcome, SandboxResponse):
                _write(exchange, outcome)
                return
        _write(exchange, self._dispatch(request, control=control))

    def _fault_outcome(self, fault: Fault) -> SandboxResponse | _Outcome:
        match fault.mode:
            case "drop":
                return _Outcome.DROP
            case "slow":
                interrupted = self._stopping.wait(fault.delay or 0.0)
                return _Outcome.DROP if interrupted else _Outcome.PROCEED
            case "hang":
                # A partner that is down behind its load balancer: the client times out, nothing is processed.
                self._stopping.wait(fault.delay or 0.0)
                return _Outcome.DROP
            case "malformed":
                return SandboxResponse(200, MALFORMED_BODY, {"Content-Type": "application/json"})
            case "rate_limit":
                retry_after = 1 if fault.retry_after is None else fault.retry_after
                return json_response(429, {"error": "rate limit exceeded"}, {"Retry-After": str(retry_after)})
            case _:
                headers = {} if fault.retry_after is None else {"Retry-After": str(fault.retry_after)}
                return json_response(fault.status, {"error": f"sandbox fault: HTTP {fault.status}"}, headers)

    def _dispatch(self, request: SandboxRequest, *, control: bool) -> SandboxResponse:
        resolved = self._resolve(request.method, request.path)
        if isinstance(resolved, list):
            if not resolved:
                return json_response(404, {"error": "not found"})
            return json_response(405, {"error": "method not allowed"}, {"Allow": ", ".join(resolved)})
        handler, params = resolved
        request = replace(request, path_params=params)
        refusal = None if control else self.authorize(request)
        if refusal is not None:
            return refusal
        try:
            return handler(request)
        except Exception:
            # A sandbox bug must show up as a failing test, not as a hung client or a silent dropped socket.
            logger.exception("%s handler for %s %s failed", type(self).__name__, request.method, request.path)
            return json_response(500, {"error": "sandbox handler failed"})

    def _base_url(self, host: str | None) -> str:
        if host and _HOST_HEADER.fullmatch(host):
            return f"http://{host}"
        return self.url

    # --- control routes -----------------------------------------------------------------------------------

    @route("POST", f"{CONTROL_PREFIX}/faults")
    def _add_fault(self, request: SandboxRequest) -> SandboxResponse:
        spec = request.json
        if not isinstance(spec, dict):
            return json_response(400, {"error": "invalid fault", "message": "body must be a JSON object"})
        unknown = sorted(set(spec) - _FAULT_FIELDS)
        if unknown:
            return json_response(400, {"error": "invalid fault", "message": f"unknown fields: {unknown}"})
        if "mode" not in spec:
            return json_response(400, {"error": "invalid fault", "message": "mode is required"})
        try:
            fault = self.faults.add(**spec)
        except ValueError as exc:
            return json_response(400, {"error": "invalid fault", "message": str(exc)})
        return json_response(201, fault.describe(time.monotonic()))

    @route("GET", f"{CONTROL_PREFIX}/faults")
    def _list_faults(self, request: SandboxRequest) -> SandboxResponse:
        return json_response(200, self.faults.describe())

    @route("DELETE", f"{CONTROL_PREFIX}/faults")
    def _clear_faults(self, request: SandboxRequest) -> SandboxResponse:
        return json_response(200, {"cleared": self.faults.clear()})

    @route("POST", f"{CONTROL_PREFIX}/reset")
    def _reset(self, request: SandboxRequest) -> SandboxResponse:
        self.reset()
        return json_response(200, {"reset": True})

    def set_modes(self, **changes: Any) -> Any:
        """Play another reading from the next request on: the given modes change, the others stay."""
        self.modes = parse_modes(self.MODES, self.modes.model_dump() | changes)
        return self.modes

    @route("GET", f"{CONTROL_PREFIX}/modes")
    def _get_modes(self, request: SandboxRequest) -> SandboxResponse:
        return json_response(200, self.modes.model_dump(mode="json"))

    @route("PUT", f"{CONTROL_PREFIX}/modes")
    def _put_modes(self, request: SandboxRequest) -> SandboxResponse:
        if not isinstance(request.json, dict):
            return json_response(400, {"error": "invalid modes", "message": "body must be a JSON object"})
        try:
            self.set_modes(**request.json)
        except ModesError as exc:
            return json_response(400, {"error": "invalid modes", "message": str(exc)})
        return json_response(200, self.modes.model_dump(mode="json"))

    @route("GET", f"{CONTROL_PREFIX}/requests")
    def _list_requests(self, request: SandboxRequest) -> SandboxResponse:
        # Path only: headers carry API keys, and bodies and query strings carry personal data.
        listing = [{"method": r.method, "path": r.path, "faulted": r.faulted} for r in self.requests]
        return json_response(200, listing)

    @route("DELETE", f"{CONTROL_PREFIX}/requests")
    def _clear_requests(self, request: SandboxRequest) -> SandboxResponse:
        return json_response(200, {"cleared": self.clear_requests()})


def _write(exchange: _Exchange, response: SandboxResponse) -> None:
    exchange.answer(response.status, response.headers.items(), response.body)


def serve_until_interrupted(sandbox: SandboxServer, stop: threading.Event | None = None) -> None:
    """Run a sandbox in the foreground (python -m sandboxes.<partner>): print its URL, serve until Ctrl-C."""
    sandbox.start()
    try:
        # The URL alone on its line, so that a runner can read it from the child's stdout.
        print(sandbox.url, flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            (stop or threading.Event()).wait()
    finally:
        sandbox.stop()
