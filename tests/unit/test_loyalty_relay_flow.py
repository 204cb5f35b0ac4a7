"""The relay's batch decisions on in-memory collaborators and an injected clock: no emulator, no network, no sleep.

The fakes keep the real ones' semantics (our record is a conditional put, the daily cap counts distinct event keys
per UTC day); the contract tests at the end hold the fake record to LoyaltyStore's on moto.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from hub_core.config import ConfigError
from hub_core.ratelimit import Limit, RateLimited, hit_distinct
from loyalty_relay import flow
from loyalty_relay.models import Outcome, OwnerRecord, PendingAction, Settlement
from loyalty_relay.services import RelayServices
from loyalty_relay.settings import RelaySettings
from loyalty_relay.store import LoyaltyStore, record_key
from partners.appsmiles_wire import AppsMilesRejected, StoreResult
from partners.deadline import Deadline, bounded_by
from partners.errors import PartnerAuthError, PartnerRejected, PartnerUnavailable
from tests.conftest import create_hash_table, in_process_aws

DAY = 86_400
START = 1_800_000_000.0 // DAY * DAY + 3_600  # an hour into a UTC day; every assertion is relative to it


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> float:
        return self.now


class FakeRecords:
    """LoyaltyStore: the settled events by key; `record` is a put that never overwrites (attribute_not_exists)."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.reads: list[list[str]] = []
        self.fail_writes = False

    def settled(self, event_keys: Collection[str]) -> dict[str, dict[str, Any]]:
        self.reads.append(sorted(event_keys))
        return {key: self.items[key] for key in event_keys if key in self.items}

    def record(self, action: PendingAction, settlement: Settlement, *, now: datetime | None = None) -> None:
        if self.fail_writes:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "PutItem")
        values: dict[str, Any] = {
            "pk": record_key(action.key),
            "state": settlement.outcome.value,
            "tag_id": action.tag_id,
            "detail_type": action.detail_type,
            "user_id": action.user_id,
            "settled_at": (now or datetime.now(UTC)).isoformat(timespec="seconds"),
        }
        if settlement.code is not None:
            values["code"] = settlement.code
        if settlement.reason:
            values["reason"] = settlement.reason
        self.items.setdefault(action.key, values)


class FakeOwners:
    """OwnerTables: the member id each owning record names; an exception stands for an unreadable table."""

    def __init__(self) -> None:
        self.members: dict[tuple[str, str], str] = {}
        self.error: Exception | None = None
        self.reads: list[OwnerRecord] = []

    def member_of(self, owner: OwnerRecord) -> str | None:
        self.reads.append(owner)
        if self.error is not None:
            raise self.error
        return self.members.get((owner.table, owner.key))


class FakeAppsMiles:
    """app's miles' client: each call recorded; `answers` (by param1) raise or answer, default a fresh credit."""

    def __init__(self) -> None:
        self.stored: list[tuple[str, str, str | None, datetime | None]] = []
        self.multistored: list[tuple[str, list[tuple[str, str | None]]]] = []
        self.answers: dict[str | None, Exception | StoreResult] = {}
        self.multistore_error: Exception | None = None

    def _answer(self, param1: str | None) -> StoreResult | Exception:
        return self.answers.get(param1, StoreResult(already_recorded=False, code=0, action={}))

    def store_action(
        self, user_id: str, tag_id: str, *, param1: str | None = None, date: datetime | None = None
    ) -> StoreResult:
        self.stored.append((user_id, tag_id, param1, date))
        answer = self._answer(param1)
        if isinstance(answer, Exception):
            raise answer
        return answer

    def multistore(
        self, tag_id: str, actions: Sequence[tuple[str, str | None]], *, date: datetime | None = None
    ) -> list[StoreResult | AppsMilesRejected]:
        self.multistored.append((tag_id, list(actions)))
        if self.multistore_error is not None:
            raise self.multistore_error
        return [self._answer(param1) for _, param1 in actions]  # type: ignore[misc]


class FakeCounter:
    """hub_core.ratelimit.hit_distinct: distinct items per subject per window; a counted item passes again."""

    def __init__(self) -> None:
        self.windows: dict[tuple[str, str, int], set[str]] = {}

    def __call__(self, table_name: str, limit: Limit, subject: str, item: str, *, now: float) -> None:
        if limit.count <= 0:
            return
        start = int(now) // limit.window_seconds * limit.window_seconds
        counted = self.windows.setdefault((limit.scope, subject, start), set())
        if item not in counted and len(counted) >= limit.count:
            raise RateLimited(limit.scope, start + limit.window_seconds - int(now))
        counted.add(item)


class Rig:
    def __init__(self, **settings: Any) -> None:
        self.clock = Clock()
        self.records = FakeRecords()
        self.owners = FakeOwners()
        self.appsmiles = FakeAppsMiles()
        self.counter = FakeCounter()
        self.client_error: Exception | None = None
        self.settings = RelaySettings(
            loyalty_table_name="loyalty",
            rate_limit_table_name="rate-limits",
            leads_table_name="leads",
            campaigns_table_name="campaigns",
            licences_table_name="licences",
            **settings,
        )

    def client(self) -> FakeAppsMiles:
        if self.client_error is not None:
            raise self.client_error
        return self.appsmiles

    @property
    def services(self) -> RelayServices:
        return RelayServices(
            settings=self.settings,
            store=self.records,  # type: ignore[arg-type]
            owners=self.owners,  # type: ignore[arg-type]
            appsmiles=self.client,  # type: ignore[arg-type]
            count_distinct=self.counter,
            now=self.clock,
        )

    def relay(self, *bodies: str) -> dict[str, Outcome]:
        records = [{"messageId": f"m{index}", "body": body} for index, body in enumerate(bodies)]
        return flow.relay_batch(self.services, records).outcomes


@pytest.fixture
def rig() -> Rig:
    return Rig()


HAPPENED = "2026-11-30T10:00:00Z"


def donation(event_key: str, user: str | None = "member-1", **detail: Any) -> str:
    details = {"eventId": event_key, "campaign": "1/hjerte/anna50"} | detail
    if user is not None:
        details["appsMilesUserId"] = user
    return json.dumps(
        {"id": f"bus-{event_key}", "detail-type": "DonationReceived", "source": "partner-hub.donation-ingester",
         "time": HAPPENED, "detail": details}
    )  # fmt: skip


def lead(lead_id: str) -> str:
    return json.dumps(
        {"id": f"bus-{lead_id}", "detail-type": "LeadCaptured", "source": "partner-hub.lead-intake",
         "detail": {"lead_id": lead_id, "apps_miles_member": True, "category": "apiculture"}}
    )  # fmt: skip


# ---------------------------------------------------------------- relayed and recorded


def test_an_event_naming_its_member_is_relayed_with_its_key_as_param1_and_recorded_at_the_clock_s_time(rig):
    assert rig.relay(donation("evt-1")) == {"m0": Outcome.RELAYED}
    ((user, tag, param1, date),) = rig.appsmiles.stored
    assert (user, tag, param1) == ("member-1", "DONATION", "evt-1")
    assert date == datetime.fromisoformat(HAPPENED)
    record = rig.records.items["evt-1"]
    assert (record["state"], record["tag_id"], record["user_id"], record["code"]) == (
        "relayed",
        "DONATION",
        "member-1",
        0,
    )
    assert record["settled_at"] == datetime.fromtimestamp(rig.clock.now, UTC).isoformat(timespec="seconds")


def test_a_flagged_event_is_credited_to_the_member_its_owning_record_names(rig):
    rig.owners.members[("leads", "lead-1")] = "member-7"
    assert rig.relay(lead("lead-1")) == {"m0": Outcome.RELAYED}
    assert rig.owners.reads == [OwnerRecord("leads", "lead-1")]
    assert rig.appsmiles.stored[0][:3] == ("member-7", "LEAD", "lead-1")
    assert rig.records.items["lead-1"]["user_id"] == "member-7"


def test_what_app_s_miles_already_had_is_counted_relayed_and_recorded(rig):
    rig.appsmiles.answers["evt-1"] = StoreResult(already_recorded=True, code=12, action={})
    assert rig.relay(donation("evt-1")) == {"m0": Outcome.ALREADY_RECORDED}
    assert rig.records.items["evt-1"]["state"] == "already_recorded"


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (AppsMilesRejected("appsmiles", "unknown tag", code=7), 7),
        (PartnerRejected("appsmiles", "bad request", status=400), 400),
    ],
    ids=["errorCode", "http-4xx"],
)
def test_a_refused_action_is_recorded_rejected_and_acknowledged(rig, error, code):
    rig.appsmiles.answers["evt-1"] = error
    assert rig.relay(donation("evt-1")) == {"m0": Outcome.REJECTED}
    record = rig.records.items["evt-1"]
    assert (record["state"], record["code"], record["reason"]) == ("rejected", code, error.message)


def test_a_record_that_cannot_be_written_fails_the_invocation(rig):
    rig.records.fail_writes = True
    with pytest.raises(ClientError):
        rig.relay(donation("evt-1"))
    assert len(rig.appsmiles.stored) == 1  # sent: param1 keeps the redelivery from counting twice


# ---------------------------------------------------------------- exactly once


def test_an_event_settled_before_is_a_duplicate_neither_read_nor_sent(rig):
    rig.records.items["lead-1"] = {"state": "relayed"}
    assert rig.relay(lead("lead-1")) == {"m0": Outcome.DUPLICATE}
    assert rig.owners.reads == []
    assert rig.appsmiles.stored == []


def test_the_batch_s_records_are_read_in_one_request(rig):
    rig.relay(donation("evt-1"), donation("evt-2"), "not json")
    assert rig.records.reads == [["evt-1", "evt-2"]]


def test_a_second_copy_in_the_batch_shares_the_first_copy_s_fate(rig):
    assert rig.relay(donation("evt-1"), donation("evt-1")) == {"m0": Outcome.RELAYED, "m1": Outcome.DUPLICATE}
    assert len(rig.appsmiles.stored) == 1
    rig.appsmiles.answers["evt-2"] = PartnerUnavailable("appsmiles", "503", status=503)
    assert rig.relay(donation("evt-2"), donation("evt-2")) == {"m0": Outcome.RETRY, "m1": Outcome.RETRY}


# ---------------------------------------------------------------- no one to credit, or nothing to send


def test_a_flagged_event_whose_record_is_gone_is_anonymous(rig):
    assert rig.relay(lead("lead-1")) == {"m0": Outcome.SKIPPED_ANONYMOUS}
    assert rig.appsmiles.stored == []
    assert rig.records.items == {}


def test_an_owning_record_with_an_unusable_member_id_is_malformed(rig):
    rig.owners.members[("leads", "lead-1")] = "has spaces"
    assert rig.relay(lead("lead-1")) == {"m0": Outcome.MALFORMED}
    assert rig.appsmiles.stored == []


@pytest.mark.parametrize(
    "error",
    [ClientError({"Error": {"Code": "ThrottlingException"}}, "GetItem"), ConfigError("no table for the leads")],
    ids=["unreadable", "misconfigured"],
)
def test_an_owning_record_that_cannot_be_read_is_retried(rig, error):
    rig.owners.error = error
    assert rig.relay(lead("lead-1")) == {"m0": Outcome.RETRY}
    assert rig.appsmiles.stored == []


def test_the_report_counts_outcomes_and_names_the_failures(rig):
    report = flow.relay_batch(
        rig.services,
        [
            {"messageId": "a", "body": donation("evt-1")},
            {"messageId": "b", "body": "not json"},
            {"messageId": "c", "body": donation("evt-2", user=None)},
        ],
    )
    assert report.counts() == {Outcome.RELAYED: 1, Outcome.MALFORMED: 1, Outcome.SKIPPED_ANONYMOUS: 1}
    assert report.failed_message_ids == ["b"]


# ---------------------------------------------------------------- passing failures


def test_after_an_outage_the_rest_of_the_batch_waits_unsent_whatever_its_tag(rig):
    rig.owners.members[("leads", "lead-1")] = "member-7"
    rig.appsmiles.answers["evt-1"] = PartnerUnavailable("appsmiles", "503", status=503)
    outcomes = rig.relay(donation("evt-1"), donation("evt-2"), lead("lead-1"))
    assert outcomes == {"m0": Outcome.RETRY, "m1": Outcome.RETRY, "m2": Outcome.RETRY}
    assert [param1 for _, _, param1, _ in rig.appsmiles.stored] == ["evt-1"]
    assert rig.records.items == {}


@pytest.mark.parametrize(
    "error", [PartnerAuthError("appsmiles", "secret refused", status=401), ConfigError("APPSMILES_APP_ID missing")]
)
def test_our_setup_refused_or_missing_is_retried_not_rejected(rig, error):
    rig.client_error = error
    assert rig.relay(donation("evt-1")) == {"m0": Outcome.RETRY}
    assert rig.records.items == {}


def test_no_action_is_started_that_would_not_fit_before_the_deadline(rig):
    with bounded_by(Deadline.after(rig.settings.record_seconds - 0.1, Clock())):
        assert rig.relay(donation("evt-1")) == {"m0": Outcome.RETRY}
    assert rig.appsmiles.stored == []


# ---------------------------------------------------------------- the member's daily cap


def test_a_member_over_the_day_s_cap_is_capped_unsent_until_the_next_utc_day():
    rig = Rig(member_actions_per_day=2)
    outcomes = rig.relay(donation("evt-1"), donation("evt-2"), donation("evt-3"), donation("evt-4", user="member-2"))
    assert outcomes == {"m0": Outcome.RELAYED, "m1": Outcome.RELAYED, "m2": Outcome.CAPPED, "m3": Outcome.RELAYED}
    assert "evt-3" not in rig.records.items  # capped is not settled: no record
    assert rig.relay(donation("evt-5")) == {"m0": Outcome.CAPPED}
    rig.clock.now += DAY - 3_600  # midnight UTC
    assert rig.relay(donation("evt-5")) == {"m0": Outcome.RELAYED}


def test_a_redelivered_action_does_not_use_up_the_cap():
    rig = Rig(member_actions_per_day=1)
    rig.appsmiles.answers["evt-1"] = PartnerUnavailable("appsmiles", "503", status=503)
    assert rig.relay(donation("evt-1")) == {"m0": Outcome.RETRY}
    del rig.appsmiles.answers["evt-1"]
    assert rig.relay(donation("evt-1")) == {"m0": Outcome.RELAYED}  # counted once, passes again


def test_a_cap_of_zero_is_no_cap():
    rig = Rig(member_actions_per_day=0)
    outcomes = rig.relay(*(donation(f"evt-{index}") for index in range(5)))
    assert set(outcomes.values()) == {Outcome.RELAYED}


# ---------------------------------------------------------------- several members' actions in one call


def test_with_multistore_one_tag_s_actions_go_in_one_call_each_with_its_own_answer():
    rig = Rig(appsmiles_multistore=True)
    rig.appsmiles.answers["evt-2"] = AppsMilesRejected("appsmiles", "user blocked", code=9)
    outcomes = rig.relay(donation("evt-1"), donation("evt-2", user="member-2"), donation("evt-3", user="member-3"))
    assert outcomes == {"m0": Outcome.RELAYED, "m1": Outcome.REJECTED, "m2": Outcome.RELAYED}
    assert rig.appsmiles.multistored == [
        ("DONATION", [("member-1", "evt-1"), ("member-2", "evt-2"), ("member-3", "evt-3")])
    ]
    assert rig.appsmiles.stored == []
    assert rig.records.items["evt-2"]["code"] == 9


def test_with_multistore_a_lone_action_goes_alone_and_an_outage_retries_the_whole_call():
    rig = Rig(appsmiles_multistore=True)
    assert rig.relay(donation("evt-1")) == {"m0": Outcome.RELAYED}
    assert (len(rig.appsmiles.stored), rig.appsmiles.multistored) == (1, [])
    rig.appsmiles.multistore_error = PartnerUnavailable("appsmiles", "timeout", ambiguous=True)
    assert rig.relay(donation("evt-2"), donation("evt-3", user="member-2")) == {
        "m0": Outcome.RETRY,
        "m1": Outcome.RETRY,
    }
    assert set(rig.records.items) == {"evt-1"}


def test_with_multistore_a_call_that_would_not_fit_is_not_started():
    rig = Rig(appsmiles_multistore=True)
    with bounded_by(Deadline.after(rig.settings.record_seconds - 0.1, Clock())):
        outcomes = rig.relay(donation("evt-1"), donation("evt-2", user="member-2"))
    assert outcomes == {"m0": Outcome.RETRY, "m1": Outcome.RETRY}
    assert rig.appsmiles.multistored == []


# ---------------------------------------------------------------- the fake record keeps LoyaltyStore's semantics


@pytest.fixture
def moto_records(monkeypatch) -> Iterator[LoyaltyStore]:
    with in_process_aws(monkeypatch):
        create_hash_table("loyalty", "pk")
        yield LoyaltyStore("loyalty")


@pytest.fixture(params=["fake", "moto"])
def any_records(request) -> Any:
    return FakeRecords() if request.param == "fake" else request.getfixturevalue("moto_records")


def test_contract_a_settlement_is_recorded_once_and_found_by_its_event_key(any_records):
    action = PendingAction("m1", "evt-1", "DONATION", "member-1", "DonationReceived", None)
    at = datetime.fromtimestamp(START, UTC)
    any_records.record(action, Settlement(Outcome.REJECTED, code=7, reason="unknown tag"), now=at)
    any_records.record(action, Settlement(Outcome.RELAYED, code=0), now=at)  # a concurrent copy: left as is
    found = any_records.settled(["evt-1", "evt-2", "evt-1"])
    assert set(found) == {"evt-1"}
    record = found["evt-1"]
    assert (record["state"], record["code"], record["reason"], record["user_id"]) == (
        "rejected", 7, "unknown tag", "member-1",
    )  # fmt: skip
    assert record["settled_at"] == at.isoformat(timespec="seconds")


@pytest.fixture(params=["fake", "moto"])
def any_counter(request, monkeypatch) -> Iterator[Any]:
    if request.param == "fake":
        yield FakeCounter()
        return
    with in_process_aws(monkeypatch):
        create_hash_table("limits", "id")
        yield hit_distinct


def test_contract_the_counter_counts_distinct_items_per_subject_and_window(any_counter):
    """What the cap tests lean on: a redelivered item passes without using up the allowance (hit_distinct)."""
    limit = Limit("member-actions", 2, DAY)
    for item in ("evt-1", "evt-2", "evt-1"):  # a redelivery of evt-1 counts once
        any_counter("limits", limit, "member-1", item, now=START)
    with pytest.raises(RateLimited):
        any_counter("limits", limit, "member-1", "evt-3", now=START)
    any_counter("limits", limit, "member-1", "evt-2", now=START + 60)  # counted before: still passes
    any_counter("limits", limit, "member-2", "evt-4", now=START)  # another member is not held back
    next_window = (int(START) // DAY + 1) * DAY
    any_counter("limits", limit, "member-1", "evt-3", now=next_window)
    any_counter("limits", Limit("member-actions", 0, DAY), "member-1", "evt-9", now=START)  # 0: no cap
