"""`hub reconcile [CAMPAIGN]`: run the donation ingester's reconciliation now, one campaign per invocation."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final

import click
from botocore.config import Config

from hub_cli import ui
from hub_cli.errors import EXIT_USAGE, CliError
from hub_cli.settings import Settings, pass_settings
from hub_cli.target import FUNCTION_TYPES, TABLE_TYPES, StackResource, Target

INGESTER: Final = "DonationIngesterFunction"
CAMPAIGNS_TABLE: Final = "CampaignsTable"
# The scheduled run's window (the ingester's RECONCILE_AFTER_STOP_SECONDS default): a stopped campaign's last
# donations may still come in.
STOPPED_WITHIN_SECONDS: Final = 86_400
# Longer than the function's Timeout (60 s in the template): a slow campaign is the function's timeout to report,
# not a read timeout of ours followed by botocore invoking it again.
INVOKE_CONFIG: Final = Config(read_timeout=70, connect_timeout=10)
CAMPAIGN_REF: Final = re.compile(r"[0-9]+/[^/\s]+/[^/\s]+")
# Statuses after which the campaign's money is not known to match; `gone` (Umbrella no longer lists the campaign,
# as for every stopped one) is not among them, unless the result says donations may be unseen (`possibly_unseen`:
# the stop did not reconcile it first), which is shown in red and exits 1 like drift.
FAILED: Final = frozenset({"partner_unavailable", "failed", "unknown_campaign"})
ERROR_TEXT_LIMIT: Final = 300


@click.command(
    "reconcile",
    short_help="Reconcile donations with Umbrella now (all campaigns, or one).",
    epilog=(
        "Exit status: 0 when every campaign matches Umbrella, 1 when one drifted, could not be reconciled, or is gone "
        "at Umbrella with donations possibly unseen."
    ),
)
@click.argument("campaign", required=False, metavar="[CAMPAIGN]")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON (the ingester's summary shape).")
@pass_settings
def command(settings: Settings, campaign: str | None, as_json: bool) -> int:
    """Recover the donations whose callbacks never arrived, then compare each campaign's total with Umbrella's.

    CAMPAIGN is serviceId/route/donationCode (e.g. 1/hjerte/anna50). Without it, every campaign the scheduled run
    covers: the active ones and those stopped within the last day. DonationIngesterFunction is invoked once per
    campaign (a progress bar on stderr), then a summary table shows each campaign's status, the donations fetched
    from Umbrella and recovered, and the ledger's total against Umbrella's (drift in red).

    Exits 1 when any campaign drifted (the ledger and Umbrella disagree), failed (Umbrella unavailable, the
    campaign unknown) or is gone with donations possibly unseen (Umbrella forgot it before any reconcile at its
    stop: the ReconciliationGone metric), 0 otherwise.
    """
    if campaign is not None and not CAMPAIGN_REF.fullmatch(campaign):
        raise CliError(f"CAMPAIGN {campaign!r} is not serviceId/route/donationCode (e.g. 1/hjerte/anna50)", EXIT_USAGE)
    target = settings.target()
    function = _ingester(target)
    refs = [campaign] if campaign is not None else reconcilable_campaigns(target, now=int(time.time()))
    results = _run(target, function.physical_id, refs)
    if campaign is not None and results[0]["status"] == "unknown_campaign":
        raise CliError(f"no campaign {campaign} in {target.label}: the hub never created it")
    summary = summarise(results)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
    else:
        _print(target, summary)
    return 1 if summary["drift"] or summary["failed"] or summary["gone"] else 0


def _ingester(target: Target) -> StackResource:
    try:
        return target.find(INGESTER, FUNCTION_TYPES, "function")
    except CliError:
        how = "make run with the current template" if target.local else f"sam deploy --config-env {target.stage}"
        raise CliError(f"{target.label} has no {INGESTER}, which reconciles donations ({how})") from None


def reconcilable_campaigns(target: Target, *, now: int) -> list[str]:
    """The campaigns the scheduled run would reconcile, read as it reads them (CampaignsTable's ReconcilableIndex)."""
    from hub_core import reconcile_index  # noqa: PLC0415 - functions/ joins the path in app.main

    table = target.find(CAMPAIGNS_TABLE, TABLE_TYPES, "table").physical_id
    request = reconcile_index.query_since(table, now - STOPPED_WITHIN_SECONDS, "campaign_ref", {})
    pages = target.client("dynamodb").get_paginator("query").paginate(**request)
    return sorted(item["campaign_ref"]["S"] for page in pages for item in page.get("Items", []))


def _run(target: Target, function_name: str, refs: Sequence[str]) -> list[dict[str, Any]]:
    lambda_client = target.client("lambda", config=INVOKE_CONFIG)
    results: list[dict[str, Any]] = []
    with ui.progress() as bar:
        task = bar.add_task("reconciling", total=len(refs))
        for ref in refs:
            bar.update(task, description=ref)
            try:
                results.append(_reconcile(lambda_client, function_name, ref))
            except CliError as error:
                if len(refs) > 1:
                    raise CliError(f"{error} ({len(results)} of {len(refs)} campaigns reconciled before)") from None
                raise
            bar.advance(task)
    return results


def _reconcile(lambda_client: Any, function_name: str, ref: str) -> dict[str, Any]:
    """One campaign's result, as the ingester reports it."""
    response = lambda_client.invoke(
        FunctionName=function_name,
        InvocationType="RequestResponse",
        Payload=json.dumps({"reconcile": {"campaigns": [ref]}}).encode(),
    )
    payload = response["Payload"].read()
    if response.get("FunctionError"):
        raise CliError(f"{INGESTER} failed on {ref}: {error_text(payload)}")
    try:
        [result] = json.loads(payload)["campaigns"]
        if not isinstance(result, dict) or "status" not in result:
            raise TypeError
    except (ValueError, KeyError, TypeError):
        raise CliError(
            f"{INGESTER} did not answer a reconciliation summary for {ref}: is it the donation ingester?"
        ) from None
    return result


def error_text(payload: bytes) -> str:
    """`errorType: errorMessage` of Lambda's error document, in one short line."""
    try:
        document = json.loads(payload)
    except ValueError:
        document = None
    if isinstance(document, dict) and document.get("errorType"):
        text = f"{document['errorType']}: {document.get('errorMessage', '')}".rstrip(": ")
    else:
        text = payload.decode(errors="replace") or "no error document"
    text = " ".join(text.split())
    return text if len(text) <= ERROR_TEXT_LIMIT else text[: ERROR_TEXT_LIMIT - 1] + "…"


def summarise(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The ingester's summary shape over every invocation, plus how many failed."""
    return {
        "campaigns": list(results),
        "reconciled": len(results),
        "left": 0,
        "drift": sum(1 for result in results if result["status"] == "drift"),
        "recovered": sum(int(result.get("recovered") or 0) for result in results),
        "failed": sum(1 for result in results if result["status"] in FAILED),
        "gone": sum(1 for result in results if _possibly_unseen(result)),
    }


def _possibly_unseen(result: Mapping[str, Any]) -> bool:
    return result.get("status") == "gone" and bool(result.get("possibly_unseen"))


def kroner(amount: object) -> str:
    """Whole øre as kroner (5000 → 50.00); unknown (Umbrella unavailable) as n/a."""
    if not isinstance(amount, int):
        return "n/a"
    sign = "-" if amount < 0 else ""
    return f"{sign}{abs(amount) // 100:,}.{abs(amount) % 100:02d}"


def _print(target: Target, summary: Mapping[str, Any]) -> None:
    console = ui.out()
    results = summary["campaigns"]
    if not results:
        console.print(f"No campaign to reconcile in {target.label}: none is active or was stopped within the last day.")
        return
    table = ui.table(
        f"Reconciliation of {target.label}",
        "campaign",
        "status",
        "fetched",
        "recovered",
        "republished",
        "ledger (kr)",
        "Umbrella (kr)",
        "difference",
    )
    for column in table.columns[2:]:
        column.justify = "right"
    for result in results:
        ledger, partner = result.get("ledger_amount"), result.get("partner_amount")
        difference = partner - ledger if isinstance(ledger, int) and isinstance(partner, int) else None
        status = str(result["status"])
        style: str | None = None
        if _possibly_unseen(result):
            status, style = "gone-unseen", "bold red"
        elif status == "drift":
            style = "bold red"
        elif status in FAILED:
            style = "red"
        elif status == "gone":
            style = "dim"
        table.add_row(
            str(result["campaign"]),
            status,
            str(result.get("fetched", 0)),
            str(result.get("recovered", 0)),
            str(result.get("republished", 0)),
            kroner(ledger),
            kroner(partner),
            "" if not difference else ("+" if difference > 0 else "") + kroner(difference),
            style=style,
        )
    console.print(table)
    console.print(
        f"{summary['reconciled']} campaign(s) reconciled: {summary['recovered']} donation(s) recovered, "
        f"{summary['drift']} drifting, {summary['failed']} failed."
    )
    if summary["drift"]:
        console.print(
            "Drift: Umbrella's collected amount differs from the ledger's (difference = Umbrella - ledger); the "
            "ingester logs each one as 'ledger differs from Umbrella's collected amount'."
        )
    if summary["failed"]:
        console.print("Failed campaigns keep their watermark: run hub reconcile again once Umbrella is back.")
    if summary["gone"]:
        console.print(
            f"{summary['gone']} campaign(s) gone at Umbrella without a reconcile at their stop: donations whose "
            "callback was lost may never be counted (ReconciliationGone; see docs/exactly-once.md)."
        )
