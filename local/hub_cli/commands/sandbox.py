"""`hub sandbox donate`: the local Umbrella sandbox plays a donor, and calls the hub back as Umbrella would."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any, Final

import click

from hub_cli import ui
from hub_cli.commands.campaigns import parse_campaign
from hub_cli.errors import EXIT_USAGE, CliError
from hub_cli.settings import Settings, pass_settings

# Only Umbrella acts on its own (it calls the hub back); MiiMOSA, Pimenko and app's miles only answer the hub.
UMBRELLA: Final = "umbrella"
DONATE_PATH: Final = "/_sandbox/donate"


@click.group("sandbox")
def command() -> None:
    """Make the local stack's partner sandboxes act as the partners would (make run only)."""


@command.command("donate")
@click.argument("campaign", metavar="SERVICE/ROUTE/CODE")
@click.option("--amount", type=click.IntRange(min=1), help="In øre (5000 = 50 kr); default: the campaign's amount.")
@click.option("--no-callback", is_flag=True, help="Record it at Umbrella only: a donation for reconciliation to find.")
@click.option(
    "--form",
    "payload_form",
    type=click.Choice(["json", "form", "query"]),
    default="json",
    show_default=True,
    help="How the callback carries the donation.",
)
@click.option("--repeat", type=click.IntRange(min=1, max=100), default=1, show_default=True, help="Deliveries.")
@pass_settings
def donate(
    settings: Settings, *, campaign: str, amount: int | None, no_callback: bool, payload_form: str, repeat: int
) -> int:
    """Donate to CAMPAIGN (e.g. 1/hjerte/anna50) at the Umbrella sandbox, which then calls the campaign's
    callbackUrl with the donation, as Umbrella does; `GET /campaigns/…` counts it once the fold ran. With
    --no-callback Umbrella holds a donation the hub never heard of: `hub reconcile CAMPAIGN` recovers it.
    Exit 1 when a callback was not answered 200."""
    if not settings.local:
        raise CliError("hub sandbox acts on the local stack's sandboxes only (no --stage)", EXIT_USAGE)
    service_id, route, code = parse_campaign(campaign)
    target = settings.target()
    partner = target.partners.get(UMBRELLA) or {}
    if not partner.get("sandbox"):
        raise CliError("the local stack runs no Umbrella sandbox (UMBRELLA_BASE_URL points elsewhere)")
    spec: dict[str, Any] = {"serviceId": service_id, "route": route, "donationCode": code}
    spec |= {"deliver": not no_callback, "payload_form": payload_form, "repeat": repeat}
    if amount is not None:
        spec["amount"] = amount
    outcome = _post(str(partner["url"]).rstrip("/") + DONATE_PATH, spec)
    donation = outcome["donation"]
    statuses = [delivery.get("status") or delivery.get("error") for delivery in outcome["deliveries"]]
    table = ui.table(f"Donation to {campaign} at the Umbrella sandbox", "messageKey", "amount", "callback")
    table.add_row(donation["messageKey"], _kr(donation["amount"]), ", ".join(map(str, statuses)) or "not sent")
    ui.out().print(table)
    return 0 if all(status == 200 for status in statuses) else 1


def _post(url: str, spec: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(  # noqa: S310 - the sandbox's URL from the loopback stack's own description
        url, data=json.dumps(spec).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - see above
            answer: dict[str, Any] = json.loads(response.read())
    except urllib.error.HTTPError as error:
        try:
            reasons = "; ".join(json.loads(error.read()).get("errors", [])) or str(error.code)
        except ValueError:
            reasons = str(error.code)
        raise CliError(f"the Umbrella sandbox refused the donation: {reasons}") from None
    except (urllib.error.URLError, OSError) as error:
        raise CliError(f"the Umbrella sandbox does not answer at {url} ({getattr(error, 'reason', error)})") from None
    return answer


def _kr(ore: int) -> str:
    return f"{ore / 100:,.2f} kr"
