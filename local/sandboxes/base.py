"""The loopback HTTP server every partner sandbox builds on: routing, request recording, its control routes."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, ClassVar, Final, Self
from urllib.parse import parse_qs, unquote, urlsplit

from sandboxes.faults import FAULT_FIELDS, MALFORMED_BODY, Fault, FaultInjector
from sandboxes.httpserver import HOST, BodyRefused, LoopbackHandler, LoopbackHTTPServer, ServerThread
from sandboxes.messages import Headers, RecordedRequest, SandboxRequest, SandboxResponse, json_response
from sandboxes.modes import ModesError, SandboxModes, parse_modes

logger = logging.getLogger("sandboxes")

CONTROL_PREFIX: Final = "/_sandbox"
# A sandbox only ever receives small JSON documents; a larger Content-Length is a broken client, not a lead.
MAX_BODY_BYTES: Final = 1 << 20

_ROUTE_ATTR: Final = "__sandbox_routes__"
_PARAM: Final = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Only what a loopback Host header can hold, so a hostile header cannot inject text into Link URLs.
_HOST_HEADER: Final = re.compile(r"[A-Za-z0-9.\-:\[\]]+")


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


class SandboxServer:
    """A partner API on 127.0.0.1: subclasses declare routes with `@route`, the base does the rest.

    Requests under /_sandbox/ control the sandbox itself: they are neither recorded nor faulted. A sandbox with
    `MODES` plays one reading of its partner's document at a time: `modes=` at construction, `set_modes(...)`,
    or `PUT /_sandbox/modes` with a JSON object of the modes to change (`GET` shows them).
    """

    # The address it listens on; its URL always names 127.0.0.1. `hub local run --host 0.0.0.0` widens it so
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
        unknown = sorted(set(spec) - FAULT_FIELDS)
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
