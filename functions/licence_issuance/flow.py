"""How an order becomes exactly one Pimenko licence, however often and however concurrently it is asked for.

Two layers keep it to one:
1. Our order record answers every repeat: a settled order gives its first answer (its fingerprint refuses the same
   order id with another request), and while one attempt holds it with a lease a concurrent repeat is told the
   order is in progress. (Powertools Idempotency would only duplicate this record, with two more DynamoDB requests
   per licence and a persistence layer to build on a cold start.)
2. Pimenko's create is not idempotent and a timed-out one may have succeeded, so before its first create an order
   notes the newest licence id (`after_id`), and any later attempt looks for a licence of its product and type
   newer than that, not claimed by another order, before it creates again. Creates of one product and type take
   turns, so while an order holds the turn the only new licence of that kind can be its own. A create Pimenko did
   not answer may still be processed after our timeout, so for `recreate_grace_seconds` after it the order's
   attempts only look for its licence; they create again only once it has had time to land.

Every entry point takes the function's collaborators (services.LicenceServices: store, Pimenko, bus, clocks, the
deadline), which the handler builds once per container; nothing here reaches for a client or the time by itself.
"""

from __future__ import annotations

import uuid

from hub_core.http_api import FieldProblem
from hub_core.member_signature import Verdict, keep_if_signed
from hub_core.observability import logger_for
from licence_issuance import SERVICE
from licence_issuance.models import IssuedLicence, LicenceRequest, LicenceState
from licence_issuance.services import LicenceServices
from licence_issuance.store import OrderHeld, OrderRecord
from partners.errors import PartnerRejected, PartnerUnavailable
from partners.mlm import Licence, LicenceType, Product, mask_key

logger = logger_for(SERVICE)


class OrderInProgress(Exception):
    """Another attempt holds this order, or another order of the same product and type is being created."""


class OrderConflict(Exception):
    """The order id was already used for a different request."""


class CatalogueMismatch(Exception):
    """The product or licence type does not exist at Pimenko (checked against the cached catalogue)."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("product or licence type unknown")
        self.problems = problems


# ------------------------------------------------------------------------------------------------ catalogue


def licence_types(services: LicenceServices) -> list[LicenceType]:
    ttl = services.settings.catalogue_cache_seconds
    return services.catalogue.get_or_load("types", services.mlm.licence_types, ttl_seconds=ttl)


def products(services: LicenceServices) -> list[Product]:
    ttl = services.settings.catalogue_cache_seconds
    return services.catalogue.get_or_load("products", services.mlm.products, ttl_seconds=ttl)


def check_catalogue(services: LicenceServices, request: LicenceRequest) -> None:
    """Product and licence type must exist: checked against the cached lists, never by trying a create."""
    problems = []
    if request.product_id not in {product.id for product in products(services)}:
        problems.append(FieldProblem("product_id", "unknown_product", "is not one of the products GET /products lists"))
    if request.licence_type not in {kind.id for kind in licence_types(services)}:
        problems.append(
            FieldProblem("licence_type", "unknown_licence_type", "is not one of the types GET /licence-types lists")
        )
    if problems:
        raise CatalogueMismatch(problems)


def max_sites(services: LicenceServices, licence_type: int) -> int | None:
    return next((kind.max_sites for kind in licence_types(services) if kind.id == licence_type), None)


# ------------------------------------------------------------------------------------------------ issue


def with_verified_member(services: LicenceServices, request: LicenceRequest) -> tuple[LicenceRequest, Verdict | None]:
    """The request with its member id only when the shop's signature vouches for it (hub_core.member_signature)."""
    max_lifetime = services.settings.member_signature_max_seconds
    return keep_if_signed(request, max_lifetime_seconds=max_lifetime, now=services.now())


def issue(services: LicenceServices, request: LicenceRequest) -> IssuedLicence:
    """The order's licence: issued now, or the one issued before; REJECTED when Pimenko refused it.

    The order is held first (one conditional write, which hands back the record when the order is not free to
    take), so a repeat is answered from that record without a read before it. A refused order asked for again with
    other data is a retry with corrected data (retry_refused)."""
    logger.append_keys(order_id=request.order_id)
    attempt_id = str(uuid.uuid4())
    held = _hold(services, request, attempt_id)
    if isinstance(held, OrderHeld):
        known = held.record
        if known.state is LicenceState.REJECTED and known.fingerprint != request.fingerprint():
            return retry_refused(services, request, known)
        return _settled(known, request)
    return _issue(services, request, held, attempt_id)


def retry_refused(services: LicenceServices, request: LicenceRequest, refused: OrderRecord) -> IssuedLicence:
    """A refused order again, with corrected data: reopened (the refusal kept in its history), then issued as any
    order. No second licence can result: a refusal means Pimenko made none, the reopen is conditional on the
    refusal, and the attempt that follows looks for a licence of the order's before it creates one."""
    check_catalogue(services, request)
    if services.store.reopen_refused(request, refused=refused, now=int(services.now())):
        logger.info("refused licence order retried with corrected data", extra={"retries": refused.retries + 1})
    attempt_id = str(uuid.uuid4())
    held = _hold(services, request, attempt_id)
    if isinstance(held, OrderHeld):
        return _settled(held.record, request)
    return _issue(services, request, held, attempt_id)


def _hold(services: LicenceServices, request: LicenceRequest, attempt_id: str) -> OrderRecord | OrderHeld:
    lease = services.settings.create_lease_seconds
    return services.store.hold_order(request, attempt_id=attempt_id, now=int(services.now()), lease_seconds=lease)


def _issue(services: LicenceServices, request: LicenceRequest, held: OrderRecord, attempt_id: str) -> IssuedLicence:
    """An attempt that holds the order: the catalogue check, the turn, then the look-up or the create."""
    try:
        # Not recorded as a rejection: the catalogue may be a few minutes stale, so the same order may pass later.
        check_catalogue(services, request)
    except BaseException:  # unknown product, or the catalogue unreadable: the order is let go as it was found
        _let_go(services, held, attempt_id)
        raise
    if not _await_turn(services, request, attempt_id):
        _let_go(services, held, attempt_id)
        raise OrderInProgress("another licence of this product and type is being created")
    try:
        return _create_once(services, request, held, attempt_id)
    finally:
        services.store.end_turn(request.product_id, request.licence_type, holder=attempt_id)


def _await_turn(services: LicenceServices, request: LicenceRequest, attempt_id: str) -> bool:
    """Take the product and type's turn, waiting for it while the deadline leaves room for a create after it.

    The pauses are jittered and grow (to 1 s) so that a burst of one kind does not retry in lockstep; each holder
    ends its turn as soon as it is done, so a burst drains at the pace of Pimenko's creates."""
    config = services.settings
    started = services.monotonic()
    pause = 0.05
    while True:
        if services.store.take_turn(
            request.product_id, request.licence_type, holder=attempt_id, now=int(services.now()),
            lease_seconds=config.create_lease_seconds,
        ):  # fmt: skip
            return True
        waited = services.monotonic() - started
        if waited + pause > config.turn_wait_seconds or not services.fits(pause + config.turn_create_seconds):
            return False
        services.sleep(services.jitter(pause / 2, pause))
        pause = min(pause * 2, 1.0)


def _create_once(
    services: LicenceServices, request: LicenceRequest, record: OrderRecord, attempt_id: str
) -> IssuedLicence:
    # Noted even when it is 0: the first licence of an empty Pimenko account may come from an interrupted create.
    noted = record.after_id is not None
    store, mlm = services.store, services.mlm
    recreate_after: int | None = None
    try:
        licence = _look_up(services, record) if noted else None
        if licence is None and int(services.now()) < record.recreate_after:
            raise OrderInProgress("an unanswered create may still land at Pimenko; looking again later")
        if licence is None:
            after_id = mlm.newest_licence_id()
            store.note_after_id(request.order_id, attempt_id, after_id)
            noted = True
            try:
                licence = mlm.create_licence(request.licence_type, request.product_id, request.url).licence
            except PartnerUnavailable as exc:
                if exc.ambiguous:  # it may have been made all the same, and may land later still
                    recreate_after = int(services.now()) + services.settings.recreate_grace_seconds
                raise
            if not store.claim_licence(licence.id, request.order_id):  # pragma: no cover - Pimenko reused an id
                logger.error("a new Pimenko licence id was already claimed", extra={"licence_id": licence.id})
        else:
            logger.info("licence found after an interrupted create", extra={"licence_id": licence.id})
    except PartnerRejected as exc:
        store.reject(request, now=int(services.now()), message=exc.message, attempt_id=attempt_id)
        logger.info("licence refused by Pimenko", extra=exc.log_fields())
        return _rejected(request, exc.message)
    except BaseException as exc:
        if noted:
            # A licence may exist now; the next attempt looks for it before creating.
            store.settle_uncertain(
                request.order_id, attempt_id, now=int(services.now()), message=type(exc).__name__,
                recreate_after=recreate_after,
            )  # fmt: skip
        else:
            store.release_order(request.order_id, attempt_id)
        raise
    issued = store.issue(request.order_id, attempt_id, licence=_as_issued(request, licence), now=int(services.now()))
    logger.info("licence issued", extra={"licence_id": licence.id, "licence_key": mask_key(licence.key)})
    _announce(services, request, issued)
    return issued


def _look_up(services: LicenceServices, record: OrderRecord) -> Licence | None:
    """This order's licence if an interrupted create made one: new since its `after_id`, of its kind, unclaimed."""
    excluded: set[str] = set()
    while True:
        found = services.mlm.find_new_licence(
            after_id=record.after_id or 0,
            product_id=record.product_id,
            licence_type=record.licence_type,
            exclude_keys=excluded,
        )
        if found is None or services.store.claim_licence(found.id, record.order_id):
            return found
        excluded.add(found.key)


def _as_issued(request: LicenceRequest, licence: Licence) -> IssuedLicence:
    return IssuedLicence(
        order_id=request.order_id,
        state=LicenceState.ISSUED,
        licence_id=licence.id,
        key=licence.key,
        status=licence.status,
        expires_at=None if licence.expires_at is None else licence.expires_at.isoformat(),
        product_id=licence.product_id,
        licence_type=licence.licence_type_id,
        sites=[request.url],
    )


def _settled(record: OrderRecord, request: LicenceRequest) -> IssuedLicence:
    if record.fingerprint != request.fingerprint():
        raise OrderConflict(request.order_id)
    if record.state in (LicenceState.ISSUED, LicenceState.REJECTED):
        return record.licence
    raise OrderInProgress("this order is being issued right now")


def _let_go(services: LicenceServices, record: OrderRecord, attempt_id: str) -> None:
    if record.after_id is not None:
        now = int(services.now())
        services.store.settle_uncertain(record.order_id, attempt_id, now=now, message="waiting for its turn")
    else:
        services.store.release_order(record.order_id, attempt_id)


def _rejected(request: LicenceRequest, message: str) -> IssuedLicence:
    return IssuedLicence(
        order_id=request.order_id,
        state=LicenceState.REJECTED,
        product_id=request.product_id,
        licence_type=request.licence_type,
        message=message,
    )


def _announce(services: LicenceServices, request: LicenceRequest, licence: IssuedLicence) -> None:
    """LicenceIssued for the loyalty relay and the mailer: ids and a masked key, never the key itself.

    Neither the shop's customer reference nor the member id: the event names the order, whose record holds both
    (the relay reads the member id there), so that an event waiting in a queue or a DLQ names no one.
    """
    detail: dict[str, object] = {
        "order_id": request.order_id,
        "licence_id": licence.licence_id,
        "licence_key_hint": mask_key(licence.key or ""),
        "product_id": licence.product_id,
        "licence_type": licence.licence_type,
        "expires_at": licence.expires_at,
    }
    if request.apps_miles_user_id:
        detail["apps_miles_member"] = True
    try:
        services.publish("licence-issuance", "LicenceIssued", detail)
    except Exception:  # the licence exists and is recorded; a lost notification must not make the order fail
        logger.exception("LicenceIssued not published")


# ------------------------------------------------------------------------------------------------ reads, sites


def licence_for_order(services: LicenceServices, order_id: str) -> OrderRecord | None:
    return services.store.order(order_id)


class MaxSitesOnRecord(Exception):
    """Our record already shows the licence type's maximum number of sites: Pimenko would refuse."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"at most {limit} sites")
        self.limit = limit


def add_site(services: LicenceServices, licence_key: str, url: str) -> tuple[IssuedLicence, bool]:
    """Add a site to a licence we issued; (licence, added) — False when the site was already there."""
    store = services.store
    record = store.order_by_key(licence_key)
    if record is None or record.state is not LicenceState.ISSUED:
        raise LookupError("no licence with this key was issued here")
    if url in record.licence.sites:
        return record.licence, False
    limit = max_sites(services, record.licence_type)
    if limit is not None and len(record.licence.sites) >= limit:
        raise MaxSitesOnRecord(limit)
    services.mlm.add_site(licence_key, url)
    store.add_site(record.order_id, url, now=int(services.now()))
    logger.info("site added", extra={"order_id": record.order_id, "licence_key": mask_key(licence_key)})
    updated = store.order(record.order_id)
    assert updated is not None
    return updated.licence, True
