"""Donation ingester's settings, read from its environment on first use."""

from __future__ import annotations

import os

from pydantic import Field

from hub_core.caches import container_cached
from hub_core.umbrella import UmbrellaSettings


class IngesterSettings(UmbrellaSettings):
    donations_table_name: str
    campaigns_table_name: str
    # A donor's number as Umbrella sends it: msisdn digits, country code first (a leading + is dropped).
    msisdn_pattern: str = r"^[0-9]{8,15}$"
    # How long a campaign's creator and state are reused between callbacks; a telethon reads the campaign once a
    # minute per container, not once per donation. Flags computed from it may lag a stop by this much.
    campaign_cache_seconds: int = Field(default=60, ge=0)
    # Reconciliation asks Umbrella for donations since the watermark minus this, so a donation stamped a little
    # before one already seen (clocks, late delivery) is not skipped.
    reconcile_overlap_seconds: int = Field(default=600, ge=0)
    # Stopped campaigns are still reconciled this long after the stop: the last donations may come late.
    reconcile_after_stop_seconds: int = Field(default=86_400, ge=0)
    # A scheduled run stops taking new campaigns when less than this remains of the invocation; the rest wait for
    # the next run (their watermarks keep their place).
    reconcile_reserve_ms: int = Field(default=10_000, ge=0)
    # The most a callback may claim, in øre (the template passes CampaignMaxAmountOre: no campaign asks for more per
    # SMS). Above it the callback is a 400 and nothing is stored; a real donation above it still counts once
    # reconciliation finds it in Umbrella's list, which this bound does not apply to.
    callback_max_amount_ore: int = Field(default=5_000_000, ge=1, le=2**31 - 1)
    # A callback Umbrella has not listed after this long is `unconfirmed`: a metric, an alarm, never a total. Until
    # then the fold retries it (SQS redelivery) and reconciliation looks for it too.
    confirm_window_seconds: int = Field(default=900, ge=0)
    # Umbrella's list is asked for donations since the oldest pending callback's arrival minus this (clocks differ,
    # a callback may come a little after its donation).
    verify_overlap_seconds: int = Field(default=600, ge=0)
    # Callbacks for a stopped campaign are refused (403, nothing stored) once this long has passed since the stop;
    # until then the last donations sent before the stop still arrive as hints.
    callback_grace_after_stop_seconds: int = Field(default=3_600, ge=0)
    # A page's pending figure reads at most this many pending donations (a flood of forged ones is capped).
    pending_read_limit: int = Field(default=1000, ge=1)
    # Donations per fold transaction, plus the total's own update (DynamoDB allows 100 actions).
    fold_chunk: int = Field(default=99, ge=1, le=99)
    fold_conflict_attempts: int = Field(default=5, ge=1, le=20)
    # The most one campaign's step of a fold batch may take: its one Umbrella call that verifies the batch's hints,
    # then its fold transactions (their conflict retries included). A campaign is only started when this still fits
    # before the invocation's deadline; template.yaml sizes the queue's BatchSize by it (each record its own campaign
    # at worst).
    fold_campaign_seconds: float = Field(default=2.0, gt=0)


@container_cached
def settings() -> IngesterSettings:
    loaded: IngesterSettings = IngesterSettings.from_env()  # type: ignore[assignment]
    # The campaign function hosts the stop's reconcile (campaign_lifecycle.management.stop) and has an MSISDN_PATTERN of
    # its own (the creator's number): there the donor's pattern comes as DONOR_MSISDN_PATTERN.
    donor_pattern = os.environ.get("DONOR_MSISDN_PATTERN")
    return loaded.model_copy(update={"msisdn_pattern": donor_pattern}) if donor_pattern else loaded
