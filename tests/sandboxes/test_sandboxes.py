"""The partner sandboxes behave like the partners' documentation says, and fail on demand as asked."""

from __future__ import annotations

import json
import logging
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest
import requests
from requests import Response

from sandboxes.base import MAX_BODY_BYTES, SandboxServer, route, serve_until_interrupted
from sandboxes.faults import FaultInjector
from sandboxes.messages import Headers, SandboxRequest, SandboxResponse, json_response
from sandboxes.miimosa import (
    CATEGORIES,
    DEFAULT_API_KEY,
    LEAD_OPTIONAL_FIELDS,
    LEAD_REQUIRED_FIELDS,
    SEED_PROJECTS,
    SEED_USERS,
    MiimosaSandbox,
    main,
    validate_lead,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
KEY = "test-miimosa-key"
TIMEOUT = 5.0
VALID_LEAD: dict[str, str] = {
    "email": "jeanne.exemple@example.org",
    "firstname": "Jeanne",
    "lastname": "Exemple",
    "phone": "+33600000000",
    "collect_type": "lending",
    "project_description": "Une nouvelle bergerie",
    "project_total_budget": "45000",
    "publication_timeframe": "next_months",
}
# A value no rule message could contain by chance: if it shows up in an answer, the answer echoes input.
CANARY = "zz-canary-7f3a"


class EchoSandbox(SandboxServer):
    """A partner-neutral sandbox that shows the base's request object to the tests."""

    @route("GET", "/items/{item_id}/parts/{part}")
    def item_part(self, request: SandboxRequest) -> SandboxResponse:
        return json_response(
            200,
            {
                "params": dict(request.path_params),
                "q": request.query_value("q"),
                "q_all": request.query.get("q", []),
                "fallback": request.query_value("absent", "dflt"),
                "custom": request.headers.get("X-CUSTOM"),
                "link": request.url_for("/items", {"a": "1"}),
                "bare": request.url_for("/items"),
            },
        )

    @route("POST", "/echo")
    @route("PUT", "/echo")
    def echo(self, request: SandboxRequest) -> SandboxResponse:
        body = {
            "method": request.method,
            "json": request.json,
            "json_error": request.json_error,
            "form": dict(request.form),
            "name": request.form_value("name"),
            "fallback": request.form_value("absent", "dflt"),
            "raw": request.body.decode(),
        }
        return json_response(201, body, headers={"X-Echo": "yes"})

    @route("GET", "/boom")
    def boom(self, request: SandboxRequest) -> SandboxResponse:
        raise RuntimeError("a bug in a sandbox handler")


@pytest.fixture(scope="module")
def running_miimosa() -> Iterator[MiimosaSandbox]:
    with MiimosaSandbox(api_key=KEY) as server:
        yield server


@pytest.fixture
def sandbox(running_miimosa: MiimosaSandbox) -> MiimosaSandbox:
    """The module's MiiMOSA sandbox, reset to its seeded state: one server, no state leaking between tests."""
    running_miimosa.reset()
    return running_miimosa


@pytest.fixture(scope="module")
def running_echo() -> Iterator[EchoSandbox]:
    with EchoSandbox() as server:
        yield server


@pytest.fixture
def echo(running_echo: EchoSandbox) -> EchoSandbox:
    running_echo.reset()
    return running_echo


def call(server: SandboxServer, method: str, path: str, *, auth: bool = True, **kwargs: Any) -> Response:
    headers = {"authorization": KEY} if auth else {}
    headers.update(kwargs.pop("headers", {}))
    timeout = kwargs.pop("timeout", TIMEOUT)
    return requests.request(method, f"{server.url}{path}", headers=headers, timeout=timeout, **kwargs)


def raw_exchange(server: SandboxServer, payload: bytes) -> bytes:
    """What the server answers to bytes that no well-behaved client would send."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=TIMEOUT) as conn:
        conn.sendall(payload)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def wait_until(condition: Any, timeout: float = 3.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


# --- base: routing and the request object -----------------------------------------------------------------


def test_path_params_query_headers_and_absolute_urls(echo: EchoSandbox) -> None:
    response = call(echo, "GET", "/items/a%20b/parts/7?q=1&q=2", headers={"x-custom": "hello"})

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {
        "params": {"item_id": "a b", "part": "7"},
        "q": "1",
        "q_all": ["1", "2"],
        "fallback": "dflt",
        "custom": "hello",
        "link": f"{echo.url}/items?a=1",
        "bare": f"{echo.url}/items",
    }


def test_absolute_urls_follow_the_host_header(echo: EchoSandbox) -> None:
    proxied = call(echo, "GET", "/items/1/parts/2", headers={"Host": "sandbox.test:8080"}).json()
    hostile = call(echo, "GET", "/items/1/parts/2", headers={"Host": "evil.test/x?"}).json()

    assert proxied["link"] == "http://sandbox.test:8080/items?a=1"
    assert hostile["link"] == f"{echo.url}/items?a=1"


def test_json_form_and_raw_bodies(echo: EchoSandbox) -> None:
    as_json = call(echo, "POST", "/echo", json={"a": [1, "é"]})
    as_form = call(echo, "PUT", "/echo", data={"name": "Zoé", "tag": ["x", "y"]})
    not_json = call(echo, "POST", "/echo", data=b"{nope", headers={"Content-Type": "application/json"})
    empty = call(echo, "POST", "/echo")

    assert as_json.status_code == 201
    assert as_json.headers["X-Echo"] == "yes"
    assert as_json.json()["json"] == {"a": [1, "é"]}
    assert as_json.json()["json_error"] is None
    assert as_json.json()["form"] == {}
    assert as_form.json()["method"] == "PUT"
    assert as_form.json()["form"] == {"name": ["Zoé"], "tag": ["x", "y"]}
    assert as_form.json()["name"] == "Zoé"
    assert as_form.json()["fallback"] == "dflt"
    assert as_form.json()["json_error"] == "body is not valid JSON"
    assert not_json.json()["json"] is None
    assert not_json.json()["json_error"] == "body is not valid JSON"
    assert not_json.json()["raw"] == "{nope"
    assert empty.json()["json"] is None
    assert empty.json()["json_error"] is None


def test_unknown_route_is_404_and_wrong_method_is_405(echo: EchoSandbox) -> None:
    unknown = call(echo, "GET", "/nowhere")
    empty_param = call(echo, "GET", "/items//parts/2")
    wrong_method = call(echo, "DELETE", "/echo")

    assert unknown.status_code == 404
    assert unknown.json() == {"error": "not found"}
    assert empty_param.status_code == 404
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"error": "method not allowed"}
    assert wrong_method.headers["Allow"] == "POST, PUT"


def test_a_crashing_handler_answers_500_and_logs(echo: EchoSandbox, caplog: pytest.LogCaptureFixture) -> None:
    response = call(echo, "GET", "/boom")

    assert response.status_code == 500
    assert response.json() == {"error": "sandbox handler failed"}
    assert "a bug in a sandbox handler" in caplog.text


def test_bad_content_length_is_refused(echo: EchoSandbox) -> None:
    garbled = raw_exchange(echo, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1e3\r\n\r\n")
    huge = raw_exchange(echo, f"POST /echo HTTP/1.1\r\nContent-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode())

    assert garbled.startswith(b"HTTP/1.0 400")
    assert b"invalid Content-Length" in garbled
    assert huge.startswith(b"HTTP/1.0 413")
    assert echo.requests == []


def test_headers_are_case_insensitive_and_join_repeats() -> None:
    headers = Headers([("X-Thing", "1"), ("x-thing", "2"), ("Accept", "*/*")])

    assert headers["X-THING"] == "1, 2"
    assert "accept" in headers
    assert len(headers) == 2
    assert list(headers) == ["x-thing", "accept"]
    assert repr(headers) == "Headers(['accept', 'x-thing'])"


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [("items", "must start with /"), ("/items/x{id}", "whole segment"), ("/items/{id", "whole segment")],
)
def test_route_patterns_are_checked(pattern: str, problem: str) -> None:
    server = EchoSandbox()

    with pytest.raises(ValueError, match=problem):
        server.add_route("GET", pattern, server.boom)


def test_add_route_at_runtime() -> None:
    with EchoSandbox() as server:
        server.add_route("get", "/", lambda request: json_response(200, {"root": request.path}))

        assert call(server, "GET", "/").json() == {"root": "/"}


# --- base: lifecycle --------------------------------------------------------------------------------------


def test_lifecycle() -> None:
    server = EchoSandbox()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.url

    server.start()
    try:
        assert server.running
        assert server.url == f"http://127.0.0.1:{server.port}"
        with pytest.raises(RuntimeError, match="already running"):
            server.start()
        with server as same:  # entering a running server does not restart it
            assert same is server
    finally:
        server.stop()
    server.stop()  # idempotent

    assert not server.running
    assert server.start() is server  # restartable
    server.stop()


def test_binds_only_loopback_on_the_port_given() -> None:
    with EchoSandbox() as probe:
        port = probe.port
    with EchoSandbox(port=port) as server:
        assert server.address == ("127.0.0.1", port)
        assert server.url == f"http://127.0.0.1:{port}"
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.address


def test_serving_is_quiet(sandbox: MiimosaSandbox, capfd: pytest.CaptureFixture[str]) -> None:
    call(sandbox, "GET", "/projects")
    call(sandbox, "GET", "/nowhere")
    raw_exchange(sandbox, b"NONSENSE\r\n\r\n")
    sandbox.faults.add("drop", count=1)
    with pytest.raises(requests.ConnectionError):
        call(sandbox, "GET", "/projects")

    assert capfd.readouterr().err == ""


def test_a_client_reset_is_not_news_for_stderr(
    echo: EchoSandbox, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="sandboxes")
    with socket.create_connection(("127.0.0.1", echo.port), timeout=TIMEOUT) as conn:
        conn.sendall(b"GET /items")  # half a request line: the server is left reading
        time.sleep(0.05)
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset

    wait_until(lambda: "ended with an error" in caplog.text)
    assert capfd.readouterr().err == ""


def test_serve_until_interrupted_prints_the_url_then_stops(capsys: pytest.CaptureFixture[str]) -> None:
    server = EchoSandbox()
    stop = threading.Event()
    stop.set()

    serve_until_interrupted(server, stop)

    assert capsys.readouterr().out.startswith("http://127.0.0.1:")
    assert not server.running


# --- base: recording --------------------------------------------------------------------------------------


def test_requests_are_recorded_with_headers_and_json(sandbox: MiimosaSandbox) -> None:
    call(sandbox, "POST", "/leads?src=x", json=VALID_LEAD)
    call(sandbox, "GET", "/_sandbox/requests")  # control traffic is not recorded

    [recorded] = sandbox.requests
    assert (recorded.method, recorded.path, recorded.query) == ("POST", "/leads", {"src": ["x"]})
    assert recorded.headers["Authorization"] == KEY
    assert recorded.body_json == VALID_LEAD
    assert recorded.faulted is False
    assert sandbox.clear_requests() == 1
    assert sandbox.requests == []


def test_recording_is_thread_safe(sandbox: MiimosaSandbox) -> None:
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda _: call(sandbox, "POST", "/leads", json=VALID_LEAD), range(24)))

    assert {answer.status_code for answer in answers} == {200}
    assert sorted(answer.json()["id"] for answer in answers) == list(range(1, 25))
    assert len(sandbox.requests) == 24
    assert len(sandbox.leads) == 24


# --- base: faults over the Python API ---------------------------------------------------------------------


def test_status_fault_answers_and_has_no_side_effect(sandbox: MiimosaSandbox) -> None:
    sandbox.faults.add("status", status=502, count=1)

    faulted = call(sandbox, "POST", "/leads", json=VALID_LEAD)
    healthy = call(sandbox, "GET", "/projects")

    assert faulted.status_code == 502
    assert faulted.json() == {"error": "sandbox fault: HTTP 502"}
    assert "Retry-After" not in faulted.headers
    assert healthy.status_code == 200
    assert sandbox.leads == []
    assert [r.faulted for r in sandbox.requests] == [True, False]
    assert sandbox.requests[0].body_json == VALID_LEAD


def test_status_fault_with_retry_after(sandbox: MiimosaSandbox) -> None:
    sandbox.faults.add("status", count=1, retry_after=30)

    response = call(sandbox, "GET", "/projects")

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"


@pytest.mark.parametrize(("retry_after", "header"), [(None, "1"), (7, "7"), (0, "0")])
def test_rate_limit_fault(sandbox: MiimosaSandbox, retry_after: int | None, header: str) -> None:
    sandbox.faults.add("rate_limit", count=1, retry_after=retry_after)

    response = call(sandbox, "GET", "/projects")

    assert response.status_code == 429
    assert response.headers["Retry-After"] == header
    assert response.json() == {"error": "rate limit exceeded"}


def test_slow_fault_exceeds_a_read_timeout_then_still_processes(sandbox: MiimosaSandbox) -> None:
    sandbox.faults.add("slow", delay=0.3, count=1)

    with pytest.raises(requests.ReadTimeout):
        call(sandbox, "POST", "/leads", json=VALID_LEAD, timeout=(1, 0.1))

    assert sandbox.requests[0].faulted is True
    wait_until(lambda: len(sandbox.leads) == 1)  # the partner did the work the client stopped waiting for


def test_hang_fault_times_the_client_out_and_processes_nothing(sandbox: MiimosaSandbox) -> None:
    sandbox.faults.add("hang", delay=0.3, count=1)

    with pytest.raises(requests.ReadTimeout):
        call(sandbox, "POST", "/leads", json=VALID_LEAD, timeout=(1, 0.1))

    time.sleep(0.4)  # past the hang: a slow fault would have stored the lead by now
    assert sandbox.leads == []
    assert [r.faulted for r in sandbox.requests] == [True]
    assert call(sandbox, "POST", "/leads", json=VALID_LEAD).status_code == 200


def test_a_hang_fault_needs_a_delay(sandbox: MiimosaSandbox) -> None:
    with pytest.raises(ValueError, match="a hang fault needs a delay"):
        sandbox.faults.add("hang")


def test_recorded_requests_carry_when_they_arrived(sandbox: MiimosaSandbox) -> None:
    before = time.time()
    call(sandbox, "GET", "/projects/1")
    call(sandbox, "GET", "/projects/2")

    first, second = sandbox.requests
    assert before <= first.received_at <= second.received_at <= time.time()


def test_slow_fault_answers_normally_after_the_delay(sandbox: MiimosaSandbox) -> None:
    sandbox.faults.add("slow", delay=0.2)
    started = time.monotonic()

    response = call(sandbox, "GET", "/projects/1")

    assert response.status_code == 200
    assert response.json()["id"] == 1
    assert time.monotonic() - started >= 0.2


def test_stop_interrupts_a_slow_fault() -> None:
    server = MiimosaSandbox(api_key=KEY).start()
    server.faults.add("slow", delay=30)
    outcome: list[BaseException] = []

    def client() -> None:
        try:
            call(server, "GET", "/projects", timeout=10)
        except requests.RequestException as exc:
            outcome.append(exc)

    worker = threading.Thread(target=client)
    worker.start()
    wait_until(lambda: len(server.requests) == 1)
    started = time.monotonic()
    server.stop()
    worker.join(timeout=5)

    assert time.monotonic() - started < 2
    assert not worker.is_alive()
    assert len(outcome) == 1
    assert isinstance(outcome[0], requests.ConnectionError)


def test_malformed_fault(sandbox: MiimosaSandbox) -> None:
    sandbox.faults.add("malformed", count=1)

    response = call(sandbox, "GET", "/projects")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    with pytest.raises(requests.JSONDecodeError):
        response.json()


def test_drop_fault_closes_without_answering(sandbox: MiimosaSandbox) -> None:
    sandbox.faults.add("drop", count=1)

    with pytest.raises(requests.ConnectionError):
        call(sandbox, "POST", "/leads", json=VALID_LEAD)

    assert sandbox.leads == []
    assert [r.faulted for r in sandbox.requests] == [True]
    assert call(sandbox, "GET", "/projects").status_code == 200


def test_faults_are_consumed_in_order_and_expire_by_count(sandbox: MiimosaSandbox) -> None:
    sandbox.faults.add("status", status=500, count=2)
    sandbox.faults.add("status", status=502, count=1)

    statuses = [call(sandbox, "GET", "/projects").status_code for _ in range(4)]

    assert statuses == [500, 500, 502, 200]
    assert len(sandbox.faults) == 0


def test_fault_limited_to_a_path_prefix(sandbox: MiimosaSandbox) -> None:
    sandbox.faults.add("status", status=500, path_prefix="/leads")

    assert call(sandbox, "GET", "/projects").status_code == 200
    assert call(sandbox, "POST", "/leads", json=VALID_LEAD).status_code == 500
    assert call(sandbox, "POST", "/leads", json=VALID_LEAD).status_code == 500
    assert [r.faulted for r in sandbox.requests] == [False, True, True]


def test_fault_for_seconds(sandbox: MiimosaSandbox) -> None:
    sandbox.faults.add("status", status=503, for_seconds=0.2)

    during = [call(sandbox, "GET", "/projects").status_code for _ in range(2)]
    time.sleep(0.25)

    assert during == [503, 503]
    assert call(sandbox, "GET", "/projects").status_code == 200
    assert sandbox.faults.active() == []


def test_unbounded_fault_lasts_until_cleared(sandbox: MiimosaSandbox) -> None:
    sandbox.faults.add("status", status=500)

    statuses = [call(sandbox, "GET", "/projects").status_code for _ in range(3)]
    cleared = sandbox.faults.clear()

    assert statuses == [500, 500, 500]
    assert cleared == 1
    assert call(sandbox, "GET", "/projects").status_code == 200


def test_faults_never_touch_control_routes(sandbox: MiimosaSandbox) -> None:
    sandbox.faults.add("drop")

    response = call(sandbox, "GET", "/_sandbox/requests", auth=False)

    assert response.status_code == 200
    assert len(sandbox.faults) == 1


def test_active_faults_are_copies_described_with_their_budget() -> None:
    now = [100.0]
    injector = FaultInjector(clock=lambda: now[0])
    injector.add("rate_limit", count=2, retry_after=5, path_prefix="/projects")
    injector.add("slow", delay=1.5, for_seconds=10)
    injector.active()[0].remaining = 99  # a copy: does not change the pending fault
    now[0] = 104.0

    assert injector.describe() == [
        {
            "mode": "rate_limit",
            "status": 503,
            "retry_after": 5,
            "delay": None,
            "path_prefix": "/projects",
            "remaining": 2,
            "expires_in": None,
        },
        {
            "mode": "slow",
            "status": 503,
            "retry_after": None,
            "delay": 1.5,
            "path_prefix": None,
            "remaining": None,
            "expires_in": 6.0,
        },
    ]
    assert injector.take("/leads") is not None  # the slow one: the rate limit is for /projects only
    now[0] = 110.0
    assert injector.take("/leads") is None
    assert len(injector) == 1


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"mode": "explode"}, "mode must be one of"),
        ({"mode": ["status"]}, "mode must be one of"),
        ({"mode": "status", "count": 0}, "count must be a positive integer"),
        ({"mode": "status", "count": True}, "count must be a positive integer"),
        ({"mode": "status", "for_seconds": 0}, "for_seconds must be > 0"),
        ({"mode": "status", "status": 99}, "status must be an integer"),
        ({"mode": "status", "status": "500"}, "status must be an integer"),
        ({"mode": "rate_limit", "retry_after": -1}, "retry_after must be >= 0"),
        ({"mode": "slow", "delay": -0.5}, "delay must be a number"),
        ({"mode": "slow"}, "a slow fault needs a delay"),
        ({"mode": "drop", "path_prefix": "leads"}, "path_prefix must be a string starting with /"),
    ],
)
def test_fault_arguments_are_checked(kwargs: dict[str, Any], problem: str) -> None:
    injector = FaultInjector()

    with pytest.raises(ValueError, match=problem):
        injector.add(**kwargs)
    assert injector.active() == []


# --- base: faults and recordings over HTTP ----------------------------------------------------------------


def test_faults_over_http(sandbox: MiimosaSandbox) -> None:
    spec = {"mode": "rate_limit", "count": 1, "retry_after": 9, "path_prefix": "/projects"}

    added = call(sandbox, "POST", "/_sandbox/faults", auth=False, json=spec)
    listed = call(sandbox, "GET", "/_sandbox/faults", auth=False)
    limited = call(sandbox, "GET", "/projects")
    after = call(sandbox, "GET", "/projects")

    assert added.status_code == 201
    assert added.json()["mode"] == "rate_limit"
    assert added.json()["remaining"] == 1
    assert [fault["retry_after"] for fault in listed.json()] == [9]
    assert (limited.status_code, limited.headers["Retry-After"]) == (429, "9")
    assert after.status_code == 200


def test_every_fault_mode_over_http(sandbox: MiimosaSandbox) -> None:
    specs: list[dict[str, Any]] = [
        {"mode": "status", "status": 500, "count": 1},
        {"mode": "malformed", "count": 1},
        {"mode": "slow", "delay": 0.3, "count": 1},
        {"mode": "drop", "count": 1},
        {"mode": "status", "status": 504, "for_seconds": 30},
    ]
    for spec in specs:
        assert call(sandbox, "POST", "/_sandbox/faults", auth=False, json=spec).status_code == 201

    assert call(sandbox, "GET", "/projects").status_code == 500
    with pytest.raises(requests.JSONDecodeError):
        call(sandbox, "GET", "/projects").json()
    with pytest.raises(requests.ReadTimeout):
        call(sandbox, "GET", "/projects", timeout=(1, 0.1))
    with pytest.raises(requests.ConnectionError):
        call(sandbox, "GET", "/projects")
    assert call(sandbox, "GET", "/projects").status_code == 504
    cleared = call(sandbox, "DELETE", "/_sandbox/faults", auth=False)
    assert cleared.json() == {"cleared": 1}
    assert call(sandbox, "GET", "/projects").status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (["status"], "body must be a JSON object"),
        ({"mode": "status", "colour": "red"}, "unknown fields: ['colour']"),
        ({"count": 1}, "mode is required"),
        ({"mode": "status", "count": 0}, "count must be a positive integer"),
        ({"mode": "explode"}, "mode must be one of drop, hang, malformed, rate_limit, slow, status"),
    ],
)
def test_invalid_faults_over_http(sandbox: MiimosaSandbox, body: Any, message: str) -> None:
    response = call(sandbox, "POST", "/_sandbox/faults", auth=False, json=body)

    assert response.status_code == 400
    assert response.json() == {"error": "invalid fault", "message": message}
    assert sandbox.faults.active() == []


def test_recorded_requests_over_http_hide_headers_bodies_and_queries(sandbox: MiimosaSandbox) -> None:
    user = SEED_USERS[0]
    sandbox.faults.add("status", count=1, path_prefix="/leads")
    call(sandbox, "POST", "/leads", json=VALID_LEAD)
    call(sandbox, "GET", "/user/wallet", params={"user_email": user.email, "user_birthdate": user.birthdate})

    listing = call(sandbox, "GET", "/_sandbox/requests", auth=False)

    assert listing.json() == [
        {"method": "POST", "path": "/leads", "faulted": True},
        {"method": "GET", "path": "/user/wallet", "faulted": False},
    ]
    for secret in (KEY, VALID_LEAD["email"], VALID_LEAD["phone"], user.email, user.birthdate):
        assert secret not in listing.text
    assert call(sandbox, "DELETE", "/_sandbox/requests", auth=False).json() == {"cleared": 2}
    assert call(sandbox, "GET", "/_sandbox/requests", auth=False).json() == []


def test_reset_over_http(sandbox: MiimosaSandbox) -> None:
    call(sandbox, "POST", "/leads", json=VALID_LEAD)
    sandbox.faults.add("status", path_prefix="/nowhere")

    response = call(sandbox, "POST", "/_sandbox/reset", auth=False)

    assert response.json() == {"reset": True}
    assert (sandbox.leads, sandbox.requests, sandbox.faults.active()) == ([], [], [])
    assert call(sandbox, "POST", "/leads", json=VALID_LEAD).json()["id"] == 1


def test_unknown_control_route_is_404_and_unrecorded(sandbox: MiimosaSandbox) -> None:
    assert call(sandbox, "GET", "/_sandbox/nothing", auth=False).status_code == 404
    assert call(sandbox, "GET", "/_sandbox", auth=False).status_code == 404
    assert sandbox.requests == []


# --- MiiMOSA: authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/leads"),
        ("GET", "/projects"),
        ("GET", "/projects/1"),
        ("GET", "/user/pledges"),
        ("GET", "/user/wallet"),
    ],
)
@pytest.mark.parametrize("authorization", [None, "wrong", f"Bearer {KEY}", KEY.upper()])
def test_every_route_needs_the_exact_api_key(
    sandbox: MiimosaSandbox, method: str, path: str, authorization: str | None
) -> None:
    headers = {} if authorization is None else {"authorization": authorization}

    response = call(sandbox, method, path, auth=False, headers=headers, json=VALID_LEAD)

    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized"}
    assert sandbox.leads == []


def test_default_api_key() -> None:
    with MiimosaSandbox() as server:
        headers = {"Authorization": DEFAULT_API_KEY}
        response = requests.get(f"{server.url}/projects/1", headers=headers, timeout=TIMEOUT)

    assert response.status_code == 200


# --- MiiMOSA: leads ---------------------------------------------------------------------------------------


def test_a_valid_lead_is_created_and_kept(sandbox: MiimosaSandbox) -> None:
    optional = {name: f"value of {name}" for name in LEAD_OPTIONAL_FIELDS} | {"category": "lait"}
    lead = VALID_LEAD | optional | {"unknown_field": "dropped"}

    first = call(sandbox, "POST", "/leads", json=lead)
    second = call(sandbox, "POST", "/leads", json=VALID_LEAD)

    assert first.status_code == 200
    assert first.json() == {"id": 1, "message": "lead created"}
    assert second.json() == {"id": 2, "message": "lead created"}
    assert sandbox.leads == [{"id": 1, **VALID_LEAD, **optional}, {"id": 2, **VALID_LEAD}]


def test_lead_ids_keep_growing_after_clear(sandbox: MiimosaSandbox) -> None:
    call(sandbox, "POST", "/leads", json=VALID_LEAD)
    sandbox.clear_leads()

    response = call(sandbox, "POST", "/leads", json=VALID_LEAD)

    assert response.json()["id"] == 2
    assert [lead["id"] for lead in sandbox.leads] == [2]


def test_leads_are_copies(sandbox: MiimosaSandbox) -> None:
    call(sandbox, "POST", "/leads", json=VALID_LEAD)
    sandbox.leads[0]["email"] = "changed"

    assert sandbox.leads[0]["email"] == VALID_LEAD["email"]


def assert_invalid(response: Response, errors: dict[str, list[str]]) -> None:
    assert response.status_code == 400
    assert response.json() == {"error": "invalid record", "errors": errors}
    assert CANARY not in response.text


@pytest.mark.parametrize("field", LEAD_REQUIRED_FIELDS)
@pytest.mark.parametrize("how", ["missing", "empty", "blank", "null"])
def test_each_required_field(sandbox: MiimosaSandbox, field: str, how: str) -> None:
    lead: dict[str, Any] = dict(VALID_LEAD)
    if how == "missing":
        del lead[field]
    else:
        lead[field] = {"empty": "", "blank": "  \t", "null": None}[how]

    response = call(sandbox, "POST", "/leads", json=lead)

    assert_invalid(response, {field: ["can't be blank"]})
    assert sandbox.leads == []


@pytest.mark.parametrize(
    ("field", "allowed"),
    [
        ("collect_type", "donation, lending"),
        ("publication_timeframe", "within_month, next_months, another_quarter"),
        ("category", ", ".join(CATEGORIES)),
    ],
)
def test_enumerated_fields(sandbox: MiimosaSandbox, field: str, allowed: str) -> None:
    response = call(sandbox, "POST", "/leads", json=VALID_LEAD | {field: CANARY})

    assert_invalid(response, {field: [f"must be one of: {allowed}"]})


def test_enums_are_exact(sandbox: MiimosaSandbox) -> None:
    response = call(sandbox, "POST", "/leads", json=VALID_LEAD | {"collect_type": "Lending"})

    assert response.status_code == 400


@pytest.mark.parametrize("category", CATEGORIES)
def test_every_documented_category_is_accepted(sandbox: MiimosaSandbox, category: str) -> None:
    assert call(sandbox, "POST", "/leads", json=VALID_LEAD | {"category": category}).status_code == 200


@pytest.mark.parametrize("field", ["phone", "project_total_budget", "siret", "campaign_id"])
@pytest.mark.parametrize("value", [45000, 1.5, True, [CANARY], {"v": CANARY}])
def test_values_must_be_strings(sandbox: MiimosaSandbox, field: str, value: Any) -> None:
    response = call(sandbox, "POST", "/leads", json=VALID_LEAD | {field: value})

    assert_invalid(response, {field: ["must be a string"]})


def test_blank_optional_fields_are_ignored(sandbox: MiimosaSandbox) -> None:
    response = call(sandbox, "POST", "/leads", json=VALID_LEAD | {"category": "", "siret": None, "city": " "})

    assert response.status_code == 200
    assert sandbox.leads == [{"id": 1, **VALID_LEAD}]


def test_every_error_is_reported_at_once(sandbox: MiimosaSandbox) -> None:
    lead = VALID_LEAD | {"email": "", "collect_type": CANARY, "turnover": 12}

    response = call(sandbox, "POST", "/leads", json=lead)

    assert_invalid(
        response,
        {
            "email": ["can't be blank"],
            "collect_type": ["must be one of: donation, lending"],
            "turnover": ["must be a string"],
        },
    )


@pytest.mark.parametrize(
    "body",
    [b"[]", b'"lead"', b"null", b"", b"{not json", json.dumps([VALID_LEAD]).encode()],
)
def test_lead_body_must_be_a_json_object(sandbox: MiimosaSandbox, body: bytes) -> None:
    response = call(sandbox, "POST", "/leads", data=body, headers={"Content-Type": "application/json"})

    assert_invalid(response, {"base": ["body must be a JSON object"]})


def test_validate_lead_directly() -> None:
    assert validate_lead(VALID_LEAD) == (VALID_LEAD, {})
    assert validate_lead("x") == ({}, {"base": ["body must be a JSON object"]})


# --- MiiMOSA: projects ------------------------------------------------------------------------------------


def projects(sandbox: MiimosaSandbox, **params: str) -> Response:
    return call(sandbox, "GET", "/projects", params=params)


def test_first_page_of_projects(sandbox: MiimosaSandbox) -> None:
    response = projects(sandbox)

    assert response.status_code == 200
    assert [p["id"] for p in response.json()] == list(range(1, 11))
    assert response.json()[0] == SEED_PROJECTS[0].to_json()
    assert response.headers["X-Total-Count"] == str(len(SEED_PROJECTS))
    assert set(response.links) == {"next", "first", "last"}
    assert response.links["next"]["url"] == f"{sandbox.url}/projects?page=2&per_page=10"
    assert response.links["first"]["url"] == f"{sandbox.url}/projects?page=1&per_page=10"
    assert response.links["last"]["url"] == f"{sandbox.url}/projects?page=4&per_page=10"


def test_middle_and_last_pages(sandbox: MiimosaSandbox) -> None:
    middle = projects(sandbox, page="2")
    last = projects(sandbox, page="4")

    assert set(middle.links) == {"next", "prev", "first", "last"}
    assert middle.links["prev"]["url"].endswith("page=1&per_page=10")
    assert [p["id"] for p in last.json()] == list(range(31, 36))
    assert set(last.links) == {"prev", "first", "last"}


def test_a_page_past_the_end_is_empty(sandbox: MiimosaSandbox) -> None:
    response = projects(sandbox, page="9")

    assert response.json() == []
    assert response.links["prev"]["url"].endswith("page=4&per_page=10")
    assert "next" not in response.links


def collect_all(sandbox: MiimosaSandbox, url: str) -> tuple[list[int], list[str]]:
    """Follow rel="next" until there is none, as a client of the documented pagination would."""
    ids: list[int] = []
    visited: list[str] = []
    next_url: str | None = url
    while next_url is not None:
        visited.append(next_url)
        response = requests.get(next_url, headers={"authorization": KEY}, timeout=TIMEOUT)
        assert response.status_code == 200
        ids += [project["id"] for project in response.json()]
        next_url = response.links.get("next", {}).get("url")
    return ids, visited


def test_following_next_links_collects_every_project_once(sandbox: MiimosaSandbox) -> None:
    ids, visited = collect_all(sandbox, f"{sandbox.url}/projects?per_page=7")

    assert ids == [project.id for project in SEED_PROJECTS]
    assert len(visited) == 5


def test_following_next_links_keeps_the_filters(sandbox: MiimosaSandbox) -> None:
    ids, visited = collect_all(sandbox, f"{sandbox.url}/projects?type=lending&order=populars&per_page=3")

    lending = sorted((p for p in SEED_PROJECTS if p.type == "lending"), key=lambda p: -p.backers_count)
    assert ids == [p.id for p in lending]
    assert all("type=lending" in url and "order=populars" in url for url in visited[1:])


def test_per_page_is_capped_at_100() -> None:
    with MiimosaSandbox(api_key=KEY, per_page=1000) as server:
        default = call(server, "GET", "/projects")
        explicit = call(server, "GET", "/projects", params={"per_page": "500"})

    assert len(default.json()) == len(SEED_PROJECTS)
    assert len(explicit.json()) == len(SEED_PROJECTS)
    assert explicit.links["last"]["url"].endswith("page=1&per_page=100")


def test_per_page_must_be_positive() -> None:
    with pytest.raises(ValueError, match="per_page"):
        MiimosaSandbox(per_page=0)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"category": "lait"}, lambda p: p.category == "lait"),
        ({"type": "lending"}, lambda p: p.type == "lending"),
        ({"type": "donation"}, lambda p: p.type == "donation"),
        ({"region": "76"}, lambda p: p.region == "76"),
        ({"region": "99"}, lambda p: False),
        ({"keyword": "MIEL"}, lambda p: "miel" in (p.title + p.description).lower()),
        ({"keyword": "vercors"}, lambda p: "Vercors" in p.title),
        ({"category": "sucre", "type": "lending"}, lambda p: (p.category, p.type) == ("sucre", "lending")),
        ({"category": "lait", "type": "lending"}, lambda p: False),
        ({"order": "in_progress"}, lambda p: p.state == "in_progress"),
        ({"category": "", "keyword": " "}, lambda p: True),
    ],
)
def test_project_filters(sandbox: MiimosaSandbox, params: dict[str, str], expected: Any) -> None:
    response = projects(sandbox, per_page="100", **params)

    wanted = [p.id for p in SEED_PROJECTS if expected(p)]
    assert [p["id"] for p in response.json()] == wanted
    assert response.headers["X-Total-Count"] == str(len(wanted))


def test_filters_select_something() -> None:
    assert any(p.region == "76" for p in SEED_PROJECTS)
    assert any("miel" in p.description for p in SEED_PROJECTS)
    assert {p.category for p in SEED_PROJECTS} == set(CATEGORIES)
    assert {p.state for p in SEED_PROJECTS} == {"in_progress", "finished"}


def test_empty_result_still_paginates(sandbox: MiimosaSandbox) -> None:
    response = projects(sandbox, region="99")

    assert response.json() == []
    assert response.headers["X-Total-Count"] == "0"
    assert set(response.links) == {"first", "last"}
    assert response.links["last"]["url"] == f"{sandbox.url}/projects?region=99&page=1&per_page=10"


def test_populars_and_recent_orders(sandbox: MiimosaSandbox) -> None:
    populars = projects(sandbox, order="populars", per_page="100").json()
    recent = projects(sandbox, order="recent", per_page="100").json()

    by_backers = sorted((p.backers_count for p in SEED_PROJECTS), reverse=True)
    by_date = sorted((p.published_at for p in SEED_PROJECTS), reverse=True)
    assert [p["backers_count"] for p in populars] == by_backers
    assert [p["published_at"] for p in recent] == by_date


@pytest.mark.parametrize(
    ("params", "errors"),
    [
        ({"order": "oldest"}, {"order": ["must be one of: populars, in_progress, recent"]}),
        ({"category": "fromage"}, {"category": [f"must be one of: {', '.join(CATEGORIES)}"]}),
        ({"type": "equity"}, {"type": ["must be one of: donation, lending"]}),
        ({"page": "0"}, {"page": ["must be a positive integer"]}),
        ({"page": "two"}, {"page": ["must be a positive integer"]}),
        ({"per_page": "-5"}, {"per_page": ["must be a positive integer"]}),
        (
            {"type": "equity", "per_page": "1e3"},
            {"type": ["must be one of: donation, lending"], "per_page": ["must be a positive integer"]},
        ),
    ],
)
def test_invalid_project_parameters(
    sandbox: MiimosaSandbox,
    params: dict[str, str],
    errors: dict[str, list[str]],
) -> None:
    response = projects(sandbox, **params)

    assert response.status_code == 400
    assert response.json() == {"error": "invalid parameter", "errors": errors}


def test_link_urls_follow_the_host_header(sandbox: MiimosaSandbox) -> None:
    response = call(sandbox, "GET", "/projects", headers={"Host": "miimosa.sandbox:9000"})

    assert response.links["next"]["url"] == "http://miimosa.sandbox:9000/projects?page=2&per_page=10"


def test_one_project(sandbox: MiimosaSandbox) -> None:
    response = call(sandbox, "GET", "/projects/35")

    assert response.status_code == 200
    assert response.json() == SEED_PROJECTS[34].to_json()
    assert set(response.json()) == {
        "id",
        "title",
        "description",
        "category",
        "type",
        "region",
        "collected_amount",
        "goal_amount",
        "backers_count",
        "state",
        "published_at",
        "url",
    }


@pytest.mark.parametrize("project_id", ["0", "36", "abc", "-1", "1.0", "99999999999999999999999", "%C2%B2"])
def test_unknown_project(sandbox: MiimosaSandbox, project_id: str) -> None:
    response = call(sandbox, "GET", f"/projects/{project_id}")

    assert response.status_code == 404
    assert response.json() == {"error": "project not found"}


# --- MiiMOSA: a user's pledges and wallet -----------------------------------------------------------------


def as_user(sandbox: MiimosaSandbox, path: str, **params: str) -> Response:
    return call(sandbox, "GET", path, params=params)


@pytest.mark.parametrize("user", SEED_USERS, ids=lambda user: user.email)
def test_pledges_of_each_seeded_user(sandbox: MiimosaSandbox, user: Any) -> None:
    response = as_user(sandbox, "/user/pledges", user_email=user.email, user_birthdate=user.birthdate)

    assert response.status_code == 200
    assert response.json() == [asdict(pledge) for pledge in user.pledges]
    assert all(set(pledge) == {"project_id", "amount", "date", "state"} for pledge in response.json())


def test_wallet_of_a_seeded_user(sandbox: MiimosaSandbox) -> None:
    user = SEED_USERS[0]
    assert user.wallet is not None

    response = as_user(sandbox, "/user/wallet", user_email=user.email.upper(), user_birthdate=user.birthdate)

    assert response.status_code == 200
    assert response.json()["balance"] == user.wallet.balance
    assert response.json()["currency"] == "EUR"
    assert len(response.json()["transactions"]) == len(user.wallet.transactions)


def test_a_known_user_without_wallet(sandbox: MiimosaSandbox) -> None:
    user = next(user for user in SEED_USERS if user.wallet is None)

    response = as_user(sandbox, "/user/wallet", user_email=user.email, user_birthdate=user.birthdate)

    assert response.status_code == 404
    assert response.json() == {"error": "no wallet found"}


@pytest.mark.parametrize(
    ("path", "error"),
    [("/user/pledges", "email not found"), ("/user/wallet", "no wallet found")],
)
def test_unknown_email(sandbox: MiimosaSandbox, path: str, error: str) -> None:
    response = as_user(sandbox, path, user_email="nobody@example.org", user_birthdate="1985-04-12")

    assert response.status_code == 404
    assert response.json() == {"error": error}


@pytest.mark.parametrize("path", ["/user/pledges", "/user/wallet"])
def test_birthdate_mismatch(sandbox: MiimosaSandbox, path: str) -> None:
    response = as_user(sandbox, path, user_email=SEED_USERS[0].email, user_birthdate="12/04/1985")

    assert response.status_code == 403
    assert response.json() == {"error": "birthdate does not match"}


@pytest.mark.parametrize("path", ["/user/pledges", "/user/wallet"])
@pytest.mark.parametrize(
    ("params", "missing"),
    [
        ({"user_birthdate": "1985-04-12"}, ["user_email"]),
        ({"user_email": "camille.durand@example.org"}, ["user_birthdate"]),
        ({"user_email": " ", "user_birthdate": ""}, ["user_email", "user_birthdate"]),
        ({}, ["user_email", "user_birthdate"]),
    ],
)
def test_user_parameters_are_required(
    sandbox: MiimosaSandbox, path: str, params: dict[str, str], missing: list[str]
) -> None:
    response = as_user(sandbox, path, **params)

    assert response.status_code == 400
    errors = {name: ["is missing"] for name in missing}
    assert response.json() == {"error": "invalid parameter", "errors": errors}


def test_seeded_users_are_consistent() -> None:
    lending = {p.id for p in SEED_PROJECTS if p.type == "lending"}
    for user in SEED_USERS:
        assert user.email == user.email.lower()
        assert all(pledge.project_id in lending for pledge in user.pledges)  # the route lists lending pledges
        if user.wallet is not None:
            assert round(sum(t.amount for t in user.wallet.transactions), 2) == user.wallet.balance
    assert any(user.wallet is None for user in SEED_USERS)


# --- MiiMOSA: standalone ----------------------------------------------------------------------------------


def test_main_prints_the_url(capsys: pytest.CaptureFixture[str]) -> None:
    stop = threading.Event()
    stop.set()

    assert main(["--port", "0", "--api-key", "k", "--per-page", "5"], stop) == 0

    assert capsys.readouterr().out.startswith("http://127.0.0.1:")


def test_python_dash_m_runs_the_sandbox() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "local")}
    command = [sys.executable, "-m", "sandboxes.miimosa", "--port", "0", "--api-key", "cli-key"]
    options: dict[str, Any] = {"stdout": subprocess.PIPE, "text": True, "env": env, "cwd": REPO_ROOT}
    with subprocess.Popen(command, **options) as process:  # noqa: S603 - our own interpreter and module
        try:
            assert process.stdout is not None
            url = process.stdout.readline().strip()
            headers = {"authorization": "cli-key"}
            response = requests.get(f"{url}/projects/1", headers=headers, timeout=TIMEOUT)
        finally:
            process.terminate()

    assert url.startswith("http://127.0.0.1:")
    assert response.status_code == 200
    assert response.json()["id"] == 1
