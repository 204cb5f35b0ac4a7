"""Donation ingester's settings, read from its environment on first use."""

from __future__ import annotations

from pydantic import Field

from hub_core.caches import container_cached
from hub_core.umbrella import UmbrellaSettings


class IngesterSettings(UmbrellaSettings):
    donations_table_name: str
    campaigns_table_name: str
    # A donor's number as Umbrella sends it: msisdn digits, country code first (a leading + is dropped).
    msisdn_pattern: str = r"^\d{8,15}$"
    # How long a campaign's creator and state are reused between callbacks; a telethon reads the campaign once a
    # minute per container, not once per donation. Flags computed from it may lag a stop by this much.
    campaign_cache_seconds: int = Field(default=60, ge=0)
    # Reconciliation asks Umbrella for donations since the watermark minus this, so a donation stamped a little
    # before one already seen (clocks, late delivery) is not skipped.
    reconcile_overlap_seconds: int = Field(default=600, ge=0)
    # A stored donation whose DonationReceived has not been folded after this long gets its event published again.
    republish_after_seconds: int = Field(default=120, ge=0)
    # Stopped campaigns are still reconciled this long after the stop: the last donations may come late.
    reconcile_after_stop_seconds: int = Field(default=86_400, ge=0)
    # A scheduled run stops taking new campaigns when less than this remains of the invocation; the rest wait for
    # the next run (their watermarks keep their place).
    reconcile_reserve_ms: int = Field(default=10_000, ge=0)
    # Donations per fold transaction, plus the total's own update (DynamoDB allows 100 actions).
    fold_chunk: int = Field(default=99, ge=1, le=99)
    fold_conflict_attempts: int = Field(default=5, ge=1, le=20)
    # The most one fold transaction (its conflict retries included) may take; a chunk is only started when this
    # still fits before the invocation's deadline. template.yaml sizes the queue's BatchSize by it.
    fold_chunk_seconds: float = Field(default=0.5, gt=0)


@container_cached
def settings() -> IngesterSettings:
    return IngesterSettings.from_env()  # type: ignore[return-value]
