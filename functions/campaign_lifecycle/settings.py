"""Campaign lifecycle's settings, read from its environment on first use."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from campaign_lifecycle.texts import (
    ANSWER_PLACEHOLDERS,
    CONFIRM_PLACEHOLDERS,
    DEFAULT_ANSWER_TEMPLATE,
    DEFAULT_CONFIRM_TEMPLATE,
    check_template,
)
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
    msisdn_pattern: str = r"^45[0-9]{8}$"
    # How many SMS an answer or confirmation text may span; 1 keeps every donor's receipt a single message.
    sms_messages: int = Field(default=1, ge=1, le=4)
    services_cache_seconds: int = Field(default=300, ge=0)
    # How long a create attempt holds a donation code before another may take over (beyond the function timeout).
    create_lease_seconds: int = Field(default=30, ge=1)
    # The organisation's SMS texts (campaign_lifecycle.texts): {name} {code} {keyword} {amount}, and {token} — the
    # manage token, which reaches the creator only inside the confirm SMS, so only the number's owner can manage.
    confirm_text_template: str = DEFAULT_CONFIRM_TEMPLATE
    answer_message_template: str = DEFAULT_ANSWER_TEMPLATE
    # The longest campaign name a visitor may give; {name} is the donation code when they give none.
    campaign_name_max: int = Field(default=30, ge=1, le=60)
    # Creation limits (hub_core.ratelimit): confirm SMSs one number may be sent, and creates from one client IP.
    rate_limit_table_name: str
    create_limit_per_msisdn: int = Field(default=3, ge=0)
    create_limit_msisdn_window_seconds: int = Field(default=86_400, ge=1)
    create_limit_per_ip: int = Field(default=10, ge=0)
    create_limit_ip_window_seconds: int = Field(default=3_600, ge=1)
    # The longest a site's member-id signature may be valid for (hub_core.member_signature).
    member_signature_max_seconds: int = Field(default=86_400, ge=60)
    # A stop first reconciles the campaign (donation_ingester, in-process) for at most this long, leaving the rest
    # of the route's deadline to the stop itself.
    stop_reconcile_seconds: float = Field(default=8.0, gt=0)

    @field_validator("confirm_text_template")
    @classmethod
    def _confirm_template(cls, value: str) -> str:
        return check_template(
            value, CONFIRM_PLACEHOLDERS, setting="CONFIRM_TEXT_TEMPLATE", required=frozenset({"token"})
        )

    @field_validator("answer_message_template")
    @classmethod
    def _answer_template(cls, value: str) -> str:
        return check_template(value, ANSWER_PLACEHOLDERS, setting="ANSWER_MESSAGE_TEMPLATE", required=frozenset())


@container_cached
def settings() -> CampaignSettings:
    return CampaignSettings.from_env()  # type: ignore[return-value]


def validation_context() -> dict[str, Any]:
    """The configured limits the request models check against."""
    config = settings()
    return {
        "max_amount_ore": config.max_amount_ore,
        "msisdn_pattern": config.msisdn_pattern,
        "sms_messages": config.sms_messages,
        "campaign_name_max": config.campaign_name_max,
    }
