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

import datetime
import heapq
import itertools
import json
import re
import sys
import threading
import time
import traceback
import uuid
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from hub_local.template import (
    ACCOUNT_ID,
    REGION,
    AsyncDestination,
    EventRuleSpec,
    FunctionSpec,
    QueueSpec,
    RuleTarget,
    ScheduleExpression,
    ScheduleSpec,
)
from hub_local.workers import StoppableThreads

TAP_RULE_NAME: Final = "hub-local-bus-tap"
TAP_TARGET_ID: Final = "hub-local-bus-tap"
TAP_QUEUE_PREFIX: Final = "hub-local-bus-tap-"
# A pattern that matches every event (every event has a source), valid on AWS too.
TAP_PATTERN: Final = {"source": [{"prefix": ""}]}
# EventBridge's reserved variable for the whole original event: moto then sends it complete (account included).
TAP_INPUT_TEMPLATE: Final = "<aws.events.event.json>"
ENVELOPE_KEYS: Final = ("version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail")
PUT_EVENTS_LIMIT: Final = 10
_COMPACT: Final = (",", ":")
_PLACEHOLDER: Final = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_SQS_NAME_LIMIT: Final = 80

Invoke = Callable[..., Any]


class PatternMatcher(Protocol):
    def matches_event(self, event: Any) -> bool: ...


def compile_pattern(pattern: Mapping[str, Any]) -> PatternMatcher:
    """moto's own EventBridge pattern matcher (prefix, anything-but, numeric, exists, wildcard, $or...)."""
    from moto.events.models import EventPattern  # noqa: PLC0415 - moto is slow to import

    matcher: PatternMatcher = EventPattern.load(json.dumps(pattern))
    return matcher


def tap_queue_name(bus: str) -> str:
    """The hidden queue that receives every event of `bus` (SQS names allow letters, digits, - and _)."""
    name = TAP_QUEUE_PREFIX + re.sub(r"[^A-Za-z0-9_-]", "-", bus)
    if len(name) > _SQS_NAME_LIMIT or name != TAP_QUEUE_PREFIX + bus:
        name = f"{name[: _SQS_NAME_LIMIT - 9]}-{uuid.uuid5(uuid.NAMESPACE_URL, bus).hex[:8]}"
    return name


def iso_time(moment: datetime.datetime) -> str:
    """EventBridge's `time`: UTC, whole seconds, Z."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=_COMPACT)


def lambda_payload(text: str) -> Any:
    """What a Lambda target receives: the JSON value of the text, or the text itself when it is not JSON."""
    try:
        return json.loads(text)
    except ValueError:
        return text


# ---------------------------------------------------------------------------------------------- entries


def entry_from_envelope(envelope: Mapping[str, Any]) -> dict[str, Any]:
    """A PutEvents entry that puts the event of an EventBridge envelope (as `events/*.json` hold them) again."""
    entry: dict[str, Any] = {
        "Source": envelope["source"],
        "DetailType": envelope["detail-type"],
        "Detail": envelope.get("detail", {}),
    }
    if envelope.get("resources"):
        entry["Resources"] = list(envelope["resources"])
    if envelope.get("time"):
        entry["Time"] = envelope["time"]
    return entry


def entries_from_document(document: Any) -> list[dict[str, Any]]:
    """PutEvents entries from `{"Entries": [...]}`, a list, one entry, or EventBridge envelope(s)."""
    if isinstance(document, Mapping) and "Entries" in document:
        document = document["Entries"]
    items = document if isinstance(document, list) else [document]
    entries: list[dict[str, Any]] = []
    for item in items:
        if not isinstance(item, Mapping):
            raise ValueError(f"an event entry must be a JSON object, not {type(item).__name__}")
        if "detail-type" in item and "source" in item:
            entries.append(entry_from_envelope(item))
        elif "Source" in item or "DetailType" in item or "Detail" in item:
            entries.append(dict(item))
        else:
            raise ValueError("expected PutEvents entries (Source, DetailType, Detail) or EventBridge events")
    if not entries:
        raise ValueError("no event entries given")
    return entries


def _entry_time(value: Any) -> datetime.datetime:
    if isinstance(value, datetime.datetime):
        return value
    if isinstance(value, int | float):
        return datetime.datetime.fromtimestamp(value, datetime.UTC)
    moment = datetime.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def normalise_entry(entry: Mapping[str, Any], default_bus: str | None, bus_names: Mapping[str, str]) -> dict[str, Any]:
    """A boto3 PutEvents entry: Detail as JSON text, Time as a datetime, EventBusName defaulted or mapped from a
    logical id of the template (`bus_names`)."""
    normal = dict(entry)
    detail = normal.get("Detail")
    if detail is not None and not isinstance(detail, str):
        normal["Detail"] = _dumps(detail)
    if normal.get("Time") is not None:
        normal["Time"] = _entry_time(normal["Time"])
    bus = normal.get("EventBusName")
    if bus is None:
        if default_bus is None:
            raise ValueError("EventBusName is required: the template declares more than one bus")
        normal["EventBusName"] = default_bus
    elif bus in bus_names and bus not in bus_names.values():
        normal["EventBusName"] = bus_names[bus]
    return normal


# ---------------------------------------------------------------------------------------------- what targets get


def event_envelope(body: Mapping[str, Any]) -> dict[str, Any]:
    """The event as EventBridge delivers it (its keys in AWS's order), from the tap's copy of it."""
    envelope = {key: body[key] for key in ENVELOPE_KEYS if key in body}
    envelope.setdefault("account", ACCOUNT_ID)
    if "replay-name" in body:
        envelope["replay-name"] = body["replay-name"]
    return envelope


def json_path(document: Any, path: str) -> Any:
    """The value at a simple JSONPath ($, $.detail, $.detail.items[0].id); None when absent."""
    value = document
    for name, index in re.findall(r"\.([^.\[\]]+)|\[(\d+)\]", path[1:]):
        if name and isinstance(value, Mapping):
            value = value.get(name)
        elif index and isinstance(value, list) and int(index) < len(value):
            value = value[int(index)]
        else:
            return None
    return value


def transform_input(transformer: Mapping[str, Any], event: Mapping[str, Any], rule: str, rule_arn: str) -> str:
    """An InputTransformer: <name> placeholders of InputTemplate replaced by the InputPathsMap values."""
    values: dict[str, Any] = {
        name: json_path(event, str(path)) for name, path in (transformer.get("InputPathsMap") or {}).items()
    }
    values |= {
        "aws.events.rule-arn": rule_arn,
        "aws.events.rule-name": rule,
        "aws.events.event.ingestion-time": event.get("time"),
        "aws.events.event": {key: value for key, value in event.items() if key != "detail"},
        "aws.events.event.json": dict(event),
    }
    template = str(transformer["InputTemplate"])

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        value = values[name]
        quoted = template[match.start() - 1 : match.start()] == '"' and template[match.end() : match.end() + 1] == '"'
        text = value if isinstance(value, str) else ("null" if value is None else _dumps(value))
        # Inside quotes a value becomes string content (escaped); outside, it is inserted as JSON (strings raw).
        return json.dumps(text)[1:-1] if quoted else text

    return _PLACEHOLDER.sub(replace, template)


def render_target_input(target: RuleTarget, event: Mapping[str, Any], rule: str, rule_arn: str) -> str:
    """The text a target receives for `event`: Input, InputPath, InputTransformer, or the event itself."""
    if target.input is not None:
        return target.input
    if target.input_path is not None:
        return _dumps(json_path(event, target.input_path))
    if target.input_transformer is not None:
        return transform_input(target.input_transformer, event, rule, rule_arn)
    return _dumps(event)


def scheduled_event_text(schedule: ScheduleSpec, when: datetime.datetime) -> str:
    """What a schedule sends at `when`: its Input, or EventBridge's "Scheduled Event" (Scheduler's for V2)."""
    if schedule.kind == "ScheduleV2" and schedule.target.input is not None:
        context = {
            "aws.scheduler.schedule-arn": schedule.arn,
            "aws.scheduler.scheduled-time": iso_time(when),
            "aws.scheduler.execution-id": str(uuid.uuid4()),
            "aws.scheduler.attempt-number": "1",
        }
        return _PLACEHOLDER.sub(lambda match: context.get(match.group(1), match.group(0)), schedule.target.input)
    envelope = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": schedule.source,
        "account": ACCOUNT_ID,
        "time": iso_time(when),
        "region": REGION,
        "resources": [schedule.arn],
        # EventBridge Scheduler's default notification carries its detail as a string.
        "detail": "{}" if schedule.kind == "ScheduleV2" else {},
    }
    return render_target_input(schedule.target, envelope, schedule.name, schedule.arn)


def send_to_queue(
    sqs: Any, queue: QueueSpec, body: str, *, group_id: str | None, event_id: str | None, delay_seconds: int = 0
) -> None:
    """SendMessage as an EventBridge target does it (FIFO: the target's group id, the event id as dedup id).
    `delay_seconds` makes a standard queue's message late (a FIFO queue takes no per-message delay)."""
    arguments: dict[str, Any] = {"QueueUrl": queue.url, "MessageBody": body}
    if queue.fifo:
        arguments["MessageGroupId"] = group_id or "default"
        arguments["MessageDeduplicationId"] = event_id or str(uuid.uuid4())
    elif delay_seconds:
        arguments["DelaySeconds"] = delay_seconds
    sqs.send_message(**arguments)


# ---------------------------------------------------------------------------------------- asynchronous invocation


def _utc_timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def function_arn(function: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function}"


def error_payload(error: BaseException, request_id: str) -> dict[str, Any]:
    """The Python runtime's report of an unhandled error."""
    error_type = type(error).__name__
    if error_type == "HandlerImportError":
        error_type = "Runtime.ImportModuleError"
    elif error_type == "FunctionTimedOut":
        error_type = "Sandbox.Timedout"
    return {
        "errorMessage": str(error),
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": traceback.format_list(traceback.extract_tb(error.__traceback__)),
    }


def invocation_record(
    *,
    function: str,
    request_id: str,
    event: Any,
    condition: str,
    invoke_count: int,
    response: Any,
    error: bool,
) -> dict[str, Any]:
    """The record Lambda sends to an asynchronous invocation's destination."""
    response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if error:
        response_context["functionError"] = "Unhandled"
    return {
        "version": "1.0",
        "timestamp": _utc_timestamp(),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn(function)}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": event,
        "responseContext": response_context,
        "responsePayload": response,
    }


@dataclass
class _Job:
    function: str
    event: Any
    request_id: str
    created: float
    attempts: int = 0


@dataclass(order=True)
class _Scheduled:
    due: float
    sequence: int
    job: _Job = field(compare=False)


class AsyncInvoker:
    """Lambda's asynchronous invocation: an internal queue, retries after `retry_seconds` (Lambda waits minutes),
    then OnFailure destination or dead-letter queue; OnSuccess destination. A worker thread when started,
    else `run_due` drives it."""

    def __init__(
        self,
        *,
        invoke: Invoke,
        functions: Mapping[str, FunctionSpec],
        queues: Mapping[str, QueueSpec],
        sqs: Any,
        events: Any,
        retry_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        workers: int = 1,
    ) -> None:
        """`workers` threads run invocations at once when started (each function's own limit is the runner's)."""
        self.invoke = invoke
        self.functions = functions
        self.queues = queues
        self.sqs = sqs
        self.events = events
        self.retry_seconds = retry_seconds
        self.clock = clock
        self._heap: list[_Scheduled] = []
        self._sequence = itertools.count()
        self._running = 0
        self._condition = threading.Condition()
        self._stopping = False
        self.workers = max(1, workers)
        self._threads: list[threading.Thread] = []
        self.activity = 0  # grows with every submission: lets `drain_events` notice work that came and went

    def submit(self, function: str, event: Any, *, delay: float = 0.0) -> str:
        """Queue one asynchronous invocation (Lambda's 202): the caller never waits for it; `delay` seconds
        later (a late duplicate)."""
        job = _Job(function, event, str(uuid.uuid4()), self.clock())
        self._push(job, job.created + delay)
        return job.request_id

    def _push(self, job: _Job, due: float) -> None:
        with self._condition:
            heapq.heappush(self._heap, _Scheduled(due, next(self._sequence), job))
            self.activity += 1
            self._condition.notify_all()

    @property
    def pending(self) -> int:
        """Invocations queued, waiting for a retry or running."""
        with self._condition:
            return len(self._heap) + self._running

    def seconds_to_next(self) -> float | None:
        with self._condition:
            return None if not self._heap else max(0.0, self._heap[0].due - self.clock())

    def _pop_due(self) -> _Job | None:
        with self._condition:
            if not self._heap or self._heap[0].due > self.clock():
                return None
            self._running += 1
            return heapq.heappop(self._heap).job

    def run_due(self) -> int:
        """Run, in the calling thread, every invocation that is due; returns how many ran."""
        ran = 0
        while (job := self._pop_due()) is not None:
            self._attempt(job)
            ran += 1
        return ran

    def _attempt(self, job: _Job) -> None:
        try:
            spec = self.functions[job.function]
            job.attempts += 1
            try:
                result = self.invoke(job.function, job.event, request_id=job.request_id)
            except Exception as error:  # the function's error: Lambda retries, then gives up
                self._failed(job, spec, error)
            else:
                if spec.on_success is not None:
                    record = invocation_record(
                        function=job.function,
                        request_id=job.request_id,
                        event=job.event,
                        condition="Success",
                        invoke_count=job.attempts,
                        response=result,
                        error=False,
                    )
                    self._send(spec.on_success, record, job.function, success=True)
        except Exception:  # a destination that cannot be reached must not stop the worker
            print(f"async invoke {job.function}: delivery of the outcome failed", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
        finally:
            with self._condition:
                self._running -= 1
                self._condition.notify_all()

    def _failed(self, job: _Job, spec: FunctionSpec, error: Exception) -> None:
        payload = error_payload(error, job.request_id)
        tries = f"attempt {job.attempts} of {spec.maximum_retry_attempts + 1}"
        too_old = self.clock() - job.created >= spec.maximum_event_age
        if job.attempts <= spec.maximum_retry_attempts and not too_old:
            print(
                f"async invoke {job.function} ({tries}) failed: {payload['errorType']}: {error}; "
                f"retried in {self.retry_seconds:g} s",
                file=sys.stderr,
            )
            self._push(job, self.clock() + self.retry_seconds)
            return
        print(f"async invoke {job.function} ({tries}) failed: {payload['errorType']}: {error}", file=sys.stderr)
        traceback.print_exception(error, file=sys.stderr)
        condition = "EventAgeExceeded" if too_old else "RetriesExhausted"
        if spec.on_failure is not None:
            record = invocation_record(
                function=job.function,
                request_id=job.request_id,
                event=job.event,
                condition=condition,
                invoke_count=job.attempts,
                response=payload,
                error=True,
            )
            self._send(spec.on_failure, record, job.function, success=False)
        elif spec.dead_letter_queue is not None:
            message = str(error) or payload["errorType"]
            self.sqs.send_message(
                QueueUrl=self.queues[spec.dead_letter_queue].url,
                MessageBody=_dumps(job.event),
                MessageAttributes={
                    "RequestID": {"DataType": "String", "StringValue": job.request_id},
                    "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                    "ErrorMessage": {"DataType": "String", "StringValue": message[:1024]},
                },
            )
        else:
            print(f"async invoke {job.function}: event discarded (no OnFailure, no DeadLetterQueue)", file=sys.stderr)

    def _send(self, destination: AsyncDestination, record: dict[str, Any], function: str, *, success: bool) -> None:
        if destination.kind == "SQS":
            self.sqs.send_message(QueueUrl=self.queues[destination.target].url, MessageBody=_dumps(record))
        elif destination.kind == "Lambda":
            self.submit(destination.target, record)
        else:
            self.events.put_events(
                Entries=[
                    {
                        "Source": "lambda",
                        "DetailType": f"Lambda Function Invocation Result - {'Success' if success else 'Failure'}",
                        "Detail": _dumps(record),
                        "EventBusName": destination.target,
                        "Resources": [destination.arn, f"{function_arn(function)}:$LATEST"],
                    }
                ]
            )

    # -------------------------------------------------------------------------------------------- thread

    def start(self) -> AsyncInvoker:
        self._threads = [
            threading.Thread(target=self._run, name=f"hub-local-async-invoke-{index}", daemon=True)
            for index in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()

    def join(self, timeout: float | None = None) -> None:
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        if self._heap:
            print(f"async invoke: {len(self._heap)} invocation(s) dropped at stop", file=sys.stderr)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopping and (not self._heap or self._heap[0].due > self.clock()):
                    wait = None if not self._heap else max(0.0, self._heap[0].due - self.clock())
                    self._condition.wait(wait)
                if self._stopping:
                    return
            self.run_due()


# ------------------------------------------------------------------------------------------------- bus router

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


# ---------------------------------------------------------------------------------------------------- schedules


def next_fire_time(expression: ScheduleExpression, after: datetime.datetime) -> datetime.datetime | None:
    """The first time strictly after `after` (aware) at which the expression fires; None if it never does.

    rate(): `after` plus the period (the timer counts periods from its start, as a new rule does).
    """
    if expression.kind == "rate":
        assert expression.period is not None
        return after + expression.period
    if expression.kind == "at":
        assert expression.at is not None
        return expression.at.astimezone(datetime.UTC) if expression.at > after else None
    return _next_cron_time(expression, after)


def _next_cron_time(expression: ScheduleExpression, after: datetime.datetime) -> datetime.datetime | None:
    if not expression.timer_supported or expression.cron is None:
        return None
    minutes, hours, days, months, weekdays, years = expression.cron
    zone = zoneinfo.ZoneInfo(expression.timezone)
    # Naive wall-clock time of `zone`, one minute at a time from the minute after `after`.
    moment = after.astimezone(zone).replace(tzinfo=None, second=0, microsecond=0) + datetime.timedelta(minutes=1)
    last_year = max(years) if years else 2199
    one_day = datetime.timedelta(days=1)
    while moment.year <= last_year:
        if years is not None and moment.year not in years:
            moment = datetime.datetime(moment.year + 1, 1, 1)
        elif months is not None and moment.month not in months:
            year, month = divmod(moment.month, 12)
            moment = datetime.datetime(moment.year + year, month + 1, 1)
        elif not _day_matches(moment, days, weekdays):
            moment = datetime.datetime(moment.year, moment.month, moment.day) + one_day
        elif hours is not None and moment.hour not in hours:
            moment = moment.replace(minute=0) + datetime.timedelta(hours=1)
        elif minutes is not None and moment.minute not in minutes:
            moment += datetime.timedelta(minutes=1)
        else:
            return moment.replace(tzinfo=zone).astimezone(datetime.UTC)
    return None


def _day_matches(moment: datetime.datetime, days: frozenset[int] | None, weekdays: frozenset[int] | None) -> bool:
    if days is not None:
        return moment.day in days
    # cron's day-of-week runs from 1 (Sunday) to 7 (Saturday); Python's weekday() from 0 (Monday).
    return weekdays is None or (moment.weekday() + 1) % 7 + 1 in weekdays


Fire = Callable[[ScheduleSpec, datetime.datetime], None]


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class ScheduleTimer(StoppableThreads):
    """Fires the enabled schedules the timer can evaluate. Schedule time runs `time_scale` times faster than real
    time (600: a rate(1 minute) schedule fires every 0.1 s); `clock` gives the starting time."""

    def __init__(
        self,
        schedules: Sequence[ScheduleSpec],
        fire: Fire,
        *,
        time_scale: float = 1.0,
        clock: Callable[[], datetime.datetime] = _utc_now,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        super().__init__()
        self.schedules = [s for s in schedules if s.enabled and s.expression.timer_supported]
        self.fire = fire
        self.time_scale = time_scale
        self.clock = clock
        self._origin = clock()
        self._origin_monotonic = time.monotonic()
        self.fired = 0

    def now(self) -> datetime.datetime:
        """Schedule time: the clock's start plus real time elapsed, scaled."""
        elapsed = (time.monotonic() - self._origin_monotonic) * self.time_scale
        return self._origin + datetime.timedelta(seconds=elapsed)

    def start(self) -> ScheduleTimer:
        self._origin = self.clock()
        self._origin_monotonic = time.monotonic()
        self._start_threads(self._run, ["hub-local-schedules"])
        return self

    def _run(self) -> None:
        due: dict[int, tuple[ScheduleSpec, datetime.datetime]] = {}
        for index, schedule in enumerate(self.schedules):
            first = next_fire_time(schedule.expression, self._origin)
            if first is not None:
                due[index] = (schedule, first)
        while due and not self._stopping.is_set():
            index, (schedule, when) = min(due.items(), key=lambda item: item[1][1])
            wait = (when - self.now()).total_seconds() / self.time_scale
            if wait > 0:
                self._stopping.wait(min(wait, 1.0))
                continue
            try:
                self.fire(schedule, when)
                self.fired += 1
            except Exception:  # one failing schedule does not stop the others
                print(f"schedule {schedule.name}: firing failed", file=sys.stderr)
                traceback.print_exc(file=sys.stderr)
            following = next_fire_time(schedule.expression, when)
            if following is not None and following <= self.now():
                following = next_fire_time(schedule.expression, self.now())  # no burst to catch up
            if following is None:
                del due[index]
            else:
                due[index] = (schedule, following)
