"""The local stack every in-process benchmark runs on (one way to start it, quiet, with the bench's limits), and the
new events the benchmarks send it."""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from bench.common import ROOT
from hub_core.caches import reset_all
from hub_local.stack import LocalStack

# The bench creates thousands of campaigns from one address for one number, and relays thousands of actions for one
# member: the limits stay in the path (their UpdateItem is measured) but are raised out of the way.
BENCH_LIMITS = {
    "CREATE_LIMIT_PER_MSISDN": "1000000000",
    "CREATE_LIMIT_PER_IP": "1000000000",
    "MEMBER_ACTIONS_PER_DAY": "1000000000",
}


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """The handlers log (and flush metrics) as on Lambda, into /dev/null rather than the table."""
    saved = os.dup(1)
    with open(os.devnull, "wb") as sink:
        os.dup2(sink.fileno(), 1)
        try:
            yield
        finally:
            os.dup2(saved, 1)
            os.close(saved)


@contextlib.contextmanager
def bench_stack() -> Iterator[LocalStack]:
    """The template on moto and the loopback sandboxes, in this process: no gateway, queues not pumped (the bench
    invokes what it measures itself), stdout silenced."""
    with (
        LocalStack(
            ROOT / "template.yaml", gateway_port=None, pump_queues=False, function_overrides=BENCH_LIMITS
        ) as stack,
        quiet_stdout(),
    ):
        reset_all()  # clients and settings cached against an earlier stack's endpoints would miss this one
        yield stack
        reset_all()


@contextlib.contextmanager
def function_environment(stack: LocalStack, logical_id: str) -> Iterator[None]:
    """os.environ as the function's own (template Variables resolved against this stack), restored after."""
    saved = dict(os.environ)
    os.environ.update(stack.function_env(logical_id))
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


# ------------------------------------------------------------------------------------------------ events


def load_event(relative: str) -> dict[str, Any]:
    return json.loads((ROOT / "events" / relative).read_text(encoding="utf-8"))


def new_lead_event() -> dict[str, Any]:
    event = load_event("lead_intake/post_valid.json")
    fields = json.loads(event["body"])
    fields["email"] = f"bench-{uuid.uuid4().hex[:12]}@example.org"
    event["body"] = json.dumps(fields)
    event["headers"].pop("content-length", None)
    return event


def new_campaign_event() -> tuple[dict[str, Any], dict[str, Any]]:
    event = load_event("campaign_lifecycle/post_campaign.json")
    fields = json.loads(event["body"])
    fields["donationCode"] = f"b{uuid.uuid4().hex[:10]}"
    # Another creator on another address each time: the per-number and per-IP limits would otherwise turn a
    # measured creation into a 429 after a few.
    number = uuid.uuid4().int
    fields["confirmMsisdn"] = f"45{number % 10**8:08d}"
    address = f"198.18.{number % 250}.{(number >> 8) % 250 + 1}"
    event["requestContext"]["http"]["sourceIp"] = event["headers"]["x-forwarded-for"] = address
    event["body"] = json.dumps(fields)
    return event, fields


def new_licence_event() -> tuple[dict[str, Any], str]:
    event = load_event("licence_issuance/post_licence.json")
    fields = json.loads(event["body"])
    fields["order_id"] = f"bench-{uuid.uuid4().hex[:12]}"
    event["body"] = json.dumps(fields)
    return event, fields["order_id"]


def new_erasure_event() -> dict[str, Any]:
    """events/erasure/post_erasure.json for a person of its own. The file's person is every bench donation's donor
    (the callback file's msisdn): erasing them once erased thousands of donations, and the row averaged that in."""
    event = load_event("erasure/post_erasure.json")
    tag = uuid.uuid4().hex[:12]
    number = uuid.uuid4().int
    fields = json.loads(event["body"]) | {
        "email": f"bench-{tag}@example.org",
        "msisdn": f"45{number % 10**8:08d}",
        "appsMilesUserId": f"bench-member-{tag}",
    }
    event["body"] = json.dumps(fields)
    return event


def callback_event(stack: LocalStack, fields: dict[str, Any], message_key: str) -> dict[str, Any]:
    """A JSON donation callback for the campaign of `fields`, with the token the campaign was given."""
    ref = f"{fields['serviceId']}/{fields['route']}/{fields['donationCode']}"
    # The token ends the callbackUrl Umbrella was given; the hub keeps only its hash.
    [campaign] = [c for c in stack.sandboxes["umbrella"].campaigns if c["donationCode"] == fields["donationCode"]]
    token = str(campaign["callbackUrl"]).rsplit("/", 1)[1]
    event = load_event("donation_ingester/callback_post_json.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/donations/callback/{ref}/{token}"
    event["pathParameters"] = {
        "serviceId": str(fields["serviceId"]),
        "route": fields["route"],
        "donationCode": fields["donationCode"],
        "token": token,
    }
    body = json.loads(event["body"]) | {"messageKey": message_key, "donationCode": fields["donationCode"]}
    event["body"] = json.dumps(body)
    return event


def listed_callback_event(stack: LocalStack, fields: dict[str, Any]) -> dict[str, Any]:
    """A callback for a donation Umbrella made (and so lists): the fold verifies it rather than waiting for it."""
    made = stack.sandboxes["umbrella"].donate(
        int(fields["serviceId"]), fields["route"], fields["donationCode"], deliver=False
    )["donation"]
    event = callback_event(stack, fields, made["messageKey"])
    event["body"] = json.dumps(made)
    return event


def new_campaign(stack: LocalStack) -> dict[str, Any]:
    """A campaign created through the hub (so Umbrella has it, with its callback token): its create fields."""
    post, fields = new_campaign_event()
    assert stack.invoke("CampaignLifecycleFunction", post)["statusCode"] == 201
    return fields


def new_relay_batch(stack: LocalStack) -> dict[str, Any]:
    """events/loyalty_relay/lead_captured_batch.json with a lead of its own: an action app's miles has not seen.

    The event only flags a member (it names the lead): the relay reads the member id from the lead's record, so
    the lead is stored first, as lead intake stores it. Without it the relay skips the action as anonymous and
    the row would time the skip, not a relayed action.
    """
    lead_id = str(uuid.uuid4())
    stack.boto3_client("dynamodb").put_item(
        TableName=stack.physical("LeadsTable"),
        Item={"lead_id": {"S": lead_id}, "apps_miles_user_id": {"S": f"bench-member-{lead_id[:8]}"}},
    )
    event = load_event("loyalty_relay/lead_captured_batch.json")
    record = event["Records"][0]
    body = json.loads(record["body"])
    body["detail"]["lead_id"] = lead_id
    event["Records"] = [{**record, "messageId": str(uuid.uuid4()), "body": json.dumps(body)}]
    return event


# A write path's events: given the stack (to set up what they need), a factory of new events, one per invocation.
EventFactory = Callable[[LocalStack], Callable[[], dict[str, Any]]]


def _new_callbacks(stack: LocalStack) -> Callable[[], dict[str, Any]]:
    fields = new_campaign(stack)
    return lambda: callback_event(stack, fields, f"bench-{uuid.uuid4().hex[:12]}")


# The main write path of each function, as cold start, warm CPU and cost all send it.
NEW_EVENTS: dict[str, EventFactory] = {
    "LeadIntakeFunction": lambda stack: new_lead_event,
    "CampaignLifecycleFunction": lambda stack: lambda: new_campaign_event()[0],
    "LicenceIssuanceFunction": lambda stack: lambda: new_licence_event()[0],
    "DonationIngesterFunction": _new_callbacks,
    "LoyaltyRelayFunction": lambda stack: lambda: new_relay_batch(stack),
    "ErasureFunction": lambda stack: new_erasure_event,
}
