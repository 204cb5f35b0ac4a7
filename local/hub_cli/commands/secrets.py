"""`hub secrets set NAME`: a partner key into SSM (SecureString) for a stage, typed at a prompt that never echoes."""

from __future__ import annotations

import getpass
import secrets as token_source
import sys
from collections.abc import Mapping
from typing import Final

import click

from hub_cli import ui
from hub_cli.errors import EXIT_USAGE, CliError
from hub_cli.settings import Settings, pass_settings

# Every secret a function reads (the *_PARAM variables of template.yaml); tests/cli checks the two agree.
SECRETS: Final[Mapping[str, str]] = {
    "miimosa/api-key": "MiiMOSA client API key (lead intake)",
    "umbrella/api-key": "Umbrella Indsamlings API apikey (campaign lifecycle)",
    "callback/signing-key": "key ring signing Umbrella callback URLs: key_id:secret lines, secrets of 32+ bytes",
    "site/member-signing-key": "keys the sites sign app's miles member ids with: one per line, 32+ bytes, first signs",
    "mlm/api-token": "Pimenko MLM API token (licence issuance)",
    "appsmiles/partner-secret": "app's miles partnerSecret for auth/token (loyalty relay, erasure)",
}
SIGNING_KEY: Final = "callback/signing-key"
MEMBER_KEY: Final = "site/member-signing-key"
# The secrets that are keys of our own, which `--generate` makes (the partners' are given by the partners).
GENERATED: Final = (SIGNING_KEY, MEMBER_KEY)
PARAMETER_PATH: Final = "/partner-hub/{stage}/"


@click.group("secrets")
def command() -> None:
    """Partner keys and the hub's own secrets, in SSM under /partner-hub/STAGE/."""


@command.command("list")
@pass_settings
def list_secrets(settings: Settings) -> int:
    """Which secrets the stage has (names and dates, never values)."""
    target = settings.target(with_resources=False)
    path = PARAMETER_PATH.format(stage=target.stage)
    ssm = target.client("ssm")
    stored = {
        parameter["Name"].removeprefix(path): parameter
        for page in ssm.get_paginator("describe_parameters").paginate(
            ParameterFilters=[{"Key": "Path", "Option": "Recursive", "Values": [path.rstrip("/")]}]
        )
        for parameter in page["Parameters"]
    }
    table = ui.table(f"Secrets of {target.label} under {path}", "name", "type", "last changed", "holds")
    missing = 0
    for name, holds in SECRETS.items():
        parameter = stored.get(name)
        if parameter is None:
            missing += 1
            table.add_row(name, "MISSING", "", holds)
        else:
            changed = parameter.get("LastModifiedDate")
            table.add_row(name, parameter.get("Type", ""), f"{changed:%Y-%m-%d %H:%M}" if changed else "", holds)
    ui.out().print(table)
    return 1 if missing else 0


def _prompted_value() -> str:
    if not sys.stdin.isatty():
        raise CliError(
            "no terminal to prompt on: run it in a terminal, or pipe the value with --from-stdin", EXIT_USAGE
        )
    first = getpass.getpass("value (not echoed): ")
    if first != getpass.getpass("again, to confirm: "):
        raise CliError("the two values differ: nothing stored")
    return first


def _check(name: str, value: str) -> None:
    if not value.strip():
        raise CliError("empty value: nothing stored", EXIT_USAGE)
    if name == SIGNING_KEY:
        # The functions' own parser, so that a ring they would refuse is never stored.
        from hub_core.config import ConfigError  # noqa: PLC0415 - functions/ joins the path in app.main
        from hub_core.tokens import KeyRing  # noqa: PLC0415

        try:
            KeyRing.parse(value)
        except ConfigError as error:  # its message names the rule, never the value
            raise CliError(f"{name}: {error}", EXIT_USAGE) from None


@command.command("set")
@click.argument("name")
@click.option("--from-stdin", is_flag=True, help="Read the value from stdin (scripts) instead of prompting.")
@click.option("--overwrite", is_flag=True, help="Replace a value that is already there (a key rotation).")
@click.option(
    "--generate",
    is_flag=True,
    help=f"{SIGNING_KEY} or {MEMBER_KEY} only: put a new random key first and keep the old ones below it (rotation).",
)
@pass_settings
def set_secret(settings: Settings, name: str, from_stdin: bool, overwrite: bool, generate: bool) -> int:
    """Store secret NAME as an SSM SecureString (the account's aws/ssm key) for the stage; the value is typed twice
    at a prompt that does not echo it, and never printed or logged."""
    if name not in SECRETS:
        raise CliError(f"unknown secret {name!r} (known: {', '.join(SECRETS)})", EXIT_USAGE)
    if generate and (name not in GENERATED or from_stdin):
        raise CliError(f"--generate is for {' and '.join(GENERATED)} alone, without --from-stdin", EXIT_USAGE)
    target = settings.target(with_resources=False)
    parameter = PARAMETER_PATH.format(stage=target.stage) + name
    ssm = target.client("ssm")
    if generate:
        try:
            current = ssm.get_parameter(Name=parameter, WithDecryption=True)["Parameter"]["Value"]
        except ssm.exceptions.ParameterNotFound:
            current = ""
        key_id = f"k{token_source.token_hex(4)}"
        # The callback ring names its keys (key_id:secret); the member ring is bare keys, one a line.
        new_key = token_source.token_urlsafe(32) if name == MEMBER_KEY else f"{key_id}:{token_source.token_urlsafe(32)}"
        value = "\n".join([new_key, *current.splitlines()]).strip()
        overwrite = True
    else:
        value = sys.stdin.read().strip() if from_stdin else _prompted_value()
    _check(name, value)
    try:
        version = ssm.put_parameter(
            Name=parameter,
            Value=value,
            Type="SecureString",
            Overwrite=overwrite,
            Description=SECRETS[name][:1024],
        )["Version"]
    except ssm.exceptions.ParameterAlreadyExists:
        raise CliError(f"{parameter} already holds a value: pass --overwrite to replace it") from None
    ui.out().print(f"stored {parameter} (SecureString, version {version}) in {target.label}")
    if generate:
        new_key_name = "a new key" if name == MEMBER_KEY else f"new key {key_id}"
        ui.out().print(
            f"{new_key_name} is first; keep the old keys while anything made with them is kept (donors' hashes, pages "
            "signed with them), then drop them from the ring with a plain `hub secrets set --overwrite`"
        )
    return 0
