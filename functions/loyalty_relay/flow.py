"""The relay's flow: a batch of queued bus events read, deduplicated, sent to app's miles and recorded.

The events name no member (so that what waits in LoyaltyActionsQueue and LoyaltyActionsDLQ is ids only): an event
flags that its owning record (the lead, the campaign, the licence order) names one, and the member id is read from
that record, once the event is known not to be settled before.

Exactly once, in two layers: our record keyed on the event's key says an event was settled (checked with one
consistent read per batch), and the same key travels as `param1`, which app's miles refuses to count twice for
the same user and tagId. So an attempt that reached app's miles but died before recording is answered "already
recorded" the next time, and counted as relayed.

Every entry point takes the relay's collaborators (services.RelayServices: its record, the owning tables, app's
miles, the daily cap's counter, the clock), which the handler builds once per container.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from hub_core.config import ConfigError
from hub_core.deadline import fits, record_budget
from hub_core.ratelimit import Limit, RateLimited
from loyalty_relay import SERVICE
from loyalty_relay.models import EVENT_KEY, USER_ID, BusEvent, Outcome, OwnerRecord, PendingAction, Settlement
from loyalty_relay.services import RelayServices
from loyalty_relay.settings import ActionRule
from partners.appsmiles_wire import AppsMilesRejected, StoreResult
from partners.errors import PartnerError, PartnerRejected

logger = logging.getLogger(SERVICE)


@dataclass
class BatchReport:
    """Each message's outcome, by SQS message id."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)

    @property
    def failed_message_ids(self) -> list[str]:
        return [message_id for message_id, outcome in self.outcomes.items() if outcome.failed]

    def counts(self) -> dict[Outcome, int]:
        tally: dict[Outcome, int] = {}
        for outcome in self.outcomes.values():
            tally[outcome] = tally.get(outcome, 0) + 1
        return tally


def relay_batch(services: RelayServices, records: Iterable[Mapping[str, Any]]) -> BatchReport:
    """Decide, send and record every record of one SQS batch; a passing failure leaves its records to the queue."""
    report = BatchReport()
    leaders: dict[str, PendingAction] = {}
    followers: dict[str, list[str]] = {}
    for record in records:
        message_id = str(record["messageId"])
        planned = _plan(services, message_id, str(record.get("body", "")))
        if isinstance(planned, Outcome):
            report.outcomes[message_id] = planned
        elif planned.key in leaders:
            # A second copy of one event in the same batch shares the first copy's fate.
            followers.setdefault(planned.key, []).append(message_id)
        else:
            leaders[planned.key] = planned

    for action, settlement in _send(services, _ready(services, leaders, report)):
        if settlement.outcome.settled:
            # `_send` is lazy: this write follows its call at once, and the next call is only started if it still
            # fits, so the invocation's margin (hub_core.deadline) is what the last write needs.
            services.store.record(action, settlement, now=datetime.fromtimestamp(services.now(), UTC))
        report.outcomes[action.message_id] = settlement.outcome
        if settlement.outcome is Outcome.REJECTED:
            logger.warning(
                "app's miles refused an action",
                extra={"tag_id": action.tag_id, "code": settlement.code, "detail": settlement.reason},
            )

    for key, message_ids in followers.items():
        lead_outcome = report.outcomes[leaders[key].message_id]
        for message_id in message_ids:
            report.outcomes[message_id] = lead_outcome if lead_outcome.failed else Outcome.DUPLICATE
    return report


def _ready(services: RelayServices, leaders: dict[str, PendingAction], report: BatchReport) -> list[PendingAction]:
    """The actions to send: not settled before (one consistent read for the batch), and within the member's cap."""
    already = services.store.settled(leaders.keys()) if leaders else {}
    ready = []
    for key, planned in leaders.items():
        if key in already:
            report.outcomes[planned.message_id] = Outcome.DUPLICATE
            continue
        action = _with_member(services, planned)
        if isinstance(action, Outcome):
            report.outcomes[planned.message_id] = action
        elif _over_daily_cap(services, action):
            report.outcomes[action.message_id] = Outcome.CAPPED
        else:
            ready.append(action)
    return ready


def _with_member(services: RelayServices, action: PendingAction) -> PendingAction | Outcome:
    """The action with its member id, read from the owning record when the event only flags one."""
    if action.owner is None:
        return action
    try:
        user_id = services.owners.member_of(action.owner)
    except ConfigError as exc:
        logger.error("relay misconfigured; the queue will deliver again", extra={"detail": str(exc)})
        return Outcome.RETRY
    except (ClientError, BotoCoreError) as exc:
        logger.warning(
            "owning record unreadable; the queue will deliver again",
            extra={"owner": action.owner.table, "kind": type(exc).__name__},
        )
        return Outcome.RETRY
    if user_id is None:
        # The record is gone or names no member any more (TTL, erasure): no one to credit.
        return Outcome.SKIPPED_ANONYMOUS
    if not USER_ID.fullmatch(user_id):
        logger.error(
            "owning record with an unusable user id; left for the DLQ",
            extra={"message_id": action.message_id, "detail_type": action.detail_type},
        )
        return Outcome.MALFORMED
    return replace(action, user_id=user_id)


def _plan(services: RelayServices, message_id: str, body: str) -> PendingAction | Outcome:
    """What one message asks for: an action to send, or the reason there is none."""
    try:
        event = BusEvent.model_validate(json.loads(body))
    except (ValueError, ValidationError):
        logger.error("queued message is not a bus event; left for the DLQ", extra={"message_id": message_id})
        return Outcome.MALFORMED
    rule = services.settings.loyalty_actions.get(event.detail_type)
    if rule is None:
        return Outcome.SKIPPED_UNMAPPED
    key = _event_key(event, rule)
    user_id = event.detail.get(rule.user) if rule.user else None
    owner: OwnerRecord | None = None
    if user_id is None or user_id == "":
        if not (rule.member and event.detail.get(rule.member) is True):
            return Outcome.SKIPPED_ANONYMOUS
        owner_key = _detail_key(event, rule.owner_key)
        if owner_key is None or key is None or rule.owner is None:
            logger.error(
                "event with an unusable owner or key; left for the DLQ",
                extra={"message_id": message_id, "detail_type": event.detail_type},
            )
            return Outcome.MALFORMED
        owner, user_id = OwnerRecord(rule.owner, owner_key), ""
    elif not isinstance(user_id, str) or not USER_ID.fullmatch(user_id) or key is None:
        logger.error(
            "event with an unusable user id or key; left for the DLQ",
            extra={"message_id": message_id, "detail_type": event.detail_type},
        )
        return Outcome.MALFORMED
    return PendingAction(
        message_id=message_id,
        key=key,
        tag_id=rule.tag_id,
        user_id=user_id,
        detail_type=event.detail_type,
        happened_at=event.time,
        owner=owner,
    )


def _over_daily_cap(services: RelayServices, action: PendingAction) -> bool:
    """True once the member had the day's allowance of other actions; this action then earns nothing."""
    config = services.settings
    limit = Limit("member-actions", config.member_actions_per_day, 86_400)
    try:
        services.count_distinct(config.rate_limit_table_name, limit, action.user_id, action.key, now=services.now())
    except RateLimited:
        logger.warning("member over the daily cap of actions; not sent", extra={"tag_id": action.tag_id})
        return True
    return False


def _event_key(event: BusEvent, rule: ActionRule) -> str | None:
    return _detail_key(event, rule.key) if rule.key else _checked_key(event.id)


def _detail_key(event: BusEvent, name: str | None) -> str | None:
    return _checked_key(event.detail.get(name)) if name else None


def _checked_key(value: object) -> str | None:
    key = str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None
    return key if key is not None and EVENT_KEY.fullmatch(key) else None


def _send(services: RelayServices, actions: list[PendingAction]) -> Iterable[tuple[PendingAction, Settlement]]:
    """Each action's settlement; after the first passing failure the rest wait for the queue, unsent."""
    config = services.settings
    by_tag: dict[str, list[PendingAction]] = {}
    for action in actions:
        by_tag.setdefault(action.tag_id, []).append(action)
    outage = False
    for tag_id, group in by_tag.items():
        if outage:
            yield from ((action, Settlement(Outcome.RETRY)) for action in group)
            continue
        if config.appsmiles_multistore and len(group) >= config.multistore_min_actions:
            settled = _send_together(services, tag_id, group) if fits(config.record_seconds) else _not_started(group)
        else:
            settled = _send_one_by_one(services, group)
        for action, settlement in settled:
            outage = outage or settlement.outcome is Outcome.RETRY
            yield action, settlement


def _send_one_by_one(services: RelayServices, group: list[PendingAction]) -> Iterable[tuple[PendingAction, Settlement]]:
    outage = False
    budget = services.settings.record_seconds
    for action in group:
        if outage or not fits(budget):
            # After an outage, or with too little time left to send and record it: the queue brings it again.
            yield action, Settlement(Outcome.RETRY)
            continue
        try:
            with record_budget(budget):
                result = services.appsmiles().store_action(
                    action.user_id, action.tag_id, param1=action.key, date=action.happened_at
                )
        except (PartnerError, ConfigError) as exc:
            settlement = _failure(exc)
            outage = settlement.outcome is Outcome.RETRY
            yield action, settlement
            continue
        yield action, _success(result)


def _not_started(group: list[PendingAction]) -> list[tuple[PendingAction, Settlement]]:
    return [(action, Settlement(Outcome.RETRY)) for action in group]


def _send_together(
    services: RelayServices, tag_id: str, group: list[PendingAction]
) -> Iterable[tuple[PendingAction, Settlement]]:
    try:
        with record_budget(services.settings.record_seconds):
            results = services.appsmiles().multistore(tag_id, [(action.user_id, action.key) for action in group])
    except (PartnerError, ConfigError) as exc:
        settlement = _failure(exc)
        return [(action, settlement) for action in group]
    return [
        (action, _success(result) if isinstance(result, StoreResult) else _failure(result))
        for action, result in zip(group, results, strict=True)
    ]


def _success(result: StoreResult) -> Settlement:
    if result.already_recorded:
        return Settlement(Outcome.ALREADY_RECORDED, code=result.code)
    return Settlement(Outcome.RELAYED, code=result.code)


def _failure(exc: PartnerError | ConfigError) -> Settlement:
    if isinstance(exc, AppsMilesRejected):
        return Settlement(Outcome.REJECTED, code=exc.code, reason=exc.message)
    if isinstance(exc, PartnerRejected):
        # An HTTP 4xx other than 401/429 to a body we built: repeating it would be refused the same way.
        return Settlement(Outcome.REJECTED, code=exc.status, reason=exc.message)
    if isinstance(exc, PartnerError):
        logger.warning("app's miles unavailable; the queue will deliver again", extra=exc.log_fields())
    else:
        logger.error("relay misconfigured; the queue will deliver again", extra={"detail": str(exc)})
    return Settlement(Outcome.RETRY)
