"""moto's server, with each DynamoDB request made atomic as DynamoDB makes it, so conditional writes hold under races.

It also keeps no model instance beyond its life (`untrack_models`), backs a table up once per transaction
(`one_backup_per_table`), and sends to a queue without counting what it holds (`depth_free_sends`), so that a
long-running stack stays bounded and no request's cost grows with a table's or a queue's size times its actions.

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
from moto.dynamodb import models as dynamodb_models
from moto.dynamodb.models.table import Table
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from moto.sqs import models as sqs_models
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


def one_backup_per_table() -> None:
    """Make moto's TransactWriteItems copy each table it touches once, not once per action.

    moto deep-copies a table as its rollback backup for every action of a transaction, so a fold of 100 donations
    over a table of 1,000 copied 100,000 items: 2 s for one fold on a fresh stack, past the fold's per-campaign
    budget once a bench had filled the table. One copy per table is the same rollback. The module's `copy` is
    swapped for the call only; the server takes DynamoDB requests one at a time (`atomic_dynamodb`)."""
    backend = dynamodb_models.DynamoDBBackend
    original = backend.transact_write_items
    if getattr(original, "one_backup_per_table", False):
        return
    real_copy = dynamodb_models.copy  # type: ignore[attr-defined]

    def once_per_table(self: Any, transact_items: list[dict[str, Any]]) -> None:
        copies: dict[int, Any] = {}

        class _Copy:
            @staticmethod
            def deepcopy(value: Any) -> Any:
                if not isinstance(value, Table):
                    return real_copy.deepcopy(value)
                if id(value) not in copies:
                    copies[id(value)] = real_copy.deepcopy(value)
                return copies[id(value)]

        dynamodb_models.copy = _Copy  # type: ignore[attr-defined,assignment]
        try:
            original(self, transact_items)
        finally:
            dynamodb_models.copy = real_copy  # type: ignore[attr-defined]

    once_per_table.one_backup_per_table = True  # type: ignore[attr-defined]
    backend.transact_write_items = once_per_table  # type: ignore[method-assign]


def depth_free_sends() -> None:
    """Make moto's SendMessage cost the same however many messages the queue holds, as in SQS.

    moto's send reads `queue.attributes` for one FIFO flag, and that property counts the queue's visible, delayed
    and in-flight messages, reading the clock for each one: a PutEvents of ten hints to a queue of 3,000 undrained
    messages took 0.4 s, and a bench's fold of 100 donations (ten PutEvents) overran its 2 s budget. A standard
    queue's attributes hold no FIFO flag, so during a send to one they are answered as empty; a FIFO queue's are
    computed in full, as before. GetQueueAttributes still counts."""
    queue_class = sqs_models.Queue
    backend = sqs_models.SQSBackend
    if getattr(backend.send_message, "depth_free", False):
        return
    full_attributes = queue_class.attributes.fget  # type: ignore[attr-defined]
    sending = threading.local()

    def attributes(queue: Any) -> dict[str, Any]:
        if getattr(sending, "active", False) and not queue.fifo_queue:
            return {}
        return full_attributes(queue)  # type: ignore[no-any-return]

    original_send = backend.send_message

    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        outer = getattr(sending, "active", False)
        sending.active = True
        try:
            return original_send(self, *args, **kwargs)
        finally:
            sending.active = outer

    send_message.depth_free = True  # type: ignore[attr-defined]
    queue_class.attributes = property(attributes)  # type: ignore[assignment,method-assign]
    backend.send_message = send_message  # type: ignore[method-assign]


class AtomicMotoServer(ThreadedMotoServer):
    """ThreadedMotoServer serving `atomic_dynamodb` of moto's application, keeping no dead model instance."""

    def _server_entry(self) -> None:
        untrack_models()
        one_backup_per_table()
        depth_free_sends()
        app = atomic_dynamodb(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        # stop() waits for the serving loop to notice: at werkzeug's 0.5 s poll that was most of a stack's stop.
        self._server.serve_forever(poll_interval=0.05)
