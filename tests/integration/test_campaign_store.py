"""CampaignsTable's conditional writes against moto: a code held by one attempt, changes on a live campaign."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from campaign_lifecycle.models import CampaignForm, CampaignKey, CampaignState
from campaign_lifecycle.store import CampaignStore, Claim, CodeHeld

NOW = 1_800_000_000


@pytest.fixture
def campaign_store(stack, monkeypatch):
    for name, value in stack.function_env("CampaignLifecycleFunction").items():
        monkeypatch.setenv(name, value)
    return CampaignStore(stack.physical("CampaignsTable"))


def form(code: str, **changes) -> CampaignForm:
    fields = {
        "serviceId": 1, "route": "hjerte", "donationCode": code, "amount": 100, "campaignName": "Anna",
        "confirmMsisdn": "4512345678", "appsMilesUserId": "am-1",
    }  # fmt: skip
    return CampaignForm(**(fields | changes))


def claim(campaign_store, code, attempt, now=NOW, **changes):
    return campaign_store.claim(
        form(code, **changes), attempt_id=attempt, manage_token_hash="h", answer_message="Tak",
        confirm_text="Ok", callback_base="https://x", now=now, lease_seconds=30,
    )  # fmt: skip


def test_a_code_is_held_by_one_attempt_until_its_lease_runs_out(campaign_store):
    assert isinstance(claim(campaign_store, "st1", "a1"), Claim)
    held = claim(campaign_store, "st1", "a2", now=NOW + 1)
    assert isinstance(held, CodeHeld)
    assert held.record.state is CampaignState.CREATING
    taken_over = claim(campaign_store, "st1", "a3", now=NOW + 31)
    assert isinstance(taken_over, Claim)
    assert taken_over.previous is not None
    assert taken_over.previous.attempt_id == "a1"


def test_an_active_campaign_is_never_taken_over(campaign_store):
    key = CampaignKey(service_id=1, route="hjerte", donation_code="st2")
    claim(campaign_store, "st2", "a1")
    active = campaign_store.activate(key, "a1", now=NOW, recovered=False)
    assert active.apps_miles_user_id == "am-1"
    assert isinstance(claim(campaign_store, "st2", "a2", now=NOW + 999), CodeHeld)


def test_a_restored_attempt_is_pending_under_its_own_request(campaign_store):
    key = CampaignKey(service_id=1, route="hjerte", donation_code="st3")
    claim(campaign_store, "st3", "a1")
    campaign_store.hold(key, "a1", now=NOW, ambiguous=True)
    other = claim(campaign_store, "st3", "a2", now=NOW + 1, amount=999)
    assert isinstance(other, Claim)
    assert other.previous is not None
    campaign_store.restore(other.previous, "a2")
    restored = campaign_store.get(key)
    assert restored is not None
    assert (restored.state, restored.attempt_id, restored.amount) == (CampaignState.PENDING, "a1", 100)


def test_changes_need_the_version_they_were_read_at(campaign_store):
    key = CampaignKey(service_id=1, route="hjerte", donation_code="st4")
    claim(campaign_store, "st4", "a1")
    record = campaign_store.activate(key, "a1", now=NOW, recovered=False)
    changed = campaign_store.apply_changes(
        record, {"amount": 200}, now=NOW, callback_base="https://x", callback_token_hash="h2"
    )
    assert changed is not None
    assert changed.version == record.version + 1
    assert (
        campaign_store.apply_changes(
            record, {"amount": 300}, now=NOW, callback_base="https://x", callback_token_hash="h3"
        )
        is None
    )
    assert campaign_store.mark_stopped(key, now=NOW) is not None
    assert campaign_store.mark_stopped(key, now=NOW) is None


def test_a_table_error_that_is_not_a_race_is_raised(stack, monkeypatch):
    for name, value in stack.function_env("CampaignLifecycleFunction").items():
        monkeypatch.setenv(name, value)
    missing = CampaignStore("no-such-table")
    key = CampaignKey(service_id=1, route="hjerte", donation_code="st5")
    for call in (
        lambda: claim(missing, "st5", "a"),
        lambda: missing.mark_stopped(key, now=NOW),
    ):
        with pytest.raises(ClientError, match="ResourceNotFound"):
            call()
