"""`hub member sign ID`: the site signature an app's miles member id needs, with the stack's own signing key."""

from __future__ import annotations

import time

import click

from hub_cli import ui
from hub_cli.errors import EXIT_USAGE, CliError
from hub_cli.settings import Settings, pass_settings

KEY_NAME = "site/member-signing-key"
PARAMETER_PATH = "/partner-hub/{stage}/"
_MAX_VALID_FOR = 86_400


@click.group("member")
def command() -> None:
    """App's miles member ids: what a website sends next to one so that it earns points."""


@command.command("sign")
@click.argument("member_id")
@click.option(
    "--valid-for",
    type=click.IntRange(1, _MAX_VALID_FOR),
    default=3600,
    show_default=True,
    help="Seconds the signature stays valid (the functions refuse more than a day by default).",
)
@pass_settings
def sign_member(settings: Settings, member_id: str, valid_for: int) -> int:
    """Print the apps_miles_signature (appsMilesSignature) for MEMBER_ID: what the organisation's site computes for
    its logged-in member, for trying a form locally or checking a site's implementation."""
    import re  # noqa: PLC0415

    from hub_core.config import ConfigError  # noqa: PLC0415 - functions/ joins the path in app.main
    from hub_core.identifiers import USER_ID_PATTERN  # noqa: PLC0415
    from hub_core.member_signature import sign  # noqa: PLC0415

    if not re.fullmatch(USER_ID_PATTERN, member_id):
        raise CliError("MEMBER_ID must be 1 to 64 letters, digits or . _ : @ -", EXIT_USAGE)
    target = settings.target(with_resources=False)
    parameter = PARAMETER_PATH.format(stage=target.stage) + KEY_NAME
    ssm = target.client("ssm")
    try:
        ring = ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        raise CliError(f"{parameter} is not set: `hub secrets set {KEY_NAME}` first") from None
    try:
        signature = sign(member_id, int(time.time()) + valid_for, ring)
    except ConfigError as error:  # names the rule, never the key
        raise CliError(f"{KEY_NAME}: {error}") from None
    ui.out().print(signature, soft_wrap=True)
    return 0
