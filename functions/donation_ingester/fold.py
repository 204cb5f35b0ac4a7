"""The fold (the verification): callback hints checked against Umbrella's list and added to their campaigns' totals.

Hints reach this function in batches through a queue. Per campaign per batch, one `GET …/donations?timestampSince`
asks Umbrella which messageKeys it holds; those become DonationReceived events and are added to the total in chunks
of up to 99 donations, each chunk one transaction that also marks them verified and folded, with Umbrella's amount.
One not listed yet is retried by the queue, and marked `unconfirmed` (metric DonationUnconfirmed, never a total) once
the confirm window has passed.

Every entry point takes the function's collaborators (services.IngesterServices), built at the handler's edge.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from donation_ingester import SERVICE
from donation_ingester.models import (
    DONATION_RECEIVED,
    EVENT_SOURCE,
    DonationHint,
    DonationReceived,
    event_id_for,
)
from donation_ingester.services import IngesterServices
from donation_ingester.store import CampaignInfo, FoldEntry
from hub_core.campaigns import CampaignKey
from hub_core.deadline import fits, record_budget
from hub_core.ledger import PENDING
from hub_core.observability import logger_for, metrics_for
from partners.errors import PartnerError, PartnerNotFound
from partners.umbrella import CampaignDonation

logger = logger_for(SERVICE)
metrics = metrics_for(SERVICE)


def _received_detail(
    campaign_ref: str, listed: CampaignDonation, info: CampaignInfo | None, flags: Sequence[str]
) -> dict[str, Any]:
    """The donation as Umbrella listed it: the only DonationReceived there is (loyalty acts on it)."""
    campaign = CampaignKey.from_ref(campaign_ref)
    return DonationReceived(
        eventId=event_id_for(listed.messageKey),
        campaign=campaign_ref,
        serviceId=campaign.service_id,
        route=campaign.route,
        donationCode=campaign.donation_code,
        messageKey=listed.messageKey,
        amount=listed.amount,
        donatedAt=listed.donatedAt,
        appsMilesMember=True if info and info.apps_miles_user_id else None,
        flags=list(flags),
    ).as_detail()


@dataclass
class Settled:
    """What verifying one campaign's pending donations against Umbrella's list did."""

    verified: int = 0
    verified_amount: int = 0
    unconfirmed: int = 0
    waiting: list[str] = field(default_factory=list)  # messageKeys not listed yet, inside the window
    failed: list[str] = field(default_factory=list)  # messageKeys whose event or fold failed: try again


def confirm_listed(
    services: IngesterServices,
    campaign_ref: str,
    to_confirm: Sequence[tuple[CampaignDonation, Sequence[str]]],
    info: CampaignInfo | None,
    *,
    now: int,
) -> Settled:
    """Announce and fold donations Umbrella listed: the event first (consumers de-duplicate on its eventId), so that
    a fold that fails is simply repeated; a donation is folded once whatever is repeated."""
    config = services.settings
    result = Settled()
    entries: list[FoldEntry] = []
    # Ten to a PutEvents request: a fold batch of 100 donations costs 10 requests, not 100.
    details = [_received_detail(campaign_ref, listed, info, flags) for listed, flags in to_confirm]
    for (listed, _), put in zip(
        to_confirm, services.publish_many(EVENT_SOURCE, DONATION_RECEIVED, details), strict=True
    ):
        if not put:
            result.failed.append(listed.messageKey)
            continue
        entries.append(FoldEntry(listed.messageKey, listed.amount))
    if unpublished := len(to_confirm) - len(entries):
        logger.warning("DonationReceived not published", extra={"count": unpublished})
        metrics.add_metric(name="DonationEventFailed", unit="Count", value=unpublished)
    for start in range(0, len(entries), config.fold_chunk):
        chunk = entries[start : start + config.fold_chunk]
        try:
            outcome = services.ledger.fold(campaign_ref, chunk, now=now, attempts=config.fold_conflict_attempts)
        except Exception as exc:
            logger.warning("fold failed", extra={"campaign": campaign_ref, "kind": type(exc).__name__})
            result.failed.extend(entry.message_key for entry in chunk)
            continue
        result.verified += outcome.folded
        result.verified_amount += outcome.amount
    return result


def mark_unconfirmed(services: IngesterServices, campaign_ref: str, message_key: str, now: int) -> bool:
    if not services.ledger.mark_unconfirmed(message_key, now=now):
        return False
    metrics.add_metric(name="DonationUnconfirmed", unit="Count", value=1)
    logger.warning("callback never confirmed by Umbrella; not counted", extra={"campaign": campaign_ref})
    return True


# ------------------------------------------------------------------------------------------------ fold


@dataclass
class FoldReport:
    failed_message_ids: list[str] = field(default_factory=list)
    folded: int = 0
    skipped: int = 0
    unconfirmed: int = 0
    umbrella_calls: int = 0
    not_started: int = 0


def fold_batch(services: IngesterServices, records: Sequence[dict[str, Any]]) -> FoldReport:
    """Callback hints (SQS records whose bodies are EventBridge events) verified and added to their campaigns' totals.

    Grouped by campaign, because the point is one Umbrella call and one total write per chunk per campaign, not per
    donation. A record that is not a hint, or whose campaign's verification or fold fails, or whose donation Umbrella
    does not list yet (inside the window), is reported as failed: the queue brings it back, then its DLQ keeps it.
    """
    report = FoldReport()
    by_campaign: dict[str, dict[str, tuple[DonationHint, list[str]]]] = defaultdict(dict)
    for record in records:
        message_id = str(record.get("messageId", ""))
        try:
            hint = DonationHint.model_validate(json.loads(record["body"])["detail"])
        except (KeyError, TypeError, ValueError):
            logger.error("fold record is not a donation hint", extra={"message_id": message_id})
            report.failed_message_ids.append(message_id)
            continue
        known, ids = by_campaign[hint.campaign].get(hint.messageKey, (hint, []))
        by_campaign[hint.campaign][hint.messageKey] = (known, [*ids, message_id])
    step_seconds = services.settings.fold_campaign_seconds
    for campaign_ref, hints in by_campaign.items():
        if not fits(step_seconds):
            # Not started rather than cut off: the queue brings these records again.
            report.failed_message_ids.extend(message_id for _, ids in hints.values() for message_id in ids)
            report.not_started += len(hints)
            continue
        try:
            with record_budget(step_seconds):
                settled = _verify_campaign(services, campaign_ref, [hint for hint, _ in hints.values()], report)
        except Exception as exc:
            kind = exc.log_fields() if isinstance(exc, PartnerError) else {"kind": type(exc).__name__}
            logger.warning("verification failed; the hints come back", extra={"campaign": campaign_ref, **kind})
            report.failed_message_ids.extend(message_id for _, ids in hints.values() for message_id in ids)
            continue
        again = set(settled.waiting) | set(settled.failed)
        report.failed_message_ids.extend(
            message_id for key, (_, ids) in hints.items() if key in again for message_id in ids
        )
        report.folded += settled.verified
        report.unconfirmed += settled.unconfirmed
    metrics.add_metric(name="DonationsFolded", unit="Count", value=report.folded)
    if report.skipped:
        metrics.add_metric(name="DonationFoldSkipped", unit="Count", value=report.skipped)
    if report.not_started:
        metrics.add_metric(name="DonationFoldNotStarted", unit="Count", value=report.not_started)
    return report


def _verify_campaign(
    services: IngesterServices, campaign_ref: str, hints: Sequence[DonationHint], report: FoldReport
) -> Settled:
    """One Umbrella call for all of this campaign's hints in the batch that are still pending."""
    config = services.settings
    now = int(services.now())
    stored = services.ledger.known([hint.messageKey for hint in hints])
    pending = [
        stored[hint.messageKey]
        for hint in hints
        if hint.messageKey in stored
        and not stored[hint.messageKey].settled
        and stored[hint.messageKey].verification == PENDING
        and stored[hint.messageKey].campaign_ref == campaign_ref
    ]
    report.skipped += len(hints) - len(pending)
    if not pending:
        return Settled()
    campaign = CampaignKey.from_ref(campaign_ref)
    since = max(0, min(donation.received_at for donation in pending) - config.verify_overlap_seconds)
    report.umbrella_calls += 1
    try:
        answer = services.umbrella.donations(campaign.service_id, campaign.route, campaign.donation_code, since=since)
    except PartnerNotFound:
        # Umbrella answers nothing for a stopped campaign: it confirms nothing more, so nothing more is counted.
        answer = []
    listed = {donation.messageKey: donation for donation in answer}
    flags_of = {hint.messageKey: hint.flags for hint in hints}
    to_confirm = []
    waiting: list[str] = []
    unconfirmed = 0
    for donation in pending:
        found = listed.get(donation.message_key)
        if found is not None:
            flags = list(flags_of.get(donation.message_key, []))
            if found.amount != donation.amount:
                flags.append("amount_corrected")
            to_confirm.append((found, flags))
        elif now - donation.received_at >= config.confirm_window_seconds:
            unconfirmed += mark_unconfirmed(services, campaign_ref, donation.message_key, now)
        else:
            waiting.append(donation.message_key)
    settled = confirm_listed(services, campaign_ref, to_confirm, services.campaigns.get(campaign_ref), now=now)
    settled.unconfirmed = unconfirmed
    settled.waiting = waiting
    return settled
