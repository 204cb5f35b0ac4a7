"""The Umbrella client that the campaign lifecycle and the donation ingester both use."""

from __future__ import annotations

from pydantic import Field

from hub_core.config import Settings
from hub_core.partner_calls import client_options
from hub_core.secrets import secret
from partners.profiles import UmbrellaProfile, UmbrellaProfileSetting
from partners.umbrella import UmbrellaClient


class UmbrellaSettings(Settings):
    """Umbrella's address and its wire profile (UMBRELLA_PROFILE, a JSON object: partners.profiles.UmbrellaProfile);
    the key's and the signing ring's SSM parameter names are read by hub_core.secrets from UMBRELLA_API_KEY_PARAM
    and CALLBACK_SIGNING_KEY_PARAM."""

    umbrella_base_url: str = Field(min_length=1)
    umbrella_profile: UmbrellaProfileSetting = Field(default_factory=UmbrellaProfile)
    umbrella_connect_timeout: float = Field(default=3.05, gt=0)
    umbrella_read_timeout: float = Field(default=8.0, gt=0)


def umbrella_client(config: UmbrellaSettings) -> UmbrellaClient:
    return UmbrellaClient(
        config.umbrella_base_url,
        api_key=lambda: secret("UMBRELLA_API_KEY_PARAM"),
        **client_options(config.umbrella_profile, config.umbrella_connect_timeout, config.umbrella_read_timeout),
    )
