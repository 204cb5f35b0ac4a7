"""Reads an AWS::Serverless::Function into a FunctionSpec: settings, HttpApi and SQS events, async invocation."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from hub_local.cfn import TemplateError, as_text
from hub_local.rule_specs import eventbridge_rule_event, schedule_event
from hub_local.specs import IMPLICIT_HTTP_API, AsyncDestination, FunctionSpec, HttpRoute, SqsSource

if TYPE_CHECKING:
    from hub_local.template import LocalTemplate

_SAM_FUNCTION_DEFAULTS: Final[Mapping[str, int]] = {"Timeout": 3, "MemorySize": 128}
_RESERVED: Final = "ReservedConcurrentExecutions"
_DESTINATION_KINDS: Final[Mapping[str, Literal["SQS", "Lambda", "EventBridge"]]] = {
    "queue": "SQS",
    "function": "Lambda",
    "bus": "EventBridge",
}


def function_spec(
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
        environment={name: as_text(value) for name, value in resolver.resolve(variables).items()},
        timeout=int(resolver.resolve(_function_setting("Timeout", properties, defaults))),
        memory_size=int(resolver.resolve(_function_setting("MemorySize", properties, defaults))),
        code_dirs=_code_dirs(properties, defaults, template),
        reserved_concurrency=_optional_int(resolver.resolve(properties.get(_RESERVED, defaults.get(_RESERVED)))),
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
                spec.event_rules.append(eventbridge_rule_event(logical_id, event_name, event_properties, template))
            elif kind in ("Schedule", "ScheduleV2"):
                spec.schedules.append(schedule_event(logical_id, event_name, kind, event_properties, template))
            else:
                template.warnings.append(f"{logical_id}.{event_name}: events of type {kind} are not served locally")
    return spec


def _merged_setting(name: str, properties: Mapping[str, Any], defaults: Mapping[str, Any]) -> Any:
    """A function property that Globals may also set: maps are merged (the function's keys win), as SAM does."""
    value = properties.get(name, defaults.get(name))
    if isinstance(value, dict) and isinstance(defaults.get(name), dict) and name in properties:
        value = defaults[name] | value
    return value


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
        enabled=as_text(resolved.get("Enabled", True)) == "true",
        maximum_concurrency=_optional_int((resolved.get("ScalingConfig") or {}).get("MaximumConcurrency")),
    )


def _optional_int(value: Any) -> int | None:
    return None if value in (None, "") else int(value)


def _async_destination(where: str, value: Any, template: LocalTemplate) -> AsyncDestination | None:
    """An OnSuccess/OnFailure destination; None (with a warning) for kinds the local runner does not serve."""
    if not isinstance(value, Mapping):
        raise TemplateError(f"{where}: expected a mapping with Type and Destination, not {value!r}")
    arn = value.get("Destination")
    if arn is None:
        template.warnings.append(
            f"{where}: no Destination (SAM would create a {value.get('Type')} resource): ignored locally"
        )
        return None
    arn = str(arn)
    if arn.startswith(("arn:aws:sns:", "arn:aws:s3:")):
        template.warnings.append(f"{where}: {arn.split(':')[2].upper()} destinations are not served locally: ignored")
        return None
    found = template.arn_resource(arn)
    if found is None:
        raise TemplateError(f"{where}: destination {arn} is not a queue, function or bus of the template")
    kind, target = found
    if kind == "bus" and target != "default" and target not in {bus.name for bus in template.buses.values()}:
        raise TemplateError(f"{where}: destination bus {target} is not declared in the template")
    return AsyncDestination(_DESTINATION_KINDS[kind], arn, target)


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
        template.warnings.append(f"{where}: SNS dead-letter queues are not served locally: ignored")
        return
    found = template.arn_resource(str(config["TargetArn"]))
    if found is None or found[0] != "queue":
        raise TemplateError(f"{where}: {config['TargetArn']} is not a queue of the template")
    spec.dead_letter_queue = found[1]


def event_invoke_config_resource(logical_id: str, resource: Mapping[str, Any], template: LocalTemplate) -> None:
    properties = resource.get("Properties") or {}
    name = properties.get("FunctionName")
    function_id = name.get("Ref") if isinstance(name, dict) else None
    if function_id not in template.functions:
        found = template.arn_resource(str(template.resolver.resolve(name)))
        function_id = found[1] if found and found[0] == "function" else None
    if function_id is None:
        raise TemplateError(f"{logical_id}: FunctionName {name!r} is not a function of the template")
    _apply_event_invoke_config(
        template.functions[function_id], template.resolver.resolve(properties), logical_id, template
    )
