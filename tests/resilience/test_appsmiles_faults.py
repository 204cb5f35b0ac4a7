"""app's miles down, slow or rate-limiting while events reach the loyalty relay through the bus and its queue: every
member's action arrives once after the partner recovers — none lost, none doubled."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.resilience.conftest import READ_TIMEOUT, wait_for

pytestmark = pytest.mark.e2e

EVENTS = 4


def lead_captured(live: Any, member: str) -> tuple[dict[str, Any], str]:
    """A LeadCaptured as lead intake publishes it (a member flag, the lead's id), and the lead naming the member."""
    lead_id = str(uuid.uuid4())
    live.boto3_client("dynamodb").put_item(
        TableName=live.physical("LeadsTable"),
        Item={"lead_id": {"S": lead_id}, "apps_miles_user_id": {"S": member}},
    )
    detail = {"lead_id": lead_id, "collect_type": "donation", "apps_miles_member": True}
    return {"Source": "partner-hub.lead-intake", "DetailType": "LeadCaptured", "Detail": json.dumps(detail)}, lead_id


def actions_by_key(appsmiles: Any, keys: list[str]) -> list[int]:
    return [sum(1 for action in appsmiles.actions if action["param1"] == key) for key in keys]


@pytest.mark.parametrize(
    "outage",
    [
        {"mode": "status", "status": 503, "for_seconds": 2.5},
        {"mode": "hang", "delay": 3 * READ_TIMEOUT, "for_seconds": 2.5},
        {"mode": "status", "status": 429, "retry_after": 1, "count": 3},
        {"mode": "slow", "delay": 3 * READ_TIMEOUT, "count": 2},
    ],
    ids=["5xx-window", "timeouts-window", "429-retry-after", "slow-beyond-timeout"],
)
def test_actions_queued_during_a_partner_failure_arrive_once_after_it(live, appsmiles, outage):
    mode = outage.pop("mode")
    appsmiles.faults.add(mode, path_prefix="/buffer/store", **outage)
    events, keys = zip(*(lead_captured(live, f"member-{uuid.uuid4().hex[:8]}") for _ in range(EVENTS)), strict=True)

    assert live.put_events(list(events))["FailedEntryCount"] == 0

    assert wait_for(lambda: actions_by_key(appsmiles, list(keys)) == [1] * EVENTS, timeout=60), actions_by_key(
        appsmiles, list(keys)
    )
    assert live.drain("LoyaltyActionsQueue", timeout=30)
    assert actions_by_key(appsmiles, list(keys)) == [1] * EVENTS
