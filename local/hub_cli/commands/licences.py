"""`hub licences retry ORDER`: retry an order Pimenko refused, with corrected data (docs/exactly-once.md)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Final

import click
from botocore.config import Config

from hub_cli import ui
from hub_cli.errors import EXIT_USAGE, CliError
from hub_cli.settings import Settings, pass_settings
from hub_cli.target import FUNCTION_TYPES, TABLE_TYPES, Target

FUNCTION: Final = "LicenceIssuanceFunction"
TABLE: Final = "LicencesTable"
# Longer than the function's Timeout (15 s): a slow Pimenko is the function's to report, not a read timeout of ours.
INVOKE_CONFIG: Final = Config(read_timeout=30, connect_timeout=10, retries={"max_attempts": 1})


@click.group("licences", short_help="Licence orders: retry a refused one with corrected data.")
def command() -> None:
    """Licence orders of the shop, as LicenceIssuanceFunction records them."""


@command.command("retry", epilog="Exit status: 0 when the order is issued (or queued for its turn), 1 otherwise.")
@click.argument("order_id", metavar="ORDER")
@click.option("--url", help="The corrected site URL.")
@click.option("--product-id", type=int, help="The corrected product id.")
@click.option("--licence-type", type=int, help="The corrected licence type id.")
@click.option("--customer-reference", help="The shop's customer reference (default: the refused order's).")
@pass_settings
def retry(
    settings: Settings,
    *,
    order_id: str,
    url: str | None,
    product_id: int | None,
    licence_type: int | None,
    customer_reference: str | None,
) -> int:
    """Send the refused ORDER again with the corrections given, as the shop's LicenceRequested event would.

    The function reopens the refusal (kept in the order's history) and issues the order once; a repeat of this
    command after that answers the same licence, never a second one."""
    target = settings.target()
    refused = _refused_order(target, order_id)
    detail = {
        "order_id": order_id,
        "customer_reference": customer_reference or refused.get("customer_reference", {}).get("S"),
        "product_id": product_id if product_id is not None else int(refused["product_id"]["N"]),
        "licence_type": licence_type if licence_type is not None else int(refused["licence_type"]["N"]),
        "url": url or refused["first_site"]["S"],
    }
    if not detail["customer_reference"]:
        raise CliError("the refused order keeps no customer reference: pass --customer-reference", EXIT_USAGE)
    if (detail["url"], detail["product_id"], detail["licence_type"]) == (
        refused["first_site"]["S"], int(refused["product_id"]["N"]), int(refused["licence_type"]["N"]),
    ) and customer_reference is None:  # fmt: skip
        raise CliError(
            "nothing corrected: pass --url, --product-id, --licence-type or --customer-reference", EXIT_USAGE
        )
    result = _invoke(target, detail)
    console = ui.out()
    if result.get("requeued"):
        console.print(f"Order {order_id} is queued for its turn (another of its kind is being created).")
        return 0
    if result.get("state") == "issued":
        console.print(f"Order {order_id} issued: Pimenko licence {result.get('licence_id')}.")
        return 0
    if result.get("rejected"):
        fields = ", ".join(str(problem.get("field")) for problem in result.get("problems", []))
        console.print(f"[red]Order {order_id} not retried: invalid {fields}.[/red]")
        return 1
    console.print(f"[red]Order {order_id} refused again by Pimenko.[/red]")
    return 1


def _refused_order(target: Target, order_id: str) -> dict[str, Any]:
    table = target.find(TABLE, TABLE_TYPES, "table").physical_id
    item = (
        target.client("dynamodb")
        .get_item(TableName=table, Key={"pk": {"S": f"order#{order_id}"}}, ConsistentRead=True)
        .get("Item")
    )
    if item is None:
        raise CliError(f"no licence order {order_id} in {target.label}")
    if item.get("state", {}).get("S") != "rejected":
        raise CliError(f"order {order_id} is {item.get('state', {}).get('S')}, not refused: nothing to retry")
    return dict(item)


def _invoke(target: Target, detail: dict[str, Any]) -> dict[str, Any]:
    function = target.find(FUNCTION, FUNCTION_TYPES, "function").physical_id
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "LicenceRequested",
        "source": "hub-cli",
        "account": "000000000000",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": "eu-west-1",
        "resources": [],
        "detail": detail,
    }
    response = target.client("lambda", config=INVOKE_CONFIG).invoke(
        FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
    )
    payload = response["Payload"].read()
    if response.get("FunctionError"):
        raise CliError(f"{FUNCTION} failed on the retry: {payload.decode(errors='replace')[:300]}")
    answer = json.loads(payload)
    return answer if isinstance(answer, dict) else {}
