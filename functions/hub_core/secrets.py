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
# Every environment variable with this suffix names one of the function's SSM SecureString parameters.
SECRET_NAME_SUFFIX = "_PARAM"  # noqa: S105 - a suffix of variable names, not a secret

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
    provider = ssm_provider()
    # Powertools caches a batch read under (name, transform), not its single get's key: the batch's own is read.
    cached = (name, None)
    if provider.has_not_expired_in_cache(cached):
        value = provider.fetch_from_cache(cached)
    else:
        # A first request (cold, or after a SnapStart restore) needs most of its function's secrets: one
        # GetParameters reads them all into the cache, where one GetParameter each would follow. A throttled or
        # unreachable SSM raises the SDK's error (hub_core.http_api answers 503); a name it cannot read is missing.
        batch: dict[str, dict[str, object]] = {other: {} for other in {name, *function_secret_names()}}
        found = provider.get_parameters_by_name(batch, decrypt=True, max_age=max_age, raise_on_error=False)
        if name not in found:
            raise ConfigError(f"the SSM parameter named by {name_variable} could not be read")
        value = found[name]
    if not isinstance(value, str) or not value:
        raise ConfigError(f"the SSM parameter named by {name_variable} is empty")
    return value


def function_secret_names() -> list[str]:
    """The SSM parameter names this function's environment holds (the values of its `*_PARAM` variables)."""
    return sorted({value for key, value in os.environ.items() if key.endswith(SECRET_NAME_SUFFIX) and value})
