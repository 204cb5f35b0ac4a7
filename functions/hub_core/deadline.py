"""Each invocation's deadline, set at the handler's edge from the Lambda context, and the batch loops' fit checks.

The partner HTTP core reads the deadline (`partners.deadline`) and fits every attempt inside it. An HTTP route gets
the smaller of the invocation's remaining time and HTTP API's 30 s integration limit, minus a margin in which the
route still answers on its own (a 503 with Retry-After) and writes what lets the request resume.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from partners.deadline import Clock, Deadline, bounded_by, current

# API Gateway HTTP APIs end an integration after 30 s with their own 503 (not configurable above that).
HTTP_API_LIMIT_SECONDS = 30.0
# What an invocation keeps for itself after its last partner call: the answer, and the writes that make it
# resumable. Settable per function (DEADLINE_MARGIN_SECONDS) because the tests run with tiny timeouts.
DEFAULT_MARGIN_SECONDS = 2.0

Handler = Callable[[Any, Any], Any]


def margin_seconds() -> float:
    """The margin from DEADLINE_MARGIN_SECONDS, read per invocation (never at import)."""
    try:
        return max(0.0, float(os.environ.get("DEADLINE_MARGIN_SECONDS", DEFAULT_MARGIN_SECONDS)))
    except ValueError:
        return DEFAULT_MARGIN_SECONDS


def is_http_api_event(event: Any) -> bool:
    return isinstance(event, dict) and "routeKey" in event and "requestContext" in event


def invocation_deadline(remaining_ms: int, *, http: bool, margin: float, clock: Clock = time.monotonic) -> Deadline:
    """When this invocation's own work must be over: Lambda's remaining time (capped at HTTP API's limit for a
    route), minus `margin`."""
    seconds = remaining_ms / 1000
    if http:
        seconds = min(seconds, HTTP_API_LIMIT_SECONDS)
    return Deadline.after(max(0.0, seconds - margin), clock)


def deadline_aware(handler: Handler) -> Handler:
    """Decorate a `lambda_handler`: everything under it runs within the invocation's deadline."""

    @functools.wraps(handler)
    def wrapped(event: Any, context: Any) -> Any:
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if remaining is None:  # a bare test context: no limit known, none imposed
            return handler(event, context)
        deadline = invocation_deadline(int(remaining()), http=is_http_api_event(event), margin=margin_seconds())
        with bounded_by(deadline):
            return handler(event, context)

    return wrapped


def fits(seconds: float) -> bool:
    """Whether work of up to `seconds` ends before the current deadline (always, when none is set)."""
    deadline = current()
    return deadline is None or deadline.fits(seconds)


@contextmanager
def record_budget(seconds: float) -> Iterator[None]:
    """Bound one batch record's work to `seconds` (and to the invocation's deadline): its partner calls give up in
    time, so the record ends settled or cleanly failed, never cut off half-way by Lambda."""
    deadline = current()
    with bounded_by(deadline.within(seconds) if deadline is not None else Deadline.after(seconds)):
        yield
