"""Campaign lifecycle's collaborators, built once per container at the handler's edge and handed to the flow."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from campaign_lifecycle.settings import CampaignSettings, settings
from campaign_lifecycle.store import CampaignStore
from hub_core import ledger
from hub_core.caches import TtlCache, container_cached
from hub_core.member_signature import site_key_ring
from hub_core.ratelimit import Limit, hit
from hub_core.tokens import hashing_key
from hub_core.umbrella import umbrella_client
from partners.umbrella import UmbrellaClient


class HitCounter(Protocol):
    """hub_core.ratelimit.hit: count one hit for `subject`, RateLimited once `limit.count` were used."""

    def __call__(self, table_name: str, limit: Limit, subject: str, *, now: float, key: bytes | None = None) -> int: ...


class Ledger(Protocol):
    """The donation ledger's reads for one campaign (hub_core.ledger)."""

    def totals(self, campaign_ref: str) -> ledger.CampaignTotals: ...

    def pending(self, campaign_ref: str, *, limit: int) -> ledger.PendingTotals: ...


@dataclass(frozen=True)
class LedgerReader:
    """The real ledger: hub_core.ledger's reads, looked up on each call (a test may patch the module)."""

    table_name: str

    def totals(self, campaign_ref: str) -> ledger.CampaignTotals:
        return ledger.read_totals(self.table_name, campaign_ref)

    def pending(self, campaign_ref: str, *, limit: int) -> ledger.PendingTotals:
        return ledger.read_pending(self.table_name, campaign_ref, limit=limit)


def reconcile_before_stop(campaign_ref: str) -> Any:
    """The ingester's last reconciliation of a campaign, in-process (the function holds its permissions)."""
    from donation_ingester import reconcile as ingester  # noqa: PLC0415 - only a stop needs the ingester's code

    return ingester.reconcile_before_stop(campaign_ref)


@dataclass(frozen=True)
class CampaignServices:
    """Everything the flow talks to or asks the time of: the flow reaches nothing else, so that a test can hand it
    in-memory fakes and a clock of its own (tests/unit/test_campaign_flow.py).

    `umbrella_services` holds Umbrella's service list for `settings.services_cache_seconds`; `hashing_key` and
    `site_key_ring` read their secrets only when called.
    """

    settings: CampaignSettings
    store: CampaignStore
    umbrella: UmbrellaClient
    ledger: Ledger
    count_hit: HitCounter
    hashing_key: Callable[[], bytes]
    site_key_ring: Callable[[], str]
    reconcile_before_stop: Callable[[str], Any]
    now: Callable[[], float]
    umbrella_services: TtlCache = field(default_factory=lambda: TtlCache(max_entries=1))


@container_cached
def services() -> CampaignServices:
    """The real collaborators, from the function's settings; nothing here calls AWS or Umbrella yet."""
    config = settings()
    return CampaignServices(
        settings=config,
        store=CampaignStore(config.campaigns_table_name),
        umbrella=umbrella_client(config),
        ledger=LedgerReader(config.donations_table_name),
        count_hit=hit,
        hashing_key=hashing_key,
        site_key_ring=site_key_ring,
        reconcile_before_stop=reconcile_before_stop,
        now=time.time,
    )
