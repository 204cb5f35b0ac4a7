"""`hub reconcile` against a running local stack: campaigns made through the gateway, donations whose callbacks
Umbrella's sandbox never sent, drift, an Umbrella outage, and the operator's mistakes."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import requests

from hub_local.stack import LocalStack
from tests.cli.conftest import one_line_error
from tests.conftest import ROOT, SUITE_LIMITS, manage_token_from_sms

FUNCTION_OVERRIDES = {"UMBRELLA_READ_TIMEOUT": "0.4", "UMBRELLA_CONNECT_TIMEOUT": "0.4"} | SUITE_LIMITS
DAY = 86_400


@pytest.fixture(scope="module")
def live():
    # No background pump: each test folds the recovered donations itself (settle), so totals are known when read.
    with LocalStack(
        ROOT / "template.yaml", gateway_port=0, pump_queues=False, function_overrides=FUNCTION_OVERRIDES
    ) as stack:
        yield stack


@pytest.fixture
def umbrella(live):
    sandbox = live.sandboxes["umbrella"]
    sandbox.faults.clear()
    yield sandbox
    sandbox.faults.clear()


@pytest.fixture
def campaigns(live):
    """CampaignsTable emptied, so `hub reconcile` without CAMPAIGN sees this test's campaigns alone."""
    dynamodb = live.boto3_client("dynamodb")
    table = live.physical("CampaignsTable")
    for item in dynamodb.scan(TableName=table, ProjectionExpression="campaign_ref")["Items"]:
        dynamodb.delete_item(TableName=table, Key={"campaign_ref": item["campaign_ref"]})
    return dynamodb


@pytest.fixture
def local(live, hub):
    return lambda *args: hub("--url", live.gateway_url, *args)


def create_campaign(live) -> tuple[str, dict]:
    """A campaign made as a website makes it, through the gateway: (its ref, the 201 body)."""
    fields = {
        "serviceId": 1,
        "route": "hjerte",
        "donationCode": f"r{uuid.uuid4().hex[:10]}",
        "amount": 5000,
        "campaignName": "Annas løb",
        "confirmMsisdn": "4512345678",
    }
    response = requests.post(f"{live.gateway_url}/campaigns", json=fields, timeout=30)
    assert response.status_code == 201, response.text
    token = manage_token_from_sms(live.sandboxes["umbrella"], fields["confirmMsisdn"])
    return f"1/hjerte/{fields['donationCode']}", response.json() | {"manageToken": token}


def dropped_donation(umbrella, ref: str, amount: int, **options) -> dict:
    """A donation Umbrella took whose callback never reached us: only reconciliation can find it."""
    service_id, route, code = ref.split("/")
    return umbrella.donate(int(service_id), route, code, amount=amount, deliver=False, **options)


def settle(live) -> None:
    """Route the DonationReceived events and fold them into the totals, as the bus and the queue would."""
    assert live.drain_events(timeout=20)
    assert live.drain("DonationTotalsQueue", timeout=20)


def printed_json(outcome) -> dict:
    """What --json printed: the functions run in this process, so their JSON log lines share stdout before it."""
    lines = outcome.out.splitlines()
    start = max(index for index, line in enumerate(lines) if line == "{")
    return json.loads("\n".join(lines[start:]))


def rows(outcome) -> dict[str, list[str]]:
    """The summary table's cells by campaign."""
    found = {}
    for line in outcome.out.splitlines():
        cells = [cell.strip() for cell in line.split("│")[1:-1]]
        if len(cells) == 8 and cells[0].count("/") == 2:
            found[cells[0]] = cells[1:]
    return found


def test_reconcile_recovers_what_callbacks_never_brought_then_finds_nothing_more(live, local, campaigns, umbrella):
    first, _ = create_campaign(live)
    second, _ = create_campaign(live)
    dropped_donation(umbrella, first, 3000)
    dropped_donation(umbrella, first, 2000)
    dropped_donation(umbrella, second, 1500)

    outcome = local("reconcile")
    assert outcome.status == 0, outcome.err
    table = rows(outcome)
    assert set(table) == {first, second}
    # status, fetched, recovered, republished, ledger, Umbrella, difference
    assert table[first] == ["ok", "2", "2", "0", "50.00", "50.00", ""]
    assert table[second] == ["ok", "1", "1", "0", "15.00", "15.00", ""]
    assert "2 campaign(s) reconciled: 3 donation(s) recovered, 0 drifting, 0 failed." in outcome.out

    settle(live)
    again = local("reconcile", "--json")
    assert again.status == 0, again.err
    summary = printed_json(again)
    assert (summary["reconciled"], summary["recovered"], summary["drift"], summary["failed"]) == (2, 0, 0, 0)
    by_ref = {result["campaign"]: result for result in summary["campaigns"]}
    assert by_ref[first]["fetched"] == 2
    assert (by_ref[first]["ledger_amount"], by_ref[first]["partner_amount"]) == (5000, 5000)
    # The folded total the campaign page shows: what reconciliation recovered, once.
    page = requests.get(f"{live.gateway_url}/campaigns/{first}", timeout=10).json()
    assert page["collected"]["amount"] == 5000


def test_stopped_campaigns_are_covered_for_a_day(live, local, campaigns, umbrella):
    recent, created = create_campaign(live)
    stopped = requests.delete(
        f"{live.gateway_url}/campaigns/{recent}",
        headers={"Authorization": f"Bearer {created['manageToken']}"},
        timeout=10,
    )
    assert stopped.status_code == 200, stopped.text
    old, _ = create_campaign(live)
    campaigns.update_item(
        TableName=live.physical("CampaignsTable"),
        Key={"campaign_ref": {"S": old}},
        UpdateExpression="SET #state = :stopped, stopped_at = :at, open_until = :at",  # as a stop writes them
        ExpressionAttributeNames={"#state": "state"},
        ExpressionAttributeValues={":stopped": {"S": "stopped"}, ":at": {"N": str(int(time.time()) - 2 * DAY)}},
    )
    outcome = local("reconcile")
    assert outcome.status == 0, outcome.err
    table = rows(outcome)
    assert set(table) == {recent}  # stopped two days ago: no longer reconciled
    assert table[recent][0] == "gone"  # Umbrella lists no donations of a stopped campaign


def test_drift_is_shown_and_exits_1(live, local, campaigns, umbrella):
    ref, _ = create_campaign(live)
    # Stamped hours before the campaign existed: older than any watermark, so reconciliation cannot see it.
    dropped_donation(umbrella, ref, 4200, donated_at=datetime.now(UTC) - timedelta(hours=3))
    outcome = local("reconcile", ref)
    assert outcome.status == 1
    assert rows(outcome)[ref] == ["drift", "0", "0", "0", "0.00", "42.00", "+42.00"]
    assert "0 donation(s) recovered, 1 drifting, 0 failed." in outcome.out
    assert "ledger differs from Umbrella's collected amount" in outcome.out

    as_json = local("reconcile", ref, "--json")
    assert as_json.status == 1
    [result] = printed_json(as_json)["campaigns"]
    assert (result["status"], result["ledger_amount"], result["partner_amount"]) == ("drift", 0, 4200)


def test_an_umbrella_outage_is_partner_unavailable_and_exits_1(live, local, campaigns, umbrella):
    ref, _ = create_campaign(live)
    dropped_donation(umbrella, ref, 900)
    umbrella.faults.add("status", status=503, count=50)
    outcome = local("reconcile")
    assert outcome.status == 1
    assert rows(outcome)[ref][:3] == ["partner_unavailable", "0", "0"]
    assert "1 failed" in outcome.out
    assert "run hub reconcile again once Umbrella is back" in outcome.out

    umbrella.faults.clear()
    after = local("reconcile", ref, "--json")
    assert after.status == 0, after.err
    assert printed_json(after)["recovered"] == 1  # the outage moved no watermark: nothing was lost


def test_nothing_to_reconcile(local, campaigns):
    outcome = local("reconcile")
    assert outcome.status == 0, outcome.err
    assert "No campaign to reconcile in the local stack" in outcome.out
    assert printed_json(local("reconcile", "--json"))["campaigns"] == []


def test_an_unknown_campaign_is_one_line(local, campaigns):
    line = one_line_error(local("reconcile", "1/hjerte/nosuchcode"))
    assert line == "hub: no campaign 1/hjerte/nosuchcode in the local stack (stage local): the hub never created it"


@pytest.mark.parametrize("ref", ["anna50", "1/hjerte", "x/hjerte/anna50", "1/hjerte/anna50/extra"])
def test_a_malformed_campaign_is_a_usage_error(local, ref):
    outcome = local("reconcile", ref)
    assert outcome.status == 2
    assert "is not serviceId/route/donationCode" in one_line_error(outcome)


def test_a_function_error_is_one_line(live, local, campaigns, umbrella, monkeypatch):
    # Reconciled in the order of their refs: the first one fails.
    first = min(create_campaign(live)[0], create_campaign(live)[0])

    def broken(services, refs):
        raise RuntimeError("ledger table unreachable")

    # The local stack runs the function in this process: its flow is the one patched here.
    monkeypatch.setattr("donation_ingester.reconcile.reconcile_refs", broken)
    assert hub_line(local("reconcile")) == (
        f"hub: DonationIngesterFunction failed on {first}: RuntimeError: ledger table unreachable "
        "(0 of 2 campaigns reconciled before)"
    )
    assert hub_line(local("reconcile", first)) == (
        f"hub: DonationIngesterFunction failed on {first}: RuntimeError: ledger table unreachable"
    )


def hub_line(outcome) -> str:
    """hub's one line. The gateway, in this same process, prints the function's traceback (on `make run`'s
    terminal, in real use) before its own request line: hub's output is what follows that line."""
    assert outcome.status == 1
    lines = outcome.err.strip().splitlines()
    last_request = max(index for index, line in enumerate(lines) if line.startswith("gateway: "))
    [line] = lines[last_request + 1 :]
    return line


def test_a_campaign_gone_without_a_reconcile_at_its_stop_is_red_and_exits_1(live, local, campaigns, umbrella):
    from donation_ingester.store import reconcile_pk  # noqa: PLC0415

    ref, created = create_campaign(live)
    dropped_donation(umbrella, ref, 2500)
    stopped = requests.delete(
        f"{live.gateway_url}/campaigns/{ref}", headers={"Authorization": f"Bearer {created['manageToken']}"}, timeout=10
    )
    assert stopped.status_code == 200, stopped.text
    settle(live)
    assert local("reconcile", ref).status == 0  # the stop reconciled it first: gone, and nothing unseen
    # As if that reconcile had failed (Umbrella out at the stop): the donations it would have found may be unseen.
    live.boto3_client("dynamodb").update_item(
        TableName=live.physical("DonationsTable"),
        Key={"pk": {"S": reconcile_pk(ref)}},
        UpdateExpression="REMOVE reconciled_at_stop",
    )
    outcome = local("reconcile", ref)
    assert outcome.status == 1
    assert rows(outcome)[ref][0] == "gone-unseen"
    assert "1 campaign(s) gone at Umbrella without a reconcile at their stop" in outcome.out
    assert printed_json(local("reconcile", ref, "--json"))["gone"] == 1
