"""What the lifecycle's paths share per container: the campaigns table and Umbrella's client."""

from __future__ import annotations

from campaign_lifecycle.settings import settings
from campaign_lifecycle.store import CampaignStore
from hub_core.caches import container_cached
from hub_core.umbrella import umbrella_client
from partners.umbrella import UmbrellaClient


@container_cached
def store() -> CampaignStore:
    return CampaignStore(settings().campaigns_table_name)


@container_cached
def umbrella() -> UmbrellaClient:
    return umbrella_client(settings())
