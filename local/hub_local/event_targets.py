"""What EventBridge targets get: PutEvents entries, the tap's copy of an event, target input, queue sends."""

from __future__ import annotations

import datetime
import json
import re
import uuid
from collections.abc import Mapping
from typing import Any, Final, Protocol

from hub_local.cfn import ACCOUNT_ID
from hub_local.specs import QueueSpec, RuleTarget

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
PLACEHOLDER: Final = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_SQS_NAME_LIMIT: Final = 80


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


def compact_json(value: Any) -> str:
    """JSON as EventBridge and Lambda send it: no spaces."""
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
        normal["Detail"] = compact_json(detail)
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
        text = value if isinstance(value, str) else ("null" if value is None else compact_json(value))
        # Inside quotes a value becomes string content (escaped); outside, it is inserted as JSON (strings raw).
        return json.dumps(text)[1:-1] if quoted else text

    return PLACEHOLDER.sub(replace, template)


def render_target_input(target: RuleTarget, event: Mapping[str, Any], rule: str, rule_arn: str) -> str:
    """The text a target receives for `event`: Input, InputPath, InputTransformer, or the event itself."""
    if target.input is not None:
        return target.input
    if target.input_path is not None:
        return compact_json(json_path(event, target.input_path))
    if target.input_transformer is not None:
        return transform_input(target.input_transformer, event, rule, rule_arn)
    return compact_json(event)


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
