"""The time an invocation has left, held per context so the HTTP core can fit every partner call inside it."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass(frozen=True)
class Deadline:
    """A moment on `clock` (monotonic seconds) by which the work under way must be over.

    Held in a context variable rather than passed down: every adapter method and flow would otherwise carry a
    parameter it only hands on, and a context variable is per thread, so concurrent invocations of the local
    runner never see each other's deadline.
    """

    at: float
    clock: Clock = field(default=time.monotonic, compare=False)

    @classmethod
    def after(cls, seconds: float, clock: Clock = time.monotonic) -> Deadline:
        return cls(clock() + seconds, clock)

    def remaining(self) -> float:
        """Seconds left, never below zero."""
        return max(0.0, self.at - self.clock())

    def fits(self, seconds: float) -> bool:
        """Whether work that may take `seconds` would end before the deadline."""
        return self.remaining() >= seconds

    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def within(self, seconds: float) -> Deadline:
        """The earlier of this deadline and `seconds` from now: a part of the work that must not take longer."""
        return Deadline(min(self.at, self.clock() + seconds), self.clock)


_CURRENT: ContextVar[Deadline | None] = ContextVar("partner_deadline", default=None)


def current() -> Deadline | None:
    """The deadline of the work under way in this context, or None when nothing set one (no limit)."""
    return _CURRENT.get()


@contextmanager
def bounded_by(deadline: Deadline | None) -> Iterator[Deadline | None]:
    """Run a block under `deadline`, made no later than a deadline already in force; restored afterwards."""
    outer = _CURRENT.get()
    if (deadline is not None and outer is not None and outer.at < deadline.at) or deadline is None:
        deadline = outer
    token = _CURRENT.set(deadline)
    try:
        yield deadline
    finally:
        _CURRENT.reset(token)
