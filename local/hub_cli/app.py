"""The `hub` command: global options (which stack), the command groups, and errors as one line, never a traceback."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import click
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from hub_cli.commands import COMMANDS
from hub_cli.errors import EXIT_USAGE, CliError
from hub_cli.settings import Settings

EXIT_INTERRUPTED = 130
# The checkout `hub` is installed from (editable): its functions and layer hold the handlers `invoke` imports and
# the rules `secrets` checks values with.
PROJECT_ROOT = Path(__file__).resolve().parents[2]
PROJECT_IMPORT_DIRS = ("functions", "layers/adapters")


def _extend_import_path() -> None:
    # Appended, not prepended: an explicit PYTHONPATH (the Makefile's) keeps precedence, as in hub_local.
    for relative in PROJECT_IMPORT_DIRS:
        directory = str(PROJECT_ROOT / relative)
        if Path(directory).is_dir() and directory not in sys.path:
            sys.path.append(directory)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110},
    epilog="Without --stage every command acts on the local stack of `make run` (at --url).",
)
@click.option("--stage", envvar="HUB_STAGE", help="Act on the deployed stack of this stage (partner-hub-STAGE).")
@click.option("--region", help="AWS region of the deployed stack (default: AWS_REGION / your AWS config).")
@click.option("--stack-name", help="CloudFormation stack name, when not partner-hub-STAGE.")
@click.option("--profile", envvar="AWS_PROFILE", help="AWS profile for --stage.")
@click.option(
    "--url",
    envvar="HUB_LOCAL_URL",
    default=lambda: f"http://127.0.0.1:{os.environ.get('PORT', '3000')}",
    show_default="http://127.0.0.1:$PORT (3000)",
    help="Gateway of the running local stack.",
)
@click.option(
    "--template",
    "-t",
    type=click.Path(path_type=Path, dir_okay=False),
    default="template.yaml",
    show_default=True,
    help="SAM template (local invoke, and the stack's shape on AWS).",
)
@click.version_option(package_name="partner-hub", prog_name="hub")
@click.pass_context
def cli(
    context: click.Context,
    *,
    stage: str | None,
    region: str | None,
    stack_name: str | None,
    profile: str | None,
    url: str,
    template: Path,
) -> None:
    """Operate partner hub: invoke functions, put events, inspect and redrive dead letters, set secrets, reconcile
    donations."""
    if stage is None and (region or stack_name):
        raise click.UsageError("--region and --stack-name need --stage (without it, hub acts on the local stack)")
    context.obj = Settings(stage, region, stack_name, profile, url, template)


for command in COMMANDS:
    cli.add_command(command)


def _failure(error: BaseException) -> tuple[str, int]:
    """The one line (and exit status) that reports a failure."""
    status = 1
    if isinstance(error, click.UsageError):
        where = error.ctx.command_path if error.ctx is not None else "hub"
        message, status = f"{where}: {error.format_message()} (see {where} --help)", EXIT_USAGE
    elif isinstance(error, CliError):
        message, status = f"hub: {error}", error.exit_code
    elif isinstance(error, click.ClickException):
        message, status = f"hub: {error.format_message()}", error.exit_code
    elif isinstance(error, (click.Abort, KeyboardInterrupt)):
        message, status = "hub: interrupted", EXIT_INTERRUPTED
    elif isinstance(error, NoCredentialsError):
        message = "hub: no AWS credentials found (aws configure / aws sso login, or --profile)"
    elif isinstance(error, ClientError):
        details = error.response.get("Error", {})
        message = f"hub: AWS refused {error.operation_name}: {details.get('Code', '?')}: {details.get('Message', '')}"
    else:
        message = f"hub: {error}"
    # One line, whatever the error's own text holds (botocore's validation errors span several).
    return " ".join(message.split()).rstrip(": "), status


def main(argv: Sequence[str] | None = None) -> int:
    """Run `hub` and return its exit status; every failure is one line on stderr, never a traceback."""
    _extend_import_path()
    try:
        result = cli.main(args=list(argv) if argv is not None else None, prog_name="hub", standalone_mode=False)
    except (click.ClickException, click.Abort, CliError, BotoCoreError, ClientError, KeyboardInterrupt) as error:
        message, status = _failure(error)
        print(message, file=sys.stderr)
        return status
    except Exception as error:  # a bug of hub itself: still one line; HUB_DEBUG=1 shows where
        if os.environ.get("HUB_DEBUG"):
            raise
        print(f"hub: unexpected {type(error).__name__}: {error} (HUB_DEBUG=1 for a traceback)", file=sys.stderr)
        return 1
    return result if isinstance(result, int) else 0


def run() -> None:
    """Console entry point (`hub`)."""
    sys.exit(main())
