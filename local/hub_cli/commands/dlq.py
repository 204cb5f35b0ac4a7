"""`hub dlq list|show|redrive`: what is dead-lettered, why, and sending it back where it failed."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

import click
from rich.json import JSON
from rich.panel import Panel

from hub_cli import ui
from hub_cli.deadletters import (
    KIND_TEXT,
    DeadLetterQueue,
    dead_letter_queues,
    invocation_record,
    original_event,
    waiting_record_key,
    why,
)
from hub_cli.errors import CliError
from hub_cli.settings import Settings, pass_settings
from hub_cli.target import FUNCTION_TYPES, QUEUE_TYPES, StackResource, Target

# Long enough to list or move a batch; `show` hands every message back (visibility 0) when it is done.
HOLD_SECONDS: Final = 30
_COUNTS: Final = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")


@click.group("dlq")
def command() -> None:
    """Dead-letter queues: what failed, why, and sending it back."""


def _catalog(settings: Settings, target: Target) -> dict[str, DeadLetterQueue]:
    # The running local stack says which template it serves; on AWS the stack is built from --template.
    return dead_letter_queues(target.template_path if target.template_path is not None else settings.template)


def _resolve(settings: Settings, name: str) -> tuple[Target, DeadLetterQueue, StackResource]:
    target = settings.target()
    catalog = _catalog(settings, target)
    resource = target.find(name, QUEUE_TYPES, "queue")
    if resource.logical_id not in catalog:
        known = ", ".join(catalog) or "none"
        raise CliError(f"{resource.logical_id} is not a dead-letter queue (dead-letter queues: {known})")
    return target, catalog[resource.logical_id], resource


@command.command("list")
@pass_settings
def list_queues(settings: Settings) -> int:
    """Every dead-letter queue of the stack, what feeds it, and how many messages wait in it."""
    target = settings.target()
    sqs = target.client("sqs")
    table = ui.table(f"Dead-letter queues of {target.label}", "queue", "kind", "fed by", "messages")
    total = 0
    for logical_id, queue in _catalog(settings, target).items():
        resource = target.resources.get(logical_id)
        if resource is None:
            table.add_row(logical_id, KIND_TEXT[queue.kind], "\n".join(queue.sources), "not deployed")
            continue
        counts = sqs.get_queue_attributes(QueueUrl=resource.physical_id, AttributeNames=list(_COUNTS))["Attributes"]
        visible, in_flight = (int(counts.get(name, 0)) for name in _COUNTS)
        total += visible + in_flight
        # One line per source and one column for both counts: the table stays readable at 80 columns.
        held = f"{visible} + {in_flight} in flight" if in_flight else str(visible)
        table.add_row(logical_id, KIND_TEXT[queue.kind], "\n".join(queue.sources), held)
    console = ui.out()
    console.print(table)
    console.print(
        "Nothing is dead-lettered." if total == 0 else f"{total} message(s) dead-lettered: hub dlq show QUEUE"
    )
    return 0


def _receive(target: Target, sqs: Any, url: str, count: int) -> list[dict[str, Any]]:
    response = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=max(1, min(10, count)),
        VisibilityTimeout=HOLD_SECONDS,
        # Short polls locally; on AWS a short poll can miss messages that are there.
        WaitTimeSeconds=0 if target.local else 2,
        MessageSystemAttributeNames=["All"],
        MessageAttributeNames=["All"],
    )
    messages: list[dict[str, Any]] = response.get("Messages", [])
    return messages


@contextmanager
def _held(target: Target, url: str, limit: int | None) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    """Receives up to `limit` distinct messages (all when None) and hands back, on exit, those still in `held`."""
    sqs = target.client("sqs")
    held: list[dict[str, Any]] = []
    try:
        while limit is None or len(held) < limit:
            batch = _receive(target, sqs, url, 10 if limit is None else limit - len(held))
            if not batch:
                break
            held += batch
        yield sqs, held
    finally:
        for start in range(0, len(held), 10):
            entries = [
                {"Id": str(index), "ReceiptHandle": message["ReceiptHandle"], "VisibilityTimeout": 0}
                for index, message in enumerate(held[start : start + 10])
            ]
            sqs.change_message_visibility_batch(QueueUrl=url, Entries=entries)


def _sent_at(message: dict[str, Any]) -> str:
    stamp = (message.get("Attributes") or {}).get("SentTimestamp")
    if not stamp:
        return "?"
    return datetime.datetime.fromtimestamp(int(stamp) / 1000, datetime.UTC).isoformat(timespec="seconds")


def _waiting(target: Target, event: Any) -> Any:
    """The event a message names by id (it waits in a table until the message is redriven), or None; a record that
    is gone (handled by an earlier delivery, or past its TTL) is said so."""
    located = waiting_record_key(event)
    if located is None:
        return None
    table, key = located
    resource = target.resources.get(table)
    if resource is None:
        return f"{table} is not deployed"
    item = target.client("dynamodb").get_item(TableName=resource.physical_id, Key=key, ConsistentRead=True).get("Item")
    if item is None or "event" not in item:
        return f"gone from {table}: handled already, or past its TTL"
    return json.loads(item["event"]["S"])


@command.command("show")
@click.argument("queue")
@click.option("--limit", default=10, show_default=True, type=click.IntRange(min=1), help="Messages to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the messages as JSON (for scripts).")
@pass_settings
def show(settings: Settings, queue: str, limit: int, as_json: bool) -> int:
    """Print the messages of QUEUE and why each one is there, without consuming them."""
    target, dead_letters, resource = _resolve(settings, queue)
    with _held(target, resource.physical_id, limit) as (_, messages):
        shown = [
            {
                "messageId": message["MessageId"],
                "sentAt": _sent_at(message),
                "receiveCount": int((message.get("Attributes") or {}).get("ApproximateReceiveCount", 0)),
                "why": why(message, dead_letters),
                "event": original_event(message),
            }
            for message in messages
        ]
    for item in shown:
        if (waiting := _waiting(target, item["event"])) is not None:
            item["waiting"] = waiting
    if as_json:
        click.echo(json.dumps(shown, indent=2))
        return 0
    console = ui.out()
    sources = ", ".join(dead_letters.sources)
    console.print(f"{resource.logical_id} ({KIND_TEXT[dead_letters.kind]} of {sources}): {len(shown)} message(s)")
    for index, item in enumerate(shown, start=1):
        header = f"[bold]why:[/bold] {item['why']}\nsent {item['sentAt']}, received {item['receiveCount']} time(s)"
        console.print(
            Panel.fit(
                header,
                title=f"{index}. {item['messageId']}",
                title_align="left",
                subtitle="event below",
                border_style="red",
            ),
            # The console soft-wraps (long JSON lines stay whole); a panel must wrap, or a long reason is cut.
            soft_wrap=False,
        )
        console.print(JSON(json.dumps(item["event"])))
        if "waiting" in item:
            console.print("[bold]the event it names, waiting for the redrive:[/bold]")
            console.print(JSON(json.dumps(item["waiting"])))
    return 0


@command.command("redrive")
@click.argument("queue")
@click.option(
    "--to", "destination", help="SQS redrive only: the queue to move the messages to (default: their source)."
)
@click.option("--limit", type=click.IntRange(min=1), help="Messages to send back (default: all).")
@pass_settings
def redrive(settings: Settings, queue: str, destination: str | None, limit: int | None) -> int:
    """Send the messages of QUEUE back to where they failed.

    An SQS redrive DLQ: the messages go back to their source queue (SQS's message move task on AWS). A Lambda
    OnFailure destination or DLQ: the function is invoked again, asynchronously (with Lambda's retries), with each
    message's original event, and the message is deleted once Lambda has accepted it; the event is not put on the
    bus again, so the other rules' targets, which did not fail, do not see it twice.
    """
    target, dead_letters, resource = _resolve(settings, queue)
    if dead_letters.kind == "sqs-redrive":
        return _move_messages(target, dead_letters, resource, destination, limit)
    if destination is not None:
        raise CliError(f"--to is for SQS redrive DLQs; {resource.logical_id} is a {KIND_TEXT[dead_letters.kind]}")
    if dead_letters.kind in ("lambda-on-failure", "lambda-dlq"):
        return _reinvoke(target, dead_letters, resource, limit)
    raise CliError(
        f"{resource.logical_id} is an EventBridge DLQ: redrive is not supported; "
        "`hub dlq show` it and `hub events put` what should be sent again"
    )


def _queue_arn(sqs: Any, url: str) -> str:
    arn: str = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return arn


def _move_messages(
    target: Target, dead_letters: DeadLetterQueue, resource: StackResource, destination: str | None, limit: int | None
) -> int:
    sqs = target.client("sqs")
    to = target.find(destination, QUEUE_TYPES, "queue") if destination else None
    console = ui.out()
    if not target.local:
        arguments = {"SourceArn": _queue_arn(sqs, resource.physical_id)}
        if to is not None:
            arguments["DestinationArn"] = _queue_arn(sqs, to.physical_id)
        if limit is not None:
            raise CliError("--limit is not available on AWS: a message move task moves every message")
        handle = sqs.start_message_move_task(**arguments)["TaskHandle"]
        console.print(
            f"SQS is moving the messages of {resource.logical_id} back to "
            f"{to.logical_id if to else 'their source queue'} (task {handle}).\n"
            f"Follow it: aws sqs list-message-move-tasks --source-arn {arguments['SourceArn']}"
        )
        return 0
    if to is None:
        if len(dead_letters.sources) != 1:
            raise CliError(f"{resource.logical_id} has several source queues: name one with --to")
        to = target.find(dead_letters.sources[0], QUEUE_TYPES, "queue")
    moved = 0
    with _held(target, resource.physical_id, limit) as (_, messages), ui.progress() as bar:
        task = bar.add_task(f"{resource.logical_id} -> {to.logical_id}", total=len(messages))
        for message in list(messages):
            sqs.send_message(
                QueueUrl=to.physical_id,
                MessageBody=message["Body"],
                MessageAttributes=message.get("MessageAttributes") or {},
            )
            sqs.delete_message(QueueUrl=resource.physical_id, ReceiptHandle=message["ReceiptHandle"])
            messages.remove(message)
            moved += 1
            bar.advance(task)
    console.print(
        f"moved {moved} message(s) from {resource.logical_id} to {to.logical_id} "
        "(locally by receive/send/delete: moto 5.2.5 has no StartMessageMoveTask)"
    )
    return 0


def _reinvoke(target: Target, dead_letters: DeadLetterQueue, resource: StackResource, limit: int | None) -> int:
    if len(dead_letters.sources) != 1:  # pragma: no cover - a queue shared by several functions' destinations
        raise CliError(f"{resource.logical_id} collects the failures of several functions: redrive them by hand")
    function = target.find(dead_letters.sources[0], FUNCTION_TYPES, "function")
    lambda_client = target.client("lambda")
    sent = skipped = 0
    with _held(target, resource.physical_id, limit) as (sqs, messages), ui.progress() as bar:
        task = bar.add_task(f"{resource.logical_id} -> {function.logical_id}", total=len(messages))
        for message in list(messages):
            bar.advance(task)
            if dead_letters.kind == "lambda-on-failure" and invocation_record(message) is None:
                skipped += 1  # not Lambda's record: left in the queue for a person to read
                continue
            payload = json.dumps(original_event(message)).encode()
            lambda_client.invoke(FunctionName=function.physical_id, InvocationType="Event", Payload=payload)
            sqs.delete_message(QueueUrl=resource.physical_id, ReceiptHandle=message["ReceiptHandle"])
            messages.remove(message)
            sent += 1
    console = ui.out()
    console.print(
        f"re-invoked {function.logical_id} asynchronously with the original event of {sent} message(s) from "
        f"{resource.logical_id}; a new failure lands in it again after Lambda's retries"
    )
    if skipped:
        console.print(
            f"left {skipped} message(s) that are not Lambda invocation records: hub dlq show {resource.logical_id}"
        )
        return 1
    return 0
