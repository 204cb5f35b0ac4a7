"""EventBridge for the local stack: bus taps, rule routing, Lambda's asynchronous invocation, schedules.

Every event goes through moto's PutEvents (validation, event ids, the bus must exist). Each bus that has rules holds
one extra catch-all "tap" rule whose only target is a hidden local queue; `BusRouter` reads that queue and routes
each event to the template's rules with moto's own pattern matcher. Functions are invoked asynchronously by
`AsyncInvoker` (Lambda's retries, OnSuccess/OnFailure destinations, dead-letter queue); queues get the event as
EventBridge sends it. Template rules are registered in moto too (pattern and state, for `list_rules`), but without
targets: moto would deliver to a queue even when its rule is DISABLED, without the event's `account`, and fails the
whole PutEvents call (500, retried by the SDK) on a Lambda target.
"""

from __future__ import annotations

import json
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from hub_local.event_targets import compile_pattern, event_envelope
from hub_local.specs import EventRuleSpec, RuleTarget
from hub_local.workers import StoppableThreads

Deliver = Callable[[EventRuleSpec, RuleTarget, dict[str, Any]], None]


class BusRouter(StoppableThreads):
    """Reads one bus's tap queue and hands each event to the targets of every enabled rule it matches."""

    def __init__(
        self,
        *,
        bus: str,
        queue_url: str,
        rules: Sequence[EventRuleSpec],
        sqs: Any,
        deliver: Deliver,
        idle_seconds: float = 0.05,
    ) -> None:
        super().__init__()
        self.bus = bus
        self.queue_url = queue_url
        self.rules = list(rules)
        self.sqs = sqs
        self.deliver = deliver
        self.idle_seconds = idle_seconds
        self._matchers = [(rule, compile_pattern(rule.pattern)) for rule in self.rules if rule.enabled]
        self._lock = threading.Lock()
        self._busy = 0
        self.activity = 0

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._busy > 0

    def route(self, event: dict[str, Any]) -> int:
        """Deliver one event to every target of every matching enabled rule; returns how many deliveries."""
        if not isinstance(event.get("detail"), dict):
            print(f"bus {self.bus}: event {event.get('id')} has no JSON object detail: not routed", file=sys.stderr)
            return 0
        delivered = 0
        for rule, matcher in self._matchers:
            if not matcher.matches_event(event):
                continue
            for target in rule.targets:
                try:
                    self.deliver(rule, target, event)
                    delivered += 1
                except Exception:  # one target's failure does not keep the event from the others
                    print(f"bus {self.bus}: rule {rule.name} could not deliver to {target.describe}", file=sys.stderr)
                    traceback.print_exc(file=sys.stderr)
        return delivered

    def cycle(self) -> int:
        """Receive what the tap holds, route it, delete it; returns how many events were read."""
        with self._lock:
            self._busy += 1
        try:
            messages = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
                "Messages", []
            )
            if messages:
                with self._lock:
                    self.activity += 1
            for message in messages:
                try:
                    self.route(event_envelope(json.loads(message["Body"])))
                except Exception:  # a malformed copy is dropped, as EventBridge would never have sent it
                    print(f"bus {self.bus}: cannot route {message['Body'][:200]!r}", file=sys.stderr)
                    traceback.print_exc(file=sys.stderr)
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            return len(messages)
        finally:
            with self._lock:
                self._busy -= 1

    def start(self) -> BusRouter:
        self._start_threads(self._run, [f"hub-local-bus-{self.bus}"])
        return self

    def _run(self) -> None:
        self._poll(self.cycle, f"bus {self.bus}: reading the tap failed", self.idle_seconds)
