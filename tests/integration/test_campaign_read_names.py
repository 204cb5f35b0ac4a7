"""The hub's read routes take Umbrella's names too: timestampSince beside since, ISO offsets with + or %2B, and
Umbrella's own collected amount beside the hub's verified ledger."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from tests.conftest import load_event
from tests.integration.conftest import response_json
from tests.integration.test_campaign_lifecycle import campaign_event, create, fold_umbrellas_donations, invoke

# Donations an hour apart, after the campaign's creation (reconciliation reads from there), on whole minutes.
START = (int(time.time()) // 60 + 2) * 60
FIRST, SECOND = START, START + 3600
BETWEEN = START + 1800
PLUS_ONE = timezone(timedelta(hours=1))


def donations(stack, fields: dict[str, Any], token: str, query: dict[str, str], raw: str | None = None):
    event = campaign_event("get_donations.json", fields, token, query=query)
    if raw is not None:
        event["rawQueryString"] = raw
    return invoke(stack, event)


def collected(stack, fields: dict[str, Any], token: str, query: dict[str, str] | None = None):
    event = campaign_event("get_collected.json", fields, token, query=query or {})
    return invoke(stack, event)


@pytest.fixture
def campaign(stack, umbrella):
    fields, body = create(stack)
    for amount, moment in ((1000, FIRST), (2500, SECOND)):
        umbrella.donate(
            fields["serviceId"], fields["route"], fields["donationCode"], amount=amount, deliver=False,
            donated_at=datetime.fromtimestamp(moment, UTC),
        )  # fmt: skip
    return fields, body["manageToken"]


def test_timestamp_since_is_umbrellas_name_for_since(stack, campaign) -> None:
    fields, token = campaign
    by_umbrella = response_json(donations(stack, fields, token, {"timestampSince": str(BETWEEN)}))
    by_hub = response_json(donations(stack, fields, token, {"since": str(BETWEEN)}))
    assert (by_umbrella["count"], by_umbrella["total"]) == (1, 2500)
    assert by_umbrella["donations"] == by_hub["donations"]
    assert by_umbrella["timestampSince"] == BETWEEN


LOCAL = datetime.fromtimestamp(BETWEEN, PLUS_ONE).strftime("%Y-%m-%dT%H:%M:%S")


@pytest.mark.parametrize(
    "since",
    [
        f"{LOCAL}+01:00",  # %2B decoded by the gateway
        f"{LOCAL} 01:00",  # a literal + decoded to a space
        f"{LOCAL}%2B01:00",  # %2B encoded twice
        f"{LOCAL}.000 0100",
        datetime.fromtimestamp(BETWEEN, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    ],
)
def test_iso_offsets_with_plus_in_every_spelling(stack, campaign, since: str) -> None:
    fields, token = campaign
    response = donations(stack, fields, token, {"since": since})
    assert response["statusCode"] == 200, response["body"]
    listed = response_json(response)
    assert (listed["count"], listed["total"]) == (1, 2500)
    assert listed["timestampSince"] == BETWEEN


@pytest.mark.parametrize(
    ("query", "field"),
    [({"timestampSince": "2026-11-24"}, "timestampSince"), ({"since": "0", "timestampSince": "0"}, "timestampSince")],
)
def test_a_bad_or_doubled_timestamp_since_is_a_422_naming_it(stack, campaign, query, field) -> None:
    fields, token = campaign
    response = donations(stack, fields, token, query)
    assert response["statusCode"] == 422
    assert response_json(response)["problems"][0]["field"] == field


def test_umbrellas_collected_amount_beside_the_ledger(stack, umbrella, campaign) -> None:
    fields, token = campaign
    before = response_json(collected(stack, fields, token))
    assert before["umbrella"] == {"amount": 3500, "timestampSince": None, "note": None}
    assert before["ledger"]["amount"] == 0  # no callback came: the hub has verified nothing yet
    fold_umbrellas_donations(stack, fields)
    after = response_json(collected(stack, fields, token))
    assert (after["ledger"]["amount"], after["umbrella"]["amount"]) == (3500, 3500)
    since = response_json(collected(stack, fields, token, {"timestampSince": str(BETWEEN)}))
    assert since["umbrella"] == {"amount": 2500, "timestampSince": BETWEEN, "note": None}


def test_collected_needs_the_manage_token_and_the_event_file_is_served(stack, campaign) -> None:
    fields, _ = campaign
    assert collected(stack, fields, None)["statusCode"] == 401  # type: ignore[arg-type]
    invoke(stack, load_event("campaign_lifecycle/post_campaign.json"))
    assert invoke(stack, load_event("campaign_lifecycle/get_collected.json"))["statusCode"] in (401, 403)


def test_a_stopped_campaign_has_no_umbrella_amount_but_a_note(stack, umbrella, campaign) -> None:
    fields, token = campaign
    assert invoke(stack, campaign_event("delete_campaign.json", fields, token))["statusCode"] == 200
    body = response_json(collected(stack, fields, token))
    assert body["umbrella"]["amount"] is None
    assert "no longer" in body["umbrella"]["note"]
