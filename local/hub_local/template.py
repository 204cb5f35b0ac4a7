"""Reads a SAM template into plain dataclasses, resolving CloudFormation intrinsics to local physical values."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import yaml

REGION: Final = "eu-west-1"
ACCOUNT_ID: Final = "123456789012"
URL_SUFFIX: Final = "amazonaws.com"
DEFAULT_STACK_NAME: Final = "hub-local"
# Only used when the template is read without a running moto server (e.g. to validate a CLI argument).
DEFAULT_ENDPOINT_URL: Final = "http://127.0.0.1:5000"
# Local runs get their own stage so that SSM paths and bus names never look like a deployed stage's.
LOCAL_PARAMETER_DEFAULTS: Final[Mapping[str, str]] = {"Stage": "local"}
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


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a template file (short tags included) into plain dicts and lists."""
    with Path(path).open(encoding="utf-8") as stream:
        document = yaml.load(stream, Loader=CfnLoader)  # noqa: S506 - CfnLoader is a SafeLoader
    if not isinstance(document, dict):
        raise TemplateError(f"{path}: not a CloudFormation template (top level is not a mapping)")
    return document


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

    @property
    def reports_batch_item_failures(self) -> bool:
        return "ReportBatchItemFailures" in self.function_response_types


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
    # EventBridgeRule, Schedule and any other event, unresolved, for whatever serves them later.
    other_events: dict[str, dict[str, Any]] = field(default_factory=dict)
    code_dirs: list[Path] = field(default_factory=list)


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
    )
    for event_name, event in (properties.get("Events") or {}).items():
        kind = event.get("Type")
        event_properties = event.get("Properties") or {}
        if kind == "HttpApi":
            spec.http_routes.append(_http_route(logical_id, event_name, event_properties))
        elif kind == "SQS":
            spec.sqs_sources.append(_sqs_source(logical_id, event_name, event_properties, template))
        else:
            spec.other_events[event_name] = event
    return spec


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
    return HttpRoute(
        function, event_name, "ANY" if method == "X-AMAZON-APIGATEWAY-ANY-METHOD" else method, path, api_id
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
    )


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
