"""How a donation is recorded once, announced, folded into its campaign's total, and recovered when a callback is lost.

- Callback: the signed token first, then the payload; one conditional put; one DonationReceived event. A repeat
  finds the donation there (the put's condition says so and hands back the stored item) and publishes again only
  while the first event has not been folded, since that event may never have left.
- Fold: DonationReceived events reach this function in batches through a queue; each campaign's share of a batch is
  added to its total in chunks of up to 99 donations, each chunk one transaction that also marks its donations
  folded. At 1,000 donations a second the total is written a few times a second, not a thousand.
- Reconciliation: on a schedule, each active (or lately stopped) campaign's donations since its watermark minus an
  overlap are read from Umbrella; the ones the ledger lacks are recorded the callback's way; the watermark moves
  only once they are stored and announced. The ledger's total is then compared with Umbrella's.
"""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from donation_ingester import SERVICE
from donation_ingester.models import CallbackDonation, DonationReceived, event_id_for
from donation_ingester.settings import settings
from donation_ingester.store import (
    CampaignDirectory,
    CampaignInfo,
    DonationLedger,
    FoldEntry,
    LedgerDonation,
)
from hub_core import events
from hub_core.caches import TtlCache, container_cached
from hub_core.deadline import fits
from hub_core.http_api import FieldProblem, RequestRejected, problems_from
from hub_core.ledger import donation_pk, read_totals
from hub_core.observability import logger_for, metrics_for
from hub_core.tokens import CallbackSigner
from hub_core.umbrella import callback_signer, umbrella_client
from partners.errors import PartnerError, PartnerNotFound
from partners.redact import mask_msisdn
from partners.umbrella import CampaignDonation, UmbrellaClient

logger = logger_for(SERVICE)
metrics = metrics_for(SERVICE)

EVENT_SOURCE = "donation-ingester"
DONATION_RECEIVED = "DonationReceived"


@container_cached
def ledger() -> DonationLedger:
    return DonationLedger(settings().donations_table_name)


@container_cached
def directory() -> CampaignDirectory:
    return CampaignDirectory(settings().campaigns_table_name)


@container_cached
def signer() -> CallbackSigner:
    return callback_signer()


@container_cached
def umbrella() -> UmbrellaClient:
    return umbrella_client(settings())


@dataclass(frozen=True)
class CampaignRef:
    """The campaign a callback URL names: its parts exactly as the URL spells them (that is what was signed)."""

    service_id: str
    route: str
    donation_code: str

    @property
    def ref(self) -> str:
        return f"{self.service_id}/{self.route}/{self.donation_code}"

    @classmethod
    def parse(cls, ref: str) -> CampaignRef:
        service_id, route, code = ref.split("/")
        return cls(service_id, route, code)


# ------------------------------------------------------------------------------------------------ callback


def verify_token(campaign: CampaignRef, token: str | None) -> None:
    """Before anything else is looked at: 401 without a token, 403 with one this campaign was not given."""
    if not token or "." not in token:
        metrics.add_metric(name="DonationCallbackUnauthorized", unit="Count", value=1)
        raise RequestRejected(401, "unauthorized", "this callback URL needs the token the campaign was created with")
    if not signer().verify(campaign.ref, token):
        metrics.add_metric(name="DonationCallbackForbidden", unit="Count", value=1)
        raise RequestRejected(403, "forbidden", "this token does not belong to this campaign")


def parse_donation(fields: dict[str, Any]) -> CallbackDonation:
    """The payload's fields, as a 400 naming each problem (and nothing stored) when they are not a donation."""
    try:
        return CallbackDonation.model_validate(fields, context={"msisdn_pattern": settings().msisdn_pattern})
    except ValidationError as exc:
        problems = problems_from(exc.errors(include_input=False, include_url=False))
        metrics.add_metric(name="DonationCallbackInvalid", unit="Count", value=1)
        raise RequestRejected(400, "invalid_donation", "the donation is not valid", problems) from None


@dataclass(frozen=True)
class Received:
    status: str  # "recorded" or "duplicate"
    message_key: str
    flags: list[str] = field(default_factory=list)
    published: bool = False


_CAMPAIGNS = TtlCache(max_entries=4096)


def _campaign_info(ref: str) -> CampaignInfo | None:
    return _CAMPAIGNS.get_or_load(ref, lambda: directory().get(ref), ttl_seconds=settings().campaign_cache_seconds)


def receive(campaign: CampaignRef, donation: CallbackDonation, *, source: str = "callback") -> Received:
    """Record the donation once and announce it; a repeat changes nothing but may announce it again."""
    now = int(time.time())
    info = _campaign_info(campaign.ref)
    flags = _flags(campaign, donation, info)
    donated_at = donation.donatedAt or datetime.fromtimestamp(now, UTC)
    item: dict[str, Any] = {
        "pk": donation_pk(donation.messageKey),
        "campaign_ref": campaign.ref,
        "amount": donation.amount,
        "donated_at": int(donated_at.timestamp()),
        "received_at": now,
        "source": source,
        "event_id": event_id_for(donation.messageKey),
    }
    optional = {
        "msisdn": donation.msisdn,
        "text": donation.text,
        "route_name": donation.routeName,
        "donation_code": donation.donationCode,
    }
    item |= {name: value for name, value in optional.items() if value}
    if flags:
        item["flags"] = flags
    outcome = ledger().record(item)
    logger.append_keys(campaign=campaign.ref, message_key=donation.messageKey)
    if outcome.new:
        metrics.add_metric(name="DonationRecorded", unit="Count", value=1)
        if flags:
            metrics.add_metric(name="DonationFlagged", unit="Count", value=1)
            logger.warning("donation flagged", extra={"flags": flags, "source": source})
        logger.info(
            "donation recorded", extra={"amount": donation.amount, "source": source, "donor": _masked(donation)}
        )
        _publish(
            campaign,
            message_key=donation.messageKey,
            amount=donation.amount,
            donated_at=donated_at,
            info=info,
            flags=flags,
        )
        return Received("recorded", donation.messageKey, flags, published=True)
    existing = outcome.existing
    assert existing is not None
    metrics.add_metric(name="DonationDuplicate", unit="Count", value=1)
    if existing.campaign_ref != campaign.ref or existing.amount != donation.amount:
        # Umbrella calls messageKey unique: a second, different donation under one key is theirs to explain.
        metrics.add_metric(name="DonationKeyConflict", unit="Count", value=1)
        logger.warning("messageKey already holds a different donation", extra={"source": source})
        return Received("duplicate", donation.messageKey, ["message_key_conflict"])
    if existing.folded_at is None:
        # The first event may have failed to leave; consumers de-duplicate on its eventId.
        _publish_existing(existing, info, flags)
        metrics.add_metric(name="DonationEventRepublished", unit="Count", value=1)
        return Received("duplicate", donation.messageKey, flags, published=True)
    return Received("duplicate", donation.messageKey, flags)


def _flags(campaign: CampaignRef, donation: CallbackDonation, info: CampaignInfo | None) -> list[str]:
    """Why a donation deserves an operator's look; it is stored and counted all the same (the money moved)."""
    flags = []
    if info is None:
        flags.append("unknown_campaign")
    elif info.state == "stopped":
        flags.append("campaign_stopped")
    elif info.state != "active":
        flags.append("campaign_not_active")
    if donation.donationCode and donation.donationCode.casefold() != campaign.donation_code.casefold():
        flags.append("donation_code_mismatch")
    if donation.routeName and donation.routeName.casefold() != campaign.route.casefold():
        flags.append("route_mismatch")
    return flags


def _masked(donation: CallbackDonation) -> str | None:
    return mask_msisdn(donation.msisdn) if donation.msisdn else None


def _publish(
    campaign: CampaignRef,
    *,
    message_key: str,
    amount: int,
    donated_at: datetime,
    info: CampaignInfo | None,
    flags: Sequence[str],
) -> None:
    detail = DonationReceived(
        eventId=event_id_for(message_key),
        campaign=campaign.ref,
        serviceId=int(campaign.service_id),
        route=campaign.route,
        donationCode=campaign.donation_code,
        messageKey=message_key,
        amount=amount,
        donatedAt=donated_at,
        appsMilesUserId=info.apps_miles_user_id if info else None,
        flags=list(flags),
    )
    try:
        events.publish(EVENT_SOURCE, DONATION_RECEIVED, detail.as_detail())
    except Exception as exc:
        # Stored, not announced: answer 503 so Umbrella sends it again, and the repeat publishes.
        metrics.add_metric(name="DonationEventFailed", unit="Count", value=1)
        logger.warning("DonationReceived not published", extra={"kind": type(exc).__name__})
        raise RequestRejected(
            503, "event_not_published", "the donation is recorded; send it again so it is announced",
            headers={"Retry-After": "5"}, retryable=True,
        ) from None  # fmt: skip


def _publish_existing(existing: LedgerDonation, info: CampaignInfo | None, flags: Sequence[str]) -> None:
    _publish(
        CampaignRef.parse(existing.campaign_ref),
        message_key=existing.message_key,
        amount=existing.amount,
        donated_at=datetime.fromtimestamp(existing.donated_at, UTC),
        info=info,
        flags=flags,
    )


# ------------------------------------------------------------------------------------------------ fold


@dataclass
class FoldReport:
    failed_message_ids: list[str] = field(default_factory=list)
    folded: int = 0
    skipped: int = 0
    not_started: int = 0


def fold_batch(records: Sequence[dict[str, Any]]) -> FoldReport:
    """DonationReceived events (SQS records whose bodies are EventBridge events) added to their campaigns' totals.

    Grouped by campaign, because the point is to write each total once per chunk rather than once per donation;
    a record that is not a DonationReceived, or whose campaign's fold fails, is reported as failed (the queue
    retries it, then its DLQ keeps it).
    """
    report = FoldReport()
    by_campaign: dict[str, dict[str, tuple[FoldEntry, list[str]]]] = defaultdict(dict)
    for record in records:
        message_id = str(record.get("messageId", ""))
        try:
            detail = DonationReceived.model_validate(json.loads(record["body"])["detail"])
        except (KeyError, TypeError, ValueError):
            logger.error("fold record is not a DonationReceived event", extra={"message_id": message_id})
            report.failed_message_ids.append(message_id)
            continue
        entry, ids = by_campaign[detail.campaign].get(detail.messageKey, (None, []))
        by_campaign[detail.campaign][detail.messageKey] = (
            entry or FoldEntry(detail.messageKey, detail.amount),
            [*ids, message_id],
        )
    config = settings()
    now = int(time.time())
    for campaign_ref, entries in by_campaign.items():
        items = list(entries.values())
        for start in range(0, len(items), config.fold_chunk):
            chunk = items[start : start + config.fold_chunk]
            if not fits(config.fold_chunk_seconds):
                # Not started rather than cut off: the queue brings these records again.
                report.failed_message_ids.extend(message_id for _, ids in chunk for message_id in ids)
                report.not_started += len(chunk)
                continue
            try:
                outcome = ledger().fold(
                    campaign_ref, [entry for entry, _ in chunk], now=now, attempts=config.fold_conflict_attempts
                )
            except Exception as exc:
                logger.warning("fold failed", extra={"campaign": campaign_ref, "kind": type(exc).__name__})
                report.failed_message_ids.extend(message_id for _, ids in chunk for message_id in ids)
                continue
            report.folded += outcome.folded
            report.skipped += outcome.skipped
    metrics.add_metric(name="DonationsFolded", unit="Count", value=report.folded)
    if report.skipped:
        metrics.add_metric(name="DonationFoldSkipped", unit="Count", value=report.skipped)
    if report.not_started:
        metrics.add_metric(name="DonationFoldNotStarted", unit="Count", value=report.not_started)
    return report


# ------------------------------------------------------------------------------------------------ reconcile


@dataclass
class Reconciled:
    """One campaign's reconciliation, as the scheduled run's result and `hub reconcile` show it."""

    campaign: str
    status: str  # ok | drift | partner_unavailable | gone | failed
    fetched: int = 0
    recovered: int = 0
    republished: int = 0
    watermark: int | None = None
    ledger_amount: int | None = None
    partner_amount: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def reconcile_all(remaining_ms: Callable[[], int]) -> dict[str, Any]:
    """Every campaign that can still receive donations, in random order (a run cut short favours none)."""
    config = settings()
    now = int(time.time())
    campaigns = list(directory().reconcilable(stopped_since=now - config.reconcile_after_stop_seconds))
    random.shuffle(campaigns)
    results: list[Reconciled] = []
    for campaign in campaigns:
        if remaining_ms() < config.reconcile_reserve_ms:
            break
        results.append(reconcile_campaign(campaign))
    left = len(campaigns) - len(results)
    if left:
        logger.warning("reconciliation stopped for time; the rest wait for the next run", extra={"left": left})
    return _summary(results, left)


def reconcile_refs(refs: Iterable[str]) -> dict[str, Any]:
    """The named campaigns only (the operator's `hub reconcile CAMPAIGN`)."""
    results = []
    for ref in refs:
        info = directory().get(ref)
        if info is None:
            results.append(Reconciled(campaign=ref, status="unknown_campaign"))
            continue
        results.append(reconcile_campaign(info))
    return _summary(results, 0)


def _summary(results: Sequence[Reconciled], left: int) -> dict[str, Any]:
    drifting = sum(1 for result in results if result.status == "drift")
    metrics.add_metric(name="ReconciliationDrift", unit="Count", value=drifting)
    metrics.add_metric(name="ReconciliationRecovered", unit="Count", value=sum(r.recovered for r in results))
    failed = sum(1 for result in results if result.status in ("partner_unavailable", "failed"))
    if failed:
        metrics.add_metric(name="ReconciliationFailed", unit="Count", value=failed)
    return {
        "campaigns": [result.as_dict() for result in results],
        "reconciled": len(results),
        "left": left,
        "drift": drifting,
        "recovered": sum(result.recovered for result in results),
    }


def reconcile_campaign(info: CampaignInfo) -> Reconciled:
    """Recover the donations the ledger lacks; then compare totals. An outage moves nothing."""
    config = settings()
    campaign = CampaignRef.parse(info.ref)
    result = Reconciled(campaign=info.ref, status="ok")
    state = ledger().reconcile_state(info.ref)
    watermark = state.watermark if state else info.created_at
    since = max(0, watermark - config.reconcile_overlap_seconds)
    try:
        donations = umbrella().donations(int(campaign.service_id), campaign.route, campaign.donation_code, since=since)
    except PartnerNotFound:
        result.status = "gone"
        return result
    except PartnerError as exc:
        logger.warning("reconciliation: donations unavailable", extra={"campaign": info.ref, **exc.log_fields()})
        result.status = "partner_unavailable"
        return result
    result.fetched = len(donations)
    known = ledger().known([donation.messageKey for donation in donations])
    new_watermark = watermark
    recovered_amount = 0
    blocked_at: int | None = None  # a donation stored but not announced: the watermark must not pass it
    now = int(time.time())
    for donation in sorted(donations, key=lambda d: d.donatedAt):
        stamp = int(donation.donatedAt.timestamp())
        stored = known.get(donation.messageKey)
        try:
            if stored is None:
                received = receive(campaign, _as_callback(donation), source="reconciliation")
                if received.status == "recorded":
                    result.recovered += 1
                    recovered_amount += donation.amount
            elif stored.folded_at is None and now - stored.received_at >= config.republish_after_seconds:
                _publish_existing(stored, info, [])
                result.republished += 1
        except RequestRejected:
            blocked_at = stamp if blocked_at is None else min(blocked_at, stamp)
            continue
        if blocked_at is None:
            new_watermark = max(new_watermark, stamp)
    if result.recovered:
        logger.info("reconciliation recovered donations", extra={"campaign": info.ref, "count": result.recovered})
    result.watermark = new_watermark
    _compare_totals(info, campaign, result, recovered_amount)
    ledger().save_reconcile_state(
        info.ref,
        watermark=new_watermark,
        now=now,
        ledger_amount=result.ledger_amount,
        partner_amount=result.partner_amount,
    )
    return result


def _compare_totals(info: CampaignInfo, campaign: CampaignRef, result: Reconciled, recovered_amount: int) -> None:
    """Umbrella's collected amount against ours; donations recovered just now count as ours (their fold follows)."""
    try:
        partner = umbrella().collected_amount(int(campaign.service_id), campaign.route, campaign.donation_code)
    except PartnerError as exc:
        logger.warning("reconciliation: collected amount unavailable", extra={"campaign": info.ref, **exc.log_fields()})
        return
    ours = read_totals(settings().donations_table_name, info.ref).amount + recovered_amount
    result.ledger_amount = ours
    result.partner_amount = partner.amount
    if ours != partner.amount:
        result.status = "drift"
        logger.warning(
            "ledger differs from Umbrella's collected amount",
            extra={"campaign": info.ref, "ledger_amount": ours, "partner_amount": partner.amount},
        )


def _as_callback(donation: CampaignDonation) -> CallbackDonation:
    return CallbackDonation.model_validate(
        {
            "messageKey": donation.messageKey,
            "amount": donation.amount,
            "donatedAt": donation.donatedAt,
            "donationCode": donation.donationCode,
            "routeName": donation.routeName,
            "msisdn": donation.msisdn or None,
            "text": donation.text or None,
        },
        context={"msisdn_pattern": settings().msisdn_pattern},
    )


def fields_problem(field_name: str, rule: str, message: str) -> RequestRejected:
    return RequestRejected(400, "invalid_donation", message, [FieldProblem(field_name, rule, message)])
