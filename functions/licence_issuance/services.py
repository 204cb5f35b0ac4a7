"""Licence issuance's collaborators, built once per container at the handler's edge and handed to the flow."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hub_core import events
from hub_core.caches import TtlCache, container_cached
from hub_core.deadline import fits
from hub_core.partner_calls import client_options
from hub_core.retry_queue import RetrySender, retry_sender
from hub_core.secrets import secret
from licence_issuance.settings import LicenceSettings, settings
from licence_issuance.store import LicenceStore
from partners.mlm import MlmClient

# An event for the bus: source, detail type, detail (hub_core.events.publish).
Publisher = Callable[[str, str, Mapping[str, Any]], None]


@dataclass(frozen=True)
class LicenceServices:
    """Everything the flow talks to or asks the time of: the flow reaches nothing else, so that a test can hand it
    in-memory fakes and clocks of its own (tests/unit/test_licence_flow.py).

    `now` is the wall clock (records, grace periods); `monotonic`, `sleep` and `jitter` pace the wait for a turn;
    `fits` tells whether work of so many seconds still ends before the invocation's deadline (hub_core.deadline).
    `catalogue` holds Pimenko's products and licence types for `settings.catalogue_cache_seconds`; `send_retry` puts
    a message on LicenceRetryQueue and `new_id` names the event waiting in the table for it.
    """

    settings: LicenceSettings
    store: LicenceStore
    mlm: MlmClient
    publish: Publisher
    send_retry: RetrySender
    new_id: Callable[[], str]
    now: Callable[[], float]
    monotonic: Callable[[], float]
    sleep: Callable[[float], None]
    jitter: Callable[[float, float], float]
    fits: Callable[[float], bool]
    catalogue: TtlCache = field(default_factory=lambda: TtlCache(max_entries=2))


@container_cached
def services() -> LicenceServices:
    """The real collaborators, from the function's settings; nothing here calls AWS or Pimenko yet."""
    config = settings()
    return LicenceServices(
        settings=config,
        store=LicenceStore(config.licences_table_name),
        mlm=_mlm(config),
        publish=events.publish,
        send_retry=retry_sender(config.licence_retry_queue_url),
        new_id=lambda: str(uuid.uuid4()),
        now=time.time,
        monotonic=time.monotonic,
        sleep=time.sleep,
        jitter=random.uniform,
        fits=fits,
    )


def _mlm(config: LicenceSettings) -> MlmClient:
    return MlmClient(
        config.mlm_base_url,
        api_token=lambda: secret("MLM_API_TOKEN_PARAM"),
        **client_options(config.mlm_profile, config.mlm_connect_timeout, config.mlm_read_timeout),
    )
