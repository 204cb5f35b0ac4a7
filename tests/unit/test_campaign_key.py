"""hub_core.campaigns.CampaignKey: the one shape both the lifecycle and the ingester name a campaign by."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from campaign_lifecycle.models import CampaignForm
from campaign_lifecycle.models import CampaignKey as LifecycleKey
from donation_ingester import callback
from donation_ingester.errors import CallbackTokenMissing, CallbackTokenRefused
from hub_core.campaigns import CampaignKey
from hub_core.tokens import new_callback_token


def test_the_lifecycle_and_the_ingester_share_one_shape():
    assert LifecycleKey is CampaignKey
    form = CampaignForm(serviceId=7, route="hjerte", donationCode="st1", amount=5000, confirmMsisdn="4512345678")
    assert form.key == CampaignKey(7, "hjerte", "st1")
    assert form.key.ref == "7/hjerte/st1"


def test_a_ref_names_its_key_and_back():
    key = CampaignKey.from_ref("2147483647/r_1/AbC9")
    assert key == CampaignKey(2147483647, "r_1", "AbC9")
    assert key.ref == "2147483647/r_1/AbC9"
    assert hash(key) == hash(CampaignKey(2147483647, "r_1", "AbC9"))  # a dict key, as the fold groups by campaign


@pytest.mark.parametrize("ref", ["1/r", "1/r/c/d", "x/r/c", ""])
def test_a_ref_we_never_stored_is_a_value_error(ref):
    with pytest.raises(ValueError, match=r"unpack|invalid literal"):
        CampaignKey.from_ref(ref)


def test_a_path_spelled_as_stored_names_the_campaign():
    assert CampaignKey.from_path("42", "hjerte", "st1") == CampaignKey(42, "hjerte", "st1")
    assert CampaignKey.from_path("2147483647", "r", "c") is not None


@pytest.mark.parametrize("service_id", ["007", "0", "+7", " 7", "7 ", "7_0", "\u0667", "2147483648", "1" * 5000, ""])
def test_a_service_id_no_stored_ref_spells_names_no_campaign(service_id):
    # Each of these int() reads (or fails on); none is how the lifecycle writes a ref, so none finds a campaign.
    assert CampaignKey.from_path(service_id, "hjerte", "st1") is None


def test_a_callback_whose_path_names_no_campaign_is_refused_before_any_read():
    token = new_callback_token()
    unreadable = SimpleNamespace(campaigns=None)  # any read of a campaign would be an AttributeError
    with pytest.raises(CallbackTokenRefused):
        callback.verify_token(unreadable, CampaignKey.from_path("007", "hjerte", "st1"), token)
    with pytest.raises(CallbackTokenMissing):
        callback.verify_token(unreadable, CampaignKey.from_path("007", "hjerte", "st1"), None)
