"""A stack's EventBridge: its rules in moto, a tap queue per bus, routers, asynchronous invocations, schedules."""

from __future__ import annotations

import contextlib
import datetime
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from botocore.exceptions import ClientError

from hub_local.async_invoke import AsyncInvoker
from hub_local.cfn import ACCOUNT_ID, REGION
from hub_local.event_targets import (
    PUT_EVENTS_LIMIT,
    TAP_INPUT_TEMPLATE,
    TAP_PATTERN,
    TAP_RULE_NAME,
    TAP_TARGET_ID,
    lambda_payload,
    normalise_entry,
    render_target_input,
    send_to_queue,
    tap_queue_name,
)
from hub_local.eventbus import BusRouter
from hub_local.redelivery import Redelivery
from hub_local.resources import UnknownResourceError
from hub_local.schedules import ScheduleTimer, scheduled_event_text
from hub_local.specs import EventRuleSpec, RuleTarget, ScheduleSpec
from hub_local.sqs_pump import queue_is_empty
from hub_local.template import LocalTemplate

# Threads that run asynchronous invocations (several functions' at once; each function is held to its own limit).
_ASYNC_WORKERS: Final = 8


class EventRouting:
    """Delivers what the template's rules and schedules send, as EventBridge and Lambda's asynchronous invocation
    do; `start` wires it into moto, `stop` stops its threads, `remove_resources` takes its moto state away."""

    def __init__(
        self,
        template: LocalTemplate,
        boto3_client: Callable[[str], Any],
        invoke: Callable[..., Any],
        *,
        redelivery: Redelivery,
        pump_queues: bool,
        run_schedules: bool,
        schedule_time_scale: float,
        async_retry_seconds: float,
    ) -> None:
        self.template = template
        self.boto3_client = boto3_client
        self.invoke = invoke
        self.redelivery = redelivery
        self.pump_queues = pump_queues
        self.run_schedules = run_schedules
        self.schedule_time_scale = schedule_time_scale
        self.async_retry_seconds = async_retry_seconds
        self.invoker: AsyncInvoker | None = None
        self.routers: list[BusRouter] = []
        self._taps: dict[str, str] = {}
        self._default_bus_rules: set[str] = set()
        self.timer: ScheduleTimer | None = None
        self.client: Any = None
        self.sqs: Any = None

    def start(self) -> None:
        """Register the template's rules in moto, tap every bus that has rules, prepare (and, when
        `pump_queues`, start) the routers and asynchronous invocations; start the schedule timer if asked."""
        template = self.template
        for warning in template.warnings:
            print(f"hub_local: {warning}", file=sys.stderr)
        events = self.client = self.boto3_client("events")
        sqs = self.sqs = self.boto3_client("sqs")
        self.invoker = AsyncInvoker(
            invoke=self.invoke,
            functions=template.functions,
            queues=template.queues,
            sqs=sqs,
            events=events,
            retry_seconds=self.async_retry_seconds,
            workers=_ASYNC_WORKERS,
        )
        for bus in dict.fromkeys(rule.bus for rule in template.event_rules):
            rules = [rule for rule in template.event_rules if rule.bus == bus]
            for rule in rules:
                self._register_rule(
                    rule.name, bus, rule.enabled, rule.description, EventPattern=json.dumps(rule.pattern)
                )
            self._taps[bus] = self._create_tap(bus)
            self.routers.append(
                BusRouter(bus=bus, queue_url=self._taps[bus], rules=rules, sqs=sqs, deliver=self._deliver_rule_target)
            )
        for schedule in template.schedules:
            if schedule.kind == "Schedule":  # an EventBridge scheduled rule (ScheduleV2 is EventBridge Scheduler)
                self._register_rule(
                    schedule.name, "default", schedule.enabled, None, ScheduleExpression=schedule.expression.text
                )
        if self.pump_queues:
            self.invoker.start()
            for router in self.routers:
                router.start()
        if self.run_schedules:
            self.timer = ScheduleTimer(template.schedules, self._fire_schedule, time_scale=self.schedule_time_scale)
            self.timer.start()

    def _register_rule(self, name: str, bus: str, enabled: bool, description: str | None, **rule: str) -> None:
        """The rule as moto lists it (pattern or schedule, state), without targets: delivery is the router's."""
        if description:
            rule["Description"] = description
        self.client.put_rule(Name=name, EventBusName=bus, State="ENABLED" if enabled else "DISABLED", **rule)
        if bus == "default":  # the default bus outlives the stack: what it holds is removed at stop
            self._default_bus_rules.add(name)

    def _create_tap(self, bus: str) -> str:
        """The catch-all rule of `bus` and its queue, which receives every event put on the bus, complete."""
        events, sqs = self.client, self.sqs
        self._remove_tap(bus)  # a stack of this process that did not stop may have left it
        name = tap_queue_name(bus)
        url: str = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
        events.put_rule(
            Name=TAP_RULE_NAME,
            EventBusName=bus,
            EventPattern=json.dumps(TAP_PATTERN),
            State="ENABLED",
            Description="hub_local: every event of the bus, for the local router",
        )
        events.put_targets(
            Rule=TAP_RULE_NAME,
            EventBusName=bus,
            Targets=[
                {
                    "Id": TAP_TARGET_ID,
                    "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}",
                    "InputTransformer": {"InputTemplate": TAP_INPUT_TEMPLATE},
                }
            ],
        )
        return url

    def _remove_tap(self, bus: str) -> None:
        events, sqs = self.client, self.sqs
        with contextlib.suppress(ClientError):
            events.remove_targets(Rule=TAP_RULE_NAME, EventBusName=bus, Ids=[TAP_TARGET_ID])
        with contextlib.suppress(ClientError):
            events.delete_rule(Name=TAP_RULE_NAME, EventBusName=bus)
        with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=tap_queue_name(bus))["QueueUrl"])

    def remove_resources(self) -> None:
        """Taps and default-bus rules leave moto with the stack (its state outlives the server in this process)."""
        if self.client is None:
            return
        try:
            for bus in self._taps:
                self._remove_tap(bus)
            for name in self._default_bus_rules:
                with contextlib.suppress(ClientError):
                    self.client.delete_rule(Name=name, EventBusName="default")
        except Exception as error:  # moto may already be unusable after a failed start
            print(f"hub_local: removing the event taps failed: {error}", file=sys.stderr)
        self._taps = {}
        self._default_bus_rules = set()
        self.client = self.sqs = None

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.stop()
            self.timer.join(timeout=5)
            self.timer = None
        for router in self.routers:
            router.stop()
        for router in self.routers:
            router.join(timeout=5)
        self.routers = []
        if self.invoker is not None:
            self.invoker.stop()
            self.invoker.join(timeout=30)
            self.invoker = None

    def _deliver(self, target: RuleTarget, text: str, event_id: str | None, origin: str, delay: float = 0.0) -> None:
        """Hand what a rule or schedule sends to its target: an asynchronous invocation, or SendMessage (`delay`
        seconds later, for a late duplicate)."""
        if target.function is not None:
            self.require_invoker().submit(target.function, lambda_payload(text), delay=delay)
            return
        assert target.queue is not None
        queues = self.template.queues
        try:
            send_to_queue(
                self.sqs,
                queues[target.queue],
                text,
                group_id=target.message_group_id,
                event_id=event_id,
                delay_seconds=max(0, int(-(-delay // 1))),
            )
        except Exception as error:
            if target.dead_letter_queue is None:
                raise
            # EventBridge's own dead-letter queue: the event, and why it could not be delivered.
            self.sqs.send_message(
                QueueUrl=queues[target.dead_letter_queue].url,
                MessageBody=text,
                MessageAttributes={
                    "ERROR_CODE": {"DataType": "String", "StringValue": type(error).__name__},
                    "ERROR_MESSAGE": {"DataType": "String", "StringValue": str(error)[:1024] or origin},
                    "RULE_ARN": {"DataType": "String", "StringValue": origin},
                    "TARGET_ARN": {"DataType": "String", "StringValue": target.arn},
                },
            )

    def _deliver_rule_target(self, rule: EventRuleSpec, target: RuleTarget, event: dict[str, Any]) -> None:
        text = render_target_input(target, event, rule.name, rule.arn)
        self._deliver(target, text, event.get("id"), rule.arn)
        # At-least-once: EventBridge may deliver the same event (same id) to a target again, now or later.
        again = self.redelivery.repeat(f"events:{rule.name}:{target.describe}")
        if again is not None:
            self._deliver(target, text, event.get("id"), rule.arn, delay=again)

    def _fire_schedule(self, schedule: ScheduleSpec, when: datetime.datetime) -> None:
        self._deliver(schedule.target, scheduled_event_text(schedule, when), None, schedule.arn)

    def require_invoker(self) -> AsyncInvoker:
        if self.invoker is None:
            raise RuntimeError("LocalStack is not started")
        return self.invoker

    def drain_events(self, timeout: float = 10.0) -> bool:
        """Wait until every event put so far (by anyone: tests, the gateway, functions) has been routed and every
        asynchronous invocation it caused, retries and destinations included, has finished; False on timeout.
        Without `pump_queues`, this is what routes and invokes (in the calling thread)."""
        invoker = self.require_invoker()
        deadline = time.monotonic() + timeout
        while True:
            worked = 0
            if not self.pump_queues:
                worked = sum(router.cycle() for router in self.routers) + invoker.run_due()
            if not worked and self.quiet(invoker):
                return True
            if time.monotonic() >= deadline:
                return False
            if not worked:
                time.sleep(0.02)

    def quiet(self, invoker: AsyncInvoker) -> bool:
        """No event in a tap or being routed, no invocation queued or running, and nothing came and went between
        the checks (the activity counters)."""

        def activity() -> int:
            return invoker.activity + sum(router.activity for router in self.routers)

        def taps_quiet() -> bool:
            return not any(router.busy for router in self.routers) and all(
                queue_is_empty(self.sqs, url) for url in self._taps.values()
            )

        before = activity()
        return taps_quiet() and invoker.pending == 0 and taps_quiet() and activity() == before


def put_events(
    template: LocalTemplate, client: Callable[[], Any], entries: Sequence[Mapping[str, Any]]
) -> dict[str, Any]:
    """PutEvents through moto, as a function's boto3 does it; returns moto's answer (FailedEntryCount, Entries).

    Detail may be a mapping (sent as JSON), Time an ISO string or epoch seconds, EventBusName a bus name or
    a bus's logical id; without it, the template's only bus (or "default" when it declares none). More than
    10 entries are sent 10 at a time. `client` gives the EventBridge client, once the entries are valid.
    """
    names = {bus.logical_id: bus.name for bus in template.buses.values()}
    buses = list(dict.fromkeys(names.values()))
    default_bus = buses[0] if len(buses) == 1 else "default" if not buses else None
    normal = [normalise_entry(entry, default_bus, names) for entry in entries]
    if not normal:
        raise ValueError("put_events takes at least one entry")
    events = client()
    answer: dict[str, Any] = {"FailedEntryCount": 0, "Entries": []}
    for start in range(0, len(normal), PUT_EVENTS_LIMIT):
        response = events.put_events(Entries=normal[start : start + PUT_EVENTS_LIMIT])
        answer["FailedEntryCount"] += response.get("FailedEntryCount", 0)
        answer["Entries"].extend(response.get("Entries", []))
    return answer


def schedule_for(template: LocalTemplate, function_logical_id: str, event_name: str | None) -> ScheduleSpec:
    """The function's schedule (`event_name` picks one of several); UnknownResourceError when it has none."""
    found = [
        schedule
        for schedule in template.schedules
        if schedule.function == function_logical_id
        and (event_name is None or event_name in (schedule.event_name, schedule.logical_id, schedule.name))
    ]
    if not found:
        which = f" {event_name!r}" if event_name else ""
        raise UnknownResourceError(f"{function_logical_id} has no schedule{which}")
    if len(found) > 1:
        names = ", ".join(str(schedule.event_name) for schedule in found)
        raise ValueError(f"{function_logical_id} has several schedules ({names}): name one with event_name")
    return found[0]
