"""`hub invoke FUNCTION EVENT_FILE`: `sam local invoke -e` without Docker locally, Lambda Invoke on AWS."""

from __future__ import annotations

import base64
import json
import sys
import urllib.request
from typing import Any

import click

from hub_cli.commands.local.invoke import invoke_local
from hub_cli.errors import CliError
from hub_cli.inputs import read_json_object
from hub_cli.settings import Settings, pass_settings
from hub_cli.target import FUNCTION_TYPES, Target
from hub_local.examples import ExampleError, Handouts, fill


@click.command("invoke", short_help="Invoke a function with an event file (sam local invoke -e).")
@click.argument("function")
@click.argument("event_file")
@click.option(
    "--running",
    is_flag=True,
    help="Invoke the function of the running local stack (make run) instead of a fresh in-process one.",
)
@click.option("--env-vars", metavar="FILE", help='Local only: JSON {"FunctionId"|"Parameters": {VAR: value}}.')
@pass_settings
def command(settings: Settings, function: str, event_file: str, running: bool, env_vars: str | None) -> int:
    """Invoke FUNCTION (logical id, e.g. LeadIntakeFunction) with EVENT_FILE ('-' reads stdin).

    The result goes to stdout as `sam local invoke` prints it (a function's error: its error document, exit 1);
    the function's logs go to stderr. Locally the function runs in this process against a fresh stack, as
    `sam local invoke` does; with --stage, the deployed function is invoked synchronously.
    """
    if settings.local and not running:
        return invoke_local(str(settings.template), function, event_file, env_vars)
    target = settings.target()
    event = read_json_object(event_file)
    if target.local:
        event = _filled_for_running(target, event)
    return invoke_deployed(target, function, event_file, event)


class RunningSandboxes:
    """The running stack's Umbrella sandbox as `hub_local.examples` asks it for a campaign's callback token."""

    def __init__(self, target: Target) -> None:
        partner = target.partners.get("umbrella") or {}
        self.sandboxes = {"umbrella": self} if partner.get("sandbox") else {}
        self._url = str(partner.get("url", "")).rstrip("/")

    @property
    def campaigns(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self._url}/_sandbox/campaigns", timeout=10) as response:  # noqa: S310 - loopback
            campaigns: list[dict[str, Any]] = json.loads(response.read())
        return campaigns

    def invoke(self, logical_id: str, event: Any) -> Any:  # pragma: no cover - fill never invokes
        raise NotImplementedError(logical_id)


def _filled_for_running(target: Target, event: dict[str, Any]) -> dict[str, Any]:
    """An events file's callback token filled in from the running stack's Umbrella sandbox. Seeds are not run:
    they are for a fresh stack, and the running one has its own state."""
    try:
        filled: dict[str, Any] = fill(event, RunningSandboxes(target), Handouts())
    except ExampleError as error:
        raise CliError(f"{error} (on a running stack the campaign must exist: create it first)") from None
    return filled


def invoke_deployed(target: Target, function: str, event_file: str, event: dict[str, Any] | None = None) -> int:
    """RequestResponse Invoke of a stack's function (on AWS, or through the local gateway's Lambda API)."""
    event = read_json_object(event_file) if event is None else event
    name = target.find(function, FUNCTION_TYPES, "function").physical_id
    response = target.client("lambda").invoke(
        FunctionName=name, InvocationType="RequestResponse", LogType="Tail", Payload=json.dumps(event).encode()
    )
    if response.get("LogResult"):
        sys.stderr.write(base64.b64decode(response["LogResult"]).decode(errors="replace"))
    payload = response["Payload"].read().decode()
    click.echo(payload)
    return 1 if response.get("FunctionError") else 0
