"""The donation ingester's decisions on in-memory collaborators and an injected clock: no emulator, network or sleep.

A callback is a hint until Umbrella lists its donation; the fold and reconciliation count what Umbrella lists, once,
with Umbrella's amount. The fakes keep the real ones' semantics (a donation is one conditional put, a fold marks
and adds in one step and refuses what is folded already, the watermark only moves forward); the contract tests at
the end hold the fake ledger to DonationLedger's on moto.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from donation_ingester import callback, fold, reconcile
from donation_ingester.errors import CallbackRevoked, CallbackTokenRefused, InvalidDonation, PublishFailed
from donation_ingester.models import DONATION_HINT, DONATION_RECEIVED
from donation_ingester.services import IngesterServices
from donation_ingester.settings import IngesterSettings
from donation_ingester.store import (
    CampaignCache,
    CampaignInfo,
    DonationLedger,
    FoldEntry,
    FoldOutcome,
    LedgerDonation,
    PendingDonation,
    ReconcileState,
    RecordOutcome,
)
from hub_core.campaigns import CampaignKey
from hub_core.ledger import PENDING, UNCONFIRMED, VERIFIED, CampaignTotals
from hub_core.tokens import callback_token_hash, new_callback_token
from partners.errors import PartnerBadResponse, PartnerError, PartnerNotFound, PartnerUnavailable
from partners.umbrella import CampaignDonation, CampaignTotalResult

START = 1_800_000_000.0  # every assertion is relative to it
KEY = CampaignKey(7, "hjerte", "st1")
REF = KEY.ref
OTHER = CampaignKey(7, "hjerte", "st2")


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class FakeLedger:
    """DonationLedger: donations by messageKey, totals by campaign, reconcile states; the same conditions."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.totals: dict[str, list[int]] = {}
        self.states: dict[str, ReconcileState] = {}
        self.folds: list[list[str]] = []
        self.fail_folds = False

    def record(self, item: dict[str, Any]) -> RecordOutcome:
        key = item["pk"].removeprefix("donation#")
        if key in self.items:
            return RecordOutcome(existing=self._donation(key))
        self.items[key] = dict(item)
        return RecordOutcome(existing=None)

    def _donation(self, key: str) -> LedgerDonation:
        item = self.items[key]
        return LedgerDonation(
            message_key=key,
            campaign_ref=item["campaign_ref"],
            amount=item["amount"],
            donated_at=item["donated_at"],
            received_at=item["received_at"],
            folded_at=item.get("folded_at"),
            verification=item["verification"],
        )

    def known(self, message_keys: Sequence[str]) -> dict[str, LedgerDonation]:
        return {key: self._donation(key) for key in message_keys if key in self.items}

    def fold(self, campaign_ref: str, entries: Sequence[FoldEntry], *, now: int, attempts: int) -> FoldOutcome:
        if self.fail_folds:
            raise RuntimeError("the table is throttling")
        folded = [e for e in entries if e.message_key in self.items and "folded_at" not in self.items[e.message_key]]
        for entry in folded:
            item = self.items[entry.message_key]
            item.update(folded_at=now, verification=VERIFIED, campaign_ref=campaign_ref, amount=entry.amount)
            item.pop("pending_campaign", None)
        total = self.totals.setdefault(campaign_ref, [0, 0])
        total[0] += sum(entry.amount for entry in folded)
        total[1] += len(folded)
        self.folds.append([entry.message_key for entry in folded])
        amount = sum(entry.amount for entry in folded)
        return FoldOutcome(folded=len(folded), amount=amount, skipped=len(entries) - len(folded))

    def mark_unconfirmed(self, message_key: str, *, now: int) -> bool:
        item = self.items.get(message_key)
        if item is None or "folded_at" in item:
            return False
        item.update(verification=UNCONFIRMED, unconfirmed_at=now)
        item.pop("pending_campaign", None)
        return True

    def pending(self, campaign_ref: str) -> list[PendingDonation]:
        return [
            PendingDonation(key, item["amount"], item["received_at"])
            for key, item in self.items.items()
            if item.get("pending_campaign") == campaign_ref
        ]

    def reconcile_state(self, campaign_ref: str) -> ReconcileState | None:
        return self.states.get(campaign_ref)

    def save_reconcile_state(
        self, campaign_ref: str, *, watermark: int, now: int, ledger_amount: int | None, partner_amount: int | None
    ) -> None:
        state = self.states.get(campaign_ref)
        if state is None or state.watermark <= watermark:
            at_stop = state.reconciled_at_stop if state else None
            self.states[campaign_ref] = ReconcileState(watermark, now, at_stop)

    def mark_reconciled_at_stop(self, campaign_ref: str, *, now: int) -> None:
        state = self.states.get(campaign_ref) or ReconcileState(0, 0)
        self.states[campaign_ref] = replace(state, reconciled_at_stop=now)

    def verification(self, key: str) -> str:
        return str(self.items[key]["verification"])

    def total(self, ref: str) -> tuple[int, int]:
        amount, count = self.totals.get(ref, [0, 0])
        return amount, count


class FakeDirectory:
    def __init__(self) -> None:
        self.campaigns: dict[str, CampaignInfo] = {}
        self.reads = 0

    def get(self, ref: str) -> CampaignInfo | None:
        self.reads += 1
        return self.campaigns.get(ref)

    def reconcilable(self, *, stopped_since: int) -> Iterator[CampaignInfo]:
        for info in self.campaigns.values():
            if info.state == "active" or (info.stopped_at is not None and info.stopped_at >= stopped_since):
                yield info


class FakeHasher:
    def hash(self, msisdn: str) -> str:
        return f"k1:hash-of-{len(msisdn)}-digits"


class FakeUmbrella:
    """Umbrella's reads: the donations it lists per campaign (filtered by timestampSince as Umbrella does)."""

    def __init__(self) -> None:
        self.listed: dict[str, list[CampaignDonation]] = {}
        self.collected: dict[str, int] = {}
        self.error: PartnerError | None = None
        self.collected_error: PartnerError | None = None
        self.calls: list[tuple[str, int | None]] = []

    def donations(self, service_id: int, route: str, code: str, since: Any = None) -> list[CampaignDonation]:
        ref = CampaignKey(service_id, route, code).ref
        self.calls.append((ref, since))
        if self.error is not None:
            raise self.error
        return [d for d in self.listed.get(ref, []) if since is None or d.donatedAt.timestamp() >= since]

    def collected_amount(self, service_id: int, route: str, code: str, since: Any = None) -> CampaignTotalResult:
        if self.collected_error is not None:
            raise self.collected_error
        return CampaignTotalResult(amount=self.collected.get(CampaignKey(service_id, route, code).ref, 0))

    def lists(self, key: CampaignKey, message_key: str, amount: int, *, at: float) -> CampaignDonation:
        donation = CampaignDonation(
            amount=amount,
            donatedAt=datetime.fromtimestamp(at, UTC),
            donationCode=key.donation_code,
            messageKey=message_key,
            msisdn="4512345678",
            routeName=key.route,
        )
        self.listed.setdefault(key.ref, []).append(donation)
        return donation


class Bus:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, dict[str, Any]]] = []
        self.fail_next = 0
        self.refuse: set[str] = set()  # messageKeys whose DonationReceived is refused (FailedEntryCount)

    def publish(self, source: str, detail_type: str, detail: Mapping[str, Any]) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("PutEvents failed")
        self.events.append((source, detail_type, dict(detail)))

    def publish_many(self, source: str, detail_type: str, details: Sequence[Mapping[str, Any]]) -> list[bool]:
        put = []
        for detail in details:
            refused = detail["messageKey"] in self.refuse
            if not refused:
                self.events.append((source, detail_type, dict(detail)))
            put.append(not refused)
        return put

    def of(self, detail_type: str) -> list[dict[str, Any]]:
        return [detail for _, kind, detail in self.events if kind == detail_type]


class World:
    """One container's collaborators, all fakes, and the services built from them as the handler's edge would."""

    def __init__(self, **settings: Any) -> None:
        self.clock = Clock()
        self.ledger = FakeLedger()
        self.directory = FakeDirectory()
        self.umbrella = FakeUmbrella()
        self.bus = Bus()
        self.shuffled = 0
        self.settings = IngesterSettings(
            donations_table_name="donations",
            campaigns_table_name="campaigns",
            umbrella_base_url="http://127.0.0.1:9",
            **settings,
        )
        self.token = new_callback_token()
        self.campaign(KEY)

    @property
    def services(self) -> IngesterServices:
        return IngesterServices(
            settings=self.settings,
            ledger=self.ledger,  # type: ignore[arg-type]
            directory=self.directory,  # type: ignore[arg-type]
            campaigns=self.cache,
            hasher=FakeHasher(),  # type: ignore[arg-type]
            umbrella=self.umbrella,  # type: ignore[arg-type]
            publish=self.bus.publish,
            publish_many=self.bus.publish_many,
            totals=lambda ref: CampaignTotals(*self.ledger.total(ref)),
            shuffle=self._shuffle,
            now=self.clock,
        )

    def _shuffle(self, campaigns: list[CampaignInfo]) -> None:
        self.shuffled += 1
        campaigns.sort(key=lambda info: info.ref)  # deterministic: a test names the order it expects

    @property
    def cache(self) -> CampaignCache:
        if not hasattr(self, "_cache"):
            self._cache = CampaignCache(self.directory, ttl_seconds=60, clock=self.clock)  # type: ignore[arg-type]
        return self._cache

    def campaign(self, key: CampaignKey, **fields: Any) -> CampaignInfo:
        values: dict[str, Any] = {
            "state": "active",
            "created_at": int(START) - 86_400,
            "callback_token_hash": callback_token_hash(self.token),
        }
        info = CampaignInfo(ref=key.ref, **(values | fields))
        self.directory.campaigns[key.ref] = info
        return info

    def call(self, key: CampaignKey = KEY, **payload: Any) -> callback.Received:
        """One callback as app.py runs it: token, payload, record."""
        services = self.services
        callback.verify_token(services, key, self.token)
        donation = callback.parse_donation(services, {"messageKey": "mk-1", "amount": "5000"} | payload)
        return callback.receive(services, key, donation)

    def hints(self) -> list[dict[str, Any]]:
        """The hints on the bus as the fold's queue delivers them (one SQS record each)."""
        return [
            {"messageId": f"m-{index}", "body": json.dumps({"detail": detail})}
            for index, detail in enumerate(self.bus.of(DONATION_HINT))
        ]

    def fold(self, records: Sequence[dict[str, Any]] | None = None) -> fold.FoldReport:
        return fold.fold_batch(self.services, self.hints() if records is None else records)


@pytest.fixture
def world() -> World:
    return World()


# ---------------------------------------------------------------------------------------------------- the callback


def test_a_callback_is_recorded_pending_and_handed_to_the_fold_but_counts_nothing(world):
    received = world.call(msisdn="+45 12345678", text="til Hjertet")
    assert (received.status, received.published, received.verification) == ("recorded", True, PENDING)
    item = world.ledger.items["mk-1"]
    assert (item["campaign_ref"], item["amount"], item["received_at"]) == (REF, 5000, int(START))
    assert item["pending_campaign"] == REF  # what pages show as waiting, apart from the total
    assert item["msisdn"] == "k1:hash-of-10-digits"  # a keyed hash, never the number
    assert "4512345678" not in json.dumps(item)
    [hint] = world.bus.of(DONATION_HINT)
    assert (hint["campaign"], hint["messageKey"], hint["amount"], hint["receivedAt"]) == (REF, "mk-1", 5000, START)
    assert world.bus.of(DONATION_RECEIVED) == []  # anyone holding the URL could have sent it
    assert world.ledger.total(REF) == (0, 0)


def test_a_callback_without_a_donation_time_takes_our_clock(world):
    world.clock.now += 123
    world.call()
    assert world.ledger.items["mk-1"]["donated_at"] == int(START) + 123


def test_a_repeated_pending_callback_is_a_duplicate_that_hands_the_hint_again(world):
    world.call()
    world.clock.now += 30
    again = world.call()
    assert (again.status, again.published) == ("duplicate", True)
    hints = world.bus.of(DONATION_HINT)
    assert len(hints) == 2
    assert hints[1]["receivedAt"] == START  # the stored donation's, not the repeat's
    assert len(world.ledger.items) == 1


def test_a_repeat_of_a_counted_donation_changes_nothing_and_hands_nothing(world):
    world.umbrella.lists(KEY, "mk-1", 5000, at=START)
    world.call()
    world.fold()
    events_before = len(world.bus.events)
    again = world.call()
    assert (again.status, again.published, again.verification) == ("duplicate", False, VERIFIED)
    assert len(world.bus.events) == events_before
    assert world.ledger.total(REF) == (5000, 1)


def test_a_second_donation_under_a_known_message_key_is_flagged_and_not_handed_on(world):
    world.call(amount="5000")
    conflict = world.call(amount="9000")
    assert (conflict.status, conflict.flags, conflict.published) == ("duplicate", ["message_key_conflict"], False)
    assert world.ledger.items["mk-1"]["amount"] == 5000
    assert len(world.bus.of(DONATION_HINT)) == 1


def test_a_hint_that_does_not_leave_is_publish_failed_and_the_repeat_publishes_it(world):
    world.bus.fail_next = 1
    with pytest.raises(PublishFailed):
        world.call()
    assert world.ledger.items["mk-1"]["verification"] == PENDING  # stored all the same
    assert world.bus.of(DONATION_HINT) == []
    again = world.call()
    assert (again.status, again.published) == ("duplicate", True)
    assert len(world.bus.of(DONATION_HINT)) == 1


@pytest.mark.parametrize(
    ("state", "payload", "flags"),
    [
        ("active", {"donationCode": "ST1", "routeName": "HJERTE"}, []),  # case does not matter
        ("active", {"donationCode": "other", "routeName": "hjerte"}, ["donation_code_mismatch"]),
        ("active", {"routeName": "elsewhere"}, ["route_mismatch"]),
        ("stopped", {}, ["campaign_stopped"]),
        ("pending", {}, ["campaign_not_active"]),
    ],
)
def test_what_deserves_an_operators_look_is_flagged_and_still_recorded(world, state, payload, flags):
    world.campaign(KEY, state=state, stopped_at=int(START) if state == "stopped" else None)
    received = world.call(**payload)
    assert (received.status, received.flags) == ("recorded", flags)
    assert world.ledger.items["mk-1"].get("flags", []) == flags


def test_a_callback_for_a_campaign_no_one_holds_is_flagged_unknown(world):
    unknown = CampaignKey(9, "x", "y")
    parsed = callback.parse_donation(world.services, {"messageKey": "mk-u", "amount": 100})
    received = callback.receive(world.services, unknown, parsed)
    assert received.flags == ["unknown_campaign"]


def test_an_amount_above_the_callback_bound_is_refused_and_nothing_is_stored():
    world = World(callback_max_amount_ore=10_000)
    with pytest.raises(InvalidDonation) as caught:
        world.call(amount="10001")
    assert [error["loc"] for error in caught.value.errors] == [("amount",)]
    assert "10001" not in json.dumps(caught.value.errors)  # the values are not echoed
    assert world.ledger.items == {}
    world.call(amount="10000")
    assert world.ledger.items["mk-1"]["amount"] == 10_000


@pytest.mark.parametrize("amount", ["0", "-5", "12.5", "\u0665\u0660", "", "lots"])
def test_what_is_not_a_whole_positive_amount_is_an_invalid_donation(world, amount):
    with pytest.raises(InvalidDonation):
        world.call(amount=amount)
    assert world.ledger.items == {}


# ---------------------------------------------------------------------------------------------------- the token


def test_a_token_the_campaign_does_not_hold_is_refused(world):
    with pytest.raises(CallbackTokenRefused):
        callback.verify_token(world.services, KEY, new_callback_token())
    with pytest.raises(CallbackTokenRefused):
        callback.verify_token(world.services, OTHER, world.token)  # another campaign's


def test_a_token_issued_moments_ago_works_at_once_though_the_cache_holds_the_old(world):
    callback.verify_token(world.services, KEY, world.token)  # cached
    fresh = new_callback_token()
    world.campaign(KEY, callback_token_hash=callback_token_hash(fresh))
    assert callback.verify_token(world.services, KEY, fresh).ref == REF


def test_a_replaced_token_is_refused_once_the_cache_has_moved_on(world):
    old = world.token
    callback.verify_token(world.services, KEY, old)
    world.campaign(KEY, callback_token_hash=callback_token_hash(new_callback_token()))
    reads = world.directory.reads
    callback.verify_token(world.services, KEY, old)  # the cache still says so, for up to its ttl
    assert world.directory.reads == reads
    world.clock.now += 61
    with pytest.raises(CallbackTokenRefused):
        callback.verify_token(world.services, KEY, old)


def test_the_campaign_is_read_once_a_cache_period_not_once_per_callback(world):
    for index in range(20):
        world.call(messageKey=f"mk-{index}")
    assert world.directory.reads == 1


def test_a_stopped_campaign_takes_callbacks_through_its_grace_period_then_revokes_them():
    world = World(callback_grace_after_stop_seconds=3600)
    world.campaign(KEY, state="stopped", stopped_at=int(START))
    world.clock.now = START + 3600
    assert world.call(messageKey="late").flags == ["campaign_stopped"]
    world.clock.now = START + 3601
    with pytest.raises(CallbackRevoked):
        world.call(messageKey="too-late")
    assert "too-late" not in world.ledger.items


# ---------------------------------------------------------------------------------------------------- the fold


def test_the_fold_counts_what_umbrella_lists_with_umbrellas_amount(world):
    world.call(amount="5000")
    world.umbrella.lists(KEY, "mk-1", 4000, at=START)
    report = world.fold()
    assert (report.folded, report.failed_message_ids) == (1, [])
    assert world.ledger.total(REF) == (4000, 1)
    assert world.ledger.verification("mk-1") == VERIFIED
    [received] = world.bus.of(DONATION_RECEIVED)
    assert (received["amount"], received["serviceId"], received["route"], received["donationCode"]) == (
        4000,
        7,
        "hjerte",
        "st1",
    )
    assert received["flags"] == ["amount_corrected"]
    assert "msisdn" not in received


def test_a_redelivered_hint_is_folded_once(world):
    world.call()
    world.umbrella.lists(KEY, "mk-1", 5000, at=START)
    records = world.hints()
    first = world.fold(records + records)  # the same hint twice in one batch
    assert (first.folded, first.failed_message_ids) == (1, [])
    second = world.fold(records)  # and once more later
    assert (second.folded, second.skipped, second.umbrella_calls) == (0, 1, 0)
    assert world.ledger.total(REF) == (5000, 1)
    assert len(world.bus.of(DONATION_RECEIVED)) == 1


def test_a_hint_umbrella_does_not_list_yet_comes_back_then_is_unconfirmed_after_the_window():
    world = World(confirm_window_seconds=900)
    world.call()
    records = world.hints()
    world.clock.now = START + 899
    report = world.fold(records)
    assert report.failed_message_ids == ["m-0"]  # the queue brings it back
    assert world.ledger.verification("mk-1") == PENDING
    world.clock.now = START + 900
    report = world.fold(records)
    assert (report.failed_message_ids, report.unconfirmed) == ([], 1)
    assert world.ledger.verification("mk-1") == UNCONFIRMED
    assert world.ledger.total(REF) == (0, 0)
    assert world.bus.of(DONATION_RECEIVED) == []


def test_one_umbrella_call_per_campaign_per_batch_from_the_oldest_hint_minus_the_overlap():
    world = World(verify_overlap_seconds=600)
    world.campaign(OTHER)
    world.call(messageKey="a")
    world.clock.now += 50
    world.call(messageKey="b")
    world.call(OTHER, messageKey="c")
    report = world.fold()
    assert report.umbrella_calls == 2
    assert sorted(world.umbrella.calls) == sorted([(REF, int(START) - 600), (OTHER.ref, int(START) + 50 - 600)])


@pytest.mark.parametrize(
    "error",
    [
        PartnerUnavailable("umbrella", "503 Service Unavailable", status=503),
        PartnerUnavailable("umbrella", "read timed out", ambiguous=True),
        PartnerUnavailable("umbrella", "429 Too Many Requests", status=429, retry_after=2.0),
        PartnerBadResponse("umbrella", "the donations list is not JSON"),
    ],
    ids=["5xx", "timeout", "429", "malformed"],
)
def test_when_umbrella_cannot_answer_the_hints_come_back_and_nothing_moves(world, error):
    world.call()
    world.umbrella.error = error
    world.clock.now += 10_000  # far past the window: still not unconfirmed, since Umbrella was not asked
    report = world.fold()
    assert report.failed_message_ids == ["m-0"]
    assert world.ledger.verification("mk-1") == PENDING
    assert world.ledger.total(REF) == (0, 0)


def test_a_campaign_umbrella_cannot_answer_for_does_not_hold_back_another(world):
    world.campaign(OTHER)
    world.call(messageKey="a")
    world.call(OTHER, messageKey="b")
    world.umbrella.lists(OTHER, "b", 100, at=START)
    real = world.umbrella.donations

    def only_other(service_id, route, code, since=None):
        if code == KEY.donation_code:
            raise PartnerUnavailable("umbrella", "timeout")
        return real(service_id, route, code, since)

    world.umbrella.donations = only_other  # type: ignore[method-assign]
    report = world.fold()
    assert (report.folded, report.failed_message_ids) == (1, ["m-0"])
    assert world.ledger.total(OTHER.ref) == (100, 1)


def test_a_campaign_umbrella_no_longer_knows_confirms_nothing_more(world):
    world.call()
    world.umbrella.error = PartnerNotFound("umbrella", "404", status=404)
    assert world.fold().failed_message_ids == ["m-0"]  # inside the window: waits
    world.clock.now += world.settings.confirm_window_seconds
    report = world.fold()
    assert (report.failed_message_ids, report.unconfirmed) == ([], 1)
    assert world.ledger.total(REF) == (0, 0)


def test_a_record_that_is_not_a_hint_fails_alone(world):
    world.call()
    world.umbrella.lists(KEY, "mk-1", 5000, at=START)
    broken = [{"messageId": "bad-1", "body": "not json"}, {"messageId": "bad-2", "body": json.dumps({"x": 1})}]
    report = world.fold([*broken, *world.hints()])
    assert (report.failed_message_ids, report.folded) == (["bad-1", "bad-2"], 1)


def test_a_hint_naming_another_campaign_cannot_fold_a_donation_into_it(world):
    world.campaign(OTHER)
    world.call()  # stored for KEY
    world.umbrella.lists(OTHER, "mk-1", 5000, at=START)
    forged = [
        {"messageId": "f", "body": json.dumps({"detail": {"eventId": "e", "campaign": OTHER.ref, "messageKey": "mk-1",
                                                          "amount": 5000}})}
    ]  # fmt: skip
    report = world.fold(forged)
    assert (report.folded, report.skipped, report.umbrella_calls) == (0, 1, 0)
    assert world.ledger.total(OTHER.ref) == (0, 0)


def test_a_donation_whose_received_event_is_refused_is_not_counted_until_it_is_put(world):
    world.call(messageKey="a", amount="300")
    world.call(messageKey="b", amount="400")
    for key, amount in (("a", 300), ("b", 400)):
        world.umbrella.lists(KEY, key, amount, at=START)
    world.bus.refuse = {"a"}
    records = world.hints()
    report = world.fold(records)
    assert (report.folded, report.failed_message_ids) == (1, ["m-0"])
    assert world.ledger.total(REF) == (400, 1)
    assert world.ledger.verification("a") == PENDING
    world.bus.refuse = set()
    assert world.fold(records[:1]).folded == 1
    assert world.ledger.total(REF) == (700, 2)


def test_a_fold_write_that_fails_brings_the_hints_back_uncounted(world):
    world.call()
    world.umbrella.lists(KEY, "mk-1", 5000, at=START)
    world.ledger.fail_folds = True
    assert world.fold().failed_message_ids == ["m-0"]
    assert world.ledger.verification("mk-1") == PENDING
    world.ledger.fail_folds = False
    assert world.fold().folded == 1  # its event went out twice; consumers de-duplicate on its eventId
    ids = {detail["eventId"] for detail in world.bus.of(DONATION_RECEIVED)}
    assert len(ids) == 1


def test_a_fold_of_many_donations_writes_in_chunks():
    world = World(fold_chunk=5)
    for index in range(12):
        world.call(messageKey=f"k{index}", amount="100")
        world.umbrella.lists(KEY, f"k{index}", 100, at=START)
    report = world.fold()
    assert report.folded == 12
    assert [len(chunk) for chunk in world.ledger.folds] == [5, 5, 2]
    assert world.ledger.total(REF) == (1200, 12)


# ---------------------------------------------------------------------------------------------------- reconciliation


def reconciled(world: World, key: CampaignKey = KEY) -> reconcile.Reconciled:
    return reconcile.reconcile_campaign(world.services, world.directory.campaigns[key.ref])


def test_reconciliation_recovers_what_umbrella_lists_and_the_ledger_lacks(world):
    listed = world.umbrella.lists(KEY, "lost", 2500, at=START - 100)
    world.umbrella.collected[REF] = 2500
    result = reconciled(world)
    assert (result.status, result.fetched, result.recovered, result.verified) == ("ok", 1, 1, 0)
    assert world.ledger.items["lost"]["source"] == "reconciliation"
    assert world.ledger.total(REF) == (2500, 1)
    assert world.bus.of(DONATION_HINT) == []  # verified at once, not handed to the fold
    assert [d["messageKey"] for d in world.bus.of(DONATION_RECEIVED)] == ["lost"]
    assert result.watermark == int(listed.donatedAt.timestamp())
    assert world.ledger.states[REF].watermark == result.watermark


def test_reconciliation_verifies_a_stored_callback_whose_hint_never_left(world):
    world.bus.fail_next = 1
    with pytest.raises(PublishFailed):
        world.call()
    world.umbrella.lists(KEY, "mk-1", 5000, at=START)
    world.umbrella.collected[REF] = 5000
    result = reconciled(world)
    assert (result.recovered, result.verified, result.status) == (0, 1, "ok")
    assert world.ledger.total(REF) == (5000, 1)


def test_reconciliation_asks_from_the_watermark_or_the_oldest_pending_callback_minus_the_overlap():
    world = World(reconcile_overlap_seconds=600)
    world.ledger.states[REF] = ReconcileState(watermark=int(START), last_run_at=int(START))
    reconciled(world)
    assert world.umbrella.calls[-1] == (REF, int(START) - 600)
    world.clock.now = START - 5000
    world.call()  # a callback waiting since before the watermark
    world.clock.now = START + 100
    reconciled(world)
    assert world.umbrella.calls[-1] == (REF, int(START) - 5000 - 600)


def test_a_first_reconciliation_starts_from_the_campaigns_creation(world):
    reconciled(world)
    created = world.directory.campaigns[REF].created_at
    assert world.umbrella.calls == [(REF, created - world.settings.reconcile_overlap_seconds)]


def test_reconciliation_marks_pending_callbacks_never_listed_once_past_the_window():
    world = World(confirm_window_seconds=900)
    world.call(messageKey="old")
    world.clock.now += 600
    world.call(messageKey="young")
    world.clock.now = START + 900
    result = reconciled(world)
    assert result.unconfirmed == 1
    assert (world.ledger.verification("old"), world.ledger.verification("young")) == (UNCONFIRMED, PENDING)


def test_an_umbrella_outage_moves_nothing(world):
    world.ledger.states[REF] = ReconcileState(watermark=int(START) - 10, last_run_at=0)
    world.call()
    world.umbrella.error = PartnerUnavailable("umbrella", "timeout")
    world.clock.now += 10_000
    result = reconciled(world)
    assert result.status == "partner_unavailable"
    assert world.ledger.states[REF] == ReconcileState(watermark=int(START) - 10, last_run_at=0)
    assert world.ledger.verification("mk-1") == PENDING  # not unconfirmed: Umbrella was not heard


def test_a_campaign_gone_at_umbrella_may_have_lost_donations_unless_its_stop_reconciled_it(world):
    world.umbrella.error = PartnerNotFound("umbrella", "404", status=404)
    assert (reconciled(world).status, reconciled(world).possibly_unseen) == ("gone", True)
    world.ledger.mark_reconciled_at_stop(REF, now=int(START))
    assert (reconciled(world).status, reconciled(world).possibly_unseen) == ("gone", False)


def test_a_ledger_that_differs_from_umbrellas_collected_amount_is_drift(world):
    world.umbrella.lists(KEY, "a", 1000, at=START)
    world.umbrella.collected[REF] = 1500
    result = reconciled(world)
    assert (result.status, result.ledger_amount, result.partner_amount) == ("drift", 1000, 1500)
    world.umbrella.collected[REF] = 1000
    assert reconciled(world).status == "ok"


def test_an_unanswered_collected_amount_is_not_drift(world):
    world.umbrella.lists(KEY, "a", 1000, at=START)
    world.umbrella.collected_error = PartnerUnavailable("umbrella", "503", status=503)
    result = reconciled(world)
    assert (result.status, result.ledger_amount, result.partner_amount) == ("ok", None, None)


def test_a_donation_left_unsettled_holds_the_watermark_back(world):
    world.umbrella.lists(KEY, "early", 100, at=START - 300)
    world.umbrella.lists(KEY, "refused", 200, at=START - 200)
    world.umbrella.lists(KEY, "late", 300, at=START - 100)
    world.bus.refuse = {"refused"}
    result = reconciled(world)
    assert result.watermark == int(START) - 300  # not past the one whose event was refused
    assert world.ledger.total(REF) == (400, 2)
    world.bus.refuse = set()
    result = reconciled(world)
    assert (result.watermark, world.ledger.total(REF)) == (int(START) - 100, (600, 3))


def test_the_watermark_never_moves_back(world):
    world.ledger.states[REF] = ReconcileState(watermark=int(START) + 1000, last_run_at=0)
    world.ledger.save_reconcile_state(REF, watermark=int(START), now=int(START), ledger_amount=0, partner_amount=0)
    assert world.ledger.states[REF].watermark == int(START) + 1000


def test_a_scheduled_run_takes_active_and_lately_stopped_campaigns_and_stops_for_time():
    world = World(reconcile_after_stop_seconds=86_400, reconcile_reserve_ms=10_000)
    world.campaign(CampaignKey(7, "hjerte", "st2"), state="stopped", stopped_at=int(START) - 3600)
    world.campaign(CampaignKey(7, "hjerte", "st3"), state="stopped", stopped_at=int(START) - 86_401)
    world.campaign(CampaignKey(7, "hjerte", "st4"))
    remaining = iter([60_000, 30_000, 9_999])
    summary = reconcile.reconcile_all(world.services, lambda: next(remaining))
    assert world.shuffled == 1  # a run cut short favours no campaign
    assert [c["campaign"] for c in summary["campaigns"]] == ["7/hjerte/st1", "7/hjerte/st2"]
    assert (summary["reconciled"], summary["left"]) == (2, 1)  # st3 stopped too long ago is not even listed


def test_named_campaigns_are_reconciled_and_an_unknown_one_is_said_so(world):
    summary = reconcile.reconcile_refs(world.services, [REF, "9/x/y"])
    assert [(c["campaign"], c["status"]) for c in summary["campaigns"]] == [(REF, "ok"), ("9/x/y", "unknown_campaign")]


def test_a_stops_reconcile_is_marked_only_when_it_succeeded(world):
    world.umbrella.error = PartnerUnavailable("umbrella", "timeout")
    assert reconcile.reconcile_at_stop(world.services, REF).status == "partner_unavailable"
    assert REF not in world.ledger.states
    world.umbrella.error = None
    world.clock.now += 5
    assert reconcile.reconcile_at_stop(world.services, REF).status == "ok"
    assert world.ledger.states[REF].reconciled_at_stop == int(START) + 5
    assert reconcile.reconcile_at_stop(world.services, "9/x/y").status == "unknown_campaign"


def test_a_donation_above_the_callback_bound_still_counts_when_umbrella_lists_it():
    world = World(callback_max_amount_ore=10_000)
    world.umbrella.lists(KEY, "big", 50_000, at=START)
    world.umbrella.collected[REF] = 50_000
    assert reconciled(world).recovered == 1
    assert world.ledger.total(REF) == (50_000, 1)


# -------------------------------------------------------------------------------------------------- the fakes' contract


@pytest.fixture
def real_ledger(monkeypatch) -> Iterator[DonationLedger]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-north-1")
    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-north-1")
        client.create_table(
            TableName="donations",
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "pending_campaign", "AttributeType": "S"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": "PendingIndex",
                    "KeySchema": [{"AttributeName": "pending_campaign", "KeyType": "HASH"}],
                    "Projection": {"ProjectionType": "ALL"},
                }
            ],
            BillingMode="PAY_PER_REQUEST",
        )
        from hub_core import aws  # noqa: PLC0415

        monkeypatch.setattr(aws, "dynamodb", lambda: client)
        yield DonationLedger("donations")


@pytest.mark.parametrize("make", ["fake", "real"])
def test_the_fake_ledger_keeps_the_real_ones_rules(make, real_ledger):
    ledger: Any = FakeLedger() if make == "fake" else real_ledger
    item = {
        "pk": "donation#k1",
        "campaign_ref": REF,
        "amount": 500,
        "donated_at": int(START),
        "received_at": int(START),
        "verification": PENDING,
        "pending_campaign": REF,
    }
    assert ledger.record(dict(item)).new
    repeat = ledger.record(dict(item, amount=900))
    assert (repeat.new, repeat.existing.amount, repeat.existing.verification) == (False, 500, PENDING)
    assert [p.message_key for p in ledger.pending(REF)] == ["k1"]
    outcome = ledger.fold(REF, [FoldEntry("k1", 450), FoldEntry("absent", 1)], now=int(START), attempts=3)
    assert (outcome.folded, outcome.amount, outcome.skipped) == (1, 450, 1)
    again = ledger.fold(REF, [FoldEntry("k1", 450)], now=int(START) + 1, attempts=3)
    assert (again.folded, again.skipped) == (0, 1)
    known = ledger.known(["k1", "absent"])
    assert list(known) == ["k1"]
    assert (known["k1"].settled, known["k1"].amount, known["k1"].verification) == (True, 450, VERIFIED)
    assert ledger.pending(REF) == []
    assert ledger.mark_unconfirmed("k1", now=int(START)) is False  # settled meanwhile
    ledger.save_reconcile_state(REF, watermark=10, now=1, ledger_amount=None, partner_amount=None)
    ledger.save_reconcile_state(REF, watermark=5, now=2, ledger_amount=None, partner_amount=None)
    assert ledger.reconcile_state(REF).watermark == 10


def test_the_real_services_are_built_once_per_container_without_calling_anything(monkeypatch):
    from donation_ingester import services as edge  # noqa: PLC0415
    from hub_core import aws  # noqa: PLC0415

    for name, value in {
        "DONATIONS_TABLE_NAME": "donations",
        "CAMPAIGNS_TABLE_NAME": "campaigns",
        "UMBRELLA_BASE_URL": "http://127.0.0.1:9",
        "CAMPAIGN_CACHE_SECONDS": "5",
    }.items():
        monkeypatch.setenv(name, value)

    def no_aws() -> Any:
        raise AssertionError("building the services called AWS")

    monkeypatch.setattr(aws, "dynamodb", no_aws)
    built = edge.services()
    assert built is edge.services()
    assert (built.ledger.table_name, built.directory.table_name, built.campaigns.ttl_seconds) == (
        "donations",
        "campaigns",
        5,
    )
    assert built.campaigns.directory is built.directory
