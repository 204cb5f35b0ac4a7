"""The app's miles client every function uses: built once per container from the environment, its token shared."""

from __future__ import annotations

from pydantic import Field

from hub_core.caches import container_cached, on_reset
from hub_core.config import Settings
from hub_core.partner_calls import client_options
from hub_core.secrets import secret
from partners.appsmiles import AppsMilesClient
from partners.appsmiles_transport import reset_tokens
from partners.profiles import AppsMilesProfile, AppsMilesProfileSetting

# A fresh container has no partner token: the tests' and the local runner's reset must forget it too.
on_reset(reset_tokens)


class AppsMilesSettings(Settings):
    """app's miles' address, our identifiers there (no defaults: the partner's document gives none, so a stack
    without them fails to deploy) and its wire profile (APPSMILES_PROFILE, a JSON object:
    partners.profiles.AppsMilesProfile); the partner secret's SSM parameter name is read by hub_core.secrets from
    APPSMILES_PARTNER_SECRET_PARAM, on every token fetch, so a rotated secret is picked up."""

    appsmiles_base_url: str = Field(min_length=1)
    appsmiles_app_id: str = Field(min_length=1)
    appsmiles_partner_id: str = Field(min_length=1)
    appsmiles_profile: AppsMilesProfileSetting = Field(default_factory=AppsMilesProfile)
    appsmiles_connect_timeout: float = Field(default=3.05, gt=0)
    appsmiles_read_timeout: float = Field(default=8.0, gt=0)


@container_cached
def appsmiles_settings() -> AppsMilesSettings:
    return AppsMilesSettings.from_env()  # type: ignore[return-value]


@container_cached
def appsmiles_client() -> AppsMilesClient:
    """The container's client; a bad or missing setting is a `ConfigError`."""
    config = appsmiles_settings()
    return AppsMilesClient(
        config.appsmiles_base_url,
        config.appsmiles_app_id,
        config.appsmiles_partner_id,
        partner_secret=lambda: secret("APPSMILES_PARTNER_SECRET_PARAM"),
        **client_options(config.appsmiles_profile, config.appsmiles_connect_timeout, config.appsmiles_read_timeout),
    )
