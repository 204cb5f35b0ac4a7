"""Reconciliation: what Umbrella lists and the ledger lacks recovered, verified the fold's way, and the totals compared.

On a schedule, each active (or lately stopped) campaign's donations since its watermark (or its oldest pending
callback) minus an overlap are read from Umbrella; the ones the ledger lacks are recorded, and those and every listed
pending or unconfirmed one are verified the fold's way; pending ones past the window and not listed are marked
unconfirmed. The ledger's verified total is then compared with Umbrella's.

Every entry point takes the function's collaborators (services.IngesterServices), built at the handler's edge; the
one exception is reconcile_before_stop, itself an edge: the campaign function's stop calls it in-process.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from donation_ingester import SERVICE
from donation_ingester.callback import receive
from donation_ingester.fold import confirm_listed, mark_unconfirmed
from donation_ingester.models import CallbackDonation
from donation_ingester.services import IngesterServices, services
from donation_ingester.store import CampaignInfo
from hub_core.campaigns import CampaignKey
from hub_core.observability import logger_for, metrics_for
from partners.errors import PartnerError, PartnerNotFound
from partners.umbrella import CampaignDonation

logger = logger_for(SERVICE)
metrics = metrics_for(SERVICE)


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


def reconcile_all(services: IngesterServices, remaining_ms: Callable[[], int]) -> dict[str, Any]:
    """Every campaign that can still receive donations, in random order (a run cut short favours none)."""
    config = services.settings
    now = int(services.now())
    campaigns = list(services.directory.reconcilable(stopped_since=now - config.reconcile_after_stop_seconds))
    services.shuffle(campaigns)
    results: list[Reconciled] = []
    for campaign in campaigns:
        if remaining_ms() < config.reconcile_reserve_ms:
            break
        results.append(reconcile_campaign(services, campaign))
    left = len(campaigns) - len(results)
    if left:
        logger.warning("reconciliation stopped for time; the rest wait for the next run", extra={"left": left})
    return _summary(results, left)


def reconcile_refs(services: IngesterServices, refs: Iterable[str]) -> dict[str, Any]:
    """The named campaigns only (the operator's `hub reconcile CAMPAIGN`)."""
    results = []
    for ref in refs:
        info = services.directory.get(ref)
        if info is None:
            results.append(Reconciled(campaign=ref, status="unknown_campaign"))
            continue
        results.append(reconcile_campaign(services, info))
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


def reconcile_campaign(services: IngesterServices, info: CampaignInfo) -> Reconciled:
    """Recover and verify what Umbrella lists, mark what it never listed, compare totals. An outage moves nothing."""
    config = services.settings
    ledger = services.ledger
    campaign = CampaignKey.from_ref(info.ref)
    result = Reconciled(campaign=info.ref, status="ok")
    state = ledger.reconcile_state(info.ref)
    watermark = state.watermark if state else info.created_at
    now = int(services.now())
    pending = ledger.pending(info.ref)
    # Far enough back for the watermark's overlap and for every callback still waiting for its confirmation.
    since = max(0, min([watermark, *(p.received_at for p in pending)]) - config.reconcile_overlap_seconds)
    try:
        donations = services.umbrella.donations(
            campaign.service_id, campaign.route, campaign.donation_code, since=since
        )
    except PartnerNotFound:
        result.status = "gone"
        result.possibly_unseen = state is None or state.reconciled_at_stop is None
        return result
    except PartnerError as exc:
        logger.warning("reconciliation: donations unavailable", extra={"campaign": info.ref, **exc.log_fields()})
        result.status = "partner_unavailable"
        return result
    result.fetched = len(donations)
    blocked_at = _settle_listed(services, info, campaign, donations, result=result, now=now)
    listed = {donation.messageKey for donation in donations}
    for waiting in pending:
        if waiting.message_key not in listed and now - waiting.received_at >= config.confirm_window_seconds:
            result.unconfirmed += mark_unconfirmed(services, info.ref, waiting.message_key, now)
    stamps = [int(d.donatedAt.timestamp()) for d in donations]
    new_watermark = max([watermark, *(s for s in stamps if blocked_at is None or s < blocked_at)])
    if result.recovered:
        logger.info("reconciliation recovered donations", extra={"campaign": info.ref, "count": result.recovered})
    result.watermark = new_watermark
    _compare_totals(services, info, campaign, result)
    ledger.save_reconcile_state(
        info.ref,
        watermark=new_watermark,
        now=now,
        ledger_amount=result.ledger_amount,
        partner_amount=result.partner_amount,
    )
    return result


def reconcile_before_stop(ref: str) -> Reconciled:
    """The campaign's last reconciliation, run by its stop (campaign_lifecycle, in-process) while Umbrella still
    answers for it: the edge of that call, so it builds the ingester's services (from the campaign function's own
    environment) and hands them to reconcile_at_stop."""
    return reconcile_at_stop(services(), ref)


def reconcile_at_stop(services: IngesterServices, ref: str) -> Reconciled:
    """A donation whose callback was lost is recovered now. Marked, so that the `gone` of later runs is known to
    lose nothing; an unsuccessful run is not marked, and its `gone` later raises ReconciliationGone."""
    info = services.directory.get(ref)
    if info is None:
        return Reconciled(campaign=ref, status="unknown_campaign")
    result = reconcile_campaign(services, info)
    if result.status in ("ok", "drift"):
        services.ledger.mark_reconciled_at_stop(ref, now=int(services.now()))
    return result


def _settle_listed(
    services: IngesterServices,
    info: CampaignInfo,
    campaign: CampaignKey,
    donations: Sequence[CampaignDonation],
    *,
    result: Reconciled,
    now: int,
) -> int | None:
    """Record what the ledger lacks and verify every listed donation not yet folded; the earliest donation left
    unsettled (the watermark must not pass it), or None."""
    known = services.ledger.known([donation.messageKey for donation in donations])
    to_confirm: list[tuple[CampaignDonation, Sequence[str]]] = []
    unsettled: list[int] = []
    for donation in donations:
        stored = known.get(donation.messageKey)
        if stored is not None and stored.settled:
            continue
        if stored is None:
            # announce=False publishes nothing, so no PublishFailed can come from here: the donation is verified
            # below, and one whose event or fold fails there holds the watermark back.
            donated = _as_callback(services, donation)
            received = receive(services, campaign, donated, source="reconciliation", announce=False)
            result.recovered += received.status == "recorded"
        else:
            result.verified += 1
        to_confirm.append((donation, []))
    failed = set(confirm_listed(services, info.ref, to_confirm, info, now=now).failed)
    unsettled += [int(d.donatedAt.timestamp()) for d in donations if d.messageKey in failed]
    return min(unsettled) if unsettled else None


def _compare_totals(services: IngesterServices, info: CampaignInfo, campaign: CampaignKey, result: Reconciled) -> None:
    """Umbrella's collected amount against our verified total (this run's verifications are folded already)."""
    try:
        partner = services.umbrella.collected_amount(campaign.service_id, campaign.route, campaign.donation_code)
    except PartnerError as exc:
        logger.warning("reconciliation: collected amount unavailable", extra={"campaign": info.ref, **exc.log_fields()})
        return
    ours = services.totals(info.ref).amount
    result.ledger_amount = ours
    result.partner_amount = partner.amount
    if ours != partner.amount:
        result.status = "drift"
        logger.warning(
            "ledger differs from Umbrella's collected amount",
            extra={"campaign": info.ref, "ledger_amount": ours, "partner_amount": partner.amount},
        )


def _as_callback(services: IngesterServices, donation: CampaignDonation) -> CallbackDonation:
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
        context={"msisdn_pattern": services.settings.msisdn_pattern},
    )
