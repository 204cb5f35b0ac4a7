"""`hub partners check` against a running local stack: every partner ok, then partners configured the other way."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from hub_local.stack import LocalStack
from tests.conftest import ROOT

PARTNERS = ("umbrella", "mlm", "appsmiles", "miimosa")


@pytest.fixture(scope="module")
def live() -> Iterator[LocalStack]:
    with LocalStack(ROOT / "template.yaml", gateway_port=0, pump_queues=False) as stack:
        yield stack


@pytest.fixture
def check(live, hub):
    """`hub partners check` at the live stack; every sandbox back to its default reading afterwards."""
    yield lambda *args: hub("--url", live.gateway_url, "partners", "check", *args)
    for sandbox in live.sandboxes.values():
        sandbox.set_modes(**type(sandbox.modes)().model_dump())


def rows(out: str) -> dict[str, str]:
    """Each partner's table row, by partner."""
    found = {}
    for line in out.splitlines():
        cells = [cell.strip() for cell in line.strip("│┃ ").split("│")]
        if cells and cells[0] in PARTNERS:
            found[cells[0]] = line
    return found


def test_every_partner_of_make_run_passes(check) -> None:
    outcome = check()
    assert outcome.status == 0, outcome.out
    table = rows(outcome.out)
    assert set(table) == set(PARTNERS)
    assert all(" ok " in row for row in table.values()), outcome.out
    assert "service(s)" in table["umbrella"]
    assert "licence type(s)" in table["mlm"]
    assert "partner token" in table["appsmiles"]
    assert "project(s)" in table["miimosa"]


@pytest.mark.parametrize(
    ("partner", "modes", "named"),
    [
        ("umbrella", {"key_parameter": "apiKey", "accept_bearer": False}, "UMBRELLA_PROFILE.key_parameter"),
        ("appsmiles", {"body_encoding": "form"}, "APPSMILES_PROFILE.body_encoding"),
        ("appsmiles", {"jwt_placement": "body"}, "APPSMILES_PROFILE.jwt_placement"),
        ("miimosa", {"auth_scheme": "Bearer "}, "MIIMOSA_PROFILE.auth_scheme"),
    ],
)
def test_a_partner_configured_the_other_way_fails_naming_the_setting(
    live: LocalStack, check, partner: str, modes: dict[str, object], named: str
) -> None:
    live.sandboxes[partner].set_modes(**modes)
    outcome = check()
    assert outcome.status == 1
    table = rows(outcome.out)
    assert "FAILED" in table[partner], outcome.out
    assert named in table[partner], outcome.out
    others = [name for name in PARTNERS if name != partner]
    assert all(" ok " in table[name] for name in others), outcome.out


def test_a_bad_profile_fails_as_a_setting_and_one_partner_can_be_checked(live: LocalStack, check) -> None:
    before = live.function_env("CampaignLifecycleFunction")
    for function in ("CampaignLifecycleFunction", "DonationIngesterFunction"):
        live.set_function_env(function, {"UMBRELLA_PROFILE": '{"amounts": "strings"}'})
    try:
        outcome = check("--partner", "umbrella")
    finally:
        for function in ("CampaignLifecycleFunction", "DonationIngesterFunction"):
            live.set_function_env(function, {"UMBRELLA_PROFILE": before["UMBRELLA_PROFILE"]})
    assert outcome.status == 1
    table = rows(outcome.out)
    assert set(table) == {"umbrella"}
    assert "UMBRELLA_PROFILE.amounts" in table["umbrella"], outcome.out


def test_a_wrong_secret_is_an_auth_failure(live: LocalStack, check) -> None:
    ssm = live.boto3_client("ssm")
    name = live.function_env("LicenceIssuanceFunction")["MLM_API_TOKEN_PARAM"]
    kept = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]
    ssm.put_parameter(Name=name, Value="not-the-token", Type="SecureString", Overwrite=True)
    try:
        outcome = check("--partner", "mlm")
    finally:
        ssm.put_parameter(Name=name, Value=kept, Type="SecureString", Overwrite=True)
    assert outcome.status == 1
    assert "auth refused (HTTP 401)" in rows(outcome.out)["mlm"], outcome.out
    assert "not-the-token" not in outcome.out + outcome.err


def test_what_the_stage_lacks_is_named(live: LocalStack, check) -> None:
    """A missing secret name, an unreadable secret, a missing id, an empty service list: each its own finding."""
    ssm = live.boto3_client("ssm")
    secret_name = live.function_env("LicenceIssuanceFunction")["MLM_API_TOKEN_PARAM"]
    kept_token = ssm.get_parameter(Name=secret_name, WithDecryption=True)["Parameter"]["Value"]
    miimosa_param = live.function_env("LeadIntakeFunction")["MIIMOSA_API_KEY_PARAM"]
    app_ids = {
        name: live.function_env(name)["APPSMILES_APP_ID"] for name in ("LoyaltyRelayFunction", "ErasureFunction")
    }
    umbrella = live.sandboxes["umbrella"]
    services = umbrella.services
    ssm.delete_parameter(Name=secret_name)
    live.set_function_env("LeadIntakeFunction", {"MIIMOSA_API_KEY_PARAM": ""})
    for name in app_ids:
        live.set_function_env(name, {"APPSMILES_APP_ID": ""})
    umbrella.services = ()
    try:
        outcome = check()
    finally:
        ssm.put_parameter(Name=secret_name, Value=kept_token, Type="SecureString", Overwrite=True)
        live.set_function_env("LeadIntakeFunction", {"MIIMOSA_API_KEY_PARAM": miimosa_param})
        for name, value in app_ids.items():
            live.set_function_env(name, {"APPSMILES_APP_ID": value})
        umbrella.services = services
    assert outcome.status == 1
    table = rows(outcome.out)
    assert "the secret" in table["mlm"]
    assert "cannot be read" in table["mlm"]
    assert "MIIMOSA_API_KEY_PARAM is not set" in table["miimosa"]
    assert "APPSMILES_APP_ID is not set" in table["appsmiles"]
    assert "service list is empty" in table["umbrella"]


def test_a_stack_without_a_partner_says_so(live: LocalStack, check, monkeypatch) -> None:
    from hub_cli.commands import partners  # noqa: PLC0415 - the module under test

    monkeypatch.setattr(
        partners,
        "_local_document",
        lambda url: {"functionEnvironments": {"OnlyFunction": {"MLM_BASE_URL": "", "OTHER": "x"}}},
    )
    outcome = check("--partner", "mlm")
    assert outcome.status == 1
    assert "no function has MLM_BASE_URL" in rows(outcome.out)["mlm"]
    monkeypatch.setattr(partners, "_local_document", lambda url: {"resources": []})
    assert "restart `make run`" in check().err
