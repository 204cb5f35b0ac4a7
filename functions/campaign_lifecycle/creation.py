"""How a campaign is created on Umbrella once, with our record following only what Umbrella said.

Creating is the delicate part: Umbrella's create is not idempotent and a timed-out one may have succeeded. So the
code is held in our table before Umbrella is called, the campaign becomes active only when Umbrella said so (or when
a check finds it there after an interrupted attempt), and a request that was interrupted may be sent again: it
resumes where it stopped instead of making a second campaign or failing on its own first attempt.

Every entry point takes the function's collaborators (services.CampaignServices: table, Umbrella, limits, clock),
which the handler builds once per container; nothing here reaches for a client or the time by itself.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from aws_lambda_powertools.metrics import MetricUnit

from campaign_lifecycle import SERVICE
from campaign_lifecycle.errors import (
    CampaignError,
    CreateInProgress,
    CreationRateLimited,
    DonationCodeInUse,
    InvalidCampaign,
    RefusedByUmbrella,
)
from campaign_lifecycle.models import CampaignForm, CampaignKey, CampaignState
from campaign_lifecycle.services import CampaignServices
from campaign_lifecycle.settings import CampaignSettings
from campaign_lifecycle.store import CampaignRecord, Claim, CodeHeld
from campaign_lifecycle.texts import kroner, render
from hub_core.config import ConfigError
from hub_core.member_signature import Verdict, verify
from hub_core.observability import logger_for, metrics_for
from hub_core.ratelimit import Limit, RateLimited
from hub_core.tokens import callback_token_hash, new_callback_token, new_manage_token, token_hash
from partners.errors import PartnerNotFound, PartnerRejected, PartnerUnavailable
from partners.umbrella import CampaignCreationRequest, CampaignService, CodeInUse

logger = logger_for(SERVICE)
metrics = metrics_for(SERVICE)

SENT_BY_SMS_NOTE = (
    "The manage token is in the confirmation SMS sent to confirmMsisdn: changing or stopping the campaign needs it."
)
# What the stored copy of the confirm text holds in the token's place: the token itself is kept only as its hash.
TOKEN_MASK = "********"  # noqa: S105 - a mask, not a secret


# ------------------------------------------------------------------------------------------------ services


def umbrella_services(services: CampaignServices) -> list[CampaignService]:
    """Umbrella's services and their routes, from the container's cache while it is fresh."""
    return services.umbrella_services.get_or_load(
        "services", services.umbrella.list_services, ttl_seconds=services.settings.services_cache_seconds
    )


def _check_service_and_route(services: CampaignServices, form: CampaignForm) -> None:
    """From the cached list only: a request naming an unknown service must not make Umbrella calls of its own."""
    service = next((s for s in umbrella_services(services) if s.id == form.serviceId), None)
    if service is None:
        raise InvalidCampaign("serviceId", "unknown_service", "is not one of the services GET /services lists")
    if form.route not in service.routes:
        allowed = ", ".join(service.routes) or "none"
        raise InvalidCampaign("route", "one_of", f"must be one of this service's routes: {allowed}")


# ------------------------------------------------------------------------------------------------ create


@dataclass(frozen=True)
class CreatedCampaign:
    record: CampaignRecord
    recovered: bool


def callback_url(key: CampaignKey, base: str, token: str, *, path: str) -> str:
    """Our donation-callback route (`path`, the callback_path setting) for this campaign, ending in its callback
    token (only its hash is stored)."""
    segments = "/".join(quote(str(part), safe="") for part in (key.service_id, key.route, key.donation_code))
    return f"{base.rstrip('/')}{path}/{segments}/{token}"


_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def _callback_base(base: str) -> str:
    """Umbrella will post donors' numbers there: https only, except to this very machine when run locally."""
    parts = urlsplit(base)
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK_HOSTS)
    if not secure or not parts.hostname or parts.username or parts.password or parts.query or parts.fragment:
        raise ConfigError("CALLBACK_BASE_URL (or the request's own address) must be a plain https:// base URL")
    return base.rstrip("/")


@dataclass(frozen=True)
class SmsTexts:
    """The organisation's two texts for a campaign: what Umbrella gets, and what our table keeps of the confirm."""

    answer_message: str
    confirm_text: str
    stored_confirm_text: str


def sms_texts(config: CampaignSettings, form: CampaignForm, manage_token: str) -> SmsTexts:
    """Render the templates; a name making a text too long for the configured SMS count is InvalidCampaign."""
    values = {
        "name": form.campaignName or form.donationCode,
        "code": form.donationCode,
        "keyword": form.route,
        "amount": kroner(form.amount),
    }
    answer = render(config.answer_message_template, values, sms_messages=config.sms_messages)
    confirm = render(config.confirm_text_template, values | {"token": manage_token}, sms_messages=config.sms_messages)
    if not (answer.fits and confirm.fits):
        field = "campaignName" if form.campaignName else "donationCode"
        raise InvalidCampaign(field, "sms_length", f"is too long for the campaign's SMS texts; shorten the {field}")
    stored = render(config.confirm_text_template, values | {"token": TOKEN_MASK}, sms_messages=config.sms_messages)
    return SmsTexts(answer.text, confirm.text, stored.text)


def with_verified_member(services: CampaignServices, form: CampaignForm) -> CampaignForm:
    """The form with its member id only when the site's signature vouches for it; the signature is never kept."""
    if form.appsMilesUserId is None:
        return form.model_copy(update={"appsMilesSignature": None})
    verdict = verify(
        form.appsMilesUserId, form.appsMilesSignature, services.site_key_ring, now=services.now(),
        max_lifetime_seconds=services.settings.member_signature_max_seconds,
    )  # fmt: skip
    if verdict is Verdict.VALID:
        return form.model_copy(update={"appsMilesSignature": None})
    metrics.add_metric(name="MemberIdDropped", unit=MetricUnit.Count, value=1)
    logger.info("app's miles member id dropped", extra={"reason": verdict.value})
    return form.model_copy(update={"appsMilesUserId": None, "appsMilesSignature": None})


def check_creation_limits(services: CampaignServices, form: CampaignForm, client_ip: str) -> None:
    """Per number (each create may send it a confirm SMS) and per client IP; CreationRateLimited beyond them."""
    config = services.settings
    now = services.now()
    limits = (
        (Limit("create-ip", config.create_limit_per_ip, config.create_limit_ip_window_seconds), client_ip),
        (
            Limit("confirm-msisdn", config.create_limit_per_msisdn, config.create_limit_msisdn_window_seconds),
            form.confirmMsisdn,
        ),
    )
    key = services.hashing_key()
    for limit, subject in limits:
        try:
            services.count_hit(config.rate_limit_table_name, limit, subject, now=now, key=key)
        except RateLimited as exc:
            logger.info("campaign creation rate limited", extra={"limit": exc.scope})
            field = "confirmMsisdn" if exc.scope == "confirm-msisdn" else None
            message = (
                "this number has been sent as many confirmation SMSs as allowed; try again later"
                if field
                else "too many campaigns created from this address; try again later"
            )
            raise CreationRateLimited(message, retry_after=exc.retry_after, field=field) from None


def create(services: CampaignServices, form: CampaignForm, *, request_base_url: str, client_ip: str) -> CreatedCampaign:
    """Create the campaign on Umbrella once; see the module docstring for how an interrupted create resumes.

    The manage token goes only into the confirm SMS Umbrella sends to confirmMsisdn, never into our answer: holding
    it proves holding that phone.
    """
    _check_service_and_route(services, form)
    config = services.settings
    form = with_verified_member(services, form)
    key = form.key
    base = _callback_base(config.callback_base_url or request_base_url)
    manage_token = new_manage_token()
    texts = sms_texts(config, form, manage_token)
    callback_token = new_callback_token()
    url = callback_url(key, base, callback_token, path=config.callback_path)
    check_creation_limits(services, form, client_ip)
    claim = services.store.claim(
        form,
        attempt_id=str(uuid.uuid4()),
        manage_token_hash=token_hash(manage_token),
        answer_message=texts.answer_message,
        confirm_text=texts.stored_confirm_text,
        callback_token_hash=callback_token_hash(callback_token),
        callback_base=base,
        now=int(services.now()),
        lease_seconds=config.create_lease_seconds,
    )
    if isinstance(claim, CodeHeld):
        raise _code_held(claim.record)
    logger.append_keys(campaign=key.ref)
    request = CampaignCreationRequest(
        donationCode=form.donationCode,
        route=form.route,
        amount=form.amount,
        callbackUrl=url,
        answerMessage=texts.answer_message,
        confirmMsisdn=form.confirmMsisdn,
        confirmText=texts.confirm_text,
    )
    made = _create_at_umbrella(services, form, claim, request)
    recovered = made != _MADE_NOW
    # Made by the interrupted attempt we resumed: the SMS Umbrella sent then carries that attempt's token, so that
    # token stays the valid one (this attempt's token was never sent to anyone).
    earlier = claim.previous if made == _MADE_BEFORE else None
    record = services.store.activate(
        key,
        claim.attempt_id,
        now=int(services.now()),
        recovered=recovered,
        manage_token_hash=earlier.manage_token_hash if earlier is not None else None,
        # Umbrella holds the earlier attempt's callbackUrl, so its token is the one callbacks will carry.
        callback_token_hash=earlier.callback_token_hash if earlier is not None else None,
    )
    logger.info("campaign created", extra={"recovered": recovered})
    return CreatedCampaign(record=record, recovered=recovered)


_MADE_NOW = "now"  # this attempt's create call made it
_MADE_NOW_RECOVERED = "now_recovered"  # this attempt's create call made it, as a retry of an ambiguous failure found
_MADE_BEFORE = "before"  # the earlier, interrupted attempt this one resumed had made it


def _create_at_umbrella(
    services: CampaignServices, form: CampaignForm, claim: Claim, request: CampaignCreationRequest
) -> str:
    """Make sure the campaign exists at Umbrella; which attempt made it (_MADE_NOW, _MADE_NOW_RECOVERED, _MADE_BEFORE).

    `claim.previous` is an interrupted attempt this one took over. If it was this very request, what it may have
    made is ours to adopt; if it was someone else's, it is theirs: on any outcome but "it surely does not exist"
    their attempt is put back for them to resume.
    """
    key = form.key
    store = services.store
    previous = claim.previous
    foreign = previous is not None and previous.request_fingerprint != form.fingerprint()

    def give_back() -> None:
        if previous is not None and foreign:
            store.restore(previous, claim.attempt_id)
        else:
            store.release(key, claim.attempt_id)

    try:
        if previous is not None and _exists_at_umbrella(services, key):
            if foreign:
                give_back()
                raise DonationCodeInUse()
            return _MADE_BEFORE
        outcome = services.umbrella.create_campaign(key.service_id, request)
        return _MADE_NOW_RECOVERED if outcome.recovered else _MADE_NOW
    except CodeInUse:
        if previous is not None and not foreign:
            return _MADE_BEFORE  # our own interrupted attempt landed after the check
        give_back()
        raise DonationCodeInUse() from None
    except PartnerNotFound:
        give_back()
        services.umbrella_services.clear()
        raise InvalidCampaign("serviceId", "unknown_service", "Umbrella does not know this service") from None
    except PartnerRejected as exc:
        give_back()
        logger.info("campaign refused by Umbrella", extra=exc.log_fields())
        raise RefusedByUmbrella(exc.message) from None
    except PartnerUnavailable as exc:
        if foreign:
            give_back()
        elif exc.ambiguous or previous is not None:
            # It may exist at Umbrella: keep the code for this request to resume rather than free it for another.
            store.hold(key, claim.attempt_id, now=int(services.now()), ambiguous=True)
        else:
            store.release(key, claim.attempt_id)
        raise
    except CampaignError:
        raise
    except BaseException:
        # Our key refused, a setting missing, or anything unexpected: nothing was created.
        give_back()
        raise


def _exists_at_umbrella(services: CampaignServices, key: CampaignKey) -> bool:
    try:
        services.umbrella.collected_amount(key.service_id, key.route, key.donation_code)
    except PartnerNotFound:
        return False
    return True


def _code_held(record: CampaignRecord) -> CampaignError:
    return CreateInProgress() if record.state is CampaignState.CREATING else DonationCodeInUse()
