"""`hub campaigns show CAMPAIGN`: one campaign as CampaignsTable holds it, with the callback URL Umbrella was given;
`hub campaigns index`: put campaigns made before ReconcilableIndex existed into it (once, after that deploy).

The callback URL carries the campaign's bearer token, so it is shown only here, to operators with the stack's
credentials, never on a public route; the hub itself keeps only the token's hash, so only the local stack (whose
Umbrella sandbox holds the URL) can show the token.
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
# The ingester's route (CampaignLifecycleFunction's CALLBACK_PATH default).
CALLBACK_PATH: Final = "/donations/callback"


def parse_campaign(campaign: str) -> tuple[int, str, str]:
    """serviceId/route/donationCode, or a usage error saying so."""
    match = CAMPAIGN_REF.fullmatch(campaign)
    if match is None:
        raise CliError(f"CAMPAIGN {campaign!r} is not serviceId/route/donationCode (e.g. 1/hjerte/anna50)", EXIT_USAGE)
    return int(match[1]), match[2], match[3]


# What `hub campaigns show` prints in place of a token it cannot know (only its hash is stored).
HIDDEN_TOKEN: Final = "<token: stored only as its hash; PUT the campaign to issue a new one>"


def callback_token(target: Target, campaign_ref: str) -> str | None:
    """The token ending the campaign's callbackUrl, where it can be read; None where it cannot.

    The hub keeps only a hash of each campaign's random token (hub_core.tokens), so only Umbrella holds the URL
    whole. Locally that is the Umbrella sandbox, asked as `hub invoke --running` asks it; Umbrella's own API has no
    call that reads a campaign's callbackUrl back, so on AWS the token cannot be shown."""
    if not target.local:
        return None
    from hub_cli.commands.invoke import RunningSandboxes  # noqa: PLC0415 - a sibling command's helper
    from hub_local.examples import ExampleError  # noqa: PLC0415
    from hub_local.examples import callback_token as held_token  # noqa: PLC0415

    try:
        return held_token(RunningSandboxes(target), campaign_ref)
    except ExampleError:
        return None


def callback_url(target: Target, base: str, service_id: int, route: str, code: str) -> str:
    segments = "/".join(quote(str(part), safe="") for part in (service_id, route, code))
    token = callback_token(target, f"{service_id}/{route}/{code}")
    return f"{base.rstrip('/')}{CALLBACK_PATH}/{segments}/{token or HIDDEN_TOKEN}"


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


@command.command("index")
@pass_settings
def index(settings: Settings) -> int:
    """Put into ReconcilableIndex the active and stopped campaigns written before it existed, so that
    reconciliation visits them; run once after the deploy that adds the index. Campaigns already in it are left
    as they are, so a second run changes nothing."""
    from hub_core import reconcile_index  # noqa: PLC0415 - functions/ joins the path in app.main

    target = settings.target()
    table_name = target.find(CAMPAIGNS_TABLE, TABLE_TYPES, "table").physical_id
    dynamodb = target.client("dynamodb")
    # A Scan, once, by an operator: the one a deploy needs so that the scheduled run never scans again.
    pages = dynamodb.get_paginator("scan").paginate(
        TableName=table_name,
        ProjectionExpression="campaign_ref, #state, stopped_at",
        FilterExpression="attribute_not_exists(#partition) AND #state IN (:active, :stopped)",
        ExpressionAttributeNames={"#state": "state", "#partition": reconcile_index.PARTITION_ATTRIBUTE},
        ExpressionAttributeValues={":active": {"S": "active"}, ":stopped": {"S": "stopped"}},
    )
    added = 0
    for item in (item for page in pages for item in page.get("Items", [])):
        stopped_at = item.get("stopped_at", {}).get("N")
        if item["state"]["S"] == "stopped" and stopped_at is None:
            continue  # never happens (a stop records its time); without one it cannot be placed
        values = reconcile_index.open_values(None if item["state"]["S"] == "active" else int(stopped_at))
        try:
            dynamodb.update_item(
                TableName=table_name,
                Key={"campaign_ref": item["campaign_ref"]},
                UpdateExpression="SET #partition = :partition, #open_until = :open_until",
                # Not if the lifecycle wrote them meanwhile, nor if the state changed since the Scan read it.
                ConditionExpression="attribute_not_exists(#partition) AND #state = :state",
                ExpressionAttributeNames={
                    "#partition": reconcile_index.PARTITION_ATTRIBUTE,
                    "#open_until": reconcile_index.OPEN_UNTIL_ATTRIBUTE,
                    "#state": "state",
                },
                ExpressionAttributeValues={
                    ":partition": {"S": values[reconcile_index.PARTITION_ATTRIBUTE]},
                    ":open_until": {"N": str(values[reconcile_index.OPEN_UNTIL_ATTRIBUTE])},
                    ":state": item["state"],
                },
            )
        except dynamodb.exceptions.ConditionalCheckFailedException:
            continue
        added += 1
    ui.out().print(f"{added} campaign(s) added to ReconcilableIndex in {target.label}")
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
