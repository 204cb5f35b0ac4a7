"""`hub local invoke FUNCTION EVENT_FILE`: one function on a fresh in-process stack, as `sam local invoke -e` runs
it in Docker (also what `hub invoke` runs without --stage or --running)."""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

import click

from hub_cli.commands.local.common import check_template, env_vars, fail, read_event, reported, stack_options
from hub_local.examples import ExampleError, prepare
from hub_local.runtime import HandlerImportError
from hub_local.stack import LocalStack


@reported
def invoke_local(
    template: str, function: str, event_file: str, env_vars_file: str | None, overrides: Sequence[str] = ()
) -> int:
    """Invoke `function` of a fresh stack with the event of `event_file`; its exit status."""
    parameters = check_template(template, overrides, function)
    env_overrides = env_vars(env_vars_file)
    event = read_event(event_file)
    stdout = sys.stdout
    # Like `sam local invoke`: stdout carries the result only, everything the function prints goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        stack = LocalStack(
            template,
            gateway_port=None,
            pump_queues=False,
            parameter_overrides=parameters,
            env_overrides=env_overrides,
        )
        with stack:
            try:
                # Events files bring their earlier state (a seed) and get their tokens filled in (hub_local.examples).
                event_path = None if event_file == "-" else Path(event_file)
                event = prepare(stack, event_path, event)
                result = stack.invoke(function, event)
            except (HandlerImportError, ExampleError) as error:
                return fail(str(error))
            except Exception as error:  # reported as the Lambda runtime reports it
                traceback.print_exc(file=sys.stderr)
                error_document = {
                    "errorMessage": str(error),
                    "errorType": type(error).__name__,
                    "stackTrace": traceback.format_tb(error.__traceback__),
                }
                print(json.dumps(error_document), file=stdout)
                return 1
    print(json.dumps(result), file=stdout)
    return 0


@click.command("invoke", short_help="Invoke one function with an event file, like sam local invoke -e.")
@stack_options
@click.argument("function")
@click.argument("event_file")
def command(
    template: str, parameter_overrides: tuple[str, ...], env_vars: str | None, function: str, event_file: str
) -> int:
    """Invoke FUNCTION (logical id) with EVENT_FILE (JSON, '-' reads stdin) on a fresh stack in this process.

    The result goes to stdout alone (a function's error: its error document, exit 1), what the function prints to
    stderr. An events/ file's seed (events/<function>/given/) runs first and its placeholders are filled in.
    """
    return invoke_local(template, function, event_file, env_vars, parameter_overrides)
