"""The relay's collaborators, built once per container at the handler's edge and handed to the flow."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from hub_core.appsmiles import appsmiles_client
from hub_core.caches import container_cached
from hub_core.ratelimit import Limit, hit_distinct
from loyalty_relay.settings import RelaySettings, settings
from loyalty_relay.store import LoyaltyStore, OwnerTables
from partners.appsmiles import AppsMilesClient


class DistinctCounter(Protocol):
    """hub_core.ratelimit.hit_distinct: count `item` once for `subject`, RateLimited once over `limit`."""

    def __call__(self, table_name: str, limit: Limit, subject: str, item: str, *, now: float) -> None: ...


@dataclass(frozen=True)
class RelayServices:
    """Everything the flow talks to or asks the time of, so that a test can hand it in-memory fakes and a clock.

    `appsmiles` is the client's factory, not the client: it is built only when an action is sent, and a missing
    app's miles setting is then a ConfigError of that send (the queue delivers again), not of the whole batch.
    """

    settings: RelaySettings
    store: LoyaltyStore
    owners: OwnerTables
    appsmiles: Callable[[], AppsMilesClient]
    count_distinct: DistinctCounter
    now: Callable[[], float]


@container_cached
def services() -> RelayServices:
    """The real collaborators, from the function's settings; nothing here calls AWS or app's miles yet."""
    config = settings()
    owners = OwnerTables(
        {
            "leads": config.leads_table_name,
            "campaigns": config.campaigns_table_name,
            "licences": config.licences_table_name,
        }
    )
    return RelayServices(
        settings=config,
        store=LoyaltyStore(config.loyalty_table_name),
        owners=owners,
        appsmiles=appsmiles_client,
        count_distinct=hit_distinct,
        now=time.time,
    )
