"""The ingester's collaborators, built once per container at the handler's edge and handed to the flow."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from donation_ingester.settings import IngesterSettings, settings
from donation_ingester.store import CampaignCache, CampaignDirectory, CampaignInfo, DonationLedger
from hub_core import events
from hub_core.caches import container_cached
from hub_core.ledger import CampaignTotals, read_totals
from hub_core.tokens import DonorHasher, donor_hasher
from hub_core.umbrella import umbrella_client
from partners.umbrella import UmbrellaClient

# An event for the bus: source, detail type, detail (hub_core.events.publish; raises when it is not put).
Publisher = Callable[[str, str, Mapping[str, Any]], None]
# Events of one kind: whether each was put, in order (hub_core.events.publish_many).
ManyPublisher = Callable[[str, str, Sequence[Mapping[str, Any]]], list[bool]]


@dataclass(frozen=True)
class IngesterServices:
    """Everything the callback, the fold and reconciliation talk to or ask the time of: the flow reaches nothing
    else, so that a test can hand it in-memory fakes and a clock of its own (tests/unit/test_donation_flow.py).

    `campaigns` is the per-container cache in front of `directory` (the callback reads a campaign once a minute, not
    once per donation); `totals` reads the ledger's verified total of a campaign, as the pages do.
    """

    settings: IngesterSettings
    ledger: DonationLedger
    directory: CampaignDirectory
    campaigns: CampaignCache
    hasher: DonorHasher
    umbrella: UmbrellaClient
    publish: Publisher
    publish_many: ManyPublisher
    totals: Callable[[str], CampaignTotals]
    shuffle: Callable[[list[CampaignInfo]], None]
    now: Callable[[], float]


@container_cached
def services() -> IngesterServices:
    """The real collaborators, from the function's settings; nothing here calls AWS, SSM or Umbrella yet."""
    config = settings()
    directory = CampaignDirectory(config.campaigns_table_name)
    return IngesterServices(
        settings=config,
        ledger=DonationLedger(config.donations_table_name),
        directory=directory,
        campaigns=CampaignCache(directory, ttl_seconds=config.campaign_cache_seconds),
        hasher=donor_hasher(),
        umbrella=umbrella_client(config),
        publish=_publish,
        publish_many=_publish_many,
        totals=lambda ref: read_totals(config.donations_table_name, ref),
        shuffle=random.shuffle,
        now=time.time,
    )


# hub_core.events' functions are looked up at each call, not bound when the services are built: a stand-in for them
# (the local runner's, a test's) installed later in the container's life is honoured. The sources are the callers'
# (tests/infra/test_event_sources.py reads them from `services.publish(...)`).
def _publish(source: str, detail_type: str, detail: Mapping[str, Any]) -> None:
    publish = events.publish
    publish(source, detail_type, detail)


def _publish_many(source: str, detail_type: str, details: Sequence[Mapping[str, Any]]) -> list[bool]:
    publish_many = events.publish_many
    return publish_many(source, detail_type, details)
