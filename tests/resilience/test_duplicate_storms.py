"""A hundred identical requests or events at once on every exactly-once path: one effect each.

Through the gateway the local stack runs one invocation at a time (`LocalStack.invoke` holds a lock: functions share
this process and its os.environ), so the HTTP storms test what a burst of repeats does, not true parallel Lambdas.
The guarantee itself lives in DynamoDB's conditional writes, so each store is also raced directly from 100 threads.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from typing import Any

import pytest
import requests

from campaign_lifecycle.models import CampaignForm
from campaign_lifecycle.store import CampaignStore, Claim
from donation_ingester.models import event_id_for
from donation_ingester.store import DonationLedger
from hub_core import aws
from hub_core.appsmiles import appsmiles_client
from hub_core.ledger import donation_pk
from lead_intake.models import LeadStatus
from lead_intake.store import LeadRecord, LeadStore
from licence_issuance.models import LicenceRequest
from licence_issuance.store import LicenceStore, OrderRecord
from loyalty_relay.models import Outcome, PendingAction, Settlement
from loyalty_relay.store import LoyaltyStore
from tests.resilience.conftest import concurrently, unique, wait_for
from tests.resilience.test_mlm_faults import licences_at_pimenko, order_event
from tests.resilience.test_umbrella_faults import at_umbrella, campaign_fields, collected

pytestmark = pytest.mark.e2e

STORM = 100


def lead(campaign_id: str) -> dict[str, str]:
    return {
        "email": "sam.storm@example.org",
        "firstname": "Sam",
        "lastname": "Storm",
        "phone": "0612345678",
        "collect_type": "lending",
        "project_description": "Moulin à huile",
        "project_total_budget": "90000",
        "publication_timeframe": "next_months",
        "campaign_id": campaign_id,
    }


def at_miimosa(miimosa: Any, campaign_id: str) -> int:
    return sum(1 for stored in miimosa.leads if stored.get("campaign_id") == campaign_id)


# ------------------------------------------------------------------------------------------------ through HTTP


@pytest.mark.parametrize("with_key", [True, False], ids=["idempotency-key", "same-body"])
def test_a_hundred_identical_leads_make_one_at_miimosa(live, miimosa, with_key):
    campaign_id = unique("storm-")
    headers = {"Idempotency-Key": f"storm-{uuid.uuid4()}"} if with_key else {}

    def post(_: int) -> requests.Response:
        return requests.post(f"{live.gateway_url}/leads", json=lead(campaign_id), headers=headers, timeout=60)

    answers = concurrently(STORM, post)
    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) <= {201, 409}, statuses  # the outcome, or "the same lead is being submitted right now"
    assert statuses[201] >= 1
    assert len({answer.json()["lead_id"] for answer in answers if answer.status_code == 201}) == 1
    assert live.drain("LeadRetryQueue", timeout=20)
    assert at_miimosa(miimosa, campaign_id) == 1


def test_a_hundred_identical_campaign_creates_make_one_at_umbrella(live, umbrella):
    code = unique("st")

    def post(_: int) -> requests.Response:
        return requests.post(f"{live.gateway_url}/campaigns", json=campaign_fields(code), timeout=60)

    answers = concurrently(STORM, post)
    statuses = Counter(answer.status_code for answer in answers)
    # One creator gets the campaign (and one confirm SMS with its manage token); every other request is told the code
    # is taken.
    assert statuses == {201: 1, 409: STORM - 1}, statuses
    refusals = {answer.json()["error"] for answer in answers if answer.status_code == 409}
    assert refusals <= {"donation_code_in_use", "create_in_progress"}
    assert len(at_umbrella(umbrella, code)) == 1


def test_a_hundred_deliveries_of_one_donation_count_once(live, umbrella):
    code = unique("st")
    assert requests.post(f"{live.gateway_url}/campaigns", json=campaign_fields(code), timeout=30).status_code == 201
    donation = umbrella.donate(1, "hjerte", code, amount=1500, deliver=False)["donation"]
    callback = at_umbrella(umbrella, code)[0]["callbackUrl"]

    answers = concurrently(STORM, lambda _: requests.post(callback, json=donation, timeout=60))
    assert {answer.status_code for answer in answers} == {200}
    assert Counter(answer.json()["status"] for answer in answers) == {"recorded": 1, "duplicate": STORM - 1}
    assert live.drain_events(timeout=30)
    assert wait_for(lambda: collected(live, code)["count"] == 1, timeout=20)
    assert live.drain("DonationTotalsQueue", timeout=20)
    assert collected(live, code) == {"amount": 1500, "count": 1, "note": None}


def test_a_hundred_licence_requested_events_for_one_order_make_one_licence(live, mlm):
    order_id = unique("storm-order-")
    answer = live.put_events([order_event(order_id)] * STORM)
    assert answer["FailedEntryCount"] == 0
    assert live.drain_events(timeout=120)
    assert licences_at_pimenko(mlm, order_id) == 1
    assert requests.get(f"{live.gateway_url}/licences/{order_id}", timeout=10).json()["licence"]["state"] == "issued"


def test_a_hundred_copies_of_one_event_on_the_bus_earn_one_loyalty_action(live, appsmiles):
    lead_id = unique("storm-lead-")
    live.boto3_client("dynamodb").put_item(
        TableName=live.physical("LeadsTable"),
        Item={"lead_id": {"S": lead_id}, "apps_miles_user_id": {"S": unique("member-")}},
    )
    detail = {"lead_id": lead_id, "collect_type": "lending", "apps_miles_member": True}
    entry = {"Source": "partner-hub.lead-intake", "DetailType": "LeadCaptured", "Detail": json.dumps(detail)}

    assert live.put_events([entry] * STORM)["FailedEntryCount"] == 0
    assert live.drain_events(timeout=120)
    assert live.drain("LoyaltyActionsQueue", timeout=120)

    assert sum(1 for action in appsmiles.actions if action["param1"] == lead_id) == 1


def test_a_hundred_identical_licence_posts_make_one_licence(live, mlm):
    order_id = unique("storm-order-")
    body = order_event(order_id)["Detail"]

    answers = concurrently(STORM, lambda _: requests.post(f"{live.gateway_url}/licences", json=body, timeout=60))
    statuses = Counter(answer.status_code for answer in answers)
    assert set(statuses) <= {200, 201, 409}, statuses  # issued (first or replayed), or "in progress"
    keys = {answer.json()["licence"]["key"] for answer in answers if answer.status_code in (200, 201)}
    assert len(keys) == 1
    assert licences_at_pimenko(mlm, order_id) == 1


# ------------------------------------------------------------------------------------------------ the stores, raced


@pytest.fixture
def function_env(live, monkeypatch):
    def use(function: str) -> None:
        for name, value in live.function_env(function).items():
            monkeypatch.setenv(name, value)
        aws.dynamodb()  # the cached client, built once before the threads share it

    return use


def test_a_hundred_concurrent_sends_of_one_action_count_once_at_app_s_miles(live, appsmiles, function_env, monkeypatch):
    function_env("LoyaltyRelayFunction")
    # What is counted is actions, not time: a hundred threads on a loaded machine (CI runs two test files at once)
    # may wait on the sandbox longer than the template's read timeout, which would turn slowness into an outage.
    monkeypatch.setenv("APPSMILES_READ_TIMEOUT", "30")
    client = appsmiles_client()
    member, key = unique("member-"), unique("event-")

    results = concurrently(STORM, lambda _: client.store_action(member, "LEAD", param1=key))

    assert sum(not result.already_recorded for result in results) == 1
    assert sum(1 for action in appsmiles.actions if action["param1"] == key) == 1


def test_the_first_of_a_hundred_records_of_a_relayed_event_is_kept(live, function_env):
    function_env("LoyaltyRelayFunction")
    records = LoyaltyStore(live.physical("LoyaltyTable"))
    key = unique("event-")

    def record(index: int) -> None:
        action = PendingAction(f"m{index}", key, "LEAD", f"member-{index}", "LeadCaptured", None)
        records.record(action, Settlement(Outcome.RELAYED))

    concurrently(STORM, record)  # the conditional put's refusals are expected, not raised
    first = records.settled([key])[key]
    late = PendingAction("late", key, "LEAD", "member-late", "LeadCaptured", None)
    records.record(late, Settlement(Outcome.REJECTED))
    assert records.settled([key])[key] == first


def test_one_of_a_hundred_deliveries_claims_a_queued_lead(live, function_env):
    function_env("LeadIntakeFunction")
    leads = LeadStore(live.physical("LeadsTable"))
    lead_id, now = str(uuid.uuid4()), int(time.time())
    leads.create(lead_id, {"campaign_id": "race"}, now=now, lease_seconds=30, expires_at=now + 3600)
    leads.settle(lead_id, LeadStatus.QUEUED, now=now)

    claims = concurrently(STORM, lambda _: leads.claim(lead_id, now=now, lease_seconds=30))
    assert sum(isinstance(claim, LeadRecord) for claim in claims) == 1


def test_one_of_a_hundred_attempts_holds_a_campaign_code(live, function_env):
    function_env("CampaignLifecycleFunction")
    campaigns = CampaignStore(live.physical("CampaignsTable"))
    form = CampaignForm(**campaign_fields(unique("rc")))

    def claim(index: int) -> Any:
        return campaigns.claim(
            form, attempt_id=f"attempt-{index}", manage_token_hash="h", answer_message="Tak", confirm_text="Ok",
            callback_base="https://x", now=int(time.time()), lease_seconds=30,
        )  # fmt: skip

    assert sum(isinstance(outcome, Claim) for outcome in concurrently(STORM, claim)) == 1


def test_one_of_a_hundred_records_of_a_donation_is_new(live, function_env):
    # Concurrent folds are not raced here: moto restores a whole table's snapshot when a transaction fails, undoing
    # other threads' committed writes meanwhile (DynamoDB serialises them); the end-to-end storm above counts once.
    function_env("DonationIngesterFunction")
    ledger = DonationLedger(live.physical("DonationsTable"))
    message_key, ref, now = f"race-{uuid.uuid4()}", f"1/hjerte/{unique('rd')}", int(time.time())
    item = {
        "pk": donation_pk(message_key), "campaign_ref": ref, "amount": 300, "donated_at": now, "received_at": now,
        "source": "callback", "event_id": event_id_for(message_key),
    }  # fmt: skip

    outcomes = concurrently(STORM, lambda _: ledger.record(dict(item)))
    assert sum(outcome.new for outcome in outcomes) == 1


def test_one_of_a_hundred_attempts_holds_an_order_and_one_order_claims_a_licence(live, function_env):
    function_env("LicenceIssuanceFunction")
    licences = LicenceStore(live.physical("LicencesTable"))
    request = LicenceRequest(
        order_id=unique("race-"), customer_reference="c", product_id=1, licence_type=1, url="https://r.example.org"
    )

    def hold(index: int) -> Any:
        return licences.hold_order(request, attempt_id=f"attempt-{index}", now=int(time.time()), lease_seconds=30)

    assert sum(isinstance(outcome, OrderRecord) for outcome in concurrently(STORM, hold)) == 1
    licence_id = 10_000_000 + uuid.uuid4().int % 1_000_000
    won = concurrently(STORM, lambda index: licences.claim_licence(licence_id, f"order-{index}"))
    assert sum(won) == 1
