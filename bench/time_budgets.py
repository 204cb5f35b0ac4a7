"""Worst invocation duration ÷ the function's Timeout under hanging and slow partners (issue 16's target: ≤ 0.9).

Each scenario runs the real handler on the local stack with the template's own Timeouts and partner timeouts (the
runner enforces Timeout as Lambda does, so an overrun would show as "timed out"), while the partner sandbox hangs or
answers slowly. What keeps an invocation in time is its deadline (hub_core.deadline), not a short partner timeout.
Nothing here asserts a time: it prints ratios.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.common import Row
from bench.stack import bench_stack, load_event, new_campaign_event, new_lead_event, new_licence_event, new_relay_batch
from hub_local.limits import FunctionTimedOut
from hub_local.stack import LocalStack

TARGET = "≤ 0.9"
# Longer than any partner timeout the template sets: a hanging partner never answers within an attempt.
HANG_SECONDS = 40.0


@dataclass(frozen=True)
class Scenario:
    logical_id: str
    description: str
    run: Callable[[LocalStack], None]


def _timed(stack: LocalStack, logical_id: str, event: Any) -> float | None:
    """Seconds the invocation took, or None when the runner abandoned it at its Timeout."""
    started = time.perf_counter()
    try:
        stack.invoke(logical_id, event)
    except FunctionTimedOut:
        return None
    return time.perf_counter() - started


_durations: dict[str, list[float | None]] = {}


def _record(logical_id: str, duration: float | None) -> None:
    _durations.setdefault(logical_id, []).append(duration)


def _hanging(partner: str, logical_id: str, new_event: Callable[[], Any], path: str | None = None) -> Scenario:
    def run(stack: LocalStack) -> None:
        sandbox = stack.sandboxes[partner]
        sandbox.faults.add("hang", delay=HANG_SECONDS, path_prefix=path)
        try:
            _record(logical_id, _timed(stack, logical_id, new_event()))
        finally:
            sandbox.faults.clear()

    return Scenario(logical_id, f"{partner} hanging", run)


def _lead_retry_batch(stack: LocalStack) -> None:
    """A batch of the retry queue's size, with MiiMOSA answering each forward in 4 s."""
    miimosa = stack.sandboxes["miimosa"]
    miimosa.faults.add("status", status=503, path_prefix="/leads")
    lead_ids = [json.loads(stack.invoke("LeadIntakeFunction", new_lead_event())["body"])["lead_id"] for _ in range(2)]
    miimosa.faults.clear()
    miimosa.faults.add("slow", delay=4.0)
    try:
        event = load_event("lead_intake/retry_batch.json")
        template = event["Records"][0]
        event["Records"] = [
            {**template, "messageId": str(uuid.uuid4()), "body": json.dumps({"lead_id": lead_id})}
            for lead_id in lead_ids
        ]
        _record("LeadIntakeFunction", _timed(stack, "LeadIntakeFunction", event))
    finally:
        miimosa.faults.clear()


def _relay_batch(stack: LocalStack) -> None:
    """A full batch of the relay's BatchSize (10) of new LeadCaptured events, app's miles answering in 0.8 s each."""
    records = [new_relay_batch(stack)["Records"][0] for _ in range(10)]
    appsmiles = stack.sandboxes["appsmiles"]
    appsmiles.faults.add("slow", delay=0.8)
    try:
        _record("LoyaltyRelayFunction", _timed(stack, "LoyaltyRelayFunction", {"Records": records}))
    finally:
        appsmiles.faults.clear()


SCENARIOS = [
    _hanging("miimosa", "LeadIntakeFunction", new_lead_event, path="/leads"),
    Scenario("LeadIntakeFunction", "retry batch, MiiMOSA 4 s a call", _lead_retry_batch),
    _hanging("umbrella", "CampaignLifecycleFunction", lambda: new_campaign_event()[0]),
    _hanging("mlm", "LicenceIssuanceFunction", lambda: new_licence_event()[0]),
    Scenario("LoyaltyRelayFunction", "batch of 10, app's miles 0.8 s a call", _relay_batch),
]


def measure() -> list[Row]:
    _durations.clear()
    with bench_stack() as stack:
        for scenario in SCENARIOS:
            scenario.run(stack)
        timeouts = {logical_id: stack.template.functions[logical_id].timeout for logical_id in _durations}
    rows = []
    for logical_id, durations in _durations.items():
        timeout = timeouts[logical_id]
        described = ", ".join(s.description for s in SCENARIOS if s.logical_id == logical_id)
        if any(duration is None for duration in durations):
            value = f"timed out (Timeout {timeout:g} s)"
        else:
            worst = max(d for d in durations if d is not None)
            value = f"{worst / timeout:.2f} ({worst:.1f} s of {timeout:g} s)"
        rows.append(Row(f"worst duration ÷ Timeout, {logical_id}: {described}", value, TARGET))
    return rows


def main() -> int:
    for row in measure():
        print(f"{row.metric:<100} {row.value:<28} {row.target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
