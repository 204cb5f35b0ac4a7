"""Reads a SAM template into a LocalTemplate: parameters, local physical values, tables, queues, buses, HTTP APIs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from hub_local.cfn import ACCOUNT_ID, DEFAULT_STACK_NAME, REGION, Resolver, TemplateError, as_text, load_yaml
from hub_local.function_specs import event_invoke_config_resource, function_spec
from hub_local.rule_specs import events_rule
from hub_local.specs import (
    IMPLICIT_HTTP_API,
    BusSpec,
    CorsConfig,
    EventRuleSpec,
    FunctionSpec,
    HttpApiSpec,
    HttpRoute,
    QueueSpec,
    ScheduleSpec,
    TableSpec,
)

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
LOCAL_API_ID: Final = "local"

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

    def arn_resource(self, arn: str) -> tuple[str, str] | None:
        """("function" | "queue" | "bus", logical id or bus name) of a template resource's ARN; None otherwise."""
        base = arn
        if arn.startswith("arn:aws:lambda:"):
            base = ":".join(arn.split(":")[:7])  # an alias or version qualifier names the same function
        # Functions declared later in the template than the one being read count too.
        for logical_id, _resource in _of_type(self.resources, "AWS::Serverless::Function"):
            if self.resolver.physical[logical_id]["Arn"] == base or logical_id == arn:
                return "function", logical_id
        for queue in self.queues.values():
            if queue.arn == arn:
                return "queue", queue.logical_id
        if arn.startswith("arn:aws:events:") and ":event-bus/" in arn:
            return "bus", arn.split(":event-bus/", 1)[1]
        return None


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
            logical_id: HttpApiSpec(
                logical_id, _cors((globals_.get("HttpApi") or {}) | (resource.get("Properties") or {}), resolver)
            )
            for logical_id, resource in _of_type(resources, "AWS::Serverless::HttpApi")
        },
        resources=resources,
    )
    for logical_id, resource in _of_type(resources, "AWS::Serverless::Function"):
        template.functions[logical_id] = function_spec(logical_id, resource, globals_, template)
    for logical_id, resource in _of_type(resources, "AWS::Lambda::EventInvokeConfig"):
        event_invoke_config_resource(logical_id, resource, template)
    for function in template.functions.values():
        template.event_rules.extend(function.event_rules)
        template.schedules.extend(function.schedules)
    for logical_id, resource in _of_type(resources, "AWS::Events::Rule"):
        events_rule(logical_id, resource, template)
    _check_unique(
        template.event_rules,
        lambda rule: (rule.bus, rule.name),
        lambda first, rule: (
            f"rule name {rule.name!r} on bus {rule.bus} is used by both {first.logical_id} and {rule.logical_id}"
        ),
    )
    if any(route.api_id == IMPLICIT_HTTP_API for route in template.http_routes):
        template.http_apis.setdefault(
            IMPLICIT_HTTP_API, HttpApiSpec(IMPLICIT_HTTP_API, _cors(globals_.get("HttpApi") or {}, resolver))
        )
    _check_unique(
        template.http_routes,
        lambda route: (route.api_id, route.route_key),
        lambda first, route: (
            f"route {route.route_key!r} of {route.api_id} is declared by both "
            f"{first.function}.{first.event_name} and {route.function}.{route.event_name}"
        ),
    )
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
    if allowed is not None and value not in [as_text(item) for item in allowed]:
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
            name = logical_id + (".fifo" if as_text(properties.get("FifoQueue", False)) == "true" else "")
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
        ttl_attribute=ttl.get("AttributeName") if as_text(ttl.get("Enabled", False)) == "true" else None,
        stream_specification=stream,
    )


def _queue_spec(logical_id: str, resource: Mapping[str, Any], resolver: Resolver) -> QueueSpec:
    properties = resolver.resolve(resource.get("Properties") or {})
    values = resolver.physical[logical_id]
    attributes = {key: as_text(properties[key]) for key in _SQS_ATTRIBUTES if key in properties}
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


def _cors(properties: Mapping[str, Any], resolver: Resolver) -> CorsConfig | None:
    cors = resolver.resolve(properties.get("CorsConfiguration"))
    if cors is None or cors is False:
        return None
    if cors is True:
        return CorsConfig(allow_origins=("*",), allow_methods=("*",), allow_headers=("*",))

    def strings(key: str) -> tuple[str, ...]:
        value = cors.get(key) or []
        return tuple(as_text(item) for item in (value if isinstance(value, list) else [value]))

    max_age = cors.get("MaxAge")
    return CorsConfig(
        allow_origins=strings("AllowOrigins"),
        allow_methods=tuple(method.upper() for method in strings("AllowMethods")),
        allow_headers=tuple(header.lower() for header in strings("AllowHeaders")),
        expose_headers=strings("ExposeHeaders"),
        max_age=None if max_age is None else int(max_age),
        allow_credentials=as_text(cors.get("AllowCredentials", False)) == "true",
    )


def _check_unique[T](items: Iterable[T], key: Callable[[T], object], clash: Callable[[T, T], str]) -> None:
    """Raise `clash(first, later)` for the first item whose key an earlier item already has."""
    seen: dict[object, T] = {}
    for item in items:
        first = seen.setdefault(key(item), item)
        if first is not item:
            raise TemplateError(clash(first, item))
