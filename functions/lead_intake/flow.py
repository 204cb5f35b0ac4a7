"""How a lead travels: stored first, a safety-net retry scheduled, forwarded to MiiMOSA, its outcome recorded.

The safety net: before MiiMOSA is called, a retry message for the lead goes on the retry queue with a delay. If the
forward succeeds or is refused, the message later finds the lead settled and is dropped; if MiiMOSA is unavailable,
or the invocation dies half-way, the message is what forwards the lead later. So a stored lead is never lost, and
"queued" needs no second write path.

Exactly once at MiiMOSA across a write fault (docs/exactly-once.md): when MiiMOSA said yes but our record of it
never took, the invocation queues an "accepted" message at once, which records the lead as forwarded without calling
MiiMOSA. A safety-net delivery that finds the lead `forwarding` with its lease run out does not forward it: the lead
is uncertain (it may be at MiiMOSA), so it gets one more full lease for that late record before it is forwarded
again.

Every entry point takes the function's collaborators (services.LeadServices: store, MiiMOSA, retry queue, bus,
clock), which the handler builds once per container; nothing here reaches for a client or the time by itself.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from hub_core.caches import TtlCache
from hub_core.config import ConfigError
from hub_core.deadline import fits, margin_seconds
from hub_core.member_signature import Verdict, keep_if_signed
from hub_core.observability import logger_for
from lead_intake import SERVICE
from lead_intake.models import LeadForm, LeadOutcome, LeadStatus, LeadSubmission, lead_id_for
from lead_intake.services import LeadServices
from lead_intake.store import UNRECORDED, ClaimRefused, LeadRecord
from partners.deadline import current as current_deadline
from partners.errors import (
    PartnerAuthError,
    PartnerError,
    PartnerNotFound,
    PartnerRejected,
    PartnerUnavailable,
)
from partners.miimosa import ProjectPage

logger = logger_for(SERVICE)

QUEUED_MESSAGE = "MiiMOSA could not take the lead just now; it is stored and will be forwarded automatically."
FORWARDED_MESSAGE = "The lead reached MiiMOSA."
RECORDING_MESSAGE = "The lead reached MiiMOSA; it is being recorded. There is no need to send it again."
PENDING_MESSAGE = "The lead is stored and on its way to MiiMOSA. There is no need to send it again."
# Recording MiiMOSA's yes is retried with these pauses, while the invocation's deadline leaves room for a write.
SETTLE_PAUSES = (0.1, 0.3, 0.9)
SETTLE_WRITE_SECONDS = 1.0


class LeadNotForwardedYet(Exception):
    """A queued lead could not be forwarded on this attempt; the queue will offer it again."""


def with_verified_member(services: LeadServices, lead: LeadForm) -> tuple[LeadForm, Verdict | None]:
    """The lead with its member id only when the site's signature vouches for it (hub_core.member_signature)."""
    return keep_if_signed(lead, max_lifetime_seconds=services.settings.member_signature_max_seconds, now=services.now())


class SubmissionInProgress(Exception):
    """The same lead's first submission is still being answered: a repeat waits for it (409, Retry-After)."""


class IdempotencyKeyReused(Exception):
    """An Idempotency-Key already used, within its window, for a different lead: a client bug, refused (422)."""


def submit(services: LeadServices, submission: LeadSubmission) -> LeadOutcome:
    """Accept a validated lead once per dedup key; a double submit gets the lead's outcome back.

    The lead's record is what answers a repeat: its id is derived from the dedup key (models.lead_id_for), so one
    conditional put either stores the lead or, refused, returns the lead stored under that id. Within the dedup
    window that is the first submission: answered from its record. After it, the same key makes a new lead, which
    the first lead of the key names as its successor (see _after_window).
    """
    now = int(services.now())
    head_id = lead_id_for(submission.dedup_key)
    found = _create(services, head_id, submission, now=now)
    if found is None:
        return _first_attempt(services, head_id, submission)
    if found.dedup_until > now:
        return _repeat(found, submission, now=now)
    return _after_window(services, found, submission, now=now)


def _create(services: LeadServices, lead_id: str, submission: LeadSubmission, *, now: int) -> LeadRecord | None:
    config = services.settings
    return services.store.create(
        lead_id,
        submission.lead.for_partner(),
        now=now,
        lease_seconds=config.forward_lease_seconds,
        expires_at=now + config.lead_retention_days * 86400,
        apps_miles_user_id=submission.lead.apps_miles_user_id,
        fingerprint=submission.fingerprint,
        dedup_until=now + config.dedup_window_seconds,
        answer_by=_answer_by(now, lease=config.forward_lease_seconds),
    )


def _answer_by(now: int, *, lease: int) -> int:
    """Until when this invocation may still be answering: a repeat meanwhile is told to wait (409). The deadline
    plus the margin in which the route still answers, at most the forward's lease (no deadline: the lease)."""
    deadline = current_deadline()
    if deadline is None:
        return now + lease
    return now + min(lease, math.ceil(deadline.remaining() + margin_seconds()))


def _first_attempt(services: LeadServices, lead_id: str, submission: LeadSubmission) -> LeadOutcome:
    logger.append_keys(lead_id=lead_id)
    try:
        schedule_retry(services, lead_id, delay_seconds=services.settings.lead_retry_delay_seconds)
    except Exception:
        # No safety net, so no forward: the stored lead goes, and a resubmit starts afresh rather than finding a
        # lead that nothing would ever forward.
        _discard(services, lead_id)
        raise
    lead = submission.lead
    return forward(services, lead_id, lead.for_partner(), apps_miles_user_id=lead.apps_miles_user_id)


def _discard(services: LeadServices, lead_id: str) -> None:
    try:
        services.store.discard(lead_id)
    except Exception as exc:  # then a resubmit finds it, and is told it is on its way: the lead would wait for TTL
        logger.error("a lead without a safety net could not be discarded", extra={"kind": type(exc).__name__})


def _repeat(record: LeadRecord, submission: LeadSubmission, *, now: int) -> LeadOutcome:
    """A submission found stored within its dedup window: the lead's outcome, never a second forward."""
    if record.fingerprint != submission.fingerprint:
        raise IdempotencyKeyReused
    if record.status is LeadStatus.FORWARDED:
        return LeadOutcome(lead_id=record.lead_id, status=record.status, message=FORWARDED_MESSAGE)
    if record.status is LeadStatus.REJECTED:
        return LeadOutcome(lead_id=record.lead_id, status=record.status, message=record.message)
    if record.status is LeadStatus.QUEUED:
        return LeadOutcome(lead_id=record.lead_id, status=record.status, message=QUEUED_MESSAGE)
    if record.answer_by is not None and record.answer_by > now:
        raise SubmissionInProgress
    # Forwarding, its first invocation over: MiiMOSA's yes awaits its record, or a retry delivery holds the lead,
    # or the invocation died and the safety net will forward it. In each case it is on its way.
    message = RECORDING_MESSAGE if record.message == UNRECORDED else PENDING_MESSAGE
    return LeadOutcome(lead_id=record.lead_id, status=LeadStatus.FORWARDING, message=message)


def _after_window(services: LeadServices, head: LeadRecord, submission: LeadSubmission, *, now: int) -> LeadOutcome:
    """The key's first lead is past its window: this submission is a new lead (with a random id), unless a newer
    lead of the key is still within its own window; the first lead names the newest (`successor`).

    The new lead is stored before it is named, so a submission that loses the naming race discards its own and
    answers as a repeat of the winner's; one that dies in between leaves an unnamed lead that nothing forwards
    (no safety net was queued yet) until its TTL, and the key's next submission makes a new one.
    """
    store = services.store
    replacing = None
    if head.successor is not None and head.successor_until > now:
        current = store.get(head.successor)
        if current is not None:
            return _repeat(current, submission, now=now)
        replacing = head.successor  # erased within its window: the next submission is a new lead
    lead_id = str(uuid.uuid4())
    _create(services, lead_id, submission, now=now)
    until = now + services.settings.dedup_window_seconds
    winner = store.link_successor(head.lead_id, lead_id, now=now, until=until, replacing=replacing)
    if winner is None:
        return _first_attempt(services, lead_id, submission)
    _discard(services, lead_id)
    current = store.get(winner.successor) if winner.successor is not None else None
    if current is None:  # the winner's lead is not there (yet): it is being submitted right now
        raise SubmissionInProgress
    return _repeat(current, submission, now=now)


def schedule_retry(
    services: LeadServices, lead_id: str, *, delay_seconds: int, accepted: dict[str, str | None] | None = None
) -> None:
    """Queue a later attempt; the message names the lead only (its personal data stays in the table). With
    `accepted` (MiiMOSA's reference), it records a yes our own write missed instead of forwarding."""
    body: dict[str, Any] = {"lead_id": lead_id}
    if accepted is not None:
        body["accepted"] = accepted
    services.send_retry(body, delay_seconds)  # hub_core.retry_queue clamps it to what SQS allows


def forward(
    services: LeadServices, lead_id: str, lead: dict[str, str], *, apps_miles_user_id: str | None = None
) -> LeadOutcome:
    """One attempt at MiiMOSA for a lead this invocation holds; records and returns the outcome."""
    now = int(services.now())
    try:
        receipt = services.miimosa.create_lead(lead)
    except PartnerRejected as exc:
        services.store.settle(lead_id, LeadStatus.REJECTED, now=now, message=exc.message)
        logger.info("lead rejected by MiiMOSA", extra=exc.log_fields())
        return LeadOutcome(lead_id=lead_id, status=LeadStatus.REJECTED, message=exc.message)
    except (PartnerUnavailable, PartnerAuthError, PartnerNotFound, ConfigError) as exc:
        # Our key refused or unreadable, or no /leads route where we point: an operator's fix, never the lead's
        # fault, so the lead waits in the queue like during an outage.
        _log_hold(exc)
        not_before = _not_before(exc, now=services.now())
        services.store.settle(lead_id, LeadStatus.QUEUED, now=now, message=type(exc).__name__, not_before=not_before)
        return LeadOutcome(lead_id=lead_id, status=LeadStatus.QUEUED, message=QUEUED_MESSAGE)
    if not _record_accepted(services, lead_id, now=now, reference=receipt.reference):
        # MiiMOSA has it: a 500 here would invite a resubmit, i.e. a second lead at MiiMOSA. The lead's record
        # gives this answer to a double submit too (mark_unrecorded, or its `answer_by` once over); the queue
        # records the yes once DynamoDB takes writes again.
        _queue_acceptance(services, lead_id, receipt.reference)
        _mark_unrecorded(services, lead_id)
        return LeadOutcome(lead_id=lead_id, status=LeadStatus.FORWARDING, message=RECORDING_MESSAGE)
    logger.info("lead forwarded to MiiMOSA")
    _announce(services, lead_id, lead, apps_miles_user_id)
    return LeadOutcome(lead_id=lead_id, status=LeadStatus.FORWARDED, message=FORWARDED_MESSAGE)


def _record_accepted(services: LeadServices, lead_id: str, *, now: int, reference: str | None) -> bool:
    """Record MiiMOSA's yes, retrying a failed write while the deadline leaves room; False when it never took."""
    for pause in (0.0, *SETTLE_PAUSES):
        if pause and not fits(pause + SETTLE_WRITE_SECONDS):
            break
        services.sleep(pause)
        try:
            services.store.settle(lead_id, LeadStatus.FORWARDED, now=now, reference=reference)
        except Exception as exc:  # DynamoDB throttled or unreachable: the lead is at MiiMOSA all the same
            logger.warning("recording a forwarded lead failed", extra={"kind": type(exc).__name__})
            continue
        return True
    logger.error("a lead MiiMOSA accepted is not recorded as forwarded; the visitor is told it is being recorded")
    return False


def _mark_unrecorded(services: LeadServices, lead_id: str) -> None:
    try:
        services.store.mark_unrecorded(lead_id)
    except Exception as exc:  # then a repeat is told "in progress" until this invocation's answer_by is over
        logger.warning("an unrecorded forward could not be marked answered", extra={"kind": type(exc).__name__})


def _queue_acceptance(services: LeadServices, lead_id: str, reference: str | None) -> None:
    try:
        schedule_retry(services, lead_id, delay_seconds=0, accepted={"reference": reference})
    except Exception as exc:  # then the safety net finds the lead uncertain and waits a lease before forwarding
        logger.error("the acceptance of a forwarded lead could not be queued", extra={"kind": type(exc).__name__})


def record_acceptance(services: LeadServices, lead_id: str, reference: str | None) -> LeadOutcome | None:
    """An "accepted" message: MiiMOSA took the lead, our write missed it. Recorded (and announced) now, never
    forwarded again; None when the lead is settled already. A failing write raises: the message comes back."""
    record = services.store.settle_accepted(lead_id, now=int(services.now()), reference=reference)
    if record is None:
        return None
    logger.info("a forwarded lead recorded late", extra={"lead_id": lead_id})
    _announce(services, lead_id, record.lead, record.apps_miles_user_id)
    return LeadOutcome(lead_id=lead_id, status=LeadStatus.FORWARDED, message=FORWARDED_MESSAGE)


class LeadUncertain(Exception):
    """The lead was found `forwarding` with its lease run out; it waits one more lease before a new forward."""


def _not_before(exc: Exception, *, now: float) -> int | None:
    """When MiiMOSA said to come back (a 429's or 503's Retry-After): no retry delivery calls it before then."""
    wait = exc.retry_after if isinstance(exc, PartnerUnavailable) else None
    return None if wait is None else math.ceil(now + wait)


def retry(services: LeadServices, lead_id: str) -> LeadOutcome | None:
    """A retry-queue delivery: forward the lead if it still waits; raise if it must wait longer."""
    lease = services.settings.forward_lease_seconds
    claim = services.store.claim(lead_id, now=int(services.now()), lease_seconds=lease)
    if isinstance(claim, ClaimRefused):
        return _refused(services, lead_id, claim.record)
    logger.append_keys(lead_id=lead_id)
    outcome = forward(services, lead_id, claim.lead, apps_miles_user_id=claim.apps_miles_user_id)
    if outcome.status is LeadStatus.QUEUED:
        raise LeadNotForwardedYet(lead_id)
    return outcome


def _refused(services: LeadServices, lead_id: str, record: LeadRecord | None) -> LeadOutcome | None:
    if record is None:
        # Expired by its TTL or never stored: nothing left to forward.
        logger.warning("retry for an unknown lead dropped", extra={"lead_id": lead_id})
        return None
    if record.status is LeadStatus.FORWARDING:
        lease = services.settings.forward_lease_seconds
        if services.store.mark_uncertain(lead_id, now=int(services.now()), lease_seconds=lease):
            # Its attempt may have reached MiiMOSA: forwarding now could make it two. One more lease lets a late
            # record of MiiMOSA's yes land; the lead comes back after it (a new message, its receives afresh).
            logger.warning("lead uncertain: a full lease before it is forwarded again", extra={"lead_id": lead_id})
            schedule_retry(services, lead_id, delay_seconds=lease + 1)
            raise LeadUncertain(lead_id)
    if record.status in (LeadStatus.FORWARDING, LeadStatus.QUEUED):
        # Another attempt holds it right now, or MiiMOSA asked us to wait (Retry-After) and the time is not up.
        raise LeadNotForwardedYet(lead_id)
    return LeadOutcome(lead_id=lead_id, status=record.status, message=record.message)


def _log_hold(exc: PartnerError | ConfigError) -> None:
    if isinstance(exc, ConfigError):
        logger.error("lead held for retry: configuration", extra={"detail": str(exc)})
    elif isinstance(exc, PartnerUnavailable):
        logger.warning("lead held for retry", extra=exc.log_fields())
    else:
        logger.error("lead held for retry: MiiMOSA refuses our setup", extra=exc.log_fields())


def _announce(services: LeadServices, lead_id: str, lead: dict[str, str], apps_miles_user_id: str | None) -> None:
    """LeadCaptured for the loyalty relay and reporting: ids and categories, never the person's contact details.

    Not the member id either, only that there is one: the relay reads it from the lead (LeadsTable), so that an
    event waiting in a queue or a DLQ names no one.
    """
    detail: dict[str, str | bool | None] = {
        "lead_id": lead_id,
        "collect_type": lead.get("collect_type"),
        "category": lead.get("category"),
        "campaign_id": lead.get("campaign_id"),
        "lead_source": lead.get("lead_source"),
    }
    if apps_miles_user_id:
        detail["apps_miles_member"] = True
    try:
        services.publish("lead-intake", "LeadCaptured", detail)
    except Exception:  # the lead reached MiiMOSA; a lost notification must not undo that answer
        logger.exception("LeadCaptured not published")


_PROJECTS = TtlCache()


def list_projects(services: LeadServices, filters: dict[str, Any]) -> ProjectPage:
    """Published projects for the website's listing, cached briefly per filter set."""
    key = tuple(sorted((k, v) for k, v in filters.items() if v is not None))
    return _PROJECTS.get_or_load(
        key, lambda: services.miimosa.list_projects(**filters), ttl_seconds=services.settings.projects_cache_seconds
    )


def get_project(services: LeadServices, project_id: int) -> dict[str, Any]:
    return services.miimosa.get_project(project_id)


def lead_from_fields(services: LeadServices, fields: dict[str, Any]) -> tuple[LeadForm | None, bool]:
    """Validate submitted fields; (None, True) when the honeypot is filled (a bot: answer as if all went well)."""
    honeypot = fields.pop(services.settings.honeypot_field, None)
    if isinstance(honeypot, str) and honeypot.strip():
        return None, True
    return LeadForm.model_validate(fields), False
