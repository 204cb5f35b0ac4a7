"""The local stack every in-process benchmark runs on: one way to start it, quiet, with the bench's limits."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from bench.common import ROOT
from hub_core.caches import reset_all
from hub_local.stack import LocalStack

# The bench creates thousands of campaigns from one address for one number, and relays thousands of actions for one
# member: the limits stay in the path (their UpdateItem is measured) but are raised out of the way.
BENCH_LIMITS = {
    "CREATE_LIMIT_PER_MSISDN": "1000000000",
    "CREATE_LIMIT_PER_IP": "1000000000",
    "MEMBER_ACTIONS_PER_DAY": "1000000000",
}


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """The handlers log (and flush metrics) as on Lambda, into /dev/null rather than the table."""
    saved = os.dup(1)
    with open(os.devnull, "wb") as sink:
        os.dup2(sink.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


@contextlib.contextmanager
def bench_stack() -> Iterator[LocalStack]:
    """The template on moto and the loopback sandboxes, in this process: no gateway, queues not pumped (the bench
    invokes what it measures itself), stdout silenced."""
    with (
        LocalStack(
            ROOT / "template.yaml", gateway_port=None, pump_queues=False, function_overrides=BENCH_LIMITS
        ) as stack,
        quiet_stdout(),
    ):
        reset_all()  # clients and settings cached against an earlier stack's endpoints would miss this one
        yield stack
        reset_all()


@contextlib.contextmanager
def function_environment(stack: LocalStack, logical_id: str) -> Iterator[None]:
    """os.environ as the function's own (template Variables resolved against this stack), restored after."""
    saved = dict(os.environ)
    os.environ.update(stack.function_env(logical_id))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
