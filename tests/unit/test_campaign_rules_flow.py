"""What a campaign form or change may hold, named by field and rule as the 422 names them, and the creator's member
id dropped and counted when the site's signature does not vouch for it: on test_campaign_flow.py's rig, no emulator.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from campaign_lifecycle import creation
from campaign_lifecycle.models import CampaignChanges, CampaignForm, CampaignState
from hub_core.http_api import problems_from
from hub_core.member_signature import sign
from tests.unit.test_campaign_flow import CONTEXT, FIELDS, KEY_RING, START, create, form, rig  # noqa: F401 - rig


def named(model: type[CampaignForm] | type[CampaignChanges], fields: dict[str, Any]) -> set[tuple[str, str]]:
    """The (field, rule) pairs app.py's _validated puts in the 422 for `fields`."""
    with pytest.raises(ValidationError) as refused:
        model.model_validate(fields, context=CONTEXT)
    errors = refused.value.errors(include_input=False, include_url=False)
    return {(problem.field, problem.rule) for problem in problems_from(errors)}


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"amount": -100}, "amount", "minimum"),
        ({"amount": 0}, "amount", "minimum"),
        ({"amount": 12.5}, "amount", "integer"),
        ({"amount": "5000"}, "amount", "integer"),
        ({"amount": True}, "amount", "integer"),
        ({"amount": 5_000_001}, "amount", "maximum"),
        ({"confirmMsisdn": "4412345678"}, "confirmMsisdn", "msisdn_format"),
        ({"confirmMsisdn": "451234567"}, "confirmMsisdn", "msisdn_format"),
        ({"answerMessage": "Tak for din donation!"}, "answerMessage", "organisation_text"),
        ({"confirmText": "Din bank: konto spærret. Log ind: https://x.example"}, "confirmText", "organisation_text"),
        ({"confirmText": ""}, "confirmText", "organisation_text"),
        ({"campaignName": "Se https://x.example"}, "campaignName", "letters_only"),
        ({"campaignName": "Besøg evil.dk nu"}, "campaignName", "letters_only"),
        ({"campaignName": "www example dk"}, "campaignName", "letters_only"),
        ({"campaignName": "Ring +45 12 34 56 78"}, "campaignName", "no_digits"),
        ({"campaignName": "Ring ١٢٣"}, "campaignName", "no_digits"),
        ({"campaignName": "a" * 31}, "campaignName", "max_length"),
        ({"campaignName": "   "}, "campaignName", "min_length"),
        ({"campaignName": "Anna <b>løb</b>"}, "campaignName", "letters_only"),
        ({"campaignName": "line\x07bell"}, "campaignName", "control_character"),
        ({"donationCode": "has space"}, "donationCode", "pattern"),
        ({"route": "../etc"}, "route", "pattern"),
        ({"serviceId": "one"}, "serviceId", "integer"),
        ({"serviceId": None}, "serviceId", "required"),
        ({"callbackUrl": "https://evil.example"}, "callbackUrl", "unknown_field"),
        ({"appsMilesUserId": "not allowed!"}, "appsMilesUserId", "pattern"),
    ],
)
def test_each_rule_of_a_campaign_form_is_named(changes, field, rule):
    fields = {
        key: value for key, value in (FIELDS | {"campaignName": "Annas løb"} | changes).items() if value is not None
    }
    assert (field, rule) in named(CampaignForm, fields)


@pytest.mark.parametrize(
    ("change", "rule"),
    [
        ({}, "empty_change"),
        ({"amount": 1.5}, "integer"),
        ({"route": "x"}, "unknown_field"),
        ({"answerMessage": "Klik her: https://x.example"}, "organisation_text"),
        ({"confirmText": "Ny tekst"}, "organisation_text"),
    ],
)
def test_a_change_is_validated_like_a_creation(change, rule):
    assert rule in {rule for _, rule in named(CampaignChanges, change)}


@pytest.fixture
def dropped(monkeypatch) -> list[str]:
    """The MemberIdDropped metrics creation emits."""
    emitted: list[str] = []
    add_metric = creation.metrics.add_metric
    monkeypatch.setattr(creation.metrics, "add_metric", lambda **kw: (emitted.append(kw["name"]), add_metric(**kw))[1])
    return emitted


@pytest.mark.parametrize("signature", [None, "garbled", "expired", "another member's"])
def test_an_unsigned_or_forged_creator_member_id_is_dropped_and_counted(rig, dropped, signature):  # noqa: F811
    signatures = {
        "expired": sign("am-88", int(START) - 5, KEY_RING),
        "another member's": sign("am-99", int(START) + 600, KEY_RING),
    }
    created = create(rig, form(appsMilesUserId="am-88", appsMilesSignature=signatures.get(signature, signature)))
    assert created.record.state is CampaignState.ACTIVE
    assert created.record.apps_miles_user_id is None
    assert dropped.count("MemberIdDropped") == 1


def test_a_signed_creator_member_id_is_not_counted_as_dropped(rig, dropped):  # noqa: F811
    signature = sign("am-77", int(START) + 600, KEY_RING)
    created = create(rig, form(appsMilesUserId="am-77", appsMilesSignature=signature))
    assert created.record.apps_miles_user_id == "am-77"
    assert "MemberIdDropped" not in dropped
