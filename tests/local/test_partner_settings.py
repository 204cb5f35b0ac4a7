"""Partner settings that are not secrets (app's miles' app and partner ids) agree between functions and sandbox."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pytest

from hub_local.partners import APPSMILES_SETTINGS, PartnerSpec, default_partners
from hub_local.stack import LocalStack
from partners.appsmiles import AppsMilesClient
from sandboxes.appsmiles import AppsMilesSandbox
from tests.canaries import APPSMILES_SECRET, CANARY_APPSMILES_USER

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: dev
  AppsMilesBaseUrl:
    Type: String
    Default: "https://api.appsmiles.example/api"
  AppsMilesAppId:
    Type: String
    Default: partner-hub
  AppsMilesPartnerId:
    Type: String
    Default: partner-hub
Resources:
  LoyaltyFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.local.fake_handlers.plain
      CodeUri: .
      Runtime: python3.13
      Environment:
        Variables:
          APPSMILES_BASE_URL: !Ref AppsMilesBaseUrl
          APPSMILES_APP_ID: !Ref AppsMilesAppId
          APPSMILES_PARTNER_ID: !Ref AppsMilesPartnerId
          APPSMILES_PARTNER_SECRET_PARAM: !Sub "/partner-hub/${Stage}/appsmiles/partner-secret"
"""


def appsmiles_spec() -> PartnerSpec:
    return next(spec for spec in default_partners() if spec.name == "appsmiles")


def start(tmp_path: Path, environ: Mapping[str, str], **options: object) -> LocalStack:
    template = tmp_path / "template.yaml"
    template.write_text(TEMPLATE, encoding="utf-8")
    return LocalStack(
        template, gateway_port=None, pump_queues=False, partners=[appsmiles_spec()], environ=environ, **options
    )  # type: ignore[arg-type]


def credit_through_function_env(local: LocalStack) -> AppsMilesSandbox:
    """Call the sandbox exactly as the function would be configured to: its env, its SSM secret."""
    env = local.function_env("LoyaltyFunction")
    ssm = local.boto3_client("ssm")
    secret = ssm.get_parameter(Name=env["APPSMILES_PARTNER_SECRET_PARAM"], WithDecryption=True)["Parameter"]["Value"]
    client = AppsMilesClient(
        env["APPSMILES_BASE_URL"], env["APPSMILES_APP_ID"], env["APPSMILES_PARTNER_ID"], lambda: secret
    )
    assert client.store_action(CANARY_APPSMILES_USER, "LEAD", param1="settings").code == 0
    sandbox = local.sandboxes["appsmiles"]
    assert isinstance(sandbox, AppsMilesSandbox)
    return sandbox


def test_sandbox_expects_the_template_values_when_none_are_given(tmp_path: Path) -> None:
    with start(tmp_path, {}) as local:
        env = local.function_env("LoyaltyFunction")
        assert (env["APPSMILES_APP_ID"], env["APPSMILES_PARTNER_ID"]) == ("partner-hub", "partner-hub")
        sandbox = credit_through_function_env(local)
        assert (sandbox.app_id, sandbox.partner_id) == ("partner-hub", "partner-hub")
        assert sandbox.partner_secret == "local-appsmiles-secret"
        assert env["APPSMILES_BASE_URL"] == sandbox.url


def test_stack_environment_sets_functions_and_sandbox_alike(tmp_path: Path) -> None:
    environ = {
        "APPSMILES_APP_ID": "ops-app",
        "APPSMILES_PARTNER_ID": "ops-partner",
        "APPSMILES_PARTNER_SECRET": APPSMILES_SECRET,
    }
    with start(tmp_path, environ) as local:
        env = local.function_env("LoyaltyFunction")
        assert (env["APPSMILES_APP_ID"], env["APPSMILES_PARTNER_ID"]) == ("ops-app", "ops-partner")
        sandbox = credit_through_function_env(local)
        assert (sandbox.app_id, sandbox.partner_id, sandbox.partner_secret) == (
            "ops-app",
            "ops-partner",
            APPSMILES_SECRET,
        )
        assert sandbox.actions[0]["partnerClientId"] == CANARY_APPSMILES_USER


def test_template_parameter_override_reaches_the_sandbox(tmp_path: Path) -> None:
    with start(tmp_path, {}, parameter_overrides={"AppsMilesAppId": "from-parameter"}) as local:
        sandbox = credit_through_function_env(local)
        assert sandbox.app_id == "from-parameter"


def test_setting_values() -> None:
    spec = appsmiles_spec()
    assert spec.settings == APPSMILES_SETTINGS
    functions = [{"OTHER": "x"}, {"APPSMILES_APP_ID": "first"}, {"APPSMILES_APP_ID": "second"}]
    assert spec.setting_values({}, functions) == {"APPSMILES_APP_ID": "first"}
    assert spec.setting_values({"APPSMILES_APP_ID": "env", "APPSMILES_PARTNER_ID": ""}, functions) == {
        "APPSMILES_APP_ID": "env"
    }
    assert spec.setting_values({}, []) == {}
    # No value anywhere: the sandbox keeps its own default.
    sandbox = spec.sandbox_factory({"appsmiles/partner-secret": "s"})
    assert isinstance(sandbox, AppsMilesSandbox)
    assert (sandbox.app_id, sandbox.partner_secret) == ("local-app", "s")


@pytest.mark.parametrize("variable", ["APPSMILES_APP_ID", "APPSMILES_PARTNER_ID"])
def test_secret_values_do_not_take_settings(variable: str) -> None:
    assert appsmiles_spec().secret_values({variable: "x"}) == {"appsmiles/partner-secret": "local-appsmiles-secret"}


def test_profiles_reach_the_functions_and_sandbox_modes_the_sandbox(tmp_path: Path) -> None:
    environ = {"APPSMILES_PROFILE": '{"body_encoding": "form"}', "APPSMILES_SANDBOX_MODES": '{"body_encoding": "form"}'}
    template = tmp_path / "template.yaml"
    template.write_text(
        TEMPLATE.replace(
            "          APPSMILES_APP_ID: !Ref AppsMilesAppId\n",
            "          APPSMILES_APP_ID: !Ref AppsMilesAppId\n          APPSMILES_PROFILE: '{}'\n",
        ),
        encoding="utf-8",
    )
    with LocalStack(
        template, gateway_port=None, pump_queues=False, partners=[appsmiles_spec()], environ=environ
    ) as local:
        assert local.function_env("LoyaltyFunction")["APPSMILES_PROFILE"] == '{"body_encoding": "form"}'
        sandbox = local.sandboxes["appsmiles"]
        assert isinstance(sandbox, AppsMilesSandbox)
        assert sandbox.modes.body_encoding == "form"
