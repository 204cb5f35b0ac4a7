"""A campaign the hub created, as its owner reads, changes and stops it, and the views of it the API answers with."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from campaign_lifecycle import SERVICE
from campaign_lifecycle.creation import callback_url
from campaign_lifecycle.errors import (
    CampaignChanged,
    CampaignNotFound,
    CampaignStopped,
    ManageTokenMissing,
    ManageTokenRefused,
    RefusedByUmbrella,
)
from campaign_lifecycle.models import CampaignChanges, CampaignKey, CampaignState
from campaign_lifecycle.services import CampaignServices
from campaign_lifecycle.store import FIELD_NAMES, CampaignRecord
from hub_core.deadline import record_budget
from hub_core.observability import logger_for
from hub_core.tokens import callback_token_hash, new_callback_token, token_matches
from partners.errors import PartnerNotFound, PartnerRejected
from partners.umbrella import CampaignDonation, CampaignUpdateRequest

logger = logger_for(SERVICE)

# ------------------------------------------------------------------------------------------------ read


def campaign(services: CampaignServices, key: CampaignKey) -> CampaignRecord:
    """Our record of a campaign the hub created; CampaignNotFound for any other (and for one never completed)."""
    record = services.store.get(key)
    if record is None or record.state in (CampaignState.CREATING, CampaignState.PENDING):
        raise CampaignNotFound
    return record


@dataclass(frozen=True)
class Collected:
    """`amount`/`count`: donations Umbrella confirmed (the public total); `pending_*`: callbacks not confirmed yet."""

    amount: int | None
    count: int | None = None
    note: str | None = None
    pending_amount: int | None = None
    pending_count: int | None = None
    pending_capped: bool = False

    def as_dict(self) -> dict[str, Any]:
        pending: dict[str, Any] = {"amount": self.pending_amount, "count": self.pending_count}
        if self.pending_capped:
            pending["capped"] = True
        return {"amount": self.amount, "count": self.count, "note": self.note, "pending": pending}


def collected(services: CampaignServices, record: CampaignRecord) -> Collected:
    """The hub's own ledger: the verified total (the ingester folds it once Umbrella lists each donation) and, apart,
    what callbacks announced that Umbrella has not confirmed yet."""
    try:
        totals = services.ledger.totals(record.key.ref)
        pending = services.ledger.pending(record.key.ref, limit=services.settings.pending_read_limit)
    except ClientError as exc:
        logger.warning("ledger total unavailable", extra={"kind": type(exc).__name__})
        return Collected(None, None, "the collected amount is unavailable just now; try again shortly")
    return Collected(totals.amount, totals.count, None, pending.amount, pending.count, pending.capped)


def authorize(record: CampaignRecord, authorization: str | None) -> None:
    """The manage token, as `Authorization: Bearer …`: ManageTokenMissing without one, ManageTokenRefused if wrong."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ManageTokenMissing
    if not token_matches(token.strip(), record.manage_token_hash):
        raise ManageTokenRefused


def donations(services: CampaignServices, record: CampaignRecord, since: datetime | None) -> list[CampaignDonation]:
    key = record.key
    return services.umbrella.donations(key.service_id, key.route, key.donation_code, since=since)


def umbrella_collected(services: CampaignServices, record: CampaignRecord, since: datetime | None) -> Collected:
    """Umbrella's own collected amount for the campaign (since `since`), beside the ledger's; its absence is a note.

    Partner outages propagate (PartnerUnavailable, as for every Umbrella call); a campaign Umbrella no longer has
    (stopped, under the default profile) has no amount there, which is not an error of the request.
    """
    key = record.key
    try:
        total = services.umbrella.collected_amount(key.service_id, key.route, key.donation_code, since=since)
    except PartnerNotFound:
        return Collected(None, None, "Umbrella no longer has this campaign (stopped campaigns answer 404 there)")
    return Collected(total.amount)


# ------------------------------------------------------------------------------------------------ change


def update(services: CampaignServices, record: CampaignRecord, changes: CampaignChanges) -> CampaignRecord:
    """Send the whole campaign with the changes to Umbrella (its PUT replaces), then record them.

    Every update also issues a new callback token (the callbackUrl Umbrella gets ends in it) and the old one is
    refused from then on: a PUT is how a leaked callback URL is revoked. Callbacks Umbrella sends meanwhile with
    the old URL are refused and recovered by reconciliation.
    """
    _require_active(record)
    changed = changes.changed()
    current = {camel: getattr(record, snake) for camel, snake in FIELD_NAMES.items()}
    config = services.settings
    base = config.callback_base_url or record.callback_base
    callback_token = new_callback_token()
    url = callback_url(record.key, base, callback_token, path=config.callback_path)
    request = CampaignUpdateRequest.model_validate(current | changed | {"callbackUrl": url})
    key = record.key
    try:
        services.umbrella.update_campaign(key.service_id, key.route, key.donation_code, request)
    except PartnerNotFound:
        services.store.mark_stopped(key, now=int(services.now()), action="gone_at_umbrella")
        raise CampaignStopped("Umbrella no longer has this campaign; it is stopped") from None
    except PartnerRejected as exc:
        raise RefusedByUmbrella(exc.message) from None
    now = int(services.now())
    new_hash = callback_token_hash(callback_token)
    updated = services.store.apply_changes(record, changed, now=now, callback_base=base, callback_token_hash=new_hash)
    if updated is None:
        raise CampaignChanged
    logger.info("campaign updated", extra={"fields": sorted(changed)})
    return updated


def stop(services: CampaignServices, record: CampaignRecord) -> CampaignRecord:
    """Stop at Umbrella, then record it; stopping a stopped campaign is a success that changes nothing."""
    if record.state is CampaignState.STOPPED:
        return record
    key = record.key
    _reconcile_first(services, key)
    outcome = services.umbrella.stop_campaign(key.service_id, key.route, key.donation_code)
    action = "stopped" if not outcome.already_stopped else "stopped_at_umbrella_already"
    stopped = services.store.mark_stopped(key, now=int(services.now()), action=action)
    logger.info("campaign stopped", extra={"already_stopped": outcome.already_stopped})
    return stopped or campaign(services, key)


def _reconcile_first(services: CampaignServices, key: CampaignKey) -> None:
    """Reconcile the campaign while Umbrella still answers for it: a donation whose callback was lost is counted
    before the stop makes it unreachable (docs/exactly-once.md).

    The ingester's reconcile runs in-process, as a library call: the function holds the permissions it needs
    (template.yaml). A failed reconcile does not block the stop, which is the owner's to make; it is simply not
    marked, so the scheduled run that finds the campaign gone raises ReconciliationGone."""
    try:
        with record_budget(services.settings.stop_reconcile_seconds):
            result = services.reconcile_before_stop(key.ref)
    except Exception as exc:
        logger.warning("reconcile before stop failed; stopping all the same", extra={"kind": type(exc).__name__})
        return
    logger.info(
        "campaign reconciled before its stop",
        extra={"status": result.status, "recovered": result.recovered, "verified": result.verified},
    )


def _require_active(record: CampaignRecord) -> None:
    if record.state is not CampaignState.ACTIVE:
        raise CampaignStopped


# ------------------------------------------------------------------------------------------------ views


def public_view(record: CampaignRecord) -> dict[str, Any]:
    """What anyone may see of a campaign: never the creator's number, user id or token."""
    key = record.key
    return {
        "serviceId": key.service_id,
        "route": key.route,
        "donationCode": key.donation_code,
        "state": record.state.value,
        "amount": record.amount,
        "answerMessage": record.answer_message,
        "createdAt": _iso(record.created_at),
        "updatedAt": _iso(record.updated_at),
        "stoppedAt": _iso(record.stopped_at),
        "history": [
            {"at": _iso(entry["at"]), **{k: v for k, v in entry.items() if k != "at"}} for entry in record.history
        ],
    }


def donation_view(donation: CampaignDonation) -> dict[str, Any]:
    """A donation as its campaign's owner sees it: the donor's number is not theirs to see."""
    return {
        "messageKey": donation.messageKey,
        "amount": donation.amount,
        "donatedAt": donation.donatedAt.isoformat(),
        "text": donation.text,
    }


def _iso(epoch: int | None) -> str | None:
    return None if epoch is None else datetime.fromtimestamp(epoch, UTC).isoformat()
