"""Umbrella's callback (a hint): its campaign's token checked, its payload bounded, the donation recorded once, pending.

The campaign's token first (its hash on the campaign; refused after a stop's grace period), then the payload (amount
bounded); one conditional put of a `pending` donation; one DonationCallbackReceived event for the fold. Nothing is
counted and no DonationReceived is emitted on the callback path: anyone holding a callback URL could send one.

Every entry point takes the function's collaborators (services.IngesterServices: ledger, campaign cache, hasher,
bus, clock), built once at the handler's edge; nothing here reaches a module-level factory.
"""

from __future__ import annotations

from collections.abc import Sequence
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
from donation_ingester.models import (
    DONATION_HINT,
    EVENT_SOURCE,
    CallbackDonation,
    DonationHint,
    event_id_for,
)
from donation_ingester.services import IngesterServices
from donation_ingester.store import CampaignInfo
from hub_core.campaigns import CampaignKey
from hub_core.ledger import PENDING, donation_pk
from hub_core.observability import logger_for, metrics_for
from hub_core.tokens import callback_token_matches, is_callback_token_shaped
from partners.redact import mask_msisdn

logger = logger_for(SERVICE)
metrics = metrics_for(SERVICE)


def verify_token(services: IngesterServices, campaign: CampaignKey | None, token: str | None) -> CampaignInfo:
    """Before the payload is looked at: CallbackTokenMissing without a token, CallbackTokenRefused (or, after a stop's
    grace period, CallbackRevoked) with one this campaign does not hold (any more).

    The campaign (with its token's hash) comes from the per-container cache; a token that does not match is checked
    once more against a fresh read, so a token issued by a `PUT` moments ago works at once. A replaced token is
    refused once the cache has moved on (CAMPAIGN_CACHE_SECONDS at most). `campaign` is None when the URL's path
    cannot name one of ours (CampaignKey.from_path): refused like a token no campaign holds, with nothing read.
    """
    if not is_callback_token_shaped(token):
        metrics.add_metric(name="DonationCallbackUnauthorized", unit="Count", value=1)
        raise CallbackTokenMissing
    assert token is not None
    if campaign is None:
        metrics.add_metric(name="DonationCallbackForbidden", unit="Count", value=1)
        raise CallbackTokenRefused
    info = services.campaigns.get(campaign.ref)
    if info is None or not callback_token_matches(token, info.callback_token_hash):
        info = services.campaigns.fresh(campaign.ref)
    if info is None or not callback_token_matches(token, info.callback_token_hash):
        metrics.add_metric(name="DonationCallbackForbidden", unit="Count", value=1)
        raise CallbackTokenRefused
    grace = services.settings.callback_grace_after_stop_seconds
    if info.state == "stopped" and info.stopped_at is not None and services.now() > info.stopped_at + grace:
        metrics.add_metric(name="DonationCallbackRevoked", unit="Count", value=1)
        raise CallbackRevoked
    return info


def parse_donation(services: IngesterServices, fields: dict[str, Any]) -> CallbackDonation:
    """The payload's fields; InvalidDonation naming each problem (and nothing stored) when they are not a donation."""
    config = services.settings
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
    services: IngesterServices,
    campaign: CampaignKey,
    donation: CallbackDonation,
    *,
    source: str = "callback",
    announce: bool = True,
) -> Received:
    """Record the donation once, pending, and hand it to the fold; a repeat changes nothing but may hand it again.

    `announce=False` is reconciliation's: it verifies what it records itself, at once.
    """
    now = int(services.now())
    info = services.campaigns.get(campaign.ref)
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
        "msisdn": services.hasher.hash(donation.msisdn) if donation.msisdn else None,
        "text": donation.text,
        "route_name": donation.routeName,
        "donation_code": donation.donationCode,
    }
    item |= {name: value for name, value in optional.items() if value}
    if flags:
        item["flags"] = flags
    outcome = services.ledger.record(item)
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
            _publish_hint(services, _hint(campaign.ref, donation.messageKey, donation.amount, now, flags))
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
        hint = _hint(existing.campaign_ref, existing.message_key, existing.amount, existing.received_at, flags)
        _publish_hint(services, hint)
        metrics.add_metric(name="DonationEventRepublished", unit="Count", value=1)
        return Received("duplicate", donation.messageKey, flags, published=True, verification=existing.verification)
    return Received("duplicate", donation.messageKey, flags, verification=existing.verification)


def _flags(campaign: CampaignKey, donation: CallbackDonation, info: CampaignInfo | None) -> list[str]:
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


def _hint(campaign_ref: str, message_key: str, amount: int, received_at: int, flags: Sequence[str]) -> DonationHint:
    return DonationHint(
        eventId=event_id_for(message_key),
        campaign=campaign_ref,
        messageKey=message_key,
        amount=amount,
        receivedAt=received_at,
        flags=list(flags),
    )


def _publish_hint(services: IngesterServices, detail: DonationHint) -> None:
    try:
        services.publish(EVENT_SOURCE, DONATION_HINT, detail.as_detail())
    except Exception as exc:
        # Stored, not handed to the fold: Umbrella must send it again (app.py answers 503), and the repeat publishes.
        metrics.add_metric(name="DonationEventFailed", unit="Count", value=1)
        logger.warning("DonationCallbackReceived not published", extra={"kind": type(exc).__name__})
        raise PublishFailed from None
