"""Concurrent invocations in one process: each invocation's own os.environ, and per-function concurrency slots."""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from collections.abc import Iterator, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from hub_local.specs import FunctionSpec

# Without a setting of its own (ReservedConcurrentExecutions, an SQS source's MaximumConcurrency), a function runs up
# to this many invocations at once locally: enough for races to happen, few enough for a 2-core laptop.
DEFAULT_CONCURRENCY: Final = 4

_CURRENT: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar("hub_local_environ", default=None)


class InvocationEnviron(MutableMapping[str, str]):
    """What `os.environ` is while a local stack runs: the running invocation's own variables in a thread that runs
    one (a context variable, so each thread, and a nested invocation, sees its own), the host's everywhere else.

    Functions read their settings from os.environ at any time (boto3 on first client, settings factories, the
    event bus name per put), so switching one shared os.environ around each invocation is safe only one
    invocation at a time. Writes inside an invocation stay in that invocation, as in a Lambda container of its own.
    Code that reads the C-level environment (getenv from C, subprocesses) still sees the host's.
    """

    def __init__(self, host: MutableMapping[str, str]) -> None:
        self.host = host

    def _target(self) -> MutableMapping[str, str]:
        current = _CURRENT.get()
        return self.host if current is None else current

    def __getitem__(self, name: str) -> str:
        return self._target()[name]

    def __setitem__(self, name: str, value: str) -> None:
        if not isinstance(name, str) or not isinstance(value, str):  # os.environ's own rule
            raise TypeError(f"str expected, not {type(value).__name__}")
        self._target()[name] = value

    def __delitem__(self, name: str) -> None:
        del self._target()[name]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._target()))

    def __len__(self) -> int:
        return len(self._target())

    def __contains__(self, name: object) -> bool:
        return name in self._target()

    def copy(self) -> dict[str, str]:
        return dict(self._target())

    def __repr__(self) -> str:
        return f"InvocationEnviron({'invocation' if _CURRENT.get() is not None else 'host'})"

    def __or__(self, other: Mapping[str, str]) -> dict[str, str]:
        return dict(self._target()) | dict(other)

    def __ror__(self, other: Mapping[str, str]) -> dict[str, str]:
        return dict(other) | dict(self._target())

    def __ior__(self, other: Mapping[str, str]) -> InvocationEnviron:
        self.update(other)
        return self


_INSTALL_LOCK: Final = threading.Lock()


def install() -> InvocationEnviron:
    """Make os.environ an `InvocationEnviron` over the host's (once per process; it stays, being transparent
    outside invocations: a later stack, or a stack still stopping, relies on it)."""
    with _INSTALL_LOCK:
        if not isinstance(os.environ, InvocationEnviron):
            os.environ = InvocationEnviron(os.environ)  # type: ignore[assignment]  # noqa: B003 - replaced, not cleared
        return os.environ  # type: ignore[return-value]


def host_environ() -> MutableMapping[str, str]:
    """The host's variables, whatever invocation the calling thread runs."""
    environ: Any = os.environ
    return environ.host if isinstance(environ, InvocationEnviron) else environ


@contextlib.contextmanager
def invocation_environ(values: Mapping[str, str]) -> Iterator[None]:
    """Run the block (in this thread) with `values` as the whole of os.environ."""
    install()
    token = _CURRENT.set(dict(values))
    try:
        yield
    finally:
        _CURRENT.reset(token)


class ConcurrencySlots:
    """At most `limit` invocations of each function at once; the next one waits for a slot, as Lambda's
    asynchronous queue and SQS pollers wait for capacity (a synchronous call that Lambda would throttle with 429
    waits here too: the runner's default stands for the account's pool, not for a reserved limit)."""

    def __init__(self, limits: Mapping[str, int]) -> None:
        self._semaphores = {name: threading.BoundedSemaphore(max(1, limit)) for name, limit in limits.items()}
        self.limits = {name: max(1, limit) for name, limit in limits.items()}
        self._lock = threading.Lock()
        self._running: dict[str, int] = dict.fromkeys(limits, 0)
        self._waiting: dict[str, int] = dict.fromkeys(limits, 0)
        self.peak: dict[str, int] = dict.fromkeys(limits, 0)

    @contextlib.contextmanager
    def slot(self, function: str) -> Iterator[None]:
        semaphore = self._semaphores[function]
        with self._lock:
            self._waiting[function] += 1
        try:
            semaphore.acquire()
        finally:
            with self._lock:
                self._waiting[function] -= 1
        with self._lock:
            self._running[function] += 1
            self.peak[function] = max(self.peak[function], self._running[function])
        try:
            yield
        finally:
            with self._lock:
                self._running[function] -= 1
            semaphore.release()

    def running(self, function: str) -> int:
        with self._lock:
            return self._running[function]

    def waiting(self, function: str) -> int:
        """Invocations waiting for a slot of `function`."""
        with self._lock:
            return self._waiting[function]


def concurrency_limit(function: FunctionSpec, concurrency: int | Mapping[str, int] | None) -> int:
    """How many invocations of the function may run at once: its ReservedConcurrentExecutions, else `concurrency`
    (one number, or by logical id), else DEFAULT_CONCURRENCY."""
    if function.reserved_concurrency is not None:
        return max(1, function.reserved_concurrency)
    if isinstance(concurrency, Mapping):
        return max(1, int(concurrency.get(function.logical_id, DEFAULT_CONCURRENCY)))
    return max(1, DEFAULT_CONCURRENCY if concurrency is None else int(concurrency))
