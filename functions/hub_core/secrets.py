"""Partner secrets from SSM SecureString through Powertools Parameters; only their names live in the environment."""

from __future__ import annotations

import os

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from aws_lambda_powertools.utilities.parameters.ssm import SSMProvider

from hub_core import aws
from hub_core.caches import on_reset
from hub_core.config import ConfigError

# Long enough that a warm container reads SSM a few times an hour, short enough that a rotated key is picked up.
DEFAULT_MAX_AGE_SECONDS = 300

on_reset(parameters.clear_caches)


def ssm_provider() -> SSMProvider:
    """Powertools' default SSM provider, made with the container's shared boto3 session (hub_core.aws) rather than
    a session of its own, which would parse the SDK's data files once more on a cold start."""
    provider = DEFAULT_PROVIDERS.get("ssm")
    if not isinstance(provider, SSMProvider):
        provider = DEFAULT_PROVIDERS["ssm"] = SSMProvider(boto3_client=aws.ssm())
    return provider


def secret(name_variable: str) -> str:
    """The decrypted value of the SSM parameter whose name is in environment variable `name_variable`."""
    name = os.environ.get(name_variable)
    if not name:
        raise ConfigError(f"{name_variable} is not set: it must name an SSM SecureString parameter")
    max_age = int(os.environ.get("SECRETS_MAX_AGE_SECONDS", DEFAULT_MAX_AGE_SECONDS))
    ssm_provider()
    try:
        value = parameters.get_parameter(name, decrypt=True, max_age=max_age)
    except parameters.exceptions.GetParameterError:
        # The SDK's message names the parameter only; the value never reaches it.
        raise ConfigError(f"the SSM parameter named by {name_variable} could not be read") from None
    if not isinstance(value, str) or not value:
        raise ConfigError(f"the SSM parameter named by {name_variable} is empty")
    return value
