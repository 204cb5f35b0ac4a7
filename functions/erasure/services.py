"""Erasure's collaborators, built once per container at the handler's edge and handed to the flow."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from erasure.settings import ErasureSettings, settings
from erasure.store import DeferredRequests, ErasureStore
from hub_core.appsmiles import appsmiles_client
from hub_core.caches import container_cached
from hub_core.retry_queue import RetrySender, retry_sender
from hub_core.tokens import DonorHasher, donor_hasher
from partners.appsmiles import AppsMilesClient


@dataclass(frozen=True)
class ErasureServices:
    """Everything an erasure talks to or asks the time of: the flow reaches nothing else, so that a test can hand it
    in-memory fakes and a clock of its own (tests/unit/test_erasure_flow.py).

    `appsmiles` is the client's factory, not the client: it is built only when a user id is to be erased there, so an
    erasure of an e-mail alone needs no app's miles setting.
    """

    settings: ErasureSettings
    store: ErasureStore
    hasher: DonorHasher
    appsmiles: Callable[[], AppsMilesClient]
    deferred: DeferredRequests
    send_retry: RetrySender
    new_id: Callable[[], str]
    now: Callable[[], float]


@container_cached
def services() -> ErasureServices:
    """The real collaborators, from the function's settings; nothing here calls AWS, SSM or app's miles yet."""
    config = settings()
    return ErasureServices(
        settings=config,
        store=ErasureStore(
            leads=config.leads_table_name,
            campaigns=config.campaigns_table_name,
            donations=config.donations_table_name,
            loyalty=config.loyalty_table_name,
            licences=config.licences_table_name,
        ),
        hasher=donor_hasher(),
        appsmiles=appsmiles_client,
        deferred=DeferredRequests(config.erasure_requests_table_name),
        send_retry=retry_sender(config.erasure_retry_queue_url),
        new_id=lambda: str(uuid.uuid4()),
        now=time.time,
    )
