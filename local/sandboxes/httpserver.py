"""The threaded loopback HTTP server that the gateway, the web server and every partner sandbox build on."""

# It lives with the sandboxes, the lower layer: hub_local imports sandboxes, never the reverse, and a sandbox run on
# its own (python -m sandboxes.<partner>) must not import the whole local runner.

from __future__ import annotations

import re
import socket
import socketserver
import sys
import threading
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Final

HOST: Final = "127.0.0.1"
_CONTENT_LENGTH: Final = re.compile(r"\s*[0-9]+\s*")


class LoopbackHTTPServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer that knows the object it serves for (`owner`, read by the handlers)."""

    daemon_threads = True
    # socketserver's backlog of 5 resets connections when a burst of requests arrives at once (a double-click
    # storm), and costs clients a 1 s SYN retry under load.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], owner: Any) -> None:
        self.owner = owner
        super().__init__(address, handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the FQDN of the address, which can stall on a machine without DNS.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class ServerThread:
    """A LoopbackHTTPServer, bound at construction (port 0 picks a free port), served from a daemon thread."""

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        owner: Any,
        *,
        name: str,
        host: str = HOST,
        port: int = 0,
        poll_interval: float = 0.05,  # stop() waits for the serving loop to notice
        server_class: type[LoopbackHTTPServer] = LoopbackHTTPServer,
    ) -> None:
        self.httpd = server_class((host, port), handler, owner)
        self.port: int = self.httpd.server_port
        # Whatever address it listens on, clients on this machine reach it by loopback.
        self.url = f"http://{HOST}:{self.port}"
        self._name = name
        self._poll_interval = poll_interval
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self.httpd.serve_forever,
            kwargs={"poll_interval": self._poll_interval},
            name=f"{self._name}-{self.port}",
            daemon=True,
        )
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop serving and close the socket; a server never started is only closed (shutdown() would wait)."""
        if self._thread is not None:
            self.httpd.shutdown()
            self._thread.join(timeout)
            self._thread = None
        self.httpd.server_close()


class BodyRefused(Exception):
    """A request body not read: its framing is broken (400) or it is over the limit (413)."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class LoopbackHandler(BaseHTTPRequestHandler):
    """Reads bounded bodies and writes whole answers; subclasses implement `serve` for every method."""

    server: LoopbackHTTPServer
    protocol_version = "HTTP/1.1"
    # Prefix of the one line a request logs to stderr ("gateway: GET / -> 200"); None keeps the server quiet.
    log_prefix: ClassVar[str | None] = None

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in two writes: with Nagle's algorithm on, the body waits for the client's delayed
        # ACK of the headers (~40 ms on Linux), which capped a server at ~25 requests a second per connection.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def version_string(self) -> str:
        return self.server_version

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if self.log_prefix is not None:
            sys.stderr.write(f"{self.log_prefix}: {self.command} {self.path} -> {code}\n")

    def log_message(self, format: str, *args: Any) -> None:
        if self.log_prefix is not None:
            super().log_message(format, *args)

    def read_body(self, limit: int) -> bytes:
        """The request's body (Content-Length or chunked); BodyRefused when it cannot or must not be read whole."""
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunks(limit)
        except ValueError:
            raise BodyRefused(400, "invalid chunk size") from None
        raw_length = self.headers.get("Content-Length")
        if raw_length is None:
            return b""
        if not _CONTENT_LENGTH.fullmatch(raw_length):
            raise BodyRefused(400, "invalid Content-Length")
        length = int(raw_length)
        if length > limit:
            raise BodyRefused(413, "request body too large")
        return self.rfile.read(length)

    def _read_chunks(self, limit: int) -> bytes:
        chunks: list[bytes] = []
        total = 0
        while size := int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16):
            total += size
            if total > limit:
                raise BodyRefused(413, "request body too large")
            chunks.append(self.rfile.read(size))
            self.rfile.readline()
        while self.rfile.readline().strip():
            pass  # trailers
        return b"".join(chunks)

    def answer(self, status: int, headers: Iterable[tuple[str, str]], body: bytes) -> None:
        """Write a whole response (no body for HEAD); a client that has gone just ends the connection."""
        try:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        except OSError:
            # Typically the client's read timeout fired while the answer was slow: nobody to answer.
            self.close_connection = True

    def serve(self) -> None:
        raise NotImplementedError

    def _serve(self) -> None:
        self.serve()

    # HEAD is a subclass's choice (`do_HEAD = LoopbackHandler._serve`): without it the server answers 501.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve
