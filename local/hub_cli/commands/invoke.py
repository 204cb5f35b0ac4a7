"""`hub invoke FUNCTION EVENT_FILE`: `sam local invoke -e` without Docker locally, Lambda Invoke on AWS."""

from __future__ import annotations

import base64
import json
import sys

import click

from hub_cli.inputs import read_json_object
from hub_cli.settings import Settings, pass_settings
from hub_cli.target import FUNCTION_TYPES, Target
from hub_local import cli as hub_local_cli


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
        arguments = ["invoke", function, event_file, "--template", str(settings.template)]
        if env_vars:
            arguments += ["--env-vars", env_vars]
        return hub_local_cli.main(arguments)
    return invoke_deployed(settings.target(), function, event_file)


def invoke_deployed(target: Target, function: str, event_file: str) -> int:
    """RequestResponse Invoke of a stack's function (on AWS, or through the local gateway's Lambda API)."""
    event = read_json_object(event_file)
    name = target.find(function, FUNCTION_TYPES, "function").physical_id
    response = target.client("lambda").invoke(
        FunctionName=name, InvocationType="RequestResponse", LogType="Tail", Payload=json.dumps(event).encode()
    )
    if response.get("LogResult"):
        sys.stderr.write(base64.b64decode(response["LogResult"]).decode(errors="replace"))
    payload = response["Payload"].read().decode()
    click.echo(payload)
    return 1 if response.get("FunctionError") else 0
