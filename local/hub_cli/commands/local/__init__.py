"""`hub local`: the stack of template.yaml on this machine without Docker (run, invoke, put-events) and the build's
helpers (openapi, expand, layer-size); the runner itself is the library hub_local."""

from __future__ import annotations

import click

from hub_cli.commands.local import build, invoke, put_events, run
from hub_cli.settings import Settings, pass_settings


@click.group("local")
@pass_settings
def command(settings: Settings) -> None:
    """The template's stack on 127.0.0.1 without Docker: `run` serves it, `invoke` runs one function on a fresh
    one, `put-events` puts events on a running one's bus; `openapi`, `expand` and `layer-size` serve the build."""
    if not settings.local:
        raise click.UsageError("hub local acts on this machine only: drop --stage")


for subcommand in (run.command, invoke.command, put_events.command, build.openapi, build.expand, build.layer_size):
    command.add_command(subcommand)
