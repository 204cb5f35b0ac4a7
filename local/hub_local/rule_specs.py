"""Reads EventBridge rules and schedules into specs: AWS::Events::Rule, EventBridgeRule, Schedule(V2) events."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final, Literal

from hub_local.cfn import TemplateError, as_text
from hub_local.cron import parse_schedule_expression
from hub_local.specs import EventRuleSpec, RuleTarget, ScheduleSpec

if TYPE_CHECKING:
    from hub_local.template import LocalTemplate

_RULE_NAME_LIMIT: Final = 64
# Scheduler's context attributes (<aws.scheduler.scheduled-time>...) in an Input, filled in only when it fires.
_SCHEDULER_CONTEXT: Final = re.compile(r"<aws\.scheduler\.[a-z-]+>")


def _enabled(properties: Mapping[str, Any], where: str) -> bool:
    """Enabled (a boolean) or State (ENABLED, DISABLED...), as SAM and CloudFormation read them."""
    if "Enabled" in properties and "State" in properties:
        raise TemplateError(f"{where}: Enabled and State cannot both be set")
    if "Enabled" in properties:
        return as_text(properties["Enabled"]).lower() == "true"
    return str(properties.get("State", "ENABLED")).upper() != "DISABLED"


def _bus_name(value: Any, where: str, template: LocalTemplate) -> str:
    name = "default" if value is None else str(value)
    if ":event-bus/" in name:
        name = name.split(":event-bus/", 1)[1]
    if name != "default" and name not in {bus.name for bus in template.buses.values()}:
        raise TemplateError(f"{where}: event bus {name!r} is not declared in the template")
    return name


def _pattern(value: Any, where: str) -> dict[str, Any]:
    """An EventPattern (or a SAM event's Pattern), given as JSON text or a mapping, checked."""
    pattern = json.loads(value) if isinstance(value, str) else value
    _check_pattern(pattern, where)
    return dict(pattern)


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


def _json_text(value: Any, where: str, *, scheduler: bool = False) -> str:
    """Input is JSON text on AWS (CloudFormation rejects a mapping there); `scheduler`: Scheduler's context attributes
    may stand for values."""
    if not isinstance(value, str):
        raise TemplateError(f"{where}: Input must be a JSON string, not {type(value).__name__}")
    try:
        json.loads(_SCHEDULER_CONTEXT.sub("0", value) if scheduler else value)
    except ValueError as error:
        raise TemplateError(f"{where}: Input is not valid JSON: {error}") from None
    return value


def _dead_letter_config(config: Any, where: str, template: LocalTemplate) -> str | None:
    """A rule target's (or schedule's) DeadLetterConfig: the logical id of its queue."""
    if not config:
        return None
    if isinstance(config, Mapping) and "Arn" in config:
        found = template.arn_resource(str(config["Arn"]))
        if found is None or found[0] != "queue":
            raise TemplateError(f"{where}: DeadLetterConfig {config['Arn']} is not a queue of the template")
        return found[1]
    template.warnings.append(f"{where}: a DeadLetterConfig that SAM creates (Type: SQS) is not created locally")
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


def _delivery_options(properties: Mapping[str, Any], where: str, template: LocalTemplate) -> dict[str, Any]:
    """What a rule target (or a function's rule or schedule event) says of delivery: DLQ, retries, Input*."""
    return {
        "dead_letter_queue": _dead_letter_config(properties.get("DeadLetterConfig"), where, template),
        "retry_policy": {str(key): int(item) for key, item in (properties.get("RetryPolicy") or {}).items()},
        **_input_options(properties, where),
    }


def _rule_target(target: Mapping[str, Any], where: str, template: LocalTemplate) -> RuleTarget | None:
    """One entry of an AWS::Events::Rule's Targets; None (with a warning) for services not served locally."""
    arn = str(target.get("Arn", ""))
    target_id = str(target.get("Id", ""))
    where = f"{where} target {target_id or arn}"
    found = template.arn_resource(arn)
    if found is None:
        if arn.startswith(("arn:aws:lambda:", "arn:aws:sqs:")):
            raise TemplateError(f"{where}: {arn} is not a function or queue of the template")
        template.warnings.append(f"{where}: {arn} is not served locally (only functions and queues are): ignored")
        return None
    kind, logical_id = found
    if kind == "bus":
        template.warnings.append(f"{where}: bus-to-bus targets are not served locally: ignored")
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
        **_delivery_options(target, where, template),
    )


def _function_target(
    function: str, event_name: str, properties: Mapping[str, Any], template: LocalTemplate
) -> RuleTarget:
    """The target SAM gives a function's EventBridgeRule or Schedule(V2) event: that function."""
    where = f"{function}.{event_name}"
    target_id = (properties.get("Target") or {}).get("Id") or f"{function}{event_name}LambdaTarget"
    return RuleTarget(
        target_id=str(target_id),
        arn=template.resolver.physical[function]["Arn"],
        function=function,
        **_delivery_options(properties, where, template),
    )


def eventbridge_rule_event(
    function: str, event_name: str, raw: Mapping[str, Any], template: LocalTemplate
) -> EventRuleSpec:
    where = f"{function}.{event_name}"
    properties = template.resolver.resolve(raw)
    logical_id = f"{function}{event_name}"
    return EventRuleSpec(
        logical_id=logical_id,
        name=str(properties.get("RuleName") or logical_id)[:_RULE_NAME_LIMIT],
        bus=_bus_name(properties.get("EventBusName"), where, template),
        pattern=_pattern(properties.get("Pattern"), where),
        targets=[_function_target(function, event_name, properties, template)],
        enabled=_enabled(properties, where),
        description=properties.get("Description"),
        function=function,
        event_name=event_name,
    )


def schedule_event(
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
    target = _function_target(function, event_name, properties, template)
    if scheduler_input is not None:
        target = dataclasses.replace(target, input=_json_text(scheduler_input, where, scheduler=True))
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


def events_rule(logical_id: str, resource: Mapping[str, Any], template: LocalTemplate) -> None:
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
        template.event_rules.append(
            EventRuleSpec(
                logical_id=logical_id,
                name=name,
                bus=bus,
                pattern=_pattern(pattern, logical_id),
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
