"""The Umbrella adapter against every reading the Umbrella sandbox plays, with the matching and the other profile.

Where profile and partner agree, a campaign's donations and totals are exact; where they disagree, the adapter
either still reads the partner right (a profile that accepts both readings) or fails naming the setting. Never a
lost, doubled or miscounted donation.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from partners.errors import PartnerAuthError, PartnerBadResponse, PartnerNotFound
from partners.http import RetryPolicy
from partners.profiles import UmbrellaProfile
from partners.umbrella import CampaignCreationRequest, CodeInUse, UmbrellaClient
from sandboxes.umbrella import UmbrellaSandbox
from sandboxes.umbrella_rules import CampaignNotFound
from tests.contract.conftest import assert_names_setting

KEY = "umb-PRIVACY-CANARY-key-5e1d"
SERVICE, ROUTE = 1, "hjerte"


def client(sandbox: UmbrellaSandbox, **profile: Any) -> UmbrellaClient:
    options = UmbrellaProfile.from_mapping(profile).client_options()
    return UmbrellaClient(sandbox.url, lambda: KEY, retry=RetryPolicy(max_attempts=1), sleep=lambda _: None, **options)


def creation(code: str) -> CampaignCreationRequest:
    return CampaignCreationRequest(
        donationCode=code,
        route=ROUTE,
        amount=5000,
        callbackUrl="http://127.0.0.1:9/callback",
        answerMessage="Tak for din donation",
        confirmMsisdn="4598765432",
        confirmText="Din indsamling er oprettet",
    )


@pytest.fixture
def sandbox() -> Iterator[UmbrellaSandbox]:
    with UmbrellaSandbox(api_key=KEY) as server:
        yield server


def donate(sandbox: UmbrellaSandbox, code: str, amount: int) -> None:
    sandbox.donate(SERVICE, ROUTE, code, amount=amount, deliver=False)


@pytest.mark.parametrize("partner", ["apikey", "apiKey"])
@pytest.mark.parametrize("ours", ["apikey", "apiKey"])
def test_key_parameter(sandbox: UmbrellaSandbox, partner: str, ours: str) -> None:
    sandbox.set_modes(key_parameter=partner, accept_bearer=False)
    umbrella = client(sandbox, key_parameter=ours)
    if partner == ours:
        assert umbrella.list_services()[0].id == SERVICE
        assert not umbrella.create_campaign(SERVICE, creation("anna50")).recovered
        assert len(sandbox.campaigns) == 1
        return
    with pytest.raises(PartnerAuthError) as caught:
        umbrella.create_campaign(SERVICE, creation("anna50"))
    assert_names_setting(caught, "UMBRELLA_PROFILE.key_parameter")
    assert sandbox.campaigns == []


@pytest.mark.parametrize("accept_bearer", [True, False])
def test_key_placement_bearer(sandbox: UmbrellaSandbox, accept_bearer: bool) -> None:
    sandbox.set_modes(accept_bearer=accept_bearer)
    umbrella = client(sandbox, key_placement="bearer")
    if accept_bearer:
        assert umbrella.list_services()
        return
    with pytest.raises(PartnerAuthError) as caught:
        umbrella.list_services()
    assert_names_setting(caught, "UMBRELLA_PROFILE.key_placement")


@pytest.mark.parametrize("partner", ["integer", "string"])
@pytest.mark.parametrize("ours", ["integer_or_string", "integer"])
def test_amounts(sandbox: UmbrellaSandbox, partner: str, ours: str) -> None:
    sandbox.set_modes(amounts=partner)
    umbrella = client(sandbox, amounts=ours)
    umbrella.create_campaign(SERVICE, creation("anna50"))
    donate(sandbox, "anna50", 5000)
    donate(sandbox, "anna50", 2500)
    if partner == "string" and ours == "integer":
        with pytest.raises(PartnerBadResponse) as caught:
            umbrella.donations(SERVICE, ROUTE, "anna50")
        assert_names_setting(caught, "UMBRELLA_PROFILE.amounts")
    else:
        donations = umbrella.donations(SERVICE, ROUTE, "anna50")
        assert sorted(donation.amount for donation in donations) == [2500, 5000]
        assert len({donation.messageKey for donation in donations}) == 2
    # The totals are integers in every reading (the document's example: "amount": 75000).
    assert umbrella.collected_amount(SERVICE, ROUTE, "anna50").amount == 7500


@pytest.mark.parametrize("partner", ["sensitive", "insensitive"])
@pytest.mark.parametrize("ours", ["sensitive", "insensitive"])
def test_donation_codes(sandbox: UmbrellaSandbox, partner: str, ours: str) -> None:
    sandbox.set_modes(donation_codes=partner)
    umbrella = client(sandbox, donation_codes=ours)
    umbrella.create_campaign(SERVICE, creation("anna50"))
    if partner == "insensitive":
        # A partner that folds case refuses the other spelling loudly, whatever our profile says...
        with pytest.raises(CodeInUse):
            umbrella.create_campaign(SERVICE, creation("ANNA50"))
        # ...and records a donor's SMS in the donor's spelling.
        donate(sandbox, "ANNA50", 5000)
    else:
        umbrella.create_campaign(SERVICE, creation("ANNA50"))
        with pytest.raises(CampaignNotFound):
            donate(sandbox, "Anna50", 5000)  # no campaign of that spelling: the SMS donates nothing
        donate(sandbox, "anna50", 5000)
        donate(sandbox, "ANNA50", 700)
        assert [d.amount for d in umbrella.donations(SERVICE, ROUTE, "ANNA50")] == [700]
    if partner == "insensitive" and ours == "sensitive":
        with pytest.raises(PartnerBadResponse) as caught:
            umbrella.donations(SERVICE, ROUTE, "anna50")
        assert_names_setting(caught, "UMBRELLA_PROFILE.donation_codes")
        return
    donations = umbrella.donations(SERVICE, ROUTE, "anna50")
    assert [donation.amount for donation in donations] == [5000]
    assert umbrella.same_code(donations[0].donationCode, "anna50")


@pytest.mark.parametrize("partner", ["not_found", "readable"])
@pytest.mark.parametrize("ours", ["not_found", "readable"])
def test_stopped_campaign(sandbox: UmbrellaSandbox, partner: str, ours: str) -> None:
    sandbox.set_modes(stopped_campaign=partner)
    umbrella = client(sandbox, stopped_campaign=ours)
    umbrella.create_campaign(SERVICE, creation("anna50"))
    donate(sandbox, "anna50", 5000)
    first = umbrella.stop_campaign(SERVICE, ROUTE, "anna50")
    assert not first.already_stopped
    if partner == "readable":
        # The stopped campaign still reads, in either profile: its donations are all there, once each.
        assert [d.amount for d in umbrella.donations(SERVICE, ROUTE, "anna50")] == [5000]
        assert umbrella.collected_amount(SERVICE, ROUTE, "anna50").amount == 5000
    else:
        with pytest.raises(PartnerNotFound) as caught:
            umbrella.donations(SERVICE, ROUTE, "anna50")
        if ours == "readable":
            assert_names_setting(caught, "UMBRELLA_PROFILE.stopped_campaign")
    # Stopping again is harmless in every reading: nothing is created, no campaign is active.
    umbrella.stop_campaign(SERVICE, ROUTE, "anna50")
    assert [campaign["active"] for campaign in sandbox.campaigns] == [False]
    # The code is free again for a new campaign of ours.
    assert not umbrella.create_campaign(SERVICE, creation("anna50")).recovered
    assert [campaign["active"] for campaign in sandbox.campaigns] == [False, True]
