"""`hub --stage … partners check` on AWS: settings from GetFunctionConfiguration, secrets from SSM (moto), the
partner calls to the loopback sandboxes the functions' base URLs name."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from moto import mock_aws

from sandboxes.mlm import MlmSandbox
from sandboxes.umbrella import UmbrellaSandbox
from tests.canaries import MLM_TOKEN, UMBRELLA_KEY

REGION = "eu-west-1"


def deployed_stack(umbrella_url: str, mlm_url: str, umbrella_profile: str) -> dict[str, object]:
    def function(variables: dict[str, str]) -> dict[str, object]:
        return {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.13",
                "Handler": "app.handler",
                "Role": "arn:aws:iam::123456789012:role/hub",
                "Code": {"ZipFile": "def handler(event, context):\n    return event\n"},
                "Environment": {"Variables": variables},
            },
        }

    return {
        "Resources": {
            "CampaignLifecycleFunction": function(
                {
                    "UMBRELLA_BASE_URL": umbrella_url,
                    "UMBRELLA_API_KEY_PARAM": "/partner-hub/test/umbrella/api-key",
                    "UMBRELLA_PROFILE": umbrella_profile,
                }
            ),
            "LicenceIssuanceFunction": function(
                {"MLM_BASE_URL": mlm_url, "MLM_API_TOKEN_PARAM": "/partner-hub/test/mlm/api-token", "MLM_PROFILE": "{}"}
            ),
        }
    }


@pytest.fixture
def sandboxes() -> Iterator[tuple[UmbrellaSandbox, MlmSandbox]]:
    with UmbrellaSandbox(api_key=UMBRELLA_KEY) as umbrella, MlmSandbox(api_token=MLM_TOKEN) as mlm:
        yield umbrella, mlm


@pytest.fixture
def aws(monkeypatch, sandboxes):
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "HUB_STAGE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        import boto3  # noqa: PLC0415 - clients made inside the mock

        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
            ],
        }
        boto3.client("iam", region_name=REGION).create_role(RoleName="hub", AssumeRolePolicyDocument=json.dumps(trust))
        ssm = boto3.client("ssm", region_name=REGION)
        ssm.put_parameter(Name="/partner-hub/test/umbrella/api-key", Value=UMBRELLA_KEY, Type="SecureString")
        ssm.put_parameter(Name="/partner-hub/test/mlm/api-token", Value=MLM_TOKEN, Type="SecureString")

        def deploy(umbrella_profile: str = "{}") -> None:
            umbrella, mlm = sandboxes
            body = deployed_stack(umbrella.url, mlm.url, umbrella_profile)
            boto3.client("cloudformation", region_name=REGION).create_stack(
                StackName="partner-hub-test", TemplateBody=json.dumps(body)
            )

        yield deploy


def test_a_deployed_stage_is_checked_with_its_own_settings(aws, sandboxes, hub) -> None:
    aws('{"key_parameter": "apiKey"}')  # the stage says apiKey; the partner (the sandbox) reads apikey
    outcome = hub(
        "--stage", "test", "--region", REGION, "partners", "check", "--partner", "umbrella", "--partner", "mlm"
    )
    assert outcome.status == 1, outcome.out + outcome.err
    umbrella_row = next(line for line in outcome.out.splitlines() if "umbrella" in line)
    mlm_row = next(line for line in outcome.out.splitlines() if "│ mlm" in line)
    assert "UMBRELLA_PROFILE.key_parameter" in umbrella_row
    assert " ok " in mlm_row
    assert UMBRELLA_KEY not in outcome.out + outcome.err
    sandboxes[0].set_modes(key_parameter="apiKey")
    again = hub("--stage", "test", "--region", REGION, "partners", "check", "--partner", "umbrella")
    assert again.status == 0, again.out
