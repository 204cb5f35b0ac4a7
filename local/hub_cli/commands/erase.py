"""`hub erase --email/--msisdn/--user`: erase one person's personal data from the hub and app's miles now."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

import click
from botocore.config import Config

from hub_cli import ui
from hub_cli.commands.reconcile import error_text
from hub_cli.errors import EXIT_USAGE, CliError
from hub_cli.settings import Settings, pass_settings
from hub_cli.target import FUNCTION_TYPES, StackResource, Target

ERASURE: Final = "ErasureFunction"
# Longer than the function's Timeout: a slow app's miles is the function's to report, not a retried invoke of ours.
INVOKE_CONFIG: Final = Config(read_timeout=30, connect_timeout=10, retries={"max_attempts": 1})
TABLES: Final = (
    ("leads", "LeadsTable", "deleted"),
    ("campaigns", "CampaignsTable", "creator's number and user id removed"),
    ("donations", "DonationsTable", "donor's number removed"),
    ("loyalty_records", "LoyaltyTable", "user id removed"),
    ("licences", "LicencesTable", "member id removed from the order"),
)
KINDS: Final = {"email": "e-mail", "msisdn": "msisdn", "appsMilesUserId": "app's miles user id"}


@click.command(
    "erase",
    short_help="Erase a person's personal data from the hub and app's miles.",
    epilog="Exit status: 0 when erased everywhere, 1 when app's miles could not be reached (run it again), "
    "2 for an identifier the hub does not accept.",
)
@click.option("--email", help="The person's e-mail address (their leads are deleted; case does not matter).")
@click.option("--msisdn", help="The person's mobile number, country code first (e.g. 4512345678).")
@click.option("--user", "user_id", help="The person's app's miles user id.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--json", "as_json", is_flag=True, help="Print the erasure function's report as JSON.")
@pass_settings
def command(
    settings: Settings, *, email: str | None, msisdn: str | None, user_id: str | None, yes: bool, as_json: bool
) -> int:
    """Erase one person: ErasureFunction deletes their leads, removes their number and user id from campaigns,
    donations and loyalty records (the amounts and totals stay), and deletes their app's miles user. Give at least
    one of --email, --msisdn, --user. Repeating it is harmless: it then finds nothing.

    A table shows what was erased where. MiiMOSA's copy of a lead cannot be erased through its API: the report
    says so, and the operator asks MiiMOSA.
    """
    given = {"email": email, "msisdn": msisdn, "appsMilesUserId": user_id}
    request = {name: value for name, value in given.items() if value is not None}
    if not request:
        raise CliError("give at least one of --email, --msisdn, --user", EXIT_USAGE)
    target = settings.target()
    function = _erasure_function(target)
    if not yes:
        kinds = ", ".join(KINDS[name] for name in request)
        try:
            confirmed = click.confirm(f"Erase the person with this {kinds} from {target.label}?", err=True)
        except click.Abort:
            raise CliError("not confirmed (no answer): nothing was erased; pass --yes in scripts") from None
        if not confirmed:
            raise CliError("not confirmed: nothing was erased")
    report = _invoke(target, function.physical_id, request)
    problems = report.get("problems")
    if report.get("error") == "validation_failed" and isinstance(problems, list):
        text = "; ".join(f"{p.get('field')}: {p.get('message')} ({p.get('rule')})" for p in problems)
        raise CliError(f"nothing was erased: {text}", EXIT_USAGE)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        _print(target, report)
    if report.get("error"):
        when = "once app's miles is back" if report.get("retryable") else "once app's miles' refusal is resolved"
        raise CliError(
            f"erased from the hub's tables, not at app's miles ({report['error']}: {report.get('message', '')}); "
            f"run the same hub erase again {when}"
        )
    return 0


def _erasure_function(target: Target) -> StackResource:
    try:
        return target.find(ERASURE, FUNCTION_TYPES, "function")
    except CliError:
        how = "make run with the current template" if target.local else f"sam deploy --config-env {target.stage}"
        raise CliError(f"{target.label} has no {ERASURE}, which erases people ({how})") from None


def _invoke(target: Target, function_name: str, request: Mapping[str, str]) -> dict[str, Any]:
    response = target.client("lambda", config=INVOKE_CONFIG).invoke(
        FunctionName=function_name,
        InvocationType="RequestResponse",
        Payload=json.dumps({"erase": dict(request)}).encode(),
    )
    payload = response["Payload"].read()
    if response.get("FunctionError"):
        raise CliError(f"{ERASURE} failed: {error_text(payload)}")
    try:
        report = json.loads(payload)
        if not isinstance(report, dict) or not ("erased" in report or "error" in report):
            raise TypeError
    except (ValueError, TypeError):
        raise CliError(f"{ERASURE} did not answer an erasure report: is it the erasure function?") from None
    return report


def _print(target: Target, report: Mapping[str, Any]) -> None:
    console = ui.out()
    table = ui.table(f"Erasure in {target.label}", "where", "items", "what")
    table.columns[1].justify = "right"
    erased = report.get("erased") or {}
    for key, where, what in TABLES:
        count = int(erased.get(key) or 0)
        table.add_row(where, str(count), what if count else "nothing found", style=None if count else "dim")
    outcome = report.get("appsmiles")
    if report.get("error"):
        table.add_row("app's miles", "", f"not erased: {report['error']}", style="red")
    else:
        described = {"deleted": "user deleted", "unknown": "no such user (erased before?)", "not_asked": "not asked"}
        table.add_row("app's miles", "", described.get(str(outcome), str(outcome)))
    console.print(table)
    for note in report.get("notes") or []:
        console.print(f"Note: {note}.")
