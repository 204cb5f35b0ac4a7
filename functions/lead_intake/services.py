"""Lead intake's collaborators, built once per container at the handler's edge and handed to the flow."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from hub_core import events
from hub_core.caches import container_cached
from hub_core.partner_calls import client_options
from hub_core.retry_queue import RetrySender, retry_sender
from hub_core.secrets import secret
from lead_intake.settings import LeadIntakeSettings, settings
from lead_intake.store import LeadStore
from partners.miimosa import MiimosaClient

# An event for the bus: source, detail type, detail (hub_core.events.publish).
Publisher = Callable[[str, str, Mapping[str, Any]], None]


@dataclass(frozen=True)
class LeadServices:
    """Everything the flow talks to or asks the time of: the flow reaches nothing else, so that a test can hand it
    in-memory fakes and a clock of its own (tests/unit/test_lead_flow.py)."""

    settings: LeadIntakeSettings
    store: LeadStore
    miimosa: MiimosaClient
    send_retry: RetrySender
    publish: Publisher
    now: Callable[[], float]
    sleep: Callable[[float], None]


@container_cached
def services() -> LeadServices:
    """The real collaborators, from the function's settings; nothing here calls AWS or MiiMOSA yet."""
    config = settings()
    return LeadServices(
        settings=config,
        store=LeadStore(config.leads_table_name, phone_country_code=config.phone_country_code),
        miimosa=_miimosa(config),
        send_retry=retry_sender(config.lead_retry_queue_url),
        publish=events.publish,
        now=time.time,
        sleep=time.sleep,
    )


def _miimosa(config: LeadIntakeSettings) -> MiimosaClient:
    return MiimosaClient(
        config.miimosa_base_url,
        api_key=lambda: secret("MIIMOSA_API_KEY_PARAM"),
        max_pages=config.projects_max_pages,
        **client_options(config.miimosa_profile, config.miimosa_connect_timeout, config.miimosa_read_timeout),
    )
