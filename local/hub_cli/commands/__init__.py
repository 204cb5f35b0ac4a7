"""Every command group of `hub`, one module each: a new command is a new module here plus one entry in COMMANDS."""

from __future__ import annotations

import click

from hub_cli.commands.campaigns import command as campaigns_command
from hub_cli.commands.dlq import command as dlq_command
from hub_cli.commands.erase import command as erase_command
from hub_cli.commands.events import command as events_command
from hub_cli.commands.invoke import command as invoke_command
from hub_cli.commands.licences import command as licences_command
from hub_cli.commands.local import command as local_command
from hub_cli.commands.member import command as member_command
from hub_cli.commands.partners import command as partners_command
from hub_cli.commands.reconcile import command as reconcile_command
from hub_cli.commands.sandbox import command as sandbox_command
from hub_cli.commands.secrets import command as secrets_command

COMMANDS: tuple[click.Command, ...] = (
    local_command,
    invoke_command,
    events_command,
    dlq_command,
    secrets_command,
    reconcile_command,
    erase_command,
    partners_command,
    member_command,
    campaigns_command,
    sandbox_command,
    licences_command,
)
