"""The shared loopback HTTP server base: bounded bodies, whole answers, start/stop, quiet or prefixed logging."""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator

import pytest

from sandboxes.httpserver import BodyRefused, LoopbackHandler, ServerThread

LIMIT = 16


class _Echo(LoopbackHandler):
    server_version = "echo-test"

    def serve(self) -> None:
        try:
            body = self.read_body(self.server.owner["limit"])
        except BodyRefused as refused:
            self.close_connection = True
            self.answer(refused.status, [("X-Reason", refused.reason)], b"")
            return
        document = {"method": self.command, "body": body.decode()}
        self.answer(200, [("Content-Type", "application/json")], json.dumps(document).encode())


class _EchoWithHead(_Echo):
    do_HEAD = LoopbackHandler._serve


class _Logged(_Echo):
    log_prefix = "echo"


@pytest.fixture
def echo() -> Iterator[ServerThread]:
    serving = ServerThread(_Echo, {"limit": LIMIT}, name="echo-test")
    serving.start()
    yield serving
    serving.stop(timeout=5)


def _raw(serving: ServerThread, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", serving.port), timeout=5) as conn:
        conn.sendall(payload)
        conn.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := conn.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _request(serving: ServerThread, method: str, body: bytes | None = None) -> http.client.HTTPResponse:
    connection = http.client.HTTPConnection("127.0.0.1", serving.port, timeout=5)
    connection.request(method, "/", body=body)
    return connection.getresponse()


def test_port_zero_binds_a_free_loopback_port_and_names_it_in_the_url(echo: ServerThread) -> None:
    assert echo.port > 0
    assert echo.url == f"http://127.0.0.1:{echo.port}"
    assert echo.httpd.server_address[0] == "127.0.0.1"


def test_a_body_within_the_limit_is_read_and_the_answer_carries_its_length(echo: ServerThread) -> None:
    response = _request(echo, "POST", b"hello")
    payload = response.read()
    assert response.status == 200
    assert response.getheader("Content-Length") == str(len(payload))
    assert response.getheader("Server") == "echo-test"
    assert json.loads(payload) == {"method": "POST", "body": "hello"}


def test_a_chunked_body_is_reassembled(echo: ServerThread) -> None:
    chunks = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    answer = _raw(echo, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunks)
    assert answer.startswith(b"HTTP/1.1 200")
    assert b'"body": "abcde"' in answer


@pytest.mark.parametrize(
    ("payload", "status", "reason"),
    [
        (b"POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n", b"400", b"invalid Content-Length"),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", b"400", b"invalid Content-Length"),
        (b"POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n", b"413", b"request body too large"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b"400", b"invalid chunk size"),
        (b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n11\r\n", b"413", b"request body too large"),
    ],
)
def test_a_body_that_cannot_or_must_not_be_read_is_refused(
    echo: ServerThread, payload: bytes, status: bytes, reason: bytes
) -> None:
    answer = _raw(echo, payload)
    assert answer.split(b" ", 2)[1] == status
    assert b"X-Reason: " + reason in answer


def test_head_is_served_only_where_a_handler_opts_in_and_then_without_a_body(echo: ServerThread) -> None:
    assert _request(echo, "HEAD").status == 501
    serving = ServerThread(_EchoWithHead, {"limit": LIMIT}, name="echo-head-test")
    serving.start()
    try:
        response = _request(serving, "HEAD")
        assert response.status == 200
        assert int(response.getheader("Content-Length") or 0) > 0
        assert response.read() == b""
    finally:
        serving.stop(timeout=5)


def test_a_server_never_started_stops_at_once_and_frees_its_port() -> None:
    serving = ServerThread(_Echo, {"limit": LIMIT}, name="never-started")
    serving.stop()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", serving.port), timeout=1)


def test_logging_is_quiet_without_a_prefix_and_one_line_a_request_with_one(capfd: pytest.CaptureFixture[str]) -> None:
    for handler in (_Echo, _Logged):
        serving = ServerThread(handler, {"limit": LIMIT}, name="log-test")
        serving.start()
        try:
            _request(serving, "GET").read()
        finally:
            serving.stop(timeout=5)
    assert capfd.readouterr().err.splitlines() == ["echo: GET / -> 200"]
