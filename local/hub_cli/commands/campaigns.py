"""`hub campaigns show CAMPAIGN`: one campaign as CampaignsTable holds it, with the callback URL Umbrella was given.

The callback URL carries the campaign's bearer token, so it is shown only here, to operators with the stack's
credentials (SSM read of the signing key ring), never on a public route.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, Final
from urllib.parse import quote

import click

from hub_cli import ui
from hub_cli.errors import EXIT_USAGE, CliError
from hub_cli.settings import Settings, pass_settings
from hub_cli.target import TABLE_TYPES, Target

CAMPAIGNS_TABLE: Final = "CampaignsTable"
CAMPAIGN_REF: Final = re.compile(r"([0-9]+)/([^/\s]+)/([^/\s]+)")
SIGNING_KEY_PARAMETER: Final = "/partner-hub/{stage}/callback/signing-key"
# The ingester's route (CampaignLifecycleFunction's CALLBACK_PATH default).
CALLBACK_PATH: Final = "/donations/callback"


def parse_campaign(campaign: str) -> tuple[int, str, str]:
    """serviceId/route/donationCode, or a usage error saying so."""
    match = CAMPAIGN_REF.fullmatch(campaign)
    if match is None:
        raise CliError(f"CAMPAIGN {campaign!r} is not serviceId/route/donationCode (e.g. 1/hjerte/anna50)", EXIT_USAGE)
    return int(match[1]), match[2], match[3]


def callback_token(target: Target, campaign_ref: str) -> str:
    """The token ending the campaign's callbackUrl: today an HMAC of the campaign under the ring's signing key.

    The one place `hub` derives it; should tokens ever be random and stored hashed, this is what changes."""
    from hub_core.tokens import CallbackSigner  # noqa: PLC0415 - the functions' own code, on sys.path via hub

    ssm = target.client("ssm")
    name = SIGNING_KEY_PARAMETER.format(stage=target.stage)
    try:
        ring = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        raise CliError(f"no callback signing key at {name} (hub secrets set callback/signing-key)") from None
    return CallbackSigner(lambda: str(ring)).token_for(campaign_ref)


def callback_url(target: Target, base: str, service_id: int, route: str, code: str) -> str:
    segments = "/".join(quote(str(part), safe="") for part in (service_id, route, code))
    return f"{base.rstrip('/')}{CALLBACK_PATH}/{segments}/{callback_token(target, f'{service_id}/{route}/{code}')}"


@click.group("campaigns")
def command() -> None:
    """Personal donation campaigns (CampaignsTable)."""


@command.command("show")
@click.argument("campaign", metavar="SERVICE/ROUTE/CODE")
@click.option("--json", "as_json", is_flag=True, help="Print the fields as JSON.")
@pass_settings
def show(settings: Settings, *, campaign: str, as_json: bool) -> int:
    """One campaign: its state, amount, dates and the callback URL Umbrella calls (which holds its token: keep it
    among operators). The creator's number is masked."""
    service_id, route, code = parse_campaign(campaign)
    target = settings.target()
    table_name = target.find(CAMPAIGNS_TABLE, TABLE_TYPES, "table").physical_id
    item = (
        target.client("dynamodb")
        .get_item(TableName=table_name, Key={"campaign_ref": {"S": campaign}}, ConsistentRead=True)
        .get("Item")
    )
    if item is None:
        raise CliError(f"no campaign {campaign} in {target.label}")
    fields = _fields(item)
    fields["callbackUrl"] = callback_url(target, str(item["callback_base"]["S"]), service_id, route, code)
    if as_json:
        click.echo(json.dumps(fields, indent=2))
        return 0
    table = ui.table(f"Campaign {campaign} in {target.label}", "field", "value")
    for name, value in fields.items():
        table.add_row(name, str(value))
    ui.out().print(table)
    return 0


def _fields(item: dict[str, Any]) -> dict[str, Any]:
    from partners.redact import mask_msisdn  # noqa: PLC0415 - the layer's code, on sys.path via hub

    def text(name: str) -> str:
        return str(item.get(name, {}).get("S", ""))

    def number(name: str) -> int | None:
        raw = item.get(name, {}).get("N")
        return None if raw is None else int(raw)

    def when(name: str) -> str:
        seconds = number(name)
        return "" if seconds is None else datetime.fromtimestamp(seconds, UTC).isoformat()

    return {
        "campaign": text("campaign_ref"),
        "state": text("state"),
        "amount": number("amount"),
        "answerMessage": text("answer_message"),
        "confirmText": text("confirm_text"),
        "creator": mask_msisdn(text("confirm_msisdn")) if text("confirm_msisdn") else "",
        "appsMilesMember": "yes" if text("apps_miles_user_id") else "no",
        "createdAt": when("created_at"),
        "updatedAt": when("updated_at"),
        "stoppedAt": when("stopped_at"),
    }
