"""The events/ files as runnable examples: the earlier state a file needs (its seed) and its placeholders, filled in
from the stack at invoke time.

A file `events/<function>/<name>.json` may have a seed `events/<function>/given/<name>.json`:

    {"steps": [{"function": "CampaignLifecycleFunction", "event": "../../campaign_lifecycle/post_campaign.json"}]}

Each step is an invocation on the same stack (the event path is relative to the seed file), run in order before the
file itself; a step that fails stops the run. What a step's answer hands out once — a campaign's manage token, a
licence key — replaces the matching placeholder of later steps and of the file. The callback token is asked of
`callback_token`, the one place that knows where a campaign's token can be found.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol

SEED_DIR: Final = "given"
CALLBACK_TOKEN: Final = "REPLACE-WITH-THE-CALLBACK-TOKEN"
MANAGE_TOKEN: Final = "REPLACE-WITH-THE-MANAGE-TOKEN"
LICENCE_KEY: Final = "REPLACE-WITH-THE-LICENCE-KEY"
CALLBACK_PREFIX: Final = "/donations/callback/"


class ExampleError(Exception):
    """An events file or its seed cannot be played on this stack; the message says which and why."""


class Stack(Protocol):
    """What the examples need of a stack: invoke a function, and the partner sandboxes (LocalStack has both)."""

    def invoke(self, logical_id: str, event: Any) -> Any: ...  # pragma: no cover - a protocol

    @property
    def sandboxes(self) -> Mapping[str, Any]: ...  # pragma: no cover - a protocol


def callback_token(stack: Stack, campaign_ref: str) -> str:
    """The callback token campaign `serviceId/route/donationCode` was given.

    Read where Umbrella itself holds it, the last segment of the active campaign's callbackUrl at the Umbrella
    sandbox: that holds however the hub makes its tokens (signed or random and stored hashed), so this is the one
    function to change should the token ever live elsewhere.
    """
    umbrella = stack.sandboxes.get("umbrella")
    if umbrella is None:
        raise ExampleError("no Umbrella sandbox in this stack (UMBRELLA_BASE_URL is set) to read a callback token from")
    service_id, route, code = _campaign_parts(campaign_ref)
    for campaign in reversed(umbrella.campaigns):
        if campaign["active"] and (campaign["serviceId"], campaign["route"], campaign["donationCode"]) == (
            service_id,
            route,
            code,
        ):
            return str(campaign["callbackUrl"]).rstrip("/").rsplit("/", 1)[-1]
    raise ExampleError(f"campaign {campaign_ref} does not exist at the Umbrella sandbox: give the file a seed")


# A manage token as hub_core.tokens makes them (token_urlsafe of 32 bytes), the one such word of a confirm SMS.
MANAGE_TOKEN_PATTERN: Final = re.compile(r"[A-Za-z0-9_-]{40,}")


def manage_token_sent_to(stack: Stack, msisdn: str) -> str | None:
    """The manage token in the last confirm SMS the Umbrella sandbox sent to `msisdn`, if there is one."""
    umbrella = stack.sandboxes.get("umbrella")
    if umbrella is None:
        return None
    confirms = [sms for sms in umbrella.sent_sms(msisdn) if sms["kind"] == "confirm"]
    found = MANAGE_TOKEN_PATTERN.findall(confirms[-1]["text"]) if confirms else []
    return found[0] if len(found) == 1 else None


@dataclass
class Handouts:
    """Values answers hand out once, by the placeholder they replace."""

    values: dict[str, str] = field(default_factory=dict)

    def take_from(self, result: Any, stack: Stack | None = None, event: Any = None) -> None:
        body = _http_body(result)
        if not isinstance(body, dict):
            return
        if isinstance(body.get("manageToken"), str):
            self.values[MANAGE_TOKEN] = body["manageToken"]
        sent = _http_body(event)
        msisdn = sent.get("confirmMsisdn") if isinstance(sent, dict) else None
        if stack is not None and isinstance(body.get("campaign"), dict) and isinstance(msisdn, str):
            # A created campaign's manage token travels only in the confirm SMS: read it as its owner would.
            token = manage_token_sent_to(stack, msisdn)
            if token is not None:
                self.values[MANAGE_TOKEN] = token
        licence = body.get("licence")
        if isinstance(licence, dict) and isinstance(licence.get("key"), str):
            self.values[LICENCE_KEY] = licence["key"]


def seed_of(event_path: Path) -> Path | None:
    """The seed file of an events file, when it has one."""
    seed = event_path.parent / SEED_DIR / event_path.name
    return seed if seed.is_file() else None


def read_steps(seed: Path) -> list[tuple[str, Path]]:
    """The seed's (function, event file) steps, event paths resolved against the seed's folder."""
    try:
        document = json.loads(seed.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ExampleError(f"seed {seed}: {error}") from None
    steps = document.get("steps") if isinstance(document, dict) else None
    if not isinstance(steps, list) or not all(
        isinstance(step, dict) and isinstance(step.get("function"), str) and isinstance(step.get("event"), str)
        for step in steps
    ):
        raise ExampleError(f'seed {seed}: expected {{"steps": [{{"function": ..., "event": ...}}]}}')
    return [(step["function"], (seed.parent / step["event"]).resolve()) for step in steps]


def apply_seed(stack: Stack, event_path: Path, load: Callable[[Path], Any] | None = None) -> Handouts:
    """Run the seed of `event_path` (if any) on `stack`; what its answers handed out."""
    handouts = Handouts()
    seed = seed_of(event_path)
    if seed is None:
        return handouts
    read = load or _load_json
    for number, (function, step_path) in enumerate(read_steps(seed), start=1):
        event = fill(read(step_path), stack, handouts)
        result = stack.invoke(function, event)
        status = _failure(result)
        if status is not None:
            raise ExampleError(f"seed {seed} step {number} ({function} {step_path.name}) failed: {status}")
        handouts.take_from(result, stack, event)
    return handouts


def fill(event: Any, stack: Stack, handouts: Handouts) -> Any:
    """The event with its placeholders replaced; a placeholder nothing can fill is an ExampleError."""
    text = json.dumps(event)
    if CALLBACK_TOKEN in text:
        text = text.replace(CALLBACK_TOKEN, callback_token(stack, _callback_campaign(event)))
    for placeholder, value in handouts.values.items():
        text = text.replace(placeholder, value)
    for placeholder in (MANAGE_TOKEN, LICENCE_KEY):
        if placeholder in text:
            raise ExampleError(f"{placeholder} is in the event, but no seed step handed one out")
    return json.loads(text)


def prepare(stack: Stack, event_path: Path | None, event: Any) -> Any:
    """What `hub local invoke` runs: the seed applied (none for an event read from stdin), then the event with its
    placeholders filled in."""
    return fill(event, stack, Handouts() if event_path is None else apply_seed(stack, event_path))


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ExampleError(f"seed step {path}: {error}") from None


def _campaign_parts(campaign_ref: str) -> tuple[int, str, str]:
    service_id, route, code = ([*campaign_ref.split("/"), "", ""])[:3]
    if not service_id.isdigit() or not route or not code:
        raise ExampleError(f"{campaign_ref!r} is not a campaign reference serviceId/route/donationCode")
    return int(service_id), route, code


def _callback_campaign(event: Any) -> str:
    """The campaign a callback event is for: its path parameters, else its path."""
    parameters = event.get("pathParameters") if isinstance(event, dict) else None
    if isinstance(parameters, dict) and {"serviceId", "route", "donationCode"} <= parameters.keys():
        return f"{parameters['serviceId']}/{parameters['route']}/{parameters['donationCode']}"
    path = event.get("rawPath", "") if isinstance(event, dict) else ""
    if isinstance(path, str) and path.startswith(CALLBACK_PREFIX):
        return "/".join(path.removeprefix(CALLBACK_PREFIX).split("/")[:3])
    raise ExampleError(f"{CALLBACK_TOKEN} is in an event that names no campaign (no callback path)")


def _http_body(result: Any) -> Any:
    if not isinstance(result, dict) or not isinstance(result.get("body"), str):
        return None
    try:
        return json.loads(result["body"])
    except ValueError:
        return None


def _failure(result: Any) -> str | None:
    """Why a step's result is a failure (an HTTP status of 400 and above, a Lambda error), else None."""
    if not isinstance(result, dict):
        return None
    status = result.get("statusCode")
    if isinstance(status, int) and status >= 400:
        body = _http_body(result)
        error = body.get("error") if isinstance(body, dict) else None
        return f"HTTP {status}" + (f" {error}" if error else "")
    if "errorType" in result:
        return str(result["errorType"])
    return None
