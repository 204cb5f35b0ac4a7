"""`hub events put FILE`: PutEvents on the stack's bus (the local one routes them exactly as EventBridge would)."""

from __future__ import annotations

from typing import Any

import click

from hub_cli import ui
from hub_cli.errors import EXIT_USAGE, CliError
from hub_cli.inputs import read_json
from hub_cli.settings import Settings, pass_settings
from hub_cli.target import BUS_TYPES, Target
from hub_local.event_targets import PUT_EVENTS_LIMIT, entries_from_document, normalise_entry


@click.group("events")
def command() -> None:
    """Events on the hub's EventBridge bus."""


@command.command("put")
@click.argument("file")
@click.option("--bus", help="Bus (logical id or name) for entries that name none; default: the stack's only bus.")
@pass_settings
def put(settings: Settings, file: str, bus: str | None) -> int:
    """Put the events of FILE on the bus: PutEvents entries, {"Entries": [...]}, or EventBridge events such as
    events/licence_issuance/licence_requested.json ('-' reads stdin). Exit 1 when any entry failed."""
    try:
        entries = entries_from_document(read_json(file))
    except ValueError as error:
        raise CliError(f"{file}: {error}", EXIT_USAGE) from None
    target = settings.target()
    answer = put_events(target, entries, bus)
    failed = sum(1 for result in answer if "ErrorCode" in result)
    table = ui.table(
        f"{len(entries) - failed} of {len(entries)} events put on {target.label}",
        "#",
        "source",
        "detail-type",
        "bus",
        "event id / error",
    )
    for index, (entry, result) in enumerate(zip(entries, answer, strict=True), start=1):
        outcome = result.get("EventId") or f"{result.get('ErrorCode')}: {result.get('ErrorMessage', '')}"
        table.add_row(str(index), entry.get("Source", ""), entry.get("DetailType", ""), result["bus"], outcome)
    ui.out().print(table)
    return 1 if failed else 0


def put_events(target: Target, entries: list[dict[str, Any]], bus: str | None) -> list[dict[str, Any]]:
    """PutEvents, 10 at a time; one result per entry (EventId, or ErrorCode and ErrorMessage), with its bus."""
    buses = {
        resource.logical_id: resource.physical_id for resource in target.of_type(*BUS_TYPES) if resource.physical_id
    }
    default_bus = bus if bus is not None else next(iter(buses.values())) if len(buses) == 1 else None
    if default_bus in buses:
        default_bus = buses[default_bus]
    try:
        normal = [normalise_entry(entry, default_bus, buses) for entry in entries]
    except ValueError as error:
        raise CliError(f"{error} (pass --bus)", EXIT_USAGE) from None
    events = target.client("events")
    results: list[dict[str, Any]] = []
    for start in range(0, len(normal), PUT_EVENTS_LIMIT):
        chunk = normal[start : start + PUT_EVENTS_LIMIT]
        response = events.put_events(Entries=chunk)
        results += [
            dict(result) | {"bus": entry["EventBusName"]}
            for entry, result in zip(chunk, response["Entries"], strict=True)
        ]
    return results
