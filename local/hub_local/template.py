"""Reads a SAM template into plain dataclasses, resolving CloudFormation intrinsics to local physical values."""

from __future__ import annotations

import base64
import dataclasses
import datetime
import json
import re
import zoneinfo
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal

import yaml

from hub_local.language_extensions import expand_language_extensions

REGION: Final = "eu-west-1"
ACCOUNT_ID: Final = "123456789012"
URL_SUFFIX: Final = "amazonaws.com"
DEFAULT_STACK_NAME: Final = "hub-local"
# Only used when the template is read without a running moto server (e.g. to validate a CLI argument).
DEFAULT_ENDPOINT_URL: Final = "http://127.0.0.1:5000"
# Local runs get their own stage so that SSM paths and bus names never look like a deployed stage's.
LOCAL_PARAMETER_DEFAULTS: Final[Mapping[str, str]] = {"Stage": "local"}
# Parameters without a Default (a value only the partner can give, so a deploy must name it) get these values
# locally, after an override: the local run points the functions at its sandboxes, which expect these very ids.
LOCAL_REQUIRED_VALUES: Final[Mapping[str, str]] = {
    "AppsMilesBaseUrl": "https://appsmiles.invalid/api",
    "AppsMilesAppId": "local-app",
    "AppsMilesPartnerId": "local-partner",
}
# The API id SAM gives an HttpApi event that names no ApiId.
IMPLICIT_HTTP_API: Final = "ServerlessHttpApi"
LOCAL_API_ID: Final = "local"

_SAM_FUNCTION_DEFAULTS: Final[Mapping[str, int]] = {"Timeout": 3, "MemorySize": 128}
_LIST_PARAMETER_TYPES: Final = ("CommaDelimitedList", "List<")
_SQS_ATTRIBUTES: Final = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
    "SqsManagedSseEnabled",
)


class TemplateError(ValueError):
    """The template (or a parameter override) cannot be served locally as written."""


class _NoValue:
    """AWS::NoValue: the property it stands for is removed, not set to null."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE: Final = _NoValue()


# ----------------------------------------------------------------------------------------------- YAML loading


class CfnLoader(yaml.SafeLoader):  # type: ignore[misc]
    """SafeLoader that turns CloudFormation short tags into their long JSON form."""


def _construct_node(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_mapping(node, deep=True)


def _construct_tag(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    value = _construct_node(loader, node)
    if tag_suffix in ("Ref", "Condition"):
        return {tag_suffix: value}
    if tag_suffix == "GetAtt" and isinstance(value, str):
        # The short "Res.Attr" form splits on the first dot only: attribute names may contain dots.
        value = value.split(".", 1)
    return {f"Fn::{tag_suffix}": value}


CfnLoader.add_multi_constructor("!", _construct_tag)


def load_yaml(path: str | Path, *, expand: bool = True) -> dict[str, Any]:
    """Parse a template file (short tags included) into plain dicts and lists.

    With `expand`, AWS::LanguageExtensions' Fn::ForEach loops are unrolled (hub_local.language_extensions): what is
    read is what a deploy creates, which every reader here wants; `expand=False` gives the template as written.
    """
    with Path(path).open(encoding="utf-8") as stream:
        document = yaml.load(stream, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader
    if not isinstance(document, dict):
        raise TemplateError(f"{path}: not a CloudFormation template (top level is not a mapping)")
    if not expand:
        return document
    try:
        return expand_language_extensions(document)
    except ValueError as error:
        raise TemplateError(f"{path}: {error}") from None


# ------------------------------------------------------------------------------------------------ intrinsics

_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class Resolver:
    """Resolves intrinsic functions against parameter values and local physical values of resources."""

    def __init__(
        self,
        *,
        parameters: Mapping[str, Any],
        physical: Mapping[str, Mapping[str, Any]],
        conditions: Mapping[str, Any] | None = None,
        mappings: Mapping[str, Any] | None = None,
        region: str = REGION,
        account_id: str = ACCOUNT_ID,
        stack_name: str = DEFAULT_STACK_NAME,
    ) -> None:
        self.parameters = parameters
        self.physical = physical
        self.conditions = conditions or {}
        self.mappings = mappings or {}
        self.pseudo: dict[str, Any] = {
            "AWS::Region": region,
            "AWS::AccountId": account_id,
            "AWS::Partition": "aws",
            "AWS::URLSuffix": URL_SUFFIX,
            "AWS::StackName": stack_name,
            "AWS::StackId": f"arn:aws:cloudformation:{region}:{account_id}:stack/{stack_name}/local",
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
        }
        self._condition_cache: dict[str, bool] = {}
        self._functions: dict[str, Callable[[Any], Any]] = {
            "Ref": self._ref,
            "Condition": self.condition,
            "Fn::Sub": self._sub,
            "Fn::GetAtt": self._get_att,
            "Fn::Join": self._join,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::If": self._if,
            "Fn::Equals": self._equals,
            "Fn::Not": self._not,
            "Fn::And": lambda args: all(self._truth(arg) for arg in args),
            "Fn::Or": lambda args: any(self._truth(arg) for arg in args),
            "Fn::FindInMap": self._find_in_map,
            "Fn::Base64": lambda arg: base64.b64encode(str(self.resolve(arg)).encode()).decode(),
            "Fn::GetAZs": lambda _arg: [f"{self.pseudo['AWS::Region']}{zone}" for zone in "abc"],
            "Fn::ToJsonString": lambda arg: json.dumps(self.resolve(arg), separators=(",", ":")),
            "Fn::Length": lambda arg: len(self.resolve(arg)),
        }

    def resolve(self, value: Any) -> Any:
        """Resolve every intrinsic in `value`, recursively; AWS::NoValue entries are dropped."""
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, argument),) = value.items()
                # A one-key {"Condition": {...}} is an ordinary property (IAM statements), not a reference.
                if key in self._functions and (key != "Condition" or isinstance(argument, str)):
                    return self._functions[key](argument)
                if key.startswith("Fn::"):
                    raise TemplateError(f"{key} cannot be resolved locally")
            resolved = {key: self.resolve(item) for key, item in value.items()}
            return {key: item for key, item in resolved.items() if item is not NO_VALUE}
        if isinstance(value, list):
            return [item for item in (self.resolve(item) for item in value) if item is not NO_VALUE]
        return value

    def condition(self, name: str) -> bool:
        """The value of a named condition of the template's Conditions section."""
        if name not in self._condition_cache:
            if name not in self.conditions:
                raise TemplateError(f"unknown condition {name!r}")
            self._condition_cache[name] = self._truth(self.conditions[name])
        return self._condition_cache[name]

    def _truth(self, expression: Any) -> bool:
        value = self.resolve(expression)
        if isinstance(value, str):
            return value.lower() == "true"
        return bool(value)

    def _ref(self, name: Any) -> Any:
        if not isinstance(name, str):
            raise TemplateError(f"Ref takes a name, not {name!r}")
        if name in self.parameters:
            return self.parameters[name]
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.physical:
            return self.physical[name]["Ref"]
        raise TemplateError(f"Ref to unknown parameter or resource {name!r}")

    def _get_att(self, argument: Any) -> Any:
        logical_id, attribute = (self.resolve(part) for part in argument)
        try:
            return self.physical[logical_id][attribute]
        except KeyError:
            raise TemplateError(f"Fn::GetAtt {logical_id}.{attribute} has no local value") from None

    def _sub(self, argument: Any) -> str:
        if isinstance(argument, list):
            text, variables = argument[0], self.resolve(argument[1])
        else:
            text, variables = argument, {}

        def substitute(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                value = variables[name]
            elif "." in name and name not in self.parameters and name not in self.pseudo:
                value = self._get_att(name.split(".", 1))
            else:
                value = self._ref(name)
            return _as_text(value)

        return _SUB_VARIABLE.sub(substitute, text)

    def _join(self, argument: Any) -> str:
        delimiter, items = argument
        return str(delimiter).join(_as_text(item) for item in self.resolve(items))

    def _select(self, argument: Any) -> Any:
        index, items = argument
        return self.resolve(items)[int(self.resolve(index))]

    def _split(self, argument: Any) -> list[str]:
        delimiter, source = argument
        return str(self.resolve(source)).split(str(delimiter))

    def _if(self, argument: Any) -> Any:
        name, when_true, when_false = argument
        return self.resolve(when_true if self.condition(name) else when_false)

    def _equals(self, argument: Any) -> bool:
        left, right = (_as_text(self.resolve(item)) for item in argument)
        return left == right

    def _not(self, argument: Any) -> bool:
        return not self._truth(argument[0])

    def _find_in_map(self, argument: Any) -> Any:
        map_name, top_key, second_key = (self.resolve(part) for part in argument[:3])
        try:
            return self.mappings[map_name][top_key][second_key]
        except KeyError:
            raise TemplateError(f"Fn::FindInMap {map_name}/{top_key}/{second_key} is not in Mappings") from None


def _as_text(value: Any) -> str:
    """CloudFormation's string form of a resolved value (YAML booleans and numbers included)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_as_text(item) for item in value)
    return str(value)


# --------------------------------------------------------------------------------------------- dataclasses


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


CronField = frozenset[int] | None


@dataclass(frozen=True)
class ScheduleExpression:
    """A parsed `rate(...)`, `cron(...)` or `at(...)` expression, evaluated in `timezone`.

    `cron` holds the allowed values of minutes, hours, day-of-month, month, day-of-week (1 = Sunday) and year;
    None stands for `?`. `timer_supported` is False for the cron features the local timer does not evaluate
    (L, W, #): such a schedule is still listed and runnable on demand.
    """

    text: str
    kind: Literal["rate", "cron", "at"]
    period: datetime.timedelta | None = None
    cron: tuple[CronField, ...] | None = None
    at: datetime.datetime | None = None
    timezone: str = "UTC"
    timer_supported: bool = True


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


@dataclass
class LocalTemplate:
    """Everything the local runner serves, read from one template."""

    path: Path
    parameters: dict[str, Any]
    resolver: Resolver
    functions: dict[str, FunctionSpec]
    tables: dict[str, TableSpec]
    queues: dict[str, QueueSpec]
    buses: dict[str, BusSpec]
    http_apis: dict[str, HttpApiSpec]
    resources: dict[str, dict[str, Any]]
    event_rules: list[EventRuleSpec] = field(default_factory=list)
    schedules: list[ScheduleSpec] = field(default_factory=list)
    # What the template declares that is valid on AWS but not served locally: printed when a stack starts.
    warnings: list[str] = field(default_factory=list)

    @property
    def stage(self) -> str:
        return str(self.parameters.get("Stage", "local"))

    @property
    def http_routes(self) -> list[HttpRoute]:
        return [route for function in self.functions.values() for route in function.http_routes]

    def physical(self, logical_id: str) -> Any:
        """The local value of `Ref logical_id` (table name, queue URL, bus name...)."""
        return self.resolver.physical[logical_id]["Ref"]


# ------------------------------------------------------------------------------------------------- loading


def load_template(
    path: str | Path = "template.yaml",
    *,
    parameter_overrides: Mapping[str, str] | None = None,
    endpoint_url: str = DEFAULT_ENDPOINT_URL,
    local_defaults: Mapping[str, str] | None = None,
    stack_name: str = DEFAULT_STACK_NAME,
) -> LocalTemplate:
    """Read `path` and resolve what the local runner needs; queue URLs are built on `endpoint_url` (moto)."""
    path = Path(path)
    document = load_yaml(path)
    resources: dict[str, dict[str, Any]] = document.get("Resources") or {}
    parameters = _parameter_values(
        document.get("Parameters") or {},
        LOCAL_PARAMETER_DEFAULTS if local_defaults is None else local_defaults,
        parameter_overrides or {},
    )
    physical: dict[str, dict[str, Any]] = {}
    resolver = Resolver(
        parameters=parameters,
        physical=physical,
        conditions=document.get("Conditions"),
        mappings=document.get("Mappings"),
        stack_name=stack_name,
    )
    # Resources whose condition is false do not exist, exactly as in a deployed stack.
    resources = {
        logical_id: resource
        for logical_id, resource in resources.items()
        if "Condition" not in resource or resolver.condition(resource["Condition"])
    }
    _fill_physical(physical, resources, resolver, endpoint_url)

    globals_ = document.get("Globals") or {}
    queues = {
        logical_id: _queue_spec(logical_id, resource, resolver)
        for logical_id, resource in _of_type(resources, "AWS::SQS::Queue")
    }
    template = LocalTemplate(
        path=path,
        parameters=parameters,
        resolver=resolver,
        functions={},
        tables={
            logical_id: _table_spec(logical_id, resource, resolver)
            for logical_id, resource in _of_type(resources, "AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable")
        },
        queues=queues,
        buses={
            logical_id: BusSpec(logical_id, physical[logical_id]["Name"], physical[logical_id]["Arn"])
            for logical_id, _resource in _of_type(resources, "AWS::Events::EventBus")
        },
        http_apis={
            logical_id: HttpApiSpec(logical_id, _cors(_merged_api_properties(resource, globals_), resolver))
            for logical_id, resource in _of_type(resources, "AWS::Serverless::HttpApi")
        },
        resources=resources,
    )
    for logical_id, resource in _of_type(resources, "AWS::Serverless::Function"):
        template.functions[logical_id] = _function_spec(logical_id, resource, globals_, template)
    for logical_id, resource in _of_type(resources, "AWS::Lambda::EventInvokeConfig"):
        _event_invoke_config_resource(logical_id, resource, template)
    for function in template.functions.values():
        template.event_rules.extend(function.event_rules)
        template.schedules.extend(function.schedules)
    for logical_id, resource in _of_type(resources, "AWS::Events::Rule"):
        _events_rule(logical_id, resource, template)
    _check_duplicate_rules(template.event_rules)
    if any(route.api_id == IMPLICIT_HTTP_API for route in template.http_routes):
        template.http_apis.setdefault(
            IMPLICIT_HTTP_API, HttpApiSpec(IMPLICIT_HTTP_API, _cors(globals_.get("HttpApi") or {}, resolver))
        )
    _check_duplicate_routes(template.http_routes)
    return template


def _of_type(resources: Mapping[str, dict[str, Any]], *types: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in resources.items():
        if resource.get("Type") in types:
            yield logical_id, resource


def _parameter_values(
    declared: Mapping[str, dict[str, Any]], local_defaults: Mapping[str, str], overrides: Mapping[str, str]
) -> dict[str, Any]:
    unknown = sorted(set(overrides) - set(declared))
    if unknown:
        raise TemplateError(f"parameter override for undeclared parameter(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, declaration in declared.items():
        if name in overrides:
            value: Any = overrides[name]
            _check_override(name, declaration, str(value))
        elif name in local_defaults:
            value = local_defaults[name]
        elif "Default" in declaration:
            value = declaration["Default"]
        elif name in LOCAL_REQUIRED_VALUES:
            value = LOCAL_REQUIRED_VALUES[name]
        else:
            raise TemplateError(f"parameter {name} has no Default: pass it with a parameter override")
        if str(declaration.get("Type", "String")).startswith(_LIST_PARAMETER_TYPES) and not isinstance(value, list):
            # CloudFormation trims the spaces around each member of a comma-delimited list.
            value = [item.strip() for item in str(value).split(",")]
        values[name] = value
    return values


def _check_override(name: str, declaration: Mapping[str, Any], value: str) -> None:
    allowed = declaration.get("AllowedValues")
    if allowed is not None and value not in [_as_text(item) for item in allowed]:
        raise TemplateError(f"parameter {name}={value!r} is not one of {allowed}")
    pattern = declaration.get("AllowedPattern")
    if pattern is not None and re.fullmatch(pattern, value) is None:
        raise TemplateError(f"parameter {name}={value!r} does not match {pattern}")


def _fill_physical(
    physical: dict[str, dict[str, Any]],
    resources: Mapping[str, dict[str, Any]],
    resolver: Resolver,
    endpoint_url: str,
) -> None:
    """Local physical values of every resource: deterministic, so they exist before anything is created."""
    arn_prefix = f"{REGION}:{ACCOUNT_ID}"
    named_later: list[tuple[str, dict[str, Any]]] = []
    for logical_id, resource in resources.items():
        kind = resource.get("Type", "")
        properties = resource.get("Properties") or {}
        if kind in ("AWS::DynamoDB::Table", "AWS::Serverless::SimpleTable"):
            arn = f"arn:aws:dynamodb:{arn_prefix}:table/{logical_id}"
            physical[logical_id] = {"Ref": logical_id, "Arn": arn, "StreamArn": f"{arn}/stream/local"}
        elif kind == "AWS::SQS::Queue":
            # SQS requires the .fifo suffix on FIFO queue names.
            name = logical_id + (".fifo" if _as_text(properties.get("FifoQueue", False)) == "true" else "")
            url = f"{endpoint_url.rstrip('/')}/{ACCOUNT_ID}/{name}"
            arn = f"arn:aws:sqs:{arn_prefix}:{name}"
            physical[logical_id] = {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url}
        elif kind == "AWS::Serverless::Function":
            physical[logical_id] = {"Ref": logical_id, "Arn": f"arn:aws:lambda:{arn_prefix}:function:{logical_id}"}
        elif kind == "AWS::Serverless::LayerVersion":
            physical[logical_id] = {"Ref": f"arn:aws:lambda:{arn_prefix}:layer:{logical_id}:1"}
        elif kind in ("AWS::Serverless::HttpApi", "AWS::Serverless::Api"):
            physical[logical_id] = {"Ref": LOCAL_API_ID, "ApiEndpoint": f"http://127.0.0.1/{LOCAL_API_ID}"}
        elif kind in ("AWS::Events::EventBus", "AWS::Logs::LogGroup"):
            named_later.append((logical_id, resource))
        else:
            physical[logical_id] = {"Ref": logical_id, "Arn": f"arn:aws:local:{arn_prefix}:{logical_id}"}
    # Names that are themselves expressions are resolved once every other resource has its values.
    for logical_id, resource in named_later:
        properties = resource.get("Properties") or {}
        if resource["Type"] == "AWS::Events::EventBus":
            name = str(resolver.resolve(properties.get("Name", logical_id)))
            arn = f"arn:aws:events:{arn_prefix}:event-bus/{name}"
            physical[logical_id] = {"Ref": name, "Name": name, "Arn": arn}
        else:
            name = str(resolver.resolve(properties.get("LogGroupName", logical_id)))
            physical[logical_id] = {"Ref": name, "Arn": f"arn:aws:logs:{arn_prefix}:log-group:{name}:*"}


def _table_spec(logical_id: str, resource: Mapping[str, Any], resolver: Resolver) -> TableSpec:
    properties = resolver.resolve(resource.get("Properties") or {})
    name = resolver.physical[logical_id]["Ref"]
    if resource["Type"] == "AWS::Serverless::SimpleTable":
        primary_key = properties.get("PrimaryKey") or {}
        key_name = primary_key.get("Name", "id")
        key_type = {"String": "S", "Number": "N", "Binary": "B"}[primary_key.get("Type", "String")]
        return TableSpec(
            logical_id,
            name,
            key_schema=[{"AttributeName": key_name, "KeyType": "HASH"}],
            attribute_definitions=[{"AttributeName": key_name, "AttributeType": key_type}],
            provisioned_throughput=properties.get("ProvisionedThroughput"),
            billing_mode="PROVISIONED" if properties.get("ProvisionedThroughput") else "PAY_PER_REQUEST",
        )
    ttl = properties.get("TimeToLiveSpecification") or {}
    stream = properties.get("StreamSpecification")
    return TableSpec(
        logical_id,
        name,
        key_schema=properties["KeySchema"],
        attribute_definitions=properties["AttributeDefinitions"],
        billing_mode=properties.get("BillingMode", "PROVISIONED"),
        provisioned_throughput=properties.get("ProvisionedThroughput"),
        global_secondary_indexes=properties.get("GlobalSecondaryIndexes") or [],
        local_secondary_indexes=properties.get("LocalSecondaryIndexes") or [],
        ttl_attribute=ttl.get("AttributeName") if _as_text(ttl.get("Enabled", False)) == "true" else None,
        stream_specification=stream,
    )


def _queue_spec(logical_id: str, resource: Mapping[str, Any], resolver: Resolver) -> QueueSpec:
    properties = resolver.resolve(resource.get("Properties") or {})
    values = resolver.physical[logical_id]
    attributes = {key: _as_text(properties[key]) for key in _SQS_ATTRIBUTES if key in properties}
    spec = QueueSpec(logical_id, values["QueueName"], values["QueueUrl"], values["Arn"], attributes)
    redrive = properties.get("RedrivePolicy")
    if isinstance(redrive, str):
        redrive = json.loads(redrive)
    if redrive:
        target = redrive["deadLetterTargetArn"]
        spec.dead_letter_queue = next(
            (other for other, value in resolver.physical.items() if value.get("Arn") == target), None
        )
        if spec.dead_letter_queue is None:
            raise TemplateError(f"{logical_id}: dead-letter queue {target} is not declared in the template")
        spec.max_receive_count = int(redrive["maxReceiveCount"])
        attributes["RedrivePolicy"] = json.dumps(
            {"deadLetterTargetArn": target, "maxReceiveCount": spec.max_receive_count}
        )
    if properties.get("RedriveAllowPolicy"):
        allow = properties["RedriveAllowPolicy"]
        attributes["RedriveAllowPolicy"] = allow if isinstance(allow, str) else json.dumps(allow)
    return spec


def _merged_api_properties(resource: Mapping[str, Any], globals_: Mapping[str, Any]) -> dict[str, Any]:
    return (globals_.get("HttpApi") or {}) | (resource.get("Properties") or {})


def _cors(properties: Mapping[str, Any], resolver: Resolver) -> CorsConfig | None:
    cors = resolver.resolve(properties.get("CorsConfiguration"))
    if cors is None or cors is False:
        return None
    if cors is True:
        return CorsConfig(allow_origins=("*",), allow_methods=("*",), allow_headers=("*",))

    def strings(key: str) -> tuple[str, ...]:
        value = cors.get(key) or []
        return tuple(_as_text(item) for item in (value if isinstance(value, list) else [value]))

    max_age = cors.get("MaxAge")
    return CorsConfig(
        allow_origins=strings("AllowOrigins"),
        allow_methods=tuple(method.upper() for method in strings("AllowMethods")),
        allow_headers=tuple(header.lower() for header in strings("AllowHeaders")),
        expose_headers=strings("ExposeHeaders"),
        max_age=None if max_age is None else int(max_age),
        allow_credentials=_as_text(cors.get("AllowCredentials", False)) == "true",
    )


def _function_spec(
    logical_id: str, resource: Mapping[str, Any], globals_: Mapping[str, Any], template: LocalTemplate
) -> FunctionSpec:
    resolver = template.resolver
    defaults = globals_.get("Function") or {}
    properties = resource.get("Properties") or {}
    variables = ((defaults.get("Environment") or {}).get("Variables") or {}) | (
        (properties.get("Environment") or {}).get("Variables") or {}
    )
    spec = FunctionSpec(
        logical_id=logical_id,
        handler=properties.get("Handler", defaults.get("Handler")),
        environment={name: _as_text(value) for name, value in resolver.resolve(variables).items()},
        timeout=int(resolver.resolve(_function_setting("Timeout", properties, defaults))),
        memory_size=int(resolver.resolve(_function_setting("MemorySize", properties, defaults))),
        code_dirs=_code_dirs(properties, defaults, template),
        reserved_concurrency=_optional_int(resolver.resolve(_reserved_concurrency(properties, defaults))),
    )
    invoke_config = _merged_setting("EventInvokeConfig", properties, defaults)
    if invoke_config:
        _apply_event_invoke_config(spec, resolver.resolve(invoke_config), logical_id, template)
    dead_letter = _merged_setting("DeadLetterQueue", properties, defaults)
    if dead_letter:
        _apply_dead_letter_queue(spec, resolver.resolve(dead_letter), template)
    for event_name, event in (properties.get("Events") or {}).items():
        kind = event.get("Type")
        event_properties = event.get("Properties") or {}
        if kind == "HttpApi":
            spec.http_routes.append(_http_route(logical_id, event_name, event_properties))
        elif kind == "SQS":
            spec.sqs_sources.append(_sqs_source(logical_id, event_name, event_properties, template))
        else:
            spec.other_events[event_name] = event
            if kind == "EventBridgeRule":
                spec.event_rules.append(_eventbridge_rule_event(logical_id, event_name, event_properties, template))
            elif kind in ("Schedule", "ScheduleV2"):
                spec.schedules.append(_schedule_event(logical_id, event_name, kind, event_properties, template))
            else:
                template.warnings.append(f"{logical_id}.{event_name}: events of type {kind} are not served locally")
    return spec


def _merged_setting(name: str, properties: Mapping[str, Any], defaults: Mapping[str, Any]) -> Any:
    """A function property that Globals may also set: maps are merged (the function's keys win), as SAM does."""
    value = properties.get(name, defaults.get(name))
    if isinstance(value, dict) and isinstance(defaults.get(name), dict) and name in properties:
        value = defaults[name] | value
    return value


def _reserved_concurrency(properties: Mapping[str, Any], defaults: Mapping[str, Any]) -> Any:
    return properties.get("ReservedConcurrentExecutions", defaults.get("ReservedConcurrentExecutions"))


def _function_setting(name: str, properties: Mapping[str, Any], defaults: Mapping[str, Any]) -> Any:
    return properties.get(name, defaults.get(name, _SAM_FUNCTION_DEFAULTS[name]))


def _code_dirs(properties: Mapping[str, Any], defaults: Mapping[str, Any], template: LocalTemplate) -> list[Path]:
    """The function's CodeUri and its local layers' ContentUri, for the import path."""
    base = template.path.parent
    code_uri = properties.get("CodeUri", defaults.get("CodeUri"))
    uris = [code_uri] if isinstance(code_uri, str) else []
    for layer in [*(defaults.get("Layers") or []), *(properties.get("Layers") or [])]:
        layer_id = str(layer.get("Ref")) if isinstance(layer, dict) else ""
        content_uri = ((template.resources.get(layer_id) or {}).get("Properties") or {}).get("ContentUri")
        if isinstance(content_uri, str):
            uris.append(content_uri)
    return [(base / uri).resolve() for uri in uris]


def _http_route(function: str, event_name: str, properties: Mapping[str, Any]) -> HttpRoute:
    api = properties.get("ApiId")
    api_id = api["Ref"] if isinstance(api, dict) and "Ref" in api else IMPLICIT_HTTP_API
    path = properties.get("Path")
    method = str(properties.get("Method", "ANY")).upper() if path is not None else "ANY"
    authorizer = (properties.get("Auth") or {}).get("Authorizer")
    return HttpRoute(
        function,
        event_name,
        "ANY" if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" else method,
        path,
        api_id,
        authorizer=None if authorizer in (None, "NONE") else str(authorizer),
    )


def _sqs_source(function: str, event_name: str, properties: Mapping[str, Any], template: LocalTemplate) -> SqsSource:
    queue = properties.get("Queue")
    queue_id: str | None = None
    if isinstance(queue, dict) and "Fn::GetAtt" in queue:
        queue_id = queue["Fn::GetAtt"][0]
    else:
        arn = template.resolver.resolve(queue)
        queue_id = next((spec.logical_id for spec in template.queues.values() if spec.arn == arn), None)
    if queue_id not in template.queues:
        raise TemplateError(f"{function}.{event_name}: queue {queue!r} is not declared in the template")
    resolved = template.resolver.resolve(properties)
    return SqsSource(
        event_name=event_name,
        queue=queue_id,
        batch_size=int(resolved.get("BatchSize", 10)),
        function_response_types=tuple(resolved.get("FunctionResponseTypes") or ()),
        enabled=_as_text(resolved.get("Enabled", True)) == "true",
        maximum_concurrency=_optional_int((resolved.get("ScalingConfig") or {}).get("MaximumConcurrency")),
    )


def _optional_int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _check_duplicate_routes(routes: list[HttpRoute]) -> None:
    seen: dict[tuple[str, str], HttpRoute] = {}
    for route in routes:
        key = (route.api_id, route.route_key)
        if key in seen:
            raise TemplateError(
                f"route {route.route_key!r} of {route.api_id} is declared by both "
                f"{seen[key].function}.{seen[key].event_name} and {route.function}.{route.event_name}"
            )
        seen[key] = route


# ------------------------------------------------------------------------------------------ EventBridge, async

_SERVED_EVENTS: Final = frozenset({"EventBridgeRule", "Schedule", "ScheduleV2"})
_RULE_NAME_LIMIT: Final = 64


def _warn(template: LocalTemplate, message: str) -> None:
    template.warnings.append(message)


def _arn_resource(arn: str, template: LocalTemplate) -> tuple[str, str] | None:
    """("function" | "queue" | "bus", logical id or bus name) of a template resource's ARN; None otherwise."""
    base = arn
    if arn.startswith("arn:aws:lambda:"):
        base = ":".join(arn.split(":")[:7])  # an alias or version qualifier names the same function
    # Functions declared later in the template than the one being read count too.
    for logical_id, _resource in _of_type(template.resources, "AWS::Serverless::Function"):
        if template.resolver.physical[logical_id]["Arn"] == base or logical_id == arn:
            return "function", logical_id
    for queue in template.queues.values():
        if queue.arn == arn:
            return "queue", queue.logical_id
    if arn.startswith("arn:aws:events:") and ":event-bus/" in arn:
        return "bus", arn.split(":event-bus/", 1)[1]
    return None


def _async_destination(where: str, value: Any, template: LocalTemplate) -> AsyncDestination | None:
    """An OnSuccess/OnFailure destination; None (with a warning) for kinds the local runner does not serve."""
    if not isinstance(value, Mapping):
        raise TemplateError(f"{where}: expected a mapping with Type and Destination, not {value!r}")
    arn = value.get("Destination")
    if arn is None:
        _warn(template, f"{where}: no Destination (SAM would create a {value.get('Type')} resource): ignored locally")
        return None
    arn = str(arn)
    if arn.startswith(("arn:aws:sns:", "arn:aws:s3:")):
        _warn(template, f"{where}: {arn.split(':')[2].upper()} destinations are not served locally: ignored")
        return None
    found = _arn_resource(arn, template)
    if found is None:
        raise TemplateError(f"{where}: destination {arn} is not a queue, function or bus of the template")
    kind, target = found
    if kind == "bus" and target != "default" and target not in {bus.name for bus in template.buses.values()}:
        raise TemplateError(f"{where}: destination bus {target} is not declared in the template")
    kinds: dict[str, Literal["SQS", "Lambda", "EventBridge"]] = {
        "queue": "SQS",
        "function": "Lambda",
        "bus": "EventBridge",
    }
    return AsyncDestination(kinds[kind], arn, target)


def _apply_event_invoke_config(
    spec: FunctionSpec, config: Mapping[str, Any], where: str, template: LocalTemplate
) -> None:
    if not isinstance(config, Mapping):
        raise TemplateError(f"{where}: EventInvokeConfig must be a mapping")
    if "MaximumRetryAttempts" in config:
        retries = int(config["MaximumRetryAttempts"])
        if not 0 <= retries <= 2:
            raise TemplateError(f"{where}: MaximumRetryAttempts must be 0, 1 or 2, not {retries}")
        spec.maximum_retry_attempts = retries
    if "MaximumEventAgeInSeconds" in config:
        age = int(config["MaximumEventAgeInSeconds"])
        if not 60 <= age <= 21600:
            raise TemplateError(f"{where}: MaximumEventAgeInSeconds must be between 60 and 21600, not {age}")
        spec.maximum_event_age = age
    destinations = config.get("DestinationConfig") or {}
    if destinations.get("OnFailure"):
        spec.on_failure = _async_destination(f"{where} OnFailure", destinations["OnFailure"], template)
    if destinations.get("OnSuccess"):
        spec.on_success = _async_destination(f"{where} OnSuccess", destinations["OnSuccess"], template)


def _apply_dead_letter_queue(spec: FunctionSpec, config: Any, template: LocalTemplate) -> None:
    where = f"{spec.logical_id} DeadLetterQueue"
    if not isinstance(config, Mapping) or "TargetArn" not in config:
        raise TemplateError(f"{where}: expected {{Type: SQS|SNS, TargetArn: ...}}")
    if str(config.get("Type", "")).upper() == "SNS":
        _warn(template, f"{where}: SNS dead-letter queues are not served locally: ignored")
        return
    found = _arn_resource(str(config["TargetArn"]), template)
    if found is None or found[0] != "queue":
        raise TemplateError(f"{where}: {config['TargetArn']} is not a queue of the template")
    spec.dead_letter_queue = found[1]


def _event_invoke_config_resource(logical_id: str, resource: Mapping[str, Any], template: LocalTemplate) -> None:
    properties = resource.get("Properties") or {}
    name = properties.get("FunctionName")
    function_id = name.get("Ref") if isinstance(name, dict) else None
    if function_id not in template.functions:
        found = _arn_resource(str(template.resolver.resolve(name)), template)
        function_id = found[1] if found and found[0] == "function" else None
    if function_id is None:
        raise TemplateError(f"{logical_id}: FunctionName {name!r} is not a function of the template")
    _apply_event_invoke_config(
        template.functions[function_id], template.resolver.resolve(properties), logical_id, template
    )


def _truth(value: Any) -> bool:
    return _as_text(value).lower() == "true"


def _enabled(properties: Mapping[str, Any], where: str) -> bool:
    """Enabled (a boolean) or State (ENABLED, DISABLED...), as SAM and CloudFormation read them."""
    if "Enabled" in properties and "State" in properties:
        raise TemplateError(f"{where}: Enabled and State cannot both be set")
    if "Enabled" in properties:
        return _truth(properties["Enabled"])
    return str(properties.get("State", "ENABLED")).upper() != "DISABLED"


def _bus_name(value: Any, where: str, template: LocalTemplate) -> str:
    name = "default" if value is None else str(value)
    if ":event-bus/" in name:
        name = name.split(":event-bus/", 1)[1]
    if name != "default" and name not in {bus.name for bus in template.buses.values()}:
        raise TemplateError(f"{where}: event bus {name!r} is not declared in the template")
    return name


def _check_pattern(pattern: Any, where: str) -> None:
    """EventBridge's own check: every value is an object or a non-empty array ($or takes a list of objects)."""
    if not isinstance(pattern, Mapping):
        raise TemplateError(f"{where}: an event pattern must be an object, not {pattern!r}")
    for key, value in pattern.items():
        if key == "$or" and isinstance(value, list) and value:
            for branch in value:
                _check_pattern(branch, where)
        elif isinstance(value, Mapping):
            _check_pattern(value, where)
        elif not isinstance(value, list) or not value:
            raise TemplateError(f"{where}: pattern field {key!r} must be an object or a non-empty array")


def _json_text(value: Any, where: str) -> str:
    """Input is JSON text on AWS (CloudFormation rejects a mapping there)."""
    if not isinstance(value, str):
        raise TemplateError(f"{where}: Input must be a JSON string, not {type(value).__name__}")
    try:
        json.loads(value)
    except ValueError as error:
        raise TemplateError(f"{where}: Input is not valid JSON: {error}") from None
    return value


def _dead_letter_config(config: Any, where: str, template: LocalTemplate) -> str | None:
    """A rule target's (or schedule's) DeadLetterConfig: the logical id of its queue."""
    if not config:
        return None
    if isinstance(config, Mapping) and "Arn" in config:
        found = _arn_resource(str(config["Arn"]), template)
        if found is None or found[0] != "queue":
            raise TemplateError(f"{where}: DeadLetterConfig {config['Arn']} is not a queue of the template")
        return found[1]
    _warn(template, f"{where}: a DeadLetterConfig that SAM creates (Type: SQS) is not created locally")
    return None


def _input_options(properties: Mapping[str, Any], where: str) -> dict[str, Any]:
    options: dict[str, Any] = {}
    chosen = [key for key in ("Input", "InputPath", "InputTransformer") if properties.get(key) is not None]
    if len(chosen) > 1:
        raise TemplateError(f"{where}: only one of {', '.join(chosen)} may be set")
    if properties.get("Input") is not None:
        options["input"] = _json_text(properties["Input"], where)
    if properties.get("InputPath") is not None:
        path = str(properties["InputPath"])
        if not path.startswith("$"):
            raise TemplateError(f"{where}: InputPath {path!r} is not a JSONPath ($.detail...)")
        options["input_path"] = path
    if properties.get("InputTransformer") is not None:
        transformer = properties["InputTransformer"]
        if not isinstance(transformer, Mapping) or "InputTemplate" not in transformer:
            raise TemplateError(f"{where}: InputTransformer needs an InputTemplate")
        options["input_transformer"] = dict(transformer)
    return options


def _retry_policy(value: Any) -> dict[str, int]:
    return {str(key): int(item) for key, item in (value or {}).items()}


def _rule_target(target: Mapping[str, Any], where: str, template: LocalTemplate) -> RuleTarget | None:
    """One entry of an AWS::Events::Rule's Targets; None (with a warning) for services not served locally."""
    arn = str(target.get("Arn", ""))
    target_id = str(target.get("Id", ""))
    where = f"{where} target {target_id or arn}"
    found = _arn_resource(arn, template)
    if found is None:
        if arn.startswith(("arn:aws:lambda:", "arn:aws:sqs:")):
            raise TemplateError(f"{where}: {arn} is not a function or queue of the template")
        _warn(template, f"{where}: {arn} is not served locally (only functions and queues are): ignored")
        return None
    kind, logical_id = found
    if kind == "bus":
        _warn(template, f"{where}: bus-to-bus targets are not served locally: ignored")
        return None
    group = (target.get("SqsParameters") or {}).get("MessageGroupId")
    if kind == "queue" and template.queues[logical_id].fifo and not group:
        raise TemplateError(f"{where}: a FIFO queue target needs SqsParameters.MessageGroupId")
    return RuleTarget(
        target_id=target_id,
        arn=arn,
        function=logical_id if kind == "function" else None,
        queue=logical_id if kind == "queue" else None,
        message_group_id=None if group is None else str(group),
        dead_letter_queue=_dead_letter_config(target.get("DeadLetterConfig"), where, template),
        retry_policy=_retry_policy(target.get("RetryPolicy")),
        **_input_options(target, where),
    )


def _function_target(
    function: str, event_name: str, properties: Mapping[str, Any], template: LocalTemplate, suffix: str
) -> RuleTarget:
    where = f"{function}.{event_name}"
    target_id = (properties.get("Target") or {}).get("Id") or f"{function}{event_name}{suffix}"
    return RuleTarget(
        target_id=str(target_id),
        arn=template.resolver.physical[function]["Arn"],
        function=function,
        dead_letter_queue=_dead_letter_config(properties.get("DeadLetterConfig"), where, template),
        retry_policy=_retry_policy(properties.get("RetryPolicy")),
        **_input_options(properties, where),
    )


def _eventbridge_rule_event(
    function: str, event_name: str, raw: Mapping[str, Any], template: LocalTemplate
) -> EventRuleSpec:
    where = f"{function}.{event_name}"
    properties = template.resolver.resolve(raw)
    pattern = properties.get("Pattern")
    if isinstance(pattern, str):
        pattern = json.loads(pattern)
    _check_pattern(pattern, where)
    logical_id = f"{function}{event_name}"
    return EventRuleSpec(
        logical_id=logical_id,
        name=str(properties.get("RuleName") or logical_id)[:_RULE_NAME_LIMIT],
        bus=_bus_name(properties.get("EventBusName"), where, template),
        pattern=dict(pattern),
        targets=[_function_target(function, event_name, properties, template, "LambdaTarget")],
        enabled=_enabled(properties, where),
        description=properties.get("Description"),
        function=function,
        event_name=event_name,
    )


def _schedule_event(
    function: str,
    event_name: str,
    kind: Literal["Schedule", "ScheduleV2"],
    raw: Mapping[str, Any],
    template: LocalTemplate,
) -> ScheduleSpec:
    where = f"{function}.{event_name}"
    properties = template.resolver.resolve(raw)
    if kind == "Schedule":
        text = properties.get("Schedule")
        timezone = "UTC"
    else:
        text = properties.get("ScheduleExpression")
        timezone = str(properties.get("ScheduleExpressionTimezone") or "UTC")
    if not text:
        key = "Schedule" if kind == "Schedule" else "ScheduleExpression"
        raise TemplateError(f"{where}: {key} is required")
    scheduler_input = properties.pop("Input", None) if kind == "ScheduleV2" else None
    target = _function_target(function, event_name, properties, template, "LambdaTarget")
    if scheduler_input is not None:
        if not isinstance(scheduler_input, str):
            raise TemplateError(f"{where}: Input must be a JSON string, not {type(scheduler_input).__name__}")
        # Scheduler's context attributes (<aws.scheduler.scheduled-time>...) are only filled in when it fires.
        _json_text(re.sub(r"<aws\.scheduler\.[a-z-]+>", "0", str(scheduler_input)), where)
        target = dataclasses.replace(target, input=str(scheduler_input))
    logical_id = f"{function}{event_name}"
    return ScheduleSpec(
        logical_id=logical_id,
        name=str(properties.get("Name") or logical_id)[:_RULE_NAME_LIMIT],
        kind=kind,
        expression=parse_schedule_expression(str(text), where, timezone=timezone, allow_at=kind == "ScheduleV2"),
        target=target,
        enabled=_enabled(properties, where),
        function=function,
        event_name=event_name,
        group=str(properties.get("GroupName") or "default"),
    )


def _events_rule(logical_id: str, resource: Mapping[str, Any], template: LocalTemplate) -> None:
    properties = template.resolver.resolve(resource.get("Properties") or {})
    name = str(properties.get("Name") or logical_id)[:_RULE_NAME_LIMIT]
    bus = _bus_name(properties.get("EventBusName"), logical_id, template)
    targets = [
        target
        for entry in properties.get("Targets") or []
        if (target := _rule_target(entry, logical_id, template)) is not None
    ]
    pattern = properties.get("EventPattern")
    expression = properties.get("ScheduleExpression")
    if pattern is None and expression is None:
        raise TemplateError(f"{logical_id}: an AWS::Events::Rule needs an EventPattern or a ScheduleExpression")
    enabled = _enabled(properties, logical_id)
    if pattern is not None:
        if isinstance(pattern, str):
            pattern = json.loads(pattern)
        _check_pattern(pattern, logical_id)
        template.event_rules.append(
            EventRuleSpec(
                logical_id=logical_id,
                name=name,
                bus=bus,
                pattern=dict(pattern),
                targets=targets,
                enabled=enabled,
                description=properties.get("Description"),
            )
        )
    if expression is not None:
        if bus != "default":
            raise TemplateError(f"{logical_id}: a ScheduleExpression is only supported on the default bus")
        parsed = parse_schedule_expression(str(expression), logical_id)
        template.schedules.extend(
            ScheduleSpec(
                logical_id=logical_id,
                name=name,
                kind="Schedule",
                expression=parsed,
                target=target,
                enabled=enabled,
                function=target.function,
                event_name=target.target_id,
            )
            for target in targets
        )


def _check_duplicate_rules(rules: list[EventRuleSpec]) -> None:
    seen: dict[tuple[str, str], str] = {}
    for rule in rules:
        key = (rule.bus, rule.name)
        if key in seen:
            raise TemplateError(
                f"rule name {rule.name!r} on bus {rule.bus} is used by both {seen[key]} and {rule.logical_id}"
            )
        seen[key] = rule.logical_id


# ------------------------------------------------------------------------------------------ schedule expressions

_RATE: Final = re.compile(r"rate\((\d+) (minute|minutes|hour|hours|day|days)\)")
_CRON: Final = re.compile(r"cron\((.*)\)")
_AT: Final = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
_UNIT_SECONDS: Final = {"minute": 60, "hour": 3600, "day": 86400}
_MONTHS: Final = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS: Final = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# minutes, hours, day-of-month, month, day-of-week, year: (low, high, names numbered from low)
_CRON_FIELDS: Final[tuple[tuple[str, int, int, tuple[str, ...]], ...]] = (
    ("minutes", 0, 59, ()),
    ("hours", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, _MONTHS),
    ("day-of-week", 1, 7, _WEEKDAYS),
    ("year", 1970, 2199, ()),
)


def parse_schedule_expression(
    text: str, where: str, *, timezone: str = "UTC", allow_at: bool = False
) -> ScheduleExpression:
    """Parse and check `rate(...)`, `cron(...)` (and `at(...)` for EventBridge Scheduler) as AWS checks them."""
    text = text.strip()
    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise TemplateError(f"{where}: unknown ScheduleExpressionTimezone {timezone!r}") from None
    if match := _RATE.fullmatch(text):
        value, unit = int(match.group(1)), match.group(2)
        if value < 1 or (value == 1) != (not unit.endswith("s")):
            raise TemplateError(f"{where}: {text} is not valid (rate(1 minute), rate(5 minutes)...)")
        period = datetime.timedelta(seconds=value * _UNIT_SECONDS[unit.rstrip("s")])
        return ScheduleExpression(text, "rate", period=period, timezone=timezone)
    if match := _CRON.fullmatch(text):
        return _parse_cron(text, match.group(1), where, timezone)
    if allow_at and (match := _AT.fullmatch(text)):
        try:
            moment = datetime.datetime.fromisoformat(match.group(1))
        except ValueError:
            raise TemplateError(f"{where}: {text} is not a valid date") from None
        return ScheduleExpression(text, "at", at=moment.replace(tzinfo=zoneinfo.ZoneInfo(timezone)), timezone=timezone)
    raise TemplateError(f"{where}: {text!r} is not a rate(...) or cron(...) expression")


def _parse_cron(text: str, body: str, where: str, timezone: str) -> ScheduleExpression:
    fields = body.split()
    if len(fields) != 6:
        raise TemplateError(f"{where}: {text} must have 6 fields (minutes hours day-of-month month day-of-week year)")
    if (fields[2] == "?") == (fields[4] == "?"):
        raise TemplateError(f"{where}: {text}: exactly one of day-of-month and day-of-week must be '?'")
    values: list[CronField] = []
    timer_supported = True
    for raw, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        if raw == "?":
            values.append(None)
            continue
        if name in ("day-of-month", "day-of-week") and re.search(r"[LW#]", raw.upper()):
            if not re.fullmatch(r"[0-9A-Z,#-]+", raw.upper()):
                raise TemplateError(f"{where}: {text}: bad {name} field {raw!r}")
            timer_supported = False  # last day, nearest weekday, nth weekday: on demand only
            values.append(None)
            continue
        try:
            values.append(_cron_values(raw, low, high, names))
        except ValueError as error:
            raise TemplateError(f"{where}: {text}: bad {name} field {raw!r} ({error})") from None
    return ScheduleExpression(text, "cron", cron=tuple(values), timezone=timezone, timer_supported=timer_supported)


def _cron_values(field_text: str, low: int, high: int, names: tuple[str, ...]) -> frozenset[int]:
    def number(token: str) -> int:
        if token.upper() in names:
            return names.index(token.upper()) + low
        return int(token)

    values: set[int] = set()
    for part in field_text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError("the step must be positive")
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            start, end = number(first), number(last)
        else:
            start = number(body)
            end = high if step_text else start
        if not low <= start <= end <= high:
            raise ValueError(f"values run from {low} to {high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)
