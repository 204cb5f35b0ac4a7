"""`hub local put-events FILE`: events on the bus of a running local stack, through its gateway's control route."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import click

from hub_cli.commands.local.common import UsageError, fail, hub_url, read_json, reported
from hub_cli.commands.local.run import LOOPBACK
from hub_local.event_targets import entries_from_document
from hub_local.gateway import EVENTS_PATH


@click.command("put-events", short_help="Put events on the bus of a running stack (make run).")
@click.argument("file")
@click.option(
    "--url", default=hub_url, show_default="hub's --url, http://127.0.0.1:$PORT", help="The running stack's gateway."
)
@click.option("--bus", help="EventBusName of entries that name none (default: the template's bus).")
@reported
def command(file: str, url: str, bus: str | None) -> int:
    """Put the events of FILE (JSON: PutEvents entries, {"Entries": [...]}, or an EventBridge event; '-' reads stdin)
    on the running stack's bus; its answer goes to stdout. Exit 1 when an entry failed."""
    split = urlsplit(url)
    if split.scheme != "http" or split.hostname not in LOOPBACK:
        raise UsageError(f"--url {url} is not an http URL on this machine (127.0.0.1)")
    try:
        entries = entries_from_document(read_json(file))
    except ValueError as error:
        raise UsageError(f"event file {file}: {error}") from None
    if bus:
        entries = [{"EventBusName": bus} | entry for entry in entries]
    request = urllib.request.Request(  # noqa: S310 - http on loopback only, checked above
        url.rstrip("/") + EVENTS_PATH,
        data=json.dumps({"Entries": entries}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - see above
            answer = json.loads(response.read())
    except urllib.error.HTTPError as error:
        return fail(f"{error.code}: {error.read().decode(errors='replace')}")
    except (urllib.error.URLError, OSError) as error:
        return fail(f"no local stack at {url} ({getattr(error, 'reason', error)})")
    print(json.dumps(answer, indent=2))
    return 1 if answer.get("FailedEntryCount") else 0
