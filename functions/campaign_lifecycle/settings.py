"""Campaign lifecycle's settings, read from its environment on first use."""

from __future__ import annotations

from pydantic import Field

from hub_core.caches import container_cached
from hub_core.umbrella import UmbrellaSettings


class CampaignSettings(UmbrellaSettings):
    campaigns_table_name: str
    # The donation ledger, read for a campaign's collected amount (the donation ingester writes it).
    donations_table_name: str
    # A page's pending figure (callbacks Umbrella has not confirmed yet) reads at most this many donations.
    pending_read_limit: int = Field(default=1000, ge=1)
    # Where Umbrella must send donations, e.g. https://api.example.org; empty: the address this request came in on.
    callback_base_url: str = ""
    callback_path: str = "/donations/callback"
    # An upper bound on the suggested donation, in øre (50 000 kr by default).
    max_amount_ore: int = Field(default=5_000_000, ge=1)
    # The creator's number in msisdn form; Umbrella is Danish, so 45 and 8 digits unless configured otherwise.
    msisdn_pattern: str = r"^45\d{8}$"
    # How many SMS an answer or confirmation text may span; 1 keeps every donor's receipt a single message.
    sms_messages: int = Field(default=1, ge=1, le=4)
    services_cache_seconds: int = Field(default=300, ge=0)
    # How long a create attempt holds a donation code before another may take over (beyond the function timeout).
    create_lease_seconds: int = Field(default=30, ge=1)


@container_cached
def settings() -> CampaignSettings:
    return CampaignSettings.from_env()  # type: ignore[return-value]
