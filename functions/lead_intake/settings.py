"""Lead intake's settings, read from its environment on first use."""

from __future__ import annotations

from pydantic import Field

from hub_core.caches import container_cached
from hub_core.config import Settings
from hub_core.identifiers import DEFAULT_PHONE_COUNTRY_CODE
from partners.profiles import MiimosaProfile, MiimosaProfileSetting


class LeadIntakeSettings(Settings):
    leads_table_name: str
    lead_retry_queue_url: str
    miimosa_base_url: str
    # The API key's SSM parameter name is read by hub_core.secrets from MIIMOSA_API_KEY_PARAM; how it travels is
    # MIIMOSA_PROFILE (a JSON object, partners.profiles.MiimosaProfile).
    miimosa_profile: MiimosaProfileSetting = Field(default_factory=MiimosaProfile)
    lead_retention_days: int = Field(default=90, ge=1)
    # A double submit within this window gets the lead's outcome (flow.submit); after it, the same lead is a new one.
    dedup_window_seconds: int = Field(default=900, ge=1)
    # The first retry of a lead is this long after it arrived (its safety net if the forward is cut short).
    lead_retry_delay_seconds: int = Field(default=60, ge=0, le=900)
    # How long one forward holds a lead before another attempt may take it over; beyond the function timeout.
    forward_lease_seconds: int = Field(default=30, ge=1)
    # The country of a phone number typed in national form (0 then digits): lead intake and erasure must agree,
    # so that a lead's phone key (hub_core.identifiers.phone_key) is found again; the template sets both.
    phone_country_code: str = Field(default=DEFAULT_PHONE_COUNTRY_CODE, pattern=r"^[1-9][0-9]{0,2}$")
    max_body_bytes: int = Field(default=16 * 1024, ge=1024)
    honeypot_field: str = "website"
    projects_cache_seconds: int = Field(default=60, ge=0)
    projects_max_pages: int = Field(default=5, ge=1, le=50)
    miimosa_connect_timeout: float = Field(default=3.05, gt=0)
    miimosa_read_timeout: float = Field(default=8.0, gt=0)
    # The most one retry-queue record may take (its forward's attempts included); a record is only started when
    # this still fits before the invocation's deadline. template.yaml sizes the queue's BatchSize by it.
    retry_record_seconds: float = Field(default=6.0, gt=0)
    # The longest a site's member-id signature may be valid for (hub_core.member_signature).
    member_signature_max_seconds: int = Field(default=86_400, ge=60)


@container_cached
def settings() -> LeadIntakeSettings:
    return LeadIntakeSettings.from_env()  # type: ignore[return-value]
