"""The campaign lifecycle's decisions on a fake Umbrella, in-memory limits and ledger, and an injected clock.

The campaigns table is the real CampaignStore on moto's in-process DynamoDB (its conditional writes are what the
create's resumption relies on); everything else is a fake: no emulator, no network, no sleep.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from campaign_lifecycle import creation, management
from campaign_lifecycle.errors import (
    CampaignChanged,
    CampaignNotFound,
    CampaignStopped,
    CreateInProgress,
    CreationRateLimited,
    DonationCodeInUse,
    InvalidCampaign,
    ManageTokenMissing,
    ManageTokenRefused,
    RefusedByUmbrella,
)
from campaign_lifecycle.models import CampaignChanges, CampaignForm, CampaignKey, CampaignState
from campaign_lifecycle.services import CampaignServices
from campaign_lifecycle.settings import CampaignSettings
from campaign_lifecycle.store import CampaignRecord, CampaignStore
from hub_core.caches import TtlCache
from hub_core.config import ConfigError
from hub_core.ledger import CampaignTotals, PendingTotals
from hub_core.member_signature import sign
from hub_core.ratelimit import Limit, RateLimited
from hub_core.tokens import callback_token_hash, token_hash
from partners.errors import PartnerAuthError, PartnerNotFound, PartnerRejected, PartnerUnavailable
from partners.umbrella import (
    CampaignCreationRequest,
    CampaignDonation,
    CampaignResult,
    CampaignService,
    CampaignTotalResult,
    CampaignUpdateRequest,
    CodeInUse,
    CreateOutcome,
    StopOutcome,
)
from tests.conftest import create_hash_table, in_process_aws

START = 1_800_000_000.0  # every assertion on time is relative to it
KEY_RING = "k1:" + "ab" * 32
LEASE = 30
SETTINGS = CampaignSettings(
    umbrella_base_url="http://127.0.0.1:9",
    campaigns_table_name="Campaigns",
    donations_table_name="Donations",
    rate_limit_table_name="RateLimits",
    create_lease_seconds=LEASE,
    services_cache_seconds=300,
)
CONTEXT = {
    "max_amount_ore": SETTINGS.max_amount_ore,
    "msisdn_pattern": SETTINGS.msisdn_pattern,
    "sms_messages": SETTINGS.sms_messages,
    "campaign_name_max": SETTINGS.campaign_name_max,
}
FIELDS = {"serviceId": 1, "route": "hjerte", "donationCode": "anna50", "amount": 5000, "confirmMsisdn": "4512345678"}
BASE = "https://api.example.org"
_TOKEN = re.compile(r"[A-Za-z0-9_-]{40,}")


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


def _key(service_id: int, route: str, code: str) -> tuple[int, str, str]:
    return (service_id, route, code)


class FakeUmbrella:
    """Umbrella's campaign API: campaigns by (service, route, code); `fail` queues an error per method name.

    `land` marks a queued create error as one that happened after Umbrella made the campaign (a read timeout).
    """

    def __init__(self) -> None:
        self.catalogue = [CampaignService(id=1, name="Hjerte", routes=["hjerte", "kraeft"])]
        self.campaigns: dict[tuple[int, str, str], dict[str, Any]] = {}
        self.calls: list[str] = []
        self.fail: dict[str, list[Exception]] = {}
        self.land = False
        self.donation_list: list[CampaignDonation] = []
        self.since: list[datetime | None] = []

    def _raise_queued(self, method: str) -> None:
        queued = self.fail.get(method)
        if queued:
            raise queued.pop(0)

    def list_services(self) -> list[CampaignService]:
        self.calls.append("list_services")
        self._raise_queued("list_services")
        return list(self.catalogue)

    def create_campaign(self, service_id: int, request: CampaignCreationRequest) -> CreateOutcome:
        self.calls.append("create_campaign")
        key = _key(service_id, request.route, request.donationCode)
        if self.fail.get("create_campaign"):
            if self.land:
                self.campaigns[key] = request.model_dump()
            self._raise_queued("create_campaign")
        if key in self.campaigns:
            raise CodeInUse("umbrella", "donation code already in use on route", status=400)
        self.campaigns[key] = request.model_dump()
        return CreateOutcome(CampaignResult(), recovered=False)

    def collected_amount(
        self, service_id: int, route: str, donation_code: str, *, since: datetime | None = None
    ) -> CampaignTotalResult:
        self.calls.append("collected_amount")
        self.since.append(since)
        self._raise_queued("collected_amount")
        if _key(service_id, route, donation_code) not in self.campaigns:
            raise PartnerNotFound("umbrella", "no such campaign", status=404)
        return CampaignTotalResult(amount=4200)

    def update_campaign(
        self, service_id: int, route: str, donation_code: str, request: CampaignUpdateRequest
    ) -> CampaignResult:
        self.calls.append("update_campaign")
        self._raise_queued("update_campaign")
        key = _key(service_id, route, donation_code)
        if key not in self.campaigns:
            raise PartnerNotFound("umbrella", "no such campaign", status=404)
        self.campaigns[key] = request.model_dump()  # a PUT replaces the whole campaign
        return CampaignResult()

    def stop_campaign(self, service_id: int, route: str, donation_code: str) -> StopOutcome:
        self.calls.append("stop_campaign")
        self._raise_queued("stop_campaign")
        existed = self.campaigns.pop(_key(service_id, route, donation_code), None) is not None
        return StopOutcome(CampaignResult(), already_stopped=not existed)

    def donations(
        self, service_id: int, route: str, donation_code: str, *, since: datetime | None = None
    ) -> list[CampaignDonation]:
        self.calls.append("donations")
        self.since.append(since)
        return list(self.donation_list)


class FakeCounter:
    """hub_core.ratelimit.hit: hits per (scope, subject); RateLimited once a limit's count is used."""

    def __init__(self) -> None:
        self.hits: dict[tuple[str, str], int] = {}
        self.seen: list[tuple[str, str, float, bytes | None]] = []

    def __call__(self, table_name: str, limit: Limit, subject: str, *, now: float, key: bytes | None = None) -> int:
        assert table_name == SETTINGS.rate_limit_table_name
        self.seen.append((limit.scope, subject, now, key))
        used = self.hits.get((limit.scope, subject), 0)
        if limit.count > 0 and used >= limit.count:
            raise RateLimited(limit.scope, 1234)
        self.hits[(limit.scope, subject)] = used + 1
        return used + 1


class FakeLedger:
    def __init__(self) -> None:
        self.error: Exception | None = None
        self.limits: list[int] = []

    def totals(self, campaign_ref: str) -> CampaignTotals:
        if self.error is not None:
            raise self.error
        return CampaignTotals(amount=1200, count=2)

    def pending(self, campaign_ref: str, *, limit: int) -> PendingTotals:
        self.limits.append(limit)
        return PendingTotals(amount=300, count=1, capped=True)


@dataclass
class Rig:
    services: CampaignServices
    umbrella: FakeUmbrella
    counter: FakeCounter
    ledger: FakeLedger
    clock: Clock
    store: CampaignStore
    reconciled: list[str] = field(default_factory=list)
    key_ring_reads: list[int] = field(default_factory=list)
    reconcile_error: Exception | None = None

    def with_settings(self, **changes: Any) -> None:
        config = SETTINGS.model_copy(update=changes)
        self.services = CampaignServices(**{**self.services.__dict__, "settings": config})


@pytest.fixture
def rig(monkeypatch) -> Iterator[Rig]:
    with in_process_aws(monkeypatch):
        create_hash_table("Campaigns", "campaign_ref")
        clock = Clock()
        umbrella, counter, ledger = FakeUmbrella(), FakeCounter(), FakeLedger()
        store = CampaignStore("Campaigns")
        holder: list[Rig] = []

        def key_ring() -> str:
            holder[0].key_ring_reads.append(1)
            return KEY_RING

        def reconcile(ref: str) -> Any:
            holder[0].reconciled.append(ref)
            umbrella.calls.append("reconcile")
            if holder[0].reconcile_error is not None:
                raise holder[0].reconcile_error
            return type("Reconciled", (), {"status": "ok", "recovered": 0, "verified": 1})()

        services = CampaignServices(
            settings=SETTINGS,
            store=store,
            umbrella=umbrella,  # type: ignore[arg-type]
            ledger=ledger,
            count_hit=counter,
            hashing_key=lambda: b"k" * 32,
            site_key_ring=key_ring,
            reconcile_before_stop=reconcile,
            now=clock,
            umbrella_services=TtlCache(max_entries=1, clock=clock),
        )
        holder.append(Rig(services, umbrella, counter, ledger, clock, store))
        yield holder[0]


def form(**changes: Any) -> CampaignForm:
    return CampaignForm.model_validate(FIELDS | changes, context=CONTEXT)


def create(rig: Rig, fields: CampaignForm | None = None, **options: Any) -> creation.CreatedCampaign:
    options = {"request_base_url": BASE, "client_ip": "192.0.2.7"} | options
    return creation.create(rig.services, fields or form(), **options)


def sent(rig: Rig, code: str = "anna50", route: str = "hjerte") -> dict[str, Any]:
    return rig.umbrella.campaigns[(1, route, code)]


def manage_token(request: dict[str, Any]) -> str:
    [token] = _TOKEN.findall(request["confirmText"])
    return token


KEY = CampaignKey(service_id=1, route="hjerte", donation_code="anna50")


# ---------------------------------------------------------------- create: the first attempt


def test_a_create_makes_the_campaign_once_and_records_it_active(rig):
    created = create(rig)

    assert created.recovered is False
    assert rig.umbrella.calls == ["list_services", "create_campaign"]
    record = rig.store.get(KEY)
    assert record is not None
    assert record.state is CampaignState.ACTIVE
    assert [entry["action"] for entry in record.history] == ["create_requested", "created"]
    assert record.created_at == int(START)
    assert record.updated_at == int(START)
    assert record.lease_until == 0  # the lease is let go once Umbrella said yes


def test_the_manage_token_reaches_only_the_confirm_sms_and_only_its_hash_is_kept(rig):
    created = create(rig)

    request = sent(rig)
    token = manage_token(request)
    assert created.record.manage_token_hash == token_hash(token)
    assert token not in created.record.confirm_text
    assert creation.TOKEN_MASK in created.record.confirm_text
    assert request["confirmMsisdn"] == FIELDS["confirmMsisdn"]


def test_umbrella_gets_our_callback_url_whose_token_only_the_record_s_hash_knows(rig):
    created = create(rig)

    url = sent(rig)["callbackUrl"]
    prefix = f"{BASE}{SETTINGS.callback_path}/1/hjerte/anna50/"
    assert url.startswith(prefix)
    token = url.removeprefix(prefix)
    assert created.record.callback_token_hash == callback_token_hash(token)
    assert created.record.callback_base == BASE


def test_a_configured_callback_base_wins_over_the_request_s_address(rig):
    rig.with_settings(callback_base_url="https://hooks.example.org/")
    create(rig, request_base_url="https://other.example.net")
    assert sent(rig)["callbackUrl"].startswith("https://hooks.example.org/donations/callback/")


@pytest.mark.parametrize(
    "base",
    ["http://api.example.org", "ftp://api.example.org", "https://user:pw@api.example.org", "https://a.org/?x=1"],
)
def test_a_callback_base_umbrella_could_not_safely_post_to_is_a_config_error_before_anything(rig, base):
    with pytest.raises(ConfigError):
        create(rig, request_base_url=base)
    assert rig.umbrella.calls == ["list_services"]
    assert rig.counter.seen == []
    assert rig.store.get(KEY) is None


def test_plain_http_is_allowed_to_this_very_machine(rig):
    create(rig, request_base_url="http://127.0.0.1:3000")
    assert sent(rig)["callbackUrl"].startswith("http://127.0.0.1:3000/donations/callback/")


def test_an_unknown_service_is_refused_from_the_cached_list_without_a_create(rig):
    with pytest.raises(InvalidCampaign) as raised:
        create(rig, form(serviceId=7))
    assert (raised.value.field, raised.value.rule) == ("serviceId", "unknown_service")
    assert rig.umbrella.calls == ["list_services"]
    assert rig.counter.seen == []
    assert rig.store.get(KEY) is None


def test_a_route_the_service_does_not_have_is_refused_naming_the_allowed_ones(rig):
    with pytest.raises(InvalidCampaign) as raised:
        create(rig, form(route="andet"))
    assert raised.value.field == "route"
    assert "hjerte, kraeft" in raised.value.message
    assert "create_campaign" not in rig.umbrella.calls


def test_umbrella_s_service_list_is_cached_for_its_setting_then_read_again(rig):
    assert creation.umbrella_services(rig.services) == rig.umbrella.catalogue
    rig.clock.now += SETTINGS.services_cache_seconds - 1
    creation.umbrella_services(rig.services)
    assert rig.umbrella.calls.count("list_services") == 1
    rig.clock.now += 2
    creation.umbrella_services(rig.services)
    assert rig.umbrella.calls.count("list_services") == 2


def test_a_service_list_umbrella_cannot_give_propagates_and_is_not_cached(rig):
    rig.umbrella.fail["list_services"] = [PartnerUnavailable("umbrella", "503", status=503)]
    with pytest.raises(PartnerUnavailable):
        create(rig)
    assert rig.store.get(KEY) is None
    create(rig)  # the next request reads the list afresh
    assert rig.umbrella.calls.count("list_services") == 2


def test_a_campaign_name_that_makes_an_sms_too_long_is_refused_before_the_code_is_held(rig):
    rig.with_settings(campaign_name_max=60)
    long_name = {"campaignName": "Ø" * 60}  # UCS-2 would be needed: 70 characters a message
    with pytest.raises(InvalidCampaign) as raised:
        create(rig, CampaignForm.model_validate(FIELDS | long_name, context=CONTEXT | {"campaign_name_max": 60}))
    assert (raised.value.field, raised.value.rule) == ("campaignName", "sms_length")
    assert rig.store.get(KEY) is None
    assert "create_campaign" not in rig.umbrella.calls


# ---------------------------------------------------------------- create: limits and the member id


def test_creation_limits_count_the_number_and_the_address_at_the_injected_time_under_the_hub_key(rig):
    create(rig)
    assert rig.counter.seen == [
        ("create-ip", "192.0.2.7", START, b"k" * 32),
        ("confirm-msisdn", FIELDS["confirmMsisdn"], START, b"k" * 32),
    ]


def test_a_number_sent_its_share_of_confirm_smss_is_429_on_that_field_and_nothing_is_made(rig):
    rig.with_settings(create_limit_per_msisdn=1)
    create(rig)
    with pytest.raises(CreationRateLimited) as raised:
        create(rig, form(donationCode="anna51"), client_ip="192.0.2.8")
    assert raised.value.field == "confirmMsisdn"
    assert raised.value.retry_after == 1234
    assert rig.store.get(CampaignKey(service_id=1, route="hjerte", donation_code="anna51")) is None
    assert rig.umbrella.calls.count("create_campaign") == 1


def test_an_address_over_its_limit_is_429_without_a_field(rig):
    rig.with_settings(create_limit_per_ip=1)
    create(rig)
    with pytest.raises(CreationRateLimited) as raised:
        create(rig, form(donationCode="anna51", confirmMsisdn="4587654321"))
    assert raised.value.field is None
    assert "address" in str(raised.value.message)


def test_a_limit_of_zero_is_no_limit(rig):
    rig.with_settings(create_limit_per_ip=0, create_limit_per_msisdn=0)
    for code in ("a1", "a2", "a3"):
        create(rig, form(donationCode=code))
    assert rig.umbrella.calls.count("create_campaign") == 3


def test_a_member_id_the_site_signed_is_kept_and_its_signature_never_is(rig):
    signature = sign("member-1", int(START) + 600, KEY_RING)
    created = create(rig, form(appsMilesUserId="member-1", appsMilesSignature=signature))
    assert created.record.apps_miles_user_id == "member-1"
    assert signature not in str(rig.store.get(KEY))


@pytest.mark.parametrize(
    ("signature", "advance"),
    [(None, 0), ("123.abc", 0), ("expiring", 601), ("too-long-lived", 0)],
)
def test_a_member_id_without_a_valid_signature_at_the_injected_time_is_dropped(rig, signature, advance):
    if signature == "expiring":
        signature = sign("member-1", int(START) + 600, KEY_RING)
    elif signature == "too-long-lived":
        signature = sign("member-1", int(START) + SETTINGS.member_signature_max_seconds + 60, KEY_RING)
    rig.clock.now += advance
    created = create(rig, form(appsMilesUserId="member-1", appsMilesSignature=signature))
    assert created.record.apps_miles_user_id is None
    assert created.record.state is CampaignState.ACTIVE  # dropping the id does not refuse the campaign


def test_the_site_key_ring_is_not_read_for_a_form_without_a_member_id(rig):
    create(rig)
    assert rig.key_ring_reads == []


# ---------------------------------------------------------------- create: Umbrella's answers


def test_umbrella_refusing_the_campaign_is_refused_by_umbrella_and_frees_the_code(rig):
    rig.umbrella.fail["create_campaign"] = [PartnerRejected("umbrella", "amount too high", status=400)]
    with pytest.raises(RefusedByUmbrella) as raised:
        create(rig)
    assert "amount too high" in str(raised.value)
    assert rig.store.get(KEY) is None
    create(rig)  # the code is free again
    assert rig.store.get(KEY).state is CampaignState.ACTIVE


def test_a_code_umbrella_already_has_is_in_use_and_our_hold_is_let_go(rig):
    rig.umbrella.campaigns[(1, "hjerte", "anna50")] = {"made": "elsewhere"}
    with pytest.raises(DonationCodeInUse):
        create(rig)
    assert rig.store.get(KEY) is None


def test_a_service_umbrella_does_not_know_is_invalid_and_empties_the_service_cache(rig):
    rig.umbrella.fail["create_campaign"] = [PartnerNotFound("umbrella", "no such service", status=404)]
    with pytest.raises(InvalidCampaign) as raised:
        create(rig)
    assert raised.value.field == "serviceId"
    assert rig.store.get(KEY) is None
    creation.umbrella_services(rig.services)
    assert rig.umbrella.calls.count("list_services") == 2  # read again at once, not after its TTL


@pytest.mark.parametrize(
    "error",
    [
        PartnerUnavailable("umbrella", "429", status=429, retry_after=5),
        PartnerUnavailable("umbrella", "connect timeout"),
        PartnerUnavailable("umbrella", "503 before the body", status=503),
    ],
)
def test_an_outage_that_surely_made_nothing_propagates_and_frees_the_code(rig, error):
    rig.umbrella.fail["create_campaign"] = [error]
    with pytest.raises(PartnerUnavailable) as raised:
        create(rig)
    assert raised.value is error
    assert rig.store.get(KEY) is None


@pytest.mark.parametrize("error", [PartnerAuthError("umbrella", "401", status=401), ConfigError("no key"), KeyError()])
def test_our_key_refused_or_anything_unexpected_frees_the_code_and_propagates(rig, error):
    rig.umbrella.fail["create_campaign"] = [error]
    with pytest.raises(type(error)):
        create(rig)
    assert rig.store.get(KEY) is None


def test_an_ambiguous_outage_holds_the_code_pending_for_the_same_request(rig):
    rig.umbrella.fail["create_campaign"] = [PartnerUnavailable("umbrella", "read timeout", ambiguous=True)]
    rig.umbrella.land = True
    with pytest.raises(PartnerUnavailable):
        create(rig)
    record = rig.store.get(KEY)
    assert record.state is CampaignState.PENDING
    assert record.ambiguous is True
    assert record.history[-1]["action"] == "create_interrupted"
    with pytest.raises(CampaignNotFound):
        management.campaign(rig.services, KEY)  # not a campaign of ours yet


def test_the_same_request_again_adopts_what_the_interrupted_attempt_made_and_keeps_its_tokens(rig):
    rig.umbrella.fail["create_campaign"] = [PartnerUnavailable("umbrella", "read timeout", ambiguous=True)]
    rig.umbrella.land = True
    with pytest.raises(PartnerUnavailable):
        create(rig)
    first_sms_token = manage_token(sent(rig))
    first_callback = sent(rig)["callbackUrl"].rsplit("/", 1)[1]
    rig.clock.now += 5

    created = create(rig)

    assert created.recovered is True
    assert rig.umbrella.calls.count("create_campaign") == 1  # no second campaign
    assert created.record.state is CampaignState.ACTIVE
    # The SMS Umbrella sent carries the first attempt's token, and Umbrella calls back with its callback URL.
    assert created.record.manage_token_hash == token_hash(first_sms_token)
    assert created.record.callback_token_hash == callback_token_hash(first_callback)
    assert created.record.history[-1] == {"at": int(START) + 5, "action": "created", "recovered": True}


def test_the_same_request_again_creates_it_when_the_interrupted_attempt_made_nothing(rig):
    rig.umbrella.fail["create_campaign"] = [PartnerUnavailable("umbrella", "read timeout", ambiguous=True)]
    with pytest.raises(PartnerUnavailable):
        create(rig)

    created = create(rig)

    assert rig.umbrella.calls.count("collected_amount") == 1  # looked for it first
    assert rig.umbrella.calls.count("create_campaign") == 2
    assert created.recovered is False
    assert created.record.manage_token_hash == token_hash(manage_token(sent(rig)))


def test_our_interrupted_attempt_landing_after_the_check_is_adopted_not_in_use(rig):
    rig.umbrella.fail["create_campaign"] = [PartnerUnavailable("umbrella", "read timeout", ambiguous=True)]
    with pytest.raises(PartnerUnavailable):
        create(rig)
    rig.umbrella.fail["collected_amount"] = [PartnerNotFound("umbrella", "not yet", status=404)]
    rig.umbrella.campaigns[(1, "hjerte", "anna50")] = {"made": "by the first attempt, late"}

    created = create(rig)

    assert created.recovered is True
    assert created.record.state is CampaignState.ACTIVE


def test_an_outage_while_resuming_holds_the_code_again_even_if_unambiguous(rig):
    rig.umbrella.fail["create_campaign"] = [PartnerUnavailable("umbrella", "read timeout", ambiguous=True)]
    with pytest.raises(PartnerUnavailable):
        create(rig)
    rig.umbrella.fail["collected_amount"] = [PartnerUnavailable("umbrella", "503", status=503)]
    with pytest.raises(PartnerUnavailable):
        create(rig)
    record = rig.store.get(KEY)
    assert record.state is CampaignState.PENDING  # the first attempt may still have made it


def test_another_request_for_a_code_whose_interrupted_create_landed_is_in_use_and_gives_it_back(rig):
    rig.umbrella.fail["create_campaign"] = [PartnerUnavailable("umbrella", "read timeout", ambiguous=True)]
    rig.umbrella.land = True
    with pytest.raises(PartnerUnavailable):
        create(rig)
    held = rig.store.get(KEY)

    with pytest.raises(DonationCodeInUse):
        create(rig, form(amount=9900))

    back = rig.store.get(KEY)
    assert back.state is CampaignState.PENDING
    assert (back.attempt_id, back.request_fingerprint) == (held.attempt_id, held.request_fingerprint)
    assert create(rig).recovered is True  # still the first requester's to resume


def test_another_request_may_take_a_code_whose_interrupted_create_surely_made_nothing(rig):
    rig.umbrella.fail["create_campaign"] = [PartnerUnavailable("umbrella", "read timeout", ambiguous=True)]
    with pytest.raises(PartnerUnavailable):
        create(rig)

    created = create(rig, form(amount=9900))

    assert created.record.amount == 9900
    assert created.recovered is False
    assert sent(rig)["amount"] == 9900


def test_an_outage_for_another_request_taking_over_gives_the_code_back_to_the_first(rig):
    rig.umbrella.fail["create_campaign"] = [PartnerUnavailable("umbrella", "read timeout", ambiguous=True)]
    with pytest.raises(PartnerUnavailable):
        create(rig)
    held = rig.store.get(KEY)
    rig.umbrella.fail["create_campaign"] = [PartnerUnavailable("umbrella", "read timeout", ambiguous=True)]
    with pytest.raises(PartnerUnavailable):
        create(rig, form(amount=9900))
    back = rig.store.get(KEY)
    assert back.state is CampaignState.PENDING
    assert back.attempt_id == held.attempt_id


def test_a_code_held_by_a_live_attempt_is_in_progress_until_its_lease_ends(rig):
    rig.store.claim(
        form(),
        attempt_id="someone-else",
        manage_token_hash="h",
        answer_message="a",
        confirm_text="c",
        callback_base=BASE,
        now=int(START),
        lease_seconds=LEASE,
    )
    rig.clock.now += LEASE
    with pytest.raises(CreateInProgress):
        create(rig)
    assert "create_campaign" not in rig.umbrella.calls
    rig.clock.now += 1  # the other attempt died without a word: its lease ran out

    created = create(rig)

    assert created.record.state is CampaignState.ACTIVE
    assert rig.umbrella.calls.count("collected_amount") == 1  # it looked for what the dead attempt made


def test_a_code_of_an_active_campaign_is_in_use_without_asking_umbrella(rig):
    create(rig)
    rig.umbrella.calls.clear()
    with pytest.raises(DonationCodeInUse):
        create(rig, form(amount=9900))
    assert rig.umbrella.calls == []  # the cached service list, then our own record


# ---------------------------------------------------------------- reads


def test_a_code_never_completed_is_not_found(rig):
    with pytest.raises(CampaignNotFound):
        management.campaign(rig.services, KEY)
    rig.umbrella.fail["create_campaign"] = [PartnerUnavailable("umbrella", "read timeout", ambiguous=True)]
    with pytest.raises(PartnerUnavailable):
        create(rig)
    with pytest.raises(CampaignNotFound):
        management.campaign(rig.services, KEY)


def test_the_collected_amount_is_the_ledger_s_with_pending_apart(rig):
    record = create(rig).record
    collected = management.collected(rig.services, record)
    assert collected.as_dict() == {
        "amount": 1200,
        "count": 2,
        "note": None,
        "pending": {"amount": 300, "count": 1, "capped": True},
    }
    assert rig.ledger.limits == [SETTINGS.pending_read_limit]
    assert "collected_amount" not in rig.umbrella.calls  # the public read never asks Umbrella


def test_an_unreadable_ledger_is_a_note_not_an_error(rig):
    record = create(rig).record
    rig.ledger.error = ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "GetItem")
    collected = management.collected(rig.services, record)
    assert (collected.amount, collected.count) == (None, None)
    assert "unavailable" in (collected.note or "")


def test_umbrella_s_own_amount_and_a_campaign_it_no_longer_has(rig):
    record = create(rig).record
    since = datetime.fromtimestamp(START - 3600, UTC)
    assert management.umbrella_collected(rig.services, record, since).amount == 4200
    assert rig.umbrella.since[-1] == since
    rig.umbrella.campaigns.clear()
    gone = management.umbrella_collected(rig.services, record, None)
    assert gone.amount is None
    assert "no longer" in (gone.note or "")


def test_umbrella_s_outage_on_its_amount_propagates(rig):
    record = create(rig).record
    rig.umbrella.fail["collected_amount"] = [PartnerUnavailable("umbrella", "503", status=503)]
    with pytest.raises(PartnerUnavailable):
        management.umbrella_collected(rig.services, record, None)


def test_donations_are_umbrella_s_and_their_view_hides_the_donor(rig):
    record = create(rig).record
    donation = CampaignDonation(
        amount=5000,
        donatedAt=datetime.fromtimestamp(START, UTC),
        donationCode="anna50",
        messageKey="m-1",
        msisdn="4599999999",
        routeName="hjerte",
        text="ANNA50",
    )
    rig.umbrella.donation_list = [donation]
    [found] = management.donations(rig.services, record, None)
    view = management.donation_view(found)
    assert view["messageKey"] == "m-1"
    assert view["amount"] == 5000
    assert "4599999999" not in str(view)


def test_the_public_view_holds_no_number_token_or_member(rig):
    signature = sign("member-1", int(START) + 600, KEY_RING)
    record = create(rig, form(appsMilesUserId="member-1", appsMilesSignature=signature)).record
    view = str(management.public_view(record))
    for private in (FIELDS["confirmMsisdn"], record.manage_token_hash, "member-1", record.callback_token_hash):
        assert private not in view


@pytest.mark.parametrize(
    ("header", "error"),
    [(None, ManageTokenMissing), ("", ManageTokenMissing), ("Basic abc", ManageTokenMissing),
     ("Bearer ", ManageTokenMissing), ("Bearer wrong-token", ManageTokenRefused)],
)  # fmt: skip
def test_managing_needs_the_manage_token_as_a_bearer(rig, header, error):
    record = create(rig).record
    with pytest.raises(error):
        management.authorize(record, header)


def test_the_token_from_the_confirm_sms_authorises_whatever_the_scheme_s_case(rig):
    record = create(rig).record
    token = manage_token(sent(rig))
    management.authorize(record, f"Bearer {token}")
    management.authorize(record, f"  bearer {token} ")


# ---------------------------------------------------------------- update


def changes(**fields: Any) -> CampaignChanges:
    return CampaignChanges.model_validate(fields, context=CONTEXT)


def test_an_update_sends_the_whole_campaign_and_revokes_the_old_callback_token(rig):
    record = create(rig).record
    old_url = sent(rig)["callbackUrl"]
    rig.clock.now += 60

    updated = management.update(rig.services, record, changes(amount=7500))

    put = sent(rig)
    assert put["amount"] == 7500
    assert put["answerMessage"] == record.answer_message
    assert put["confirmMsisdn"] == record.confirm_msisdn
    assert put["callbackUrl"] != old_url
    new_token = put["callbackUrl"].rsplit("/", 1)[1]
    assert updated.callback_token_hash == callback_token_hash(new_token) != record.callback_token_hash
    assert updated.amount == 7500
    assert updated.version == record.version + 1
    assert updated.updated_at == int(START) + 60
    assert updated.history[-1] == {"at": int(START) + 60, "action": "updated", "fields": ["amount"]}


def test_an_update_of_a_campaign_umbrella_no_longer_has_stops_ours(rig):
    record = create(rig).record
    rig.umbrella.campaigns.clear()
    with pytest.raises(CampaignStopped):
        management.update(rig.services, record, changes(amount=7500))
    stopped = rig.store.get(KEY)
    assert stopped.state is CampaignState.STOPPED
    assert stopped.history[-1]["action"] == "gone_at_umbrella"
    assert stopped.stopped_at == int(START)


def test_an_update_umbrella_refuses_changes_nothing_of_ours(rig):
    record = create(rig).record
    rig.umbrella.fail["update_campaign"] = [PartnerRejected("umbrella", "bad msisdn", status=400)]
    with pytest.raises(RefusedByUmbrella):
        management.update(rig.services, record, changes(confirmMsisdn="4587654321"))
    assert rig.store.get(KEY) == record


def test_an_update_during_an_outage_propagates_and_changes_nothing_of_ours(rig):
    record = create(rig).record
    rig.umbrella.fail["update_campaign"] = [PartnerUnavailable("umbrella", "timeout", ambiguous=True)]
    with pytest.raises(PartnerUnavailable):
        management.update(rig.services, record, changes(amount=7500))
    assert rig.store.get(KEY) == record


def test_an_update_of_a_stopped_campaign_is_refused_without_asking_umbrella(rig):
    record = management.stop(rig.services, create(rig).record)
    rig.umbrella.calls.clear()
    with pytest.raises(CampaignStopped):
        management.update(rig.services, record, changes(amount=7500))
    assert rig.umbrella.calls == []


def test_an_update_racing_another_is_campaign_changed(rig):
    record = create(rig).record
    management.update(rig.services, record, changes(amount=7000))
    with pytest.raises(CampaignChanged):
        management.update(rig.services, record, changes(amount=8000))  # read before the first one's write
    assert rig.store.get(KEY).amount == 7000


# ---------------------------------------------------------------- stop


def test_a_stop_reconciles_first_then_stops_at_umbrella_then_records_it(rig):
    record = create(rig).record
    rig.umbrella.calls.clear()
    rig.clock.now += 120

    stopped = management.stop(rig.services, record)

    assert rig.umbrella.calls == ["reconcile", "stop_campaign"]
    assert rig.reconciled == [KEY.ref]
    assert stopped.state is CampaignState.STOPPED
    assert stopped.stopped_at == int(START) + 120
    assert stopped.history[-1] == {"at": int(START) + 120, "action": "stopped"}


def test_a_failed_reconcile_does_not_block_the_owner_s_stop(rig):
    record = create(rig).record
    rig.reconcile_error = ConnectionError("Umbrella out during the reconcile")
    stopped = management.stop(rig.services, record)
    assert stopped.state is CampaignState.STOPPED
    assert "stop_campaign" in rig.umbrella.calls


def test_a_campaign_umbrella_had_stopped_already_is_recorded_as_such(rig):
    record = create(rig).record
    rig.umbrella.campaigns.clear()
    stopped = management.stop(rig.services, record)
    assert stopped.history[-1]["action"] == "stopped_at_umbrella_already"


def test_stopping_a_stopped_campaign_is_a_success_that_calls_nobody(rig):
    stopped = management.stop(rig.services, create(rig).record)
    rig.umbrella.calls.clear()
    assert management.stop(rig.services, stopped) == stopped
    assert rig.umbrella.calls == []
    assert rig.reconciled == [KEY.ref]


def test_a_stop_umbrella_cannot_answer_leaves_the_campaign_active(rig):
    record = create(rig).record
    rig.umbrella.fail["stop_campaign"] = [PartnerUnavailable("umbrella", "503", status=503)]
    with pytest.raises(PartnerUnavailable):
        management.stop(rig.services, record)
    assert rig.store.get(KEY).state is CampaignState.ACTIVE


def test_a_stop_racing_another_answers_the_stopped_record(rig):
    record = create(rig).record
    management.stop(rig.services, record)
    again: CampaignRecord = management.stop(rig.services, record)  # the caller still held the active record
    assert again.state is CampaignState.STOPPED
    assert [entry["action"] for entry in again.history].count("stopped") == 1
