"""Loyalty relay's reading of queued events and of its action mapping: no I/O."""

from __future__ import annotations

import json
from typing import Any

import pytest

from hub_core.caches import reset_all
from hub_core.config import ConfigError
from hub_local.cfn import load_yaml
from loyalty_relay import flow
from loyalty_relay.models import Outcome, OwnerRecord, PendingAction
from loyalty_relay.services import services
from loyalty_relay.settings import DEFAULT_ACTIONS, settings
from tests.conftest import ROOT


@pytest.fixture(autouse=True)
def relay_env(monkeypatch):
    monkeypatch.setenv("LOYALTY_TABLE_NAME", "loyalty")
    monkeypatch.setenv("RATE_LIMIT_TABLE_NAME", "rate-limits")
    monkeypatch.delenv("LOYALTY_ACTIONS", raising=False)
    reset_all()
    yield
    reset_all()


def body(detail_type: str = "DonationReceived", **detail: Any) -> str:
    return json.dumps({"id": "bus-event-1", "detail-type": detail_type, "source": "partner-hub.test", "detail": detail})


def test_a_member_s_donation_is_planned_with_its_stable_key_and_tag():
    planned = flow._plan(services(), "m1", body(eventId="evt-1", appsMilesUserId="member-1"))
    assert planned == PendingAction(
        message_id="m1",
        key="evt-1",
        tag_id="DONATION",
        user_id="member-1",
        detail_type="DonationReceived",
        happened_at=None,
    )


@pytest.mark.parametrize(
    ("detail_type", "detail", "owner"),
    [
        ("DonationReceived", {"eventId": "evt-1", "campaign": "1/hjerte/anna50", "appsMilesMember": True},
         OwnerRecord("campaigns", "1/hjerte/anna50")),
        ("LeadCaptured", {"lead_id": "lead-1", "apps_miles_member": True}, OwnerRecord("leads", "lead-1")),
        ("LicenceIssued", {"order_id": "SHOP-1", "apps_miles_member": True}, OwnerRecord("licences", "SHOP-1")),
    ],
    ids=["donation", "lead", "licence"],
)  # fmt: skip
def test_an_event_that_flags_a_member_is_planned_to_read_it_from_its_owning_record(detail_type, detail, owner):
    planned = flow._plan(services(), "m1", body(detail_type, **detail))
    assert isinstance(planned, PendingAction)
    # Nothing is read yet: the member id is looked up only for an event not settled before.
    assert (planned.owner, planned.user_id) == (owner, "")


@pytest.mark.parametrize(
    "detail",
    [
        {"eventId": "evt-1", "campaign": "1/hjerte/anna50", "appsMilesMember": False},
        {"eventId": "evt-1", "campaign": "1/hjerte/anna50", "appsMilesMember": "yes"},
        {"eventId": "evt-1", "campaign": "1/hjerte/anna50"},
    ],
    ids=["false", "not-a-boolean", "absent"],
)
def test_an_event_without_the_member_flag_is_anonymous(detail):
    assert flow._plan(services(), "m1", body(**detail)) is Outcome.SKIPPED_ANONYMOUS


@pytest.mark.parametrize(
    "detail",
    [
        {"eventId": "evt-1", "appsMilesMember": True},
        {"eventId": "evt-1", "campaign": "a campaign with spaces", "appsMilesMember": True},
        {"campaign": "1/hjerte/anna50", "appsMilesMember": True},
    ],
    ids=["no-owner-key", "bad-owner-key", "no-event-key"],
)
def test_a_flagged_event_without_a_usable_owner_is_malformed(detail):
    assert flow._plan(services(), "m1", body(**detail)) is Outcome.MALFORMED


@pytest.mark.parametrize(
    ("message_body", "outcome"),
    [
        (body(eventId="evt-1"), Outcome.SKIPPED_ANONYMOUS),
        (body(eventId="evt-1", appsMilesUserId=""), Outcome.SKIPPED_ANONYMOUS),
        (body("SomethingElse", appsMilesUserId="member-1"), Outcome.SKIPPED_UNMAPPED),
        ("{not json", Outcome.MALFORMED),
        (json.dumps({"detail-type": "DonationReceived"}), Outcome.MALFORMED),
        (body(eventId="evt-1", appsMilesUserId="has spaces and ünicode"), Outcome.MALFORMED),
        (body(eventId="evt-1", appsMilesUserId=42), Outcome.MALFORMED),
        (body(eventId="a key with spaces", appsMilesUserId="member-1"), Outcome.MALFORMED),
        (body(eventId=True, appsMilesUserId="member-1"), Outcome.MALFORMED),
        (body(appsMilesUserId="member-1"), Outcome.MALFORMED),
    ],
    ids=[
        "no-user",
        "blank-user",
        "unmapped",
        "not-json",
        "not-an-event",
        "bad-user-id",
        "user-id-not-a-string",
        "bad-key",
        "boolean-key",
        "missing-key",
    ],
)
def test_what_cannot_be_sent_is_told_apart(message_body, outcome):
    assert flow._plan(services(), "m1", message_body) is outcome


def test_a_rule_without_a_key_field_keys_on_the_bus_event_id(monkeypatch):
    monkeypatch.setenv("LOYALTY_ACTIONS", json.dumps({"Visit": {"tagId": "VISIT", "user": "member"}}))
    planned = flow._plan(services(), "m1", body("Visit", member="member-1"))
    assert isinstance(planned, PendingAction)
    assert (planned.key, planned.tag_id) == ("bus-event-1", "VISIT")


@pytest.mark.parametrize(
    "mapping",
    [
        "not json",
        json.dumps({"Visit": {"user": "member"}}),
        json.dumps({"Visit": {"tagId": "", "user": "m"}}),
        json.dumps({"Visit": {"tagId": "VISIT"}}),
        json.dumps({"Visit": {"tagId": "VISIT", "member": "has_member", "owner": "leads"}}),
        json.dumps({"Visit": {"tagId": "VISIT", "member": "m", "owner": "visits", "ownerKey": "visit_id"}}),
    ],
    ids=["not-json", "no-tag", "empty-tag", "no-member-at-all", "owner-without-key", "unknown-owner"],
)
def test_a_wrong_mapping_is_a_configuration_error(monkeypatch, mapping):
    monkeypatch.setenv("LOYALTY_ACTIONS", mapping)
    with pytest.raises(ConfigError, match="LOYALTY_ACTIONS"):
        settings()


def test_the_template_s_default_mapping_is_the_code_s():
    template = load_yaml(ROOT / "template.yaml")
    assert json.loads(template["Parameters"]["LoyaltyActions"]["Default"]) == json.loads(DEFAULT_ACTIONS)
    rule = template["Resources"]["LoyaltyEventsRule"]["Properties"]["EventPattern"]
    assert sorted(rule["detail-type"]) == sorted(json.loads(DEFAULT_ACTIONS))
