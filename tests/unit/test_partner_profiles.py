"""Partner profiles: defaults, errors that name the setting, and the template parameters that set them."""

from __future__ import annotations

from pathlib import Path

import pytest

from hub_core.config import ConfigError
from hub_core.umbrella import UmbrellaSettings
from hub_local.cfn import load_yaml
from partners.appsmiles_wire import AppsMilesFields
from partners.profiles import AppsMilesProfile, MiimosaProfile, MlmProfile, ProfileError, UmbrellaProfile

ROOT = Path(__file__).resolve().parents[2]


def template() -> dict:  # type: ignore[type-arg]
    # Fn::ForEach loops unrolled (the alarms): every resource is a mapping, as deployed.
    return load_yaml(ROOT / "template.yaml")


@pytest.mark.parametrize(
    ("kind", "text", "named"),
    [
        (UmbrellaProfile, '{"key_parameter": "APIKEY"}', "UMBRELLA_PROFILE.key_parameter"),
        (UmbrellaProfile, '{"stoped_campaign": "readable"}', "UMBRELLA_PROFILE.stoped_campaign"),
        (AppsMilesProfile, '{"body_encoding": "xml"}', "APPSMILES_PROFILE.body_encoding"),
        (AppsMilesProfile, '{"fields": {"tagid": "tag"}}', "APPSMILES_PROFILE.fields"),
        (MiimosaProfile, '{"auth_scheme": "Basic "}', "MIIMOSA_PROFILE.auth_scheme"),
        (MlmProfile, '{"max_sites_markers": [" "]}', "MLM_PROFILE.max_sites_markers"),
        (MlmProfile, "[1]", "MLM_PROFILE must be a JSON object"),
        (MlmProfile, "{not json", "MLM_PROFILE is not JSON"),
    ],
)
def test_a_bad_profile_names_the_setting(kind: type[UmbrellaProfile], text: str, named: str) -> None:
    with pytest.raises(ProfileError, match=named.replace(".", r"\.")):
        kind.from_json(text)


def test_defaults_are_todays_readings_and_keys_left_out_keep_them() -> None:
    umbrella = UmbrellaProfile.from_json('{"key_parameter": "apiKey"}')
    assert umbrella.client_options() == {
        "key_placement": "query",
        "key_parameter": "apiKey",
        "amounts": "integer_or_string",
        "donation_codes": "sensitive",
        "stopped_campaign": "not_found",
        "code_in_use_wording": "already in use",
    }
    apps = AppsMilesProfile.from_json('{"fields": {"tag_id": "tag"}, "paths": {"store": "v2/buffer/store"}}')
    options = apps.client_options()
    assert options["fields"] == AppsMilesFields(tag_id="tag")
    assert options["paths"].store == "v2/buffer/store"
    assert (options["body_encoding"], options["jwt_placement"], options["already_recorded_codes"]) == (
        "json",
        "header",
        (105,),
    )
    assert MiimosaProfile.from_json("").auth_scheme == ""


def test_a_function_with_a_bad_profile_fails_at_start_naming_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UMBRELLA_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("UMBRELLA_PROFILE", '{"amounts": "strings"}')
    with pytest.raises(ConfigError, match=r"UMBRELLA_PROFILE\.amounts"):
        UmbrellaSettings.from_env()


def test_every_profile_is_a_template_parameter_reaching_its_functions() -> None:
    document = template()
    parameters = document["Parameters"]
    for name in ("UmbrellaProfile", "AppsMilesProfile", "MiimosaProfile", "MlmProfile"):
        assert parameters[name]["Default"] == "{}"
    variables = {
        variable
        for resource in document["Resources"].values()
        if resource.get("Type") == "AWS::Serverless::Function"
        for variable in (resource["Properties"].get("Environment") or {}).get("Variables", {})
    }
    assert {"UMBRELLA_PROFILE", "APPSMILES_PROFILE", "MIIMOSA_PROFILE", "MLM_PROFILE", "MSISDN_PATTERN"} <= variables


def test_no_default_names_a_host_or_id_the_partner_document_does_not_give() -> None:
    parameters = template()["Parameters"]
    for name in ("AppsMilesBaseUrl", "AppsMilesAppId", "AppsMilesPartnerId"):
        assert "Default" not in parameters[name], name
    # The hosts the partners' documents give: MiiMOSA's code samples, Umbrella's API Endpoint, Pimenko's examples.
    documented = {
        "MiimosaBaseUrl": "https://api.miimosa.com",
        "UmbrellaBaseUrl": "https://indsamling.m2go.dk/api",
        "MlmBaseUrl": "https://mlm.pimenko.com/api",
    }
    assert {name: parameters[name]["Default"] for name in documented} == documented


def test_blank_wire_names_and_a_profile_object_as_a_setting() -> None:
    with pytest.raises(ProfileError, match=r"APPSMILES_PROFILE\.paths"):
        AppsMilesProfile.from_json('{"paths": {"store": " "}}')
    given = UmbrellaProfile(key_parameter="apiKey")
    assert UmbrellaProfile.coerce(given) is given
    assert UmbrellaProfile.hint("amounts") == " (check UMBRELLA_PROFILE.amounts)"


@pytest.mark.parametrize(
    "options",
    [
        {"amounts": "float"},
        {"donation_codes": "folded"},
        {"stopped_campaign": "gone"},
        {"code_in_use_wording": " "},
    ],
)
def test_the_umbrella_client_refuses_a_reading_it_does_not_know(options: dict[str, str]) -> None:
    from partners.umbrella import UmbrellaClient  # noqa: PLC0415

    with pytest.raises(ValueError, match=next(iter(options))):
        UmbrellaClient("http://127.0.0.1:9", lambda: "k", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("options", [{"body_encoding": "xml"}, {"jwt_placement": "cookie"}])
def test_the_appsmiles_client_refuses_a_wire_format_it_does_not_know(options: dict[str, str]) -> None:
    from partners.appsmiles import AppsMilesClient  # noqa: PLC0415

    with pytest.raises(ValueError, match=next(iter(options))):
        AppsMilesClient("http://127.0.0.1:9", "a", "p", lambda: "s", **options)  # type: ignore[arg-type]
