"""app's miles, MiiMOSA and Pimenko adapters against every reading their sandboxes play, matching profile or not.

Matching: the call does what it should, once (an action recorded once, a lead created once, every project listed
once). Not matching: an error naming the profile setting, and nothing done at the partner.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from partners.appsmiles import AppsMilesClient
from partners.appsmiles_transport import reset_tokens
from partners.errors import PartnerAuthError, PartnerError
from partners.http import RetryPolicy
from partners.miimosa import MiimosaClient
from partners.mlm import InvalidLicenceData, MaxSitesReached, MlmClient
from partners.profiles import AppsMilesProfile, MiimosaProfile, MlmProfile
from sandboxes.appsmiles import AppsMilesSandbox
from sandboxes.miimosa import MiimosaSandbox
from sandboxes.mlm import MlmSandbox
from tests.canaries import APPSMILES_SECRET, CANARY_APPSMILES_USER, MIIMOSA_KEY, MLM_TOKEN
from tests.contract.conftest import assert_names_setting

NO_RETRY = RetryPolicy(max_attempts=1)

# --------------------------------------------------------------------------------------------- app's miles

WIRE_FORMATS = list(itertools.product(["json", "form"], ["header", "body"]))


@pytest.fixture
def appsmiles() -> Iterator[AppsMilesSandbox]:
    reset_tokens()
    with AppsMilesSandbox("app-1", "partner-1", APPSMILES_SECRET) as server:
        yield server
    reset_tokens()


def appsmiles_client(sandbox: AppsMilesSandbox, **profile: Any) -> AppsMilesClient:
    options = AppsMilesProfile.from_mapping(profile).client_options()
    return AppsMilesClient(sandbox.url, "app-1", "partner-1", lambda: APPSMILES_SECRET, retry=NO_RETRY, **options)


@pytest.mark.parametrize(("partner_body", "partner_jwt"), WIRE_FORMATS)
@pytest.mark.parametrize(("our_body", "our_jwt"), WIRE_FORMATS)
def test_appsmiles_wire_format(
    appsmiles: AppsMilesSandbox, partner_body: str, partner_jwt: str, our_body: str, our_jwt: str
) -> None:
    appsmiles.set_modes(body_encoding=partner_body, jwt_placement=partner_jwt)
    client = appsmiles_client(appsmiles, body_encoding=our_body, jwt_placement=our_jwt)
    if (partner_body, partner_jwt) == (our_body, our_jwt):
        first = client.store_action(CANARY_APPSMILES_USER, "LEAD", param1="lead-1")
        again = client.store_action(CANARY_APPSMILES_USER, "LEAD", param1="lead-1")
        assert (first.already_recorded, again.already_recorded) == (False, True)
        assert [(a["partnerClientId"], a["tagId"], a["param1"]) for a in appsmiles.actions] == [
            (CANARY_APPSMILES_USER, "LEAD", "lead-1")
        ]
        # Lists travel too (as JSON text in a form): one call erases the user.
        assert client.multidelete([CANARY_APPSMILES_USER]).deleted == [CANARY_APPSMILES_USER]
        return
    with pytest.raises(PartnerError) as caught:
        client.store_action(CANARY_APPSMILES_USER, "LEAD", param1="lead-1")
    wrong = "body_encoding" if partner_body != our_body else "jwt_placement"
    assert_names_setting(caught, f"APPSMILES_PROFILE.{wrong}")
    assert appsmiles.actions == []


@pytest.mark.parametrize("partner", [105, 106])
@pytest.mark.parametrize("ours", [(105,), (106,), (105, 106)])
def test_appsmiles_already_recorded_code(appsmiles: AppsMilesSandbox, partner: int, ours: tuple[int, ...]) -> None:
    appsmiles.set_modes(already_recorded_code=partner)
    client = appsmiles_client(appsmiles, already_recorded_codes=list(ours))
    assert not client.store_action(CANARY_APPSMILES_USER, "LEAD", param1="lead-1").already_recorded
    if partner in ours:
        assert client.store_action(CANARY_APPSMILES_USER, "LEAD", param1="lead-1").already_recorded
    else:
        # Not taken for done, not taken for a new action: a refusal that names the setting.
        with pytest.raises(PartnerError) as caught:
            client.store_action(CANARY_APPSMILES_USER, "LEAD", param1="lead-1")
        assert_names_setting(caught, "APPSMILES_PROFILE.already_recorded_codes")
    assert len(appsmiles.actions) == 1


def test_appsmiles_field_names_name_the_setting(appsmiles: AppsMilesSandbox) -> None:
    client = appsmiles_client(appsmiles, fields={"tag_id": "tag"})
    with pytest.raises(PartnerError) as caught:
        client.store_action(CANARY_APPSMILES_USER, "LEAD", param1="lead-1")
    assert_names_setting(caught, "APPSMILES_PROFILE.fields")
    assert appsmiles.actions == []


# --------------------------------------------------------------------------------------------- MiiMOSA

LEAD = {
    "email": "ann.bee@example.org",
    "firstname": "Ann",
    "lastname": "Bee",
    "phone": "+33 6 12 34 56 78",
    "collect_type": "donation",
    "project_description": "Une miellerie",
    "project_total_budget": "15000",
    "publication_timeframe": "within_month",
}


@pytest.fixture
def miimosa() -> Iterator[MiimosaSandbox]:
    with MiimosaSandbox(api_key=MIIMOSA_KEY, per_page=2) as server:
        yield server


@pytest.mark.parametrize("partner", ["", "Bearer "])
@pytest.mark.parametrize("ours", ["", "Bearer "])
def test_miimosa_auth_scheme(miimosa: MiimosaSandbox, partner: str, ours: str) -> None:
    miimosa.set_modes(auth_scheme=partner)
    options = MiimosaProfile.from_mapping({"auth_scheme": ours}).client_options()
    client = MiimosaClient(miimosa.url, lambda: MIIMOSA_KEY, retry=NO_RETRY, **options)
    if partner == ours:
        assert client.create_lead(LEAD).reference is not None
        assert len(miimosa.leads) == 1
        return
    with pytest.raises(PartnerAuthError) as caught:
        client.create_lead(LEAD)
    assert_names_setting(caught, "MIIMOSA_PROFILE.auth_scheme")
    assert miimosa.leads == []


@pytest.mark.parametrize("link_last", [True, False])
def test_miimosa_pagination_with_and_without_rel_last(miimosa: MiimosaSandbox, link_last: bool) -> None:
    miimosa.set_modes(link_last=link_last)
    client = MiimosaClient(miimosa.url, lambda: MIIMOSA_KEY, retry=NO_RETRY, max_pages=50)
    listed = client.list_projects()
    ids = [project["id"] for project in listed.projects]
    assert not listed.truncated
    assert sorted(ids) == sorted(project.id for project in miimosa.projects)  # every project, once each


# --------------------------------------------------------------------------------------------- Pimenko

STANDARD, SOLO, PRODUCT = 1, 2, 1


@pytest.fixture
def mlm() -> Iterator[MlmSandbox]:
    with MlmSandbox(api_token=MLM_TOKEN) as server:
        yield server


@pytest.mark.parametrize("errors", ["laravel", "bare"])
def test_mlm_refusals_read_in_both_shapes(mlm: MlmSandbox, errors: str) -> None:
    mlm.set_modes(errors=errors)
    client = MlmClient(mlm.url, lambda: MLM_TOKEN, retry=NO_RETRY)
    issued = client.create_licence(SOLO, PRODUCT, "https://moodle.example.org")
    with pytest.raises(MaxSitesReached):
        client.add_site(issued.licence.key, "https://second.example.org")
    with pytest.raises(InvalidLicenceData) as caught:
        client.add_site(issued.licence.key, "not a url")
    assert "url" in caught.value.message
    assert [len(licence["sites"]) for licence in mlm.licences] == [1]


def test_mlm_markers_that_miss_the_wording_name_the_setting(mlm: MlmSandbox) -> None:
    options = MlmProfile.from_mapping({"max_sites_markers": ["site limit"]}).client_options()
    client = MlmClient(mlm.url, lambda: MLM_TOKEN, retry=NO_RETRY, **options)
    issued = client.create_licence(SOLO, PRODUCT, "https://moodle.example.org")
    with pytest.raises(InvalidLicenceData) as caught:
        client.add_site(issued.licence.key, "https://second.example.org")
    assert_names_setting(caught, "MLM_PROFILE.max_sites_markers")
    assert [len(licence["sites"]) for licence in mlm.licences] == [1]


@pytest.mark.parametrize("url_limit", [255, None])
def test_mlm_url_limit_is_the_partners(mlm: MlmSandbox, url_limit: int | None) -> None:
    mlm.set_modes(url_limit=url_limit)
    client = MlmClient(mlm.url, lambda: MLM_TOKEN, retry=NO_RETRY)
    long_url = "https://moodle.example.org/" + "a" * 300
    if url_limit is None:
        assert client.create_licence(STANDARD, PRODUCT, long_url).site.url == long_url
    else:
        with pytest.raises(InvalidLicenceData):
            client.create_licence(STANDARD, PRODUCT, long_url)
        assert mlm.licences == []
