"""moto's server, with each DynamoDB request made atomic as DynamoDB makes it, so conditional writes hold under races.

It also keeps no model instance beyond its life (`untrack_models`), so that a long-running stack stays bounded.

moto checks a write's condition and then applies the write with no lock in between: two threads may both pass an
`attribute_not_exists` check and both write, which DynamoDB never allows. The exactly-once paths rest on that very
guarantee, so the local stack serialises DynamoDB requests (other services, SQS long polls among them, stay
concurrent). DynamoDB's own guarantee is per item; one lock for all is stronger, and cheap next to moto's cost.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.core.common_models import BaseModel
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server

Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def atomic_dynamodb(app: Wsgi) -> Wsgi:
    """`app` with DynamoDB requests (X-Amz-Target DynamoDB_*) handled one at a time, bodies read inside the lock."""
    lock = threading.Lock()

    def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            return app(environ, start_response)
        with lock:
            return list(app(environ, start_response))

    return serve


def _untracked_new(cls: type[BaseModel], *args: Any, **kwargs: Any) -> BaseModel:
    return object.__new__(cls)


def untrack_models() -> None:
    """Stop moto keeping every model instance it ever made.

    moto's BaseModel appends each new instance to its class's `instances_tracked`, read only by the moto server's
    dashboard (/moto-api/data.json), and never lets go of them. DynamoDB's TransactWriteItems deep-copies every table
    it touches as a rollback backup, so each transaction left a whole table copy reachable: after 650 licences the
    stack held 3 million objects and each full cyclic-GC pass stalled it for 4 s, until a licence invocation overran
    its 15 s Timeout. The hub reads no moto dashboard."""
    BaseModel.__new__ = _untracked_new  # type: ignore[method-assign]


class AtomicMotoServer(ThreadedMotoServer):
    """ThreadedMotoServer serving `atomic_dynamodb` of moto's application, keeping no dead model instance."""

    def _server_entry(self) -> None:
        untrack_models()
        app = atomic_dynamodb(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()
