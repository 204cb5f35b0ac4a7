"""Dead-letter queues of the template: what feeds each one, why a message is there, and how to send it back.

Which queues are DLQs is read from the template (the deployed stack is built from it): a queue another queue's
RedrivePolicy names (SQS moved the message after maxReceiveCount), a function's OnFailure destination (the message
is Lambda's invocation record: the original event is its `requestPayload`), a function's DeadLetterQueue (the
message is the event itself), or an EventBridge target's DeadLetterConfig.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import yaml

from hub_cli.errors import CliError
from hub_local.cfn import TemplateError
from hub_local.template import load_template

Kind = Literal["sqs-redrive", "lambda-on-failure", "lambda-dlq", "eventbridge-dlq"]
KIND_TEXT: Final[Mapping[Kind, str]] = {
    "sqs-redrive": "SQS redrive",
    "lambda-on-failure": "Lambda OnFailure",
    "lambda-dlq": "Lambda DLQ",
    "eventbridge-dlq": "EventBridge DLQ",
}


@dataclass(frozen=True)
class DeadLetterQueue:
    """A queue of the template that receives what failed; `sources` are logical ids (queues, functions, rules)."""

    logical_id: str
    kind: Kind
    sources: tuple[str, ...]
    max_receive_count: int | None = None


def dead_letter_queues(template_path: Path) -> dict[str, DeadLetterQueue]:
    """Every DLQ of the template by logical id; a queue fed in several ways takes the first kind found."""
    try:
        template = load_template(template_path)
    except FileNotFoundError:
        raise CliError(f"template {template_path} not found (run hub from the project, or pass --template)") from None
    except (TemplateError, yaml.YAMLError) as error:
        raise CliError(f"template {template_path}: {error}".replace("\n", " ")) from None
    found: dict[str, DeadLetterQueue] = {}

    def add(queue: str, kind: Kind, source: str, max_receive_count: int | None = None) -> None:
        known = found.get(queue)
        if known is None:
            found[queue] = DeadLetterQueue(queue, kind, (source,), max_receive_count)
        elif source not in known.sources:
            found[queue] = DeadLetterQueue(queue, known.kind, (*known.sources, source), known.max_receive_count)

    for queue in template.queues.values():
        if queue.dead_letter_queue is not None:
            add(queue.dead_letter_queue, "sqs-redrive", queue.logical_id, queue.max_receive_count)
    for function in template.functions.values():
        if function.on_failure is not None and function.on_failure.kind == "SQS":
            add(function.on_failure.target, "lambda-on-failure", function.logical_id)
        if function.dead_letter_queue is not None:
            add(function.dead_letter_queue, "lambda-dlq", function.logical_id)
    for rule in template.event_rules:
        for target in rule.targets:
            if target.dead_letter_queue is not None:
                add(target.dead_letter_queue, "eventbridge-dlq", rule.name)
    return dict(sorted(found.items()))


def _attribute(message: Mapping[str, Any], name: str) -> str | None:
    value = (message.get("MessageAttributes") or {}).get(name)
    return None if value is None else str(value.get("StringValue", ""))


def invocation_record(message: Mapping[str, Any]) -> dict[str, Any] | None:
    """Lambda's record of a failed asynchronous invocation, when the message is one."""
    try:
        body = json.loads(message.get("Body", ""))
    except ValueError:
        return None
    if isinstance(body, dict) and isinstance(body.get("requestContext"), dict) and "requestPayload" in body:
        return body
    return None


def why(message: Mapping[str, Any], queue: DeadLetterQueue) -> str:
    """Why the message is dead-lettered, from what AWS (and the local runner, alike) stores with it."""
    record = invocation_record(message)
    if record is not None:
        context = record["requestContext"]
        function = str(context.get("functionArn", "")).split(":function:")[-1].split(":")[0] or "the function"
        response = record.get("responsePayload")
        error = ""
        if isinstance(response, dict) and response.get("errorType"):
            error = f": {response['errorType']}: {response.get('errorMessage', '')}".rstrip(": ")
        tries = context.get("approximateInvokeCount", "?")
        return f"{context.get('condition', 'failed')} after {tries} invocation(s) of {function}{error}"
    if (error_message := _attribute(message, "ErrorMessage")) is not None:
        return f"Lambda gave up on the event (request {_attribute(message, 'RequestID')}): {error_message}"
    if (code := _attribute(message, "ERROR_CODE")) is not None:
        return (
            f"EventBridge could not deliver it to {_attribute(message, 'TARGET_ARN')}: "
            f"{code}: {_attribute(message, 'ERROR_MESSAGE')}"
        )
    if queue.kind == "sqs-redrive":
        source = (message.get("Attributes") or {}).get("DeadLetterQueueSourceArn", "").rsplit(":", 1)[-1]
        source = source or " or ".join(queue.sources)
        limit = f"{queue.max_receive_count} deliveries" if queue.max_receive_count else "its maxReceiveCount"
        return f"not processed after {limit} from {source}"
    return "unknown: nothing about the failure was stored with the message"


# A message that names a record instead of holding the event (so the queue holds no personal data): its body key,
# the table the record is in, and the record's key prefix. The licence retry queue keeps the waiting order there.
WAITING_RECORDS: Final[Mapping[str, tuple[str, str]]] = {"waiting_id": ("LicencesTable", "waiting#")}


def waiting_record_key(event: Any) -> tuple[str, dict[str, Any]] | None:
    """The table (logical id) and key of the record a message names, when it names one."""
    if not isinstance(event, dict):
        return None
    for field_name, (table, prefix) in WAITING_RECORDS.items():
        if isinstance(event.get(field_name), str):
            return table, {"pk": {"S": f"{prefix}{event[field_name]}"}}
    return None


def original_event(message: Mapping[str, Any]) -> Any:
    """What the failed consumer was given: the record's requestPayload, else the body (as JSON when it is)."""
    record = invocation_record(message)
    if record is not None:
        return record["requestPayload"]
    body = message.get("Body", "")
    try:
        return json.loads(body)
    except ValueError:
        return body
