"""How a donation is recorded once, verified with Umbrella, folded into its campaign's total, and recovered.

- Callback (a hint): the campaign's token first (its hash on the campaign; refused after a stop's grace period),
  then the payload (amount bounded); one conditional put of a `pending` donation; one DonationCallbackReceived
  event for the fold. Nothing is counted and no DonationReceived is emitted on the callback path: anyone holding a
  callback URL could send one.
- Fold (the verification): hints reach this function in batches through a queue. Per campaign per batch, one
  `GET …/donations?timestampSince` asks Umbrella which messageKeys it holds; those become DonationReceived events
  and are added to the total in chunks of up to 99 donations, each chunk one transaction that also marks them
  verified and folded, with Umbrella's amount. One not listed yet is retried by the queue, and marked `unconfirmed`
  (metric DonationUnconfirmed, never a total) once the confirm window has passed.
- Reconciliation: on a schedule, each active (or lately stopped) campaign's donations since its watermark (or its
  oldest pending callback) minus an overlap are read from Umbrella; the ones the ledger lacks are recorded, and those
  and every listed pending or unconfirmed one are verified the fold's way; pending ones past the window and not
  listed are marked unconfirmed. The ledger's verified total is then compared with Umbrella's.
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
from donation_ingester.errors import (
    CallbackRevoked,
    CallbackTokenMissing,
    CallbackTokenRefused,
    InvalidDonation,
    PublishFailed,
)
from donation_ingester.models import CallbackDonation, DonationHint, DonationReceived, event_id_for
from donation_ingester.settings import settings
from donation_ingester.store import (
    CampaignDirectory,
    CampaignInfo,
    DonationLedger,
    FoldEntry,
)
from hub_core import events
from hub_core.caches import TtlCache, container_cached
from hub_core.deadline import fits, record_budget
from hub_core.ledger import PENDING, donation_pk, read_totals
from hub_core.observability import logger_for, metrics_for
from hub_core.tokens import DonorHasher, callback_token_matches, donor_hasher, is_callback_token_shaped
from hub_core.umbrella import umbrella_client
from partners.errors import PartnerError, PartnerNotFound
from partners.redact import mask_msisdn
from partners.umbrella import CampaignDonation, UmbrellaClient

logger = logger_for(SERVICE)
metrics = metrics_for(SERVICE)

EVENT_SOURCE = "donation-ingester"
DONATION_RECEIVED = "DonationReceived"
DONATION_HINT = "DonationCallbackReceived"


@container_cached
def ledger() -> DonationLedger:
    return DonationLedger(settings().donations_table_name)


@container_cached
def directory() -> CampaignDirectory:
    return CampaignDirectory(settings().campaigns_table_name)


@container_cached
def hasher() -> DonorHasher:
    return donor_hasher()


@container_cached
def umbrella() -> UmbrellaClient:
    return umbrella_client(settings())


@dataclass(frozen=True)
class CampaignRef:
    """The campaign a callback URL names: its parts exactly as the URL spells them (that is what was stored)."""

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

_CAMPAIGNS = TtlCache(max_entries=4096)


def _campaign_info(ref: str) -> CampaignInfo | None:
    return _CAMPAIGNS.get_or_load(ref, lambda: directory().get(ref), ttl_seconds=settings().campaign_cache_seconds)


def verify_token(campaign: CampaignRef, token: str | None) -> CampaignInfo:
    """Before the payload is looked at: CallbackTokenMissing without a token, CallbackTokenRefused (or, after a stop's
    grace period, CallbackRevoked) with one this campaign does not hold (any more).

    The campaign (with its token's hash) comes from the per-container cache; a token that does not match is checked
    once more against a fresh read, so a token issued by a `PUT` moments ago works at once. A replaced token is
    refused once the cache has moved on (CAMPAIGN_CACHE_SECONDS at most).
    """
    if not is_callback_token_shaped(token):
        metrics.add_metric(name="DonationCallbackUnauthorized", unit="Count", value=1)
        raise CallbackTokenMissing
    assert token is not None
    info = _campaign_info(campaign.ref)
    if info is None or not callback_token_matches(token, info.callback_token_hash):
        fresh = directory().get(campaign.ref)
        _CAMPAIGNS.put(campaign.ref, fresh, ttl_seconds=settings().campaign_cache_seconds)
        info = fresh
    if info is None or not callback_token_matches(token, info.callback_token_hash):
        metrics.add_metric(name="DonationCallbackForbidden", unit="Count", value=1)
        raise CallbackTokenRefused
    grace = settings().callback_grace_after_stop_seconds
    if info.state == "stopped" and info.stopped_at is not None and time.time() > info.stopped_at + grace:
        metrics.add_metric(name="DonationCallbackRevoked", unit="Count", value=1)
        raise CallbackRevoked
    return info


def parse_donation(fields: dict[str, Any]) -> CallbackDonation:
    """The payload's fields; InvalidDonation naming each problem (and nothing stored) when they are not a donation."""
    config = settings()
    context = {"msisdn_pattern": config.msisdn_pattern, "max_amount_ore": config.callback_max_amount_ore}
    try:
        return CallbackDonation.model_validate(fields, context=context)
    except ValidationError as exc:
        metrics.add_metric(name="DonationCallbackInvalid", unit="Count", value=1)
        raise InvalidDonation(exc.errors(include_input=False, include_url=False)) from None


@dataclass(frozen=True)
class Received:
    status: str  # "recorded" or "duplicate"
    message_key: str
    flags: list[str] = field(default_factory=list)
    published: bool = False
    verification: str = PENDING


def receive(
    campaign: CampaignRef, donation: CallbackDonation, *, source: str = "callback", announce: bool = True
) -> Received:
    """Record the donation once, pending, and hand it to the fold; a repeat changes nothing but may hand it again.

    `announce=False` is reconciliation's: it verifies what it records itself, at once.
    """
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
        "verification": PENDING,
        "pending_campaign": campaign.ref,
    }
    optional = {
        # Only ever matched (erasure), never read back: a keyed hash, not the number.
        "msisdn": hasher().hash(donation.msisdn) if donation.msisdn else None,
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
        # A callback's line is DEBUG (Logger's sampling still shows some): at 1,000 callbacks a second an INFO line
        # each was CloudWatch Logs cost and noise beside the DonationRecorded metric. A donation that reconciliation
        # recovered (its callback never came) stays INFO: an operator wants to see those.
        log = logger.debug if source == "callback" else logger.info
        log("donation recorded", extra={"amount": donation.amount, "source": source, "donor": _masked(donation)})
        if announce:
            _publish_hint(campaign.ref, donation.messageKey, donation.amount, now, flags)
        return Received("recorded", donation.messageKey, flags, published=announce)
    existing = outcome.existing
    assert existing is not None
    metrics.add_metric(name="DonationDuplicate", unit="Count", value=1)
    if existing.campaign_ref != campaign.ref or existing.amount != donation.amount:
        # Umbrella calls messageKey unique: a second, different donation under one key is theirs to explain.
        metrics.add_metric(name="DonationKeyConflict", unit="Count", value=1)
        logger.warning("messageKey already holds a different donation", extra={"source": source})
        return Received("duplicate", donation.messageKey, ["message_key_conflict"], verification=existing.verification)
    if announce and not existing.settled and existing.verification == PENDING:
        # The first hint may have failed to leave; the fold de-duplicates (the donation is folded once).
        _publish_hint(existing.campaign_ref, existing.message_key, existing.amount, existing.received_at, flags)
        metrics.add_metric(name="DonationEventRepublished", unit="Count", value=1)
        return Received("duplicate", donation.messageKey, flags, published=True, verification=existing.verification)
    return Received("duplicate", donation.messageKey, flags, verification=existing.verification)


def _flags(campaign: CampaignRef, donation: CallbackDonation, info: CampaignInfo | None) -> list[str]:
    """Why a donation deserves an operator's look; whether it counts is Umbrella's list's to say."""
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


def _publish_hint(campaign_ref: str, message_key: str, amount: int, received_at: int, flags: Sequence[str]) -> None:
    detail = DonationHint(
        eventId=event_id_for(message_key),
        campaign=campaign_ref,
        messageKey=message_key,
        amount=amount,
        receivedAt=received_at,
        flags=list(flags),
    )
    try:
        events.publish(EVENT_SOURCE, DONATION_HINT, detail.as_detail())
    except Exception as exc:
        # Stored, not handed to the fold: Umbrella must send it again (app.py answers 503), and the repeat publishes.
        metrics.add_metric(name="DonationEventFailed", unit="Count", value=1)
        logger.warning("DonationCallbackReceived not published", extra={"kind": type(exc).__name__})
        raise PublishFailed from None


def _received_detail(
    campaign_ref: str, listed: CampaignDonation, info: CampaignInfo | None, flags: Sequence[str]
) -> dict[str, Any]:
    """The donation as Umbrella listed it: the only DonationReceived there is (loyalty acts on it)."""
    campaign = CampaignRef.parse(campaign_ref)
    return DonationReceived(
        eventId=event_id_for(listed.messageKey),
        campaign=campaign_ref,
        serviceId=int(campaign.service_id),
        route=campaign.route,
        donationCode=campaign.donation_code,
        messageKey=listed.messageKey,
        amount=listed.amount,
        donatedAt=listed.donatedAt,
        appsMilesMember=True if info and info.apps_miles_user_id else None,
        flags=list(flags),
    ).as_detail()


# ------------------------------------------------------------------------------------------------ verify


@dataclass
class Settled:
    """What verifying one campaign's pending donations against Umbrella's list did."""

    verified: int = 0
    verified_amount: int = 0
    unconfirmed: int = 0
    waiting: list[str] = field(default_factory=list)  # messageKeys not listed yet, inside the window
    failed: list[str] = field(default_factory=list)  # messageKeys whose event or fold failed: try again


def confirm_listed(
    campaign_ref: str,
    to_confirm: Sequence[tuple[CampaignDonation, Sequence[str]]],
    info: CampaignInfo | None,
    *,
    now: int,
) -> Settled:
    """Announce and fold donations Umbrella listed: the event first (consumers de-duplicate on its eventId), so that
    a fold that fails is simply repeated; a donation is folded once whatever is repeated."""
    config = settings()
    result = Settled()
    entries: list[FoldEntry] = []
    # Ten to a PutEvents request: a fold batch of 100 donations costs 10 requests, not 100.
    details = [_received_detail(campaign_ref, listed, info, flags) for listed, flags in to_confirm]
    for (listed, _), put in zip(to_confirm, events.publish_many(EVENT_SOURCE, DONATION_RECEIVED, details), strict=True):
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
            outcome = ledger().fold(campaign_ref, chunk, now=now, attempts=config.fold_conflict_attempts)
        except Exception as exc:
            logger.warning("fold failed", extra={"campaign": campaign_ref, "kind": type(exc).__name__})
            result.failed.extend(entry.message_key for entry in chunk)
            continue
        result.verified += outcome.folded
        result.verified_amount += outcome.amount
    return result


def _mark_unconfirmed(campaign_ref: str, message_key: str, now: int) -> bool:
    if not ledger().mark_unconfirmed(message_key, now=now):
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


def fold_batch(records: Sequence[dict[str, Any]]) -> FoldReport:
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
    step_seconds = settings().fold_campaign_seconds
    for campaign_ref, hints in by_campaign.items():
        if not fits(step_seconds):
            # Not started rather than cut off: the queue brings these records again.
            report.failed_message_ids.extend(message_id for _, ids in hints.values() for message_id in ids)
            report.not_started += len(hints)
            continue
        try:
            with record_budget(step_seconds):
                settled = _verify_campaign(campaign_ref, [hint for hint, _ in hints.values()], report)
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


def _verify_campaign(campaign_ref: str, hints: Sequence[DonationHint], report: FoldReport) -> Settled:
    """One Umbrella call for all of this campaign's hints in the batch that are still pending."""
    config = settings()
    now = int(time.time())
    stored = ledger().known([hint.messageKey for hint in hints])
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
    campaign = CampaignRef.parse(campaign_ref)
    since = max(0, min(donation.received_at for donation in pending) - config.verify_overlap_seconds)
    report.umbrella_calls += 1
    try:
        answer = umbrella().donations(int(campaign.service_id), campaign.route, campaign.donation_code, since=since)
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
            unconfirmed += _mark_unconfirmed(campaign_ref, donation.message_key, now)
        else:
            waiting.append(donation.message_key)
    settled = confirm_listed(campaign_ref, to_confirm, _campaign_info(campaign_ref), now=now)
    settled.unconfirmed = unconfirmed
    settled.waiting = waiting
    return settled


# ------------------------------------------------------------------------------------------------ reconcile


@dataclass
class Reconciled:
    """One campaign's reconciliation, as the scheduled run's result and `hub reconcile` show it."""

    campaign: str
    status: str  # ok | drift | partner_unavailable | gone | failed
    fetched: int = 0
    recovered: int = 0  # listed by Umbrella, missing from the ledger: recorded and verified
    verified: int = 0  # stored but still pending (or unconfirmed), listed by Umbrella: verified now
    unconfirmed: int = 0  # pending past the confirm window, not listed: marked, never counted
    watermark: int | None = None
    ledger_amount: int | None = None
    partner_amount: int | None = None
    # `gone` (Umbrella no longer answers for it) without a reconcile at its stop: donations whose callback was
    # lost may never have been seen. Counted in the ReconciliationGone metric (and its alarm).
    possibly_unseen: bool = False

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
    metrics.add_metric(name="ReconciliationVerified", unit="Count", value=sum(r.verified for r in results))
    gone = sum(1 for result in results if result.possibly_unseen)
    if gone:
        metrics.add_metric(name="ReconciliationGone", unit="Count", value=gone)
        logger.error(
            "campaigns gone at Umbrella without a final reconcile: donations may be unseen",
            extra={"count": gone, "campaigns": [r.campaign for r in results if r.possibly_unseen]},
        )
    failed = sum(1 for result in results if result.status in ("partner_unavailable", "failed"))
    if failed:
        metrics.add_metric(name="ReconciliationFailed", unit="Count", value=failed)
    return {
        "campaigns": [result.as_dict() for result in results],
        "reconciled": len(results),
        "left": left,
        "drift": drifting,
        "recovered": sum(result.recovered for result in results),
        "verified": sum(result.verified for result in results),
        "unconfirmed": sum(result.unconfirmed for result in results),
        "gone": gone,
    }


def reconcile_campaign(info: CampaignInfo) -> Reconciled:
    """Recover and verify what Umbrella lists, mark what it never listed, compare totals. An outage moves nothing."""
    config = settings()
    campaign = CampaignRef.parse(info.ref)
    result = Reconciled(campaign=info.ref, status="ok")
    state = ledger().reconcile_state(info.ref)
    watermark = state.watermark if state else info.created_at
    now = int(time.time())
    pending = ledger().pending(info.ref)
    # Far enough back for the watermark's overlap and for every callback still waiting for its confirmation.
    since = max(0, min([watermark, *(p.received_at for p in pending)]) - config.reconcile_overlap_seconds)
    try:
        donations = umbrella().donations(int(campaign.service_id), campaign.route, campaign.donation_code, since=since)
    except PartnerNotFound:
        result.status = "gone"
        result.possibly_unseen = state is None or state.reconciled_at_stop is None
        return result
    except PartnerError as exc:
        logger.warning("reconciliation: donations unavailable", extra={"campaign": info.ref, **exc.log_fields()})
        result.status = "partner_unavailable"
        return result
    result.fetched = len(donations)
    blocked_at = _settle_listed(info, campaign, donations, result, now)
    listed = {donation.messageKey for donation in donations}
    for waiting in pending:
        if waiting.message_key not in listed and now - waiting.received_at >= config.confirm_window_seconds:
            result.unconfirmed += _mark_unconfirmed(info.ref, waiting.message_key, now)
    stamps = [int(d.donatedAt.timestamp()) for d in donations]
    new_watermark = max([watermark, *(s for s in stamps if blocked_at is None or s < blocked_at)])
    if result.recovered:
        logger.info("reconciliation recovered donations", extra={"campaign": info.ref, "count": result.recovered})
    result.watermark = new_watermark
    _compare_totals(info, campaign, result)
    ledger().save_reconcile_state(
        info.ref,
        watermark=new_watermark,
        now=now,
        ledger_amount=result.ledger_amount,
        partner_amount=result.partner_amount,
    )
    return result


def reconcile_before_stop(ref: str) -> Reconciled:
    """The campaign's last reconciliation, run by its stop (campaign_lifecycle, in-process) while Umbrella still
    answers for it: a donation whose callback was lost is recovered now. Marked, so that the `gone` of later runs
    is known to lose nothing; an unsuccessful run is not marked, and its `gone` later raises ReconciliationGone."""
    info = directory().get(ref)
    if info is None:
        return Reconciled(campaign=ref, status="unknown_campaign")
    result = reconcile_campaign(info)
    if result.status in ("ok", "drift"):
        ledger().mark_reconciled_at_stop(ref, now=int(time.time()))
    return result


def _settle_listed(
    info: CampaignInfo, campaign: CampaignRef, donations: Sequence[CampaignDonation], result: Reconciled, now: int
) -> int | None:
    """Record what the ledger lacks and verify every listed donation not yet folded; the earliest donation left
    unsettled (the watermark must not pass it), or None."""
    known = ledger().known([donation.messageKey for donation in donations])
    to_confirm: list[tuple[CampaignDonation, Sequence[str]]] = []
    unsettled: list[int] = []
    for donation in donations:
        stored = known.get(donation.messageKey)
        if stored is not None and stored.settled:
            continue
        if stored is None:
            # announce=False publishes nothing, so no PublishFailed can come from here: the donation is verified
            # below, and one whose event or fold fails there holds the watermark back.
            received = receive(campaign, _as_callback(donation), source="reconciliation", announce=False)
            result.recovered += received.status == "recorded"
        else:
            result.verified += 1
        to_confirm.append((donation, []))
    failed = set(confirm_listed(info.ref, to_confirm, info, now=now).failed)
    unsettled += [int(d.donatedAt.timestamp()) for d in donations if d.messageKey in failed]
    return min(unsettled) if unsettled else None


def _compare_totals(info: CampaignInfo, campaign: CampaignRef, result: Reconciled) -> None:
    """Umbrella's collected amount against our verified total (this run's verifications are folded already)."""
    try:
        partner = umbrella().collected_amount(int(campaign.service_id), campaign.route, campaign.donation_code)
    except PartnerError as exc:
        logger.warning("reconciliation: collected amount unavailable", extra={"campaign": info.ref, **exc.log_fields()})
        return
    ours = read_totals(settings().donations_table_name, info.ref).amount
    result.ledger_amount = ours
    result.partner_amount = partner.amount
    if ours != partner.amount:
        result.status = "drift"
        logger.warning(
            "ledger differs from Umbrella's collected amount",
            extra={"campaign": info.ref, "ledger_amount": ours, "partner_amount": partner.amount},
        )


def _as_callback(donation: CampaignDonation) -> CallbackDonation:
    """Umbrella's own list: the callback's amount bound does not apply (Umbrella says the money moved)."""
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
