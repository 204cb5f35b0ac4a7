"""`hub campaigns show` and `hub sandbox donate` against a running local stack, as a newcomer plays a donation."""

from __future__ import annotations

import json
import uuid

import pytest
import requests

from hub_local.examples import callback_token
from hub_local.runtime import load_handler
from hub_local.stack import LocalStack
from tests.canaries import CANARY_MSISDN
from tests.cli.conftest import one_line_error
from tests.conftest import ROOT, SUITE_LIMITS


@pytest.fixture(scope="module")
def live():
    # Background pumps: a donation's DonationReceived reaches the totals fold as on make run.
    with LocalStack(
        ROOT / "template.yaml",
        gateway_port=0,
        pump_queues=True,
        function_overrides={"TOTALS_CACHE_SECONDS": "0", **SUITE_LIMITS},
    ) as stack:
        # Imported here, outside any test's captured output: Powertools binds its log stream at import.
        for function in stack.template.functions.values():
            load_handler(function.handler)
        yield stack


@pytest.fixture
def local(live, hub):
    return lambda *args: hub("--url", live.gateway_url, *args)


def create_campaign(live) -> str:
    code = f"cli{uuid.uuid4().hex[:8]}"
    fields = {
        "serviceId": 1,
        "route": "hjerte",
        "donationCode": code,
        "amount": 5000,
        "confirmMsisdn": CANARY_MSISDN,
    }
    response = requests.post(f"{live.gateway_url}/campaigns", json=fields, timeout=10)
    assert response.status_code == 201, response.text
    return f"1/hjerte/{code}"


def test_the_stack_lists_its_sandboxes_for_the_cli(live):
    document = requests.get(f"{live.gateway_url}/_local/stack", timeout=10).json()
    assert document["partners"]["umbrella"] == {"url": live.partner_urls["umbrella"], "sandbox": True}
    assert set(document["partners"]) == {"miimosa", "umbrella", "mlm", "appsmiles"}


def test_campaigns_show_gives_operators_the_callback_url_umbrella_holds(live, local):
    campaign = create_campaign(live)
    outcome = local("campaigns", "show", campaign, "--json")
    assert outcome.status == 0, outcome.err
    shown = json.loads(outcome.out)
    (held,) = [c for c in live.sandboxes["umbrella"].campaigns if f"1/hjerte/{c['donationCode']}" == campaign]
    assert shown["callbackUrl"] == held["callbackUrl"]
    assert shown["callbackUrl"].endswith("/" + callback_token(live, campaign))
    assert (shown["state"], shown["amount"]) == ("active", 5000)
    assert CANARY_MSISDN not in outcome.out
    assert shown["creator"] == "***" + CANARY_MSISDN[-2:]


def test_campaigns_show_fits_80_columns(live, local, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    outcome = local("campaigns", "show", create_campaign(live))
    assert outcome.status == 0, outcome.err
    assert max(len(line) for line in outcome.out.splitlines()) <= 80
    assert "callbackUrl" in outcome.out


def test_campaigns_show_names_an_unknown_campaign(local):
    assert "no campaign 1/hjerte/nope" in one_line_error(local("campaigns", "show", "1/hjerte/nope"))
    line = one_line_error(local("campaigns", "show", "hjerte"))
    assert "is not serviceId/route/donationCode" in line


def test_sandbox_donate_is_called_back_and_counted(live, local):
    campaign = create_campaign(live)
    outcome = local("sandbox", "donate", campaign, "--amount", "2500")
    assert outcome.status == 0, outcome.err
    assert "25.00 kr" in outcome.out
    assert "200" in outcome.out
    assert live.drain_events(timeout=30)
    assert live.drain("DonationTotalsQueue", timeout=30)
    page = requests.get(f"{live.gateway_url}/campaigns/{campaign}", timeout=10).json()
    assert page["collected"]["amount"] == 2500
    assert page["collected"]["count"] == 1


def test_sandbox_donate_without_callback_leaves_it_for_reconciliation(live, local):
    campaign = create_campaign(live)
    outcome = local("sandbox", "donate", campaign, "--amount", "1500", "--no-callback")
    assert outcome.status == 0, outcome.err
    assert "not sent" in outcome.out
    (held,) = [c for c in live.sandboxes["umbrella"].campaigns if campaign.endswith("/" + c["donationCode"])]
    assert [d["amount"] for d in held["donations"]] == [1500]
    reconciled = local("reconcile", campaign, "--json")
    assert reconciled.status == 0, reconciled.err
    assert '"recovered": 1' in reconciled.out


def test_sandbox_donate_names_a_campaign_umbrella_does_not_have(local):
    line = one_line_error(local("sandbox", "donate", "1/hjerte/nope"))
    assert line == "hub: the Umbrella sandbox refused the donation: campaign does not exist"


def test_sandbox_donate_is_local_only(hub):
    line = one_line_error(hub("--stage", "dev", "sandbox", "donate", "1/hjerte/anna50"))
    assert "local stack's sandboxes only" in line


def test_invoke_running_fills_the_callback_token_from_the_umbrella_sandbox(live, local, tmp_path):
    campaign = create_campaign(live)
    code = campaign.rsplit("/", 1)[1]
    # The callback file, aimed at this campaign; its token placeholder is filled in at invoke time.
    text = (ROOT / "events/donation_ingester/callback_post_json.json").read_text().replace("anna50", code)
    event_file = tmp_path / "callback.json"
    event_file.write_text(text)
    outcome = local("invoke", "--running", "DonationIngesterFunction", str(event_file))
    assert outcome.status == 0, outcome.err
    # The function runs in this process: its metrics line (printed) shares the captured stdout with the result.
    (result,) = [json.loads(line) for line in outcome.out.splitlines() if '"statusCode"' in line]
    assert result["statusCode"] == 200, outcome.out
    assert json.loads(result["body"])["status"] == "recorded"


def test_invoke_running_names_a_campaign_that_does_not_exist(local):
    event = str(ROOT / "events/donation_ingester/callback_post_json.json")
    line = one_line_error(local("invoke", "--running", "DonationIngesterFunction", event))
    assert "campaign 1/hjerte/anna50 does not exist at the Umbrella sandbox" in line
    assert "create it first" in line


def test_the_umbrella_sandbox_lists_its_campaigns_for_local_tools(live):
    campaign = create_campaign(live)
    listed = requests.get(f"{live.partner_urls['umbrella']}/_sandbox/campaigns", timeout=10).json()
    assert campaign.rsplit("/", 1)[1] in [c["donationCode"] for c in listed]


def test_campaigns_show_on_aws_hides_the_token_the_hub_keeps_only_as_a_hash():
    from types import SimpleNamespace  # noqa: PLC0415

    from hub_cli.commands.campaigns import HIDDEN_TOKEN, callback_url  # noqa: PLC0415

    deployed = SimpleNamespace(local=False)
    url = callback_url(deployed, "https://hub.example.org/", 1, "hjerte", "anna 50")  # type: ignore[arg-type]
    assert url == f"https://hub.example.org/donations/callback/1/hjerte/anna%2050/{HIDDEN_TOKEN}"
