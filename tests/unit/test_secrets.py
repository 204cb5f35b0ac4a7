"""hub_core.secrets on moto's SSM in-process: one provider on the shared client, max age, rotation, empty values."""

from __future__ import annotations

import os

import boto3
import pytest
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS

from hub_core import aws
from hub_core.caches import reset_all
from hub_core.config import ConfigError
from hub_core.secrets import function_secret_names, secret, ssm_provider
from tests.conftest import in_process_aws

NAME = "/partner-hub/test/api-key"


@pytest.fixture
def ssm(monkeypatch):
    for variable in [key for key in os.environ if key.endswith("_PARAM")]:
        monkeypatch.delenv(variable)
    with in_process_aws(monkeypatch):
        client = boto3.client("ssm")
        client.put_parameter(Name=NAME, Value="first-value", Type="SecureString")
        monkeypatch.setenv("API_KEY_PARAM", NAME)
        yield client


def requests_to(service_client) -> list[str]:
    names: list[str] = []
    service_client.meta.events.register("before-call.ssm", lambda model, **_: names.append(model.name))
    return names


def test_the_provider_is_powertools_default_on_the_containers_ssm_client(ssm):
    provider = ssm_provider()
    assert DEFAULT_PROVIDERS["ssm"] is provider
    assert ssm_provider() is provider
    assert provider.client is aws.ssm()


def test_the_secret_names_are_the_values_of_every_param_variable(ssm, monkeypatch):
    monkeypatch.setenv("OTHER_KEY_PARAM", "/partner-hub/test/other")
    monkeypatch.setenv("EMPTY_PARAM", "")
    monkeypatch.setenv("PARAM_NOT_A_SUFFIX", "/partner-hub/test/ignored")
    monkeypatch.setenv("DUPLICATE_PARAM", NAME)
    assert function_secret_names() == [NAME, "/partner-hub/test/other"]


def test_a_zero_max_age_reads_ssm_every_time_and_sees_a_rotation(ssm, monkeypatch):
    monkeypatch.setenv("SECRETS_MAX_AGE_SECONDS", "0")
    calls = requests_to(aws.ssm())
    assert secret("API_KEY_PARAM") == "first-value"
    ssm.put_parameter(Name=NAME, Value="rotated-value", Type="SecureString", Overwrite=True)
    assert secret("API_KEY_PARAM") == "rotated-value"
    assert calls == ["GetParameters", "GetParameters"]


def test_a_cached_secret_makes_no_request_until_reset(ssm):
    calls = requests_to(aws.ssm())
    secret("API_KEY_PARAM")
    secret("API_KEY_PARAM")
    assert calls == ["GetParameters"]
    ssm.put_parameter(Name=NAME, Value="rotated-value", Type="SecureString", Overwrite=True)
    reset_all()  # a fresh container (or a SnapStart restore) reads it again
    assert secret("API_KEY_PARAM") == "rotated-value"


def test_an_empty_or_unset_name_is_a_configuration_error(ssm, monkeypatch):
    monkeypatch.setenv("API_KEY_PARAM", "")
    with pytest.raises(ConfigError, match="API_KEY_PARAM is not set"):
        secret("API_KEY_PARAM")


def test_a_secret_is_returned_decrypted_and_its_value_is_never_in_an_error(ssm, monkeypatch):
    monkeypatch.setenv("MISSING_PARAM", "/partner-hub/test/missing")
    with pytest.raises(ConfigError) as caught:
        secret("MISSING_PARAM")
    assert "first-value" not in str(caught.value)
    assert "/partner-hub/test/missing" not in str(caught.value)  # the variable is named, not the parameter
    assert secret("API_KEY_PARAM") == "first-value"
