"""What the ingester's paths share per container: its tables, Umbrella's client, the hasher, the campaign cache."""

from __future__ import annotations

from donation_ingester.settings import settings
from donation_ingester.store import CampaignDirectory, CampaignInfo, DonationLedger
from hub_core.caches import TtlCache, container_cached
from hub_core.tokens import DonorHasher, donor_hasher
from hub_core.umbrella import umbrella_client
from partners.umbrella import UmbrellaClient


@container_cached
def ledger() -> DonationLedger:
    return DonationLedger(settings().donations_table_name)


@container_cached
def directory() -> CampaignDirectory:
    return CampaignDirectory(settings().campaigns_table_name)


@container_cached
def hasher() -> DonorHasher:
    return donor_hasher()


@container_cached
def umbrella() -> UmbrellaClient:
    return umbrella_client(settings())


_CAMPAIGNS = TtlCache(max_entries=4096)


def campaign_info(ref: str) -> CampaignInfo | None:
    return _CAMPAIGNS.get_or_load(ref, lambda: directory().get(ref), ttl_seconds=settings().campaign_cache_seconds)


def fresh_campaign_info(ref: str) -> CampaignInfo | None:
    """Read again and cached: a token issued by a `PUT` moments ago works at once."""
    fresh = directory().get(ref)
    _CAMPAIGNS.put(ref, fresh, ttl_seconds=settings().campaign_cache_seconds)
    return fresh
