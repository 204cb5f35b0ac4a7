"""What the local runner serves, as plain dataclasses: functions and their events, tables, queues, rules, schedules."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

from hub_local.cfn import ACCOUNT_ID, REGION
from hub_local.cron import ScheduleExpression

# The API id SAM gives an HttpApi event that names no ApiId.
IMPLICIT_HTTP_API: Final = "ServerlessHttpApi"
# The events served besides HttpApi and SQS (which have their own lists).
_SERVED_EVENTS: Final = frozenset({"EventBridgeRule", "Schedule", "ScheduleV2"})


@dataclass(frozen=True)
class HttpRoute:
    """One HttpApi event of a function: `method` is upper case (ANY included), `path` None is `$default`."""

    function: str
    event_name: str
    method: str
    path: str | None
    api_id: str
    # The route's `Auth.Authorizer` (e.g. "AWS_IAM"); None when the route is open.
    authorizer: str | None = None

    @property
    def route_key(self) -> str:
        return "$default" if self.path is None else f"{self.method} {self.path}"


@dataclass(frozen=True)
class SqsSource:
    """One SQS event of a function."""

    event_name: str
    queue: str
    batch_size: int = 10
    function_response_types: tuple[str, ...] = ()
    enabled: bool = True
    # ScalingConfig.MaximumConcurrency: how many batches of this source may run at once (None: not capped).
    maximum_concurrency: int | None = None

    @property
    def reports_batch_item_failures(self) -> bool:
        return "ReportBatchItemFailures" in self.function_response_types


@dataclass(frozen=True)
class AsyncDestination:
    """Where Lambda sends the record of an asynchronous invocation (EventInvokeConfig) or a rule's failed event.

    `kind` is read from the ARN's service; `target` is the queue's or function's logical id, or the bus's name.
    """

    kind: Literal["SQS", "Lambda", "EventBridge"]
    arn: str
    target: str


@dataclass(frozen=True)
class RuleTarget:
    """One target of an EventBridge rule or schedule: a function of the template (invoked asynchronously, as
    EventBridge invokes Lambda) or a queue of the template (SendMessage). Exactly one of `function`, `queue` is set.
    `input`, `input_path` and `input_transformer` shape what is delivered, as on AWS."""

    target_id: str
    arn: str
    function: str | None = None
    queue: str | None = None
    input: str | None = None
    input_path: str | None = None
    input_transformer: dict[str, Any] | None = None
    message_group_id: str | None = None
    # The target's DeadLetterConfig: EventBridge's (not Lambda's) DLQ, for events it could not deliver at all.
    dead_letter_queue: str | None = None
    retry_policy: dict[str, int] = field(default_factory=dict)

    @property
    def describe(self) -> str:
        return f"function {self.function}" if self.function else f"queue {self.queue}"


@dataclass
class EventRuleSpec:
    """An EventBridge rule with an event pattern: an AWS::Events::Rule, or the rule SAM generates for a function's
    EventBridgeRule event (then `function` and `event_name` name that event and `logical_id` is SAM's
    "<Function><Event>")."""

    logical_id: str
    name: str
    bus: str
    pattern: dict[str, Any]
    targets: list[RuleTarget]
    enabled: bool = True
    description: str | None = None
    function: str | None = None
    event_name: str | None = None

    @property
    def arn(self) -> str:
        bus = "" if self.bus == "default" else f"{self.bus}/"
        return f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{bus}{self.name}"

    @property
    def functions(self) -> list[str]:
        return [target.function for target in self.targets if target.function]

    @property
    def queues(self) -> list[str]:
        return [target.queue for target in self.targets if target.queue]


@dataclass
class ScheduleSpec:
    """A scheduled trigger: a SAM Schedule (an EventBridge scheduled rule) or ScheduleV2 (EventBridge Scheduler)
    event of a function, or an AWS::Events::Rule with a ScheduleExpression (one spec per target)."""

    logical_id: str
    name: str
    kind: Literal["Schedule", "ScheduleV2"]
    expression: ScheduleExpression
    target: RuleTarget
    enabled: bool = True
    function: str | None = None
    event_name: str | None = None
    group: str = "default"

    @property
    def arn(self) -> str:
        if self.kind == "ScheduleV2":
            return f"arn:aws:scheduler:{REGION}:{ACCOUNT_ID}:schedule/{self.group}/{self.name}"
        return f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{self.name}"

    @property
    def source(self) -> str:
        """The `source` of the event it sends when it has no Input."""
        return "aws.scheduler" if self.kind == "ScheduleV2" else "aws.events"


@dataclass
class FunctionSpec:
    """An AWS::Serverless::Function as the local runner serves it."""

    logical_id: str
    handler: str | None
    environment: dict[str, str]
    timeout: int
    memory_size: int
    http_routes: list[HttpRoute] = field(default_factory=list)
    sqs_sources: list[SqsSource] = field(default_factory=list)
    # Every event that is neither HttpApi nor SQS, unresolved, as declared (EventBridgeRule and Schedule events
    # included: they are also read into `event_rules` and `schedules`); `unserved_events` lists what is not served.
    other_events: dict[str, dict[str, Any]] = field(default_factory=dict)
    code_dirs: list[Path] = field(default_factory=list)
    event_rules: list[EventRuleSpec] = field(default_factory=list)
    schedules: list[ScheduleSpec] = field(default_factory=list)
    # Asynchronous invocation (EventInvokeConfig, or an AWS::Lambda::EventInvokeConfig resource): Lambda's defaults.
    maximum_retry_attempts: int = 2
    maximum_event_age: int = 21600
    on_failure: AsyncDestination | None = None
    on_success: AsyncDestination | None = None
    # DeadLetterQueue (Type SQS): logical id of the queue that gets the events of failed asynchronous invocations.
    dead_letter_queue: str | None = None
    # ReservedConcurrentExecutions: at most this many invocations at once (None: the runner's default).
    reserved_concurrency: int | None = None

    @property
    def unserved_events(self) -> dict[str, dict[str, Any]]:
        """The events the local runner does not serve (S3, SNS, DynamoDB streams...)."""
        return {name: event for name, event in self.other_events.items() if event.get("Type") not in _SERVED_EVENTS}


@dataclass
class TableSpec:
    """A DynamoDB table (AWS::DynamoDB::Table or AWS::Serverless::SimpleTable)."""

    logical_id: str
    name: str
    key_schema: list[dict[str, str]]
    attribute_definitions: list[dict[str, str]]
    billing_mode: str = "PAY_PER_REQUEST"
    provisioned_throughput: dict[str, int] | None = None
    global_secondary_indexes: list[dict[str, Any]] = field(default_factory=list)
    local_secondary_indexes: list[dict[str, Any]] = field(default_factory=list)
    ttl_attribute: str | None = None
    stream_specification: dict[str, Any] | None = None


@dataclass
class QueueSpec:
    """An SQS queue; `attributes` are ready for CreateQueue (RedrivePolicy already points at the local DLQ)."""

    logical_id: str
    name: str
    url: str
    arn: str
    attributes: dict[str, str] = field(default_factory=dict)
    dead_letter_queue: str | None = None
    max_receive_count: int | None = None

    @property
    def visibility_timeout(self) -> int:
        return int(self.attributes.get("VisibilityTimeout", "30"))

    @property
    def fifo(self) -> bool:
        return self.attributes.get("FifoQueue") == "true"


@dataclass
class BusSpec:
    """An EventBridge bus."""

    logical_id: str
    name: str
    arn: str


@dataclass(frozen=True)
class CorsConfig:
    """An HttpApi CorsConfiguration."""

    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False


@dataclass
class HttpApiSpec:
    """An HttpApi (explicit, or SAM's implicit ServerlessHttpApi)."""

    logical_id: str
    cors: CorsConfig | None = None
