"""The Umbrella client that the campaign lifecycle and the donation ingester both use."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from hub_core.config import Settings
from hub_core.secrets import secret
from partners.http import RetryPolicy, Timeouts
from partners.umbrella import UmbrellaClient


class UmbrellaSettings(Settings):
    """Umbrella's address and how our key travels; the key's and the key ring's SSM parameter names are read
    by hub_core.secrets from UMBRELLA_API_KEY_PARAM and CALLBACK_SIGNING_KEY_PARAM."""

    umbrella_base_url: str
    umbrella_key_placement: Literal["query", "bearer"] = "query"
    umbrella_key_parameter: str = "apikey"
    umbrella_connect_timeout: float = Field(default=3.05, gt=0)
    umbrella_read_timeout: float = Field(default=8.0, gt=0)


def umbrella_client(config: UmbrellaSettings) -> UmbrellaClient:
    return UmbrellaClient(
        config.umbrella_base_url,
        api_key=lambda: secret("UMBRELLA_API_KEY_PARAM"),
        key_placement=config.umbrella_key_placement,
        key_parameter=config.umbrella_key_parameter,
        timeouts=Timeouts(connect=config.umbrella_connect_timeout, read=config.umbrella_read_timeout),
        retry=RetryPolicy(max_attempts=3, max_retry_after=3.0),
    )
