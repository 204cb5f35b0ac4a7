"""Licence issuance's decisions on a fake Pimenko, injected clocks and a fake deadline: no emulator, no sleep.

The licences table is the real LicenceStore on moto's in-process DynamoDB (its conditional writes are what keeps an
order to one licence); Pimenko, the bus, the wall clock, the pauses and the deadline are fakes.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import boto3
import pytest

from hub_core.caches import TtlCache
from hub_core.member_signature import Verdict, sign
from hub_core.retry_queue import retry_sender
from licence_issuance import flow, requeue
from licence_issuance.models import LicenceRequest, LicenceState
from licence_issuance.services import LicenceServices
from licence_issuance.settings import LicenceSettings
from licence_issuance.store import LicenceStore
from partners.errors import PartnerAuthError, PartnerBadResponse, PartnerNotFound, PartnerUnavailable
from partners.mlm import InvalidLicenceData, Licence, LicenceType, MaxSitesReached, Product
from tests.conftest import create_hash_table, in_process_aws

START = 1_800_000_000.0  # every assertion on time is relative to it
LEASE = 15
GRACE = 60
SETTINGS = LicenceSettings(
    licences_table_name="Licences",
    mlm_base_url="http://127.0.0.1:9",
    create_lease_seconds=LEASE,
    recreate_grace_seconds=GRACE,
    turn_wait_seconds=10.0,
    turn_create_seconds=6.0,
    catalogue_cache_seconds=300,
)
ORDER = {
    "order_id": "order-1",
    "customer_reference": "cust-42",
    "product_id": 3,
    "licence_type": 2,
    "url": "https://moodle.example.org",
}


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


class FakeMlm:
    """Pimenko MLM: licences by id; `fail` queues an error per method; `land` makes a failed create happen anyway."""

    def __init__(self) -> None:
        self.licences: dict[int, Licence] = {}
        self.sites: dict[str, list[str]] = {}
        self.calls: list[str] = []
        self.fail: dict[str, list[Exception]] = {}
        self.land = False
        self.kinds = [LicenceType(id=2, name="Standard", max_sites=2), LicenceType(id=5, name="Solo", max_sites=1)]
        self.catalogue = [Product(id=3, name="Moodle plugin"), Product(id=4, name="Theme")]

    def _raise_queued(self, method: str) -> None:
        queued = self.fail.get(method)
        if queued:
            raise queued.pop(0)

    def licence_types(self) -> list[LicenceType]:
        self.calls.append("licence_types")
        self._raise_queued("licence_types")
        return list(self.kinds)

    def products(self) -> list[Product]:
        self.calls.append("products")
        self._raise_queued("products")
        return list(self.catalogue)

    def newest_licence_id(self) -> int:
        self.calls.append("newest_licence_id")
        self._raise_queued("newest_licence_id")
        return max(self.licences, default=0)

    def make(self, product_id: int, licence_type: int, url: str) -> Licence:
        licence_id = max(self.licences, default=100) + 1
        licence = Licence(
            id=licence_id, product_id=product_id, key=f"KEY-{licence_id:04d}-SECRET", status="active",
            licence_type_id=licence_type,
        )  # fmt: skip
        self.licences[licence_id] = licence
        self.sites[licence.key] = [url]
        return licence

    def create_licence(self, licence_type: int, product_id: int, url: str) -> Any:
        self.calls.append("create_licence")
        if self.fail.get("create_licence"):
            if self.land:
                self.make(product_id, licence_type, url)
            self._raise_queued("create_licence")
        return SimpleNamespace(licence=self.make(product_id, licence_type, url))

    def find_new_licence(
        self, *, after_id: int, product_id: int, licence_type: int, exclude_keys: Collection[str] = ()
    ) -> Licence | None:
        self.calls.append("find_new_licence")
        self._raise_queued("find_new_licence")
        found = [
            licence
            for licence in self.licences.values()
            if licence.id > after_id
            and (licence.product_id, licence.licence_type_id) == (product_id, licence_type)
            and licence.key not in exclude_keys
        ]
        return min(found, key=lambda licence: licence.id, default=None)

    def add_site(self, key: str, url: str) -> Any:
        self.calls.append("add_site")
        self._raise_queued("add_site")
        self.sites[key].append(url)
        return SimpleNamespace(url=url)


class Pauses:
    """The wait for a turn: `sleep` moves the monotonic clock on, and may run something meanwhile."""

    def __init__(self) -> None:
        self.clock = Clock(1000.0)
        self.slept: list[float] = []
        self.during: list[Any] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.now += seconds
        if self.during:
            self.during.pop(0)()


@dataclass
class Rig:
    services: LicenceServices
    mlm: FakeMlm
    store: LicenceStore
    clock: Clock
    pauses: Pauses
    published: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    deadline_left: float = 1e9
    publish_error: Exception | None = None

    def issue(self, **changes: Any) -> Any:
        return flow.issue(self.services, LicenceRequest.model_validate(ORDER | changes))


@pytest.fixture
def rig(monkeypatch) -> Iterator[Rig]:
    with in_process_aws(monkeypatch):
        create_hash_table("Licences", "pk")
        clock, pauses, mlm = Clock(START), Pauses(), FakeMlm()
        store = LicenceStore("Licences")
        holder: list[Rig] = []

        def publish(source: str, detail_type: str, detail: Any) -> None:
            if holder[0].publish_error is not None:
                raise holder[0].publish_error
            holder[0].published.append((source, detail_type, dict(detail)))

        services = LicenceServices(
            settings=SETTINGS,
            store=store,
            mlm=mlm,  # type: ignore[arg-type]
            publish=publish,
            # No queue in the rig: an event is requeued only with one (the `queued` fixture gives moto's).
            send_retry=retry_sender(""),
            new_id=lambda: str(uuid.uuid4()),
            now=clock,
            monotonic=pauses.clock,
            sleep=pauses.sleep,
            jitter=lambda low, high: high,
            fits=lambda seconds: seconds <= holder[0].deadline_left,
            catalogue=TtlCache(max_entries=2, clock=clock),
        )
        holder.append(Rig(services, mlm, store, clock, pauses))
        yield holder[0]


def state(rig: Rig, order_id: str = "order-1") -> LicenceState | None:
    record = rig.store.order(order_id)
    return None if record is None else record.state


# ---------------------------------------------------------------- the first attempt


def test_an_order_is_issued_once_and_recorded(rig):
    licence = rig.issue()

    assert licence.state is LicenceState.ISSUED
    assert rig.mlm.calls == ["products", "licence_types", "newest_licence_id", "create_licence"]
    record = rig.store.order("order-1")
    assert record.state is LicenceState.ISSUED
    assert (record.licence.licence_id, record.licence.key) == (licence.licence_id, licence.key)
    assert record.licence.sites == [ORDER["url"]]
    assert record.after_id == 0  # noted before the create, even on an empty account


def test_the_licence_issued_event_names_the_order_and_hides_the_key_and_the_customer(rig):
    licence = rig.issue()

    [(source, detail_type, detail)] = rig.published
    assert (source, detail_type) == ("licence-issuance", "LicenceIssued")
    assert detail["order_id"] == "order-1"
    assert detail["licence_id"] == licence.licence_id
    assert licence.key not in str(detail)
    assert detail["licence_key_hint"].endswith(licence.key[-4:])
    assert "cust-42" not in str(detail)
    assert "apps_miles_member" not in detail


def test_a_bus_that_cannot_take_the_event_does_not_fail_an_issued_order(rig):
    rig.publish_error = ConnectionError("bus down")
    assert rig.issue().state is LicenceState.ISSUED
    assert state(rig) is LicenceState.ISSUED


def test_a_repeat_of_an_issued_order_answers_the_same_licence_without_pimenko(rig):
    first = rig.issue()
    rig.mlm.calls.clear()
    assert rig.issue() == first
    assert rig.mlm.calls == []
    assert len(rig.mlm.licences) == 1
    assert len(rig.published) == 1  # announced once


def test_the_same_order_id_with_another_request_is_a_conflict(rig):
    rig.issue()
    with pytest.raises(flow.OrderConflict):
        rig.issue(url="https://other.example.org")
    assert len(rig.mlm.licences) == 1


def test_a_repeat_while_an_attempt_holds_the_order_is_in_progress_until_its_lease_ends(rig):
    request = LicenceRequest.model_validate(ORDER)
    rig.store.hold_order(request, attempt_id="live", now=int(START), lease_seconds=LEASE)
    rig.clock.now += LEASE
    with pytest.raises(flow.OrderInProgress):
        rig.issue()
    assert rig.mlm.calls == []
    rig.clock.now += 1  # the other attempt died: its lease ran out
    assert rig.issue().state is LicenceState.ISSUED


# ---------------------------------------------------------------- the catalogue


def test_an_unknown_product_and_type_are_both_named_and_the_order_is_let_go(rig):
    with pytest.raises(flow.CatalogueMismatch) as raised:
        rig.issue(product_id=9, licence_type=9)
    assert [(p.field, p.rule) for p in raised.value.problems] == [
        ("product_id", "unknown_product"),
        ("licence_type", "unknown_licence_type"),
    ]
    assert "create_licence" not in rig.mlm.calls
    assert state(rig) is None  # not recorded as refused: the catalogue may be stale
    assert rig.issue(product_id=4, licence_type=5).state is LicenceState.ISSUED


def test_the_catalogue_is_read_once_per_cache_period(rig):
    rig.issue(order_id="order-1")
    rig.clock.now += SETTINGS.catalogue_cache_seconds - 1
    rig.issue(order_id="order-2")
    assert rig.mlm.calls.count("products") == 1
    rig.clock.now += 2
    rig.issue(order_id="order-3")
    assert rig.mlm.calls.count("products") == 2
    assert rig.mlm.calls.count("licence_types") == 2


@pytest.mark.parametrize(
    "error",
    [PartnerUnavailable("mlm", "429", status=429, retry_after=3), PartnerBadResponse("mlm", "not JSON")],
)
def test_a_catalogue_pimenko_cannot_give_propagates_and_frees_the_order(rig, error):
    rig.mlm.fail["products"] = [error]
    with pytest.raises(type(error)):
        rig.issue()
    assert state(rig) is None
    assert rig.issue().state is LicenceState.ISSUED


# ---------------------------------------------------------------- Pimenko's refusals


@pytest.mark.parametrize(
    "error", [InvalidLicenceData("mlm", "The given data was invalid.", status=422), MaxSitesReached("mlm", "max")]
)
def test_a_refusal_is_a_rejected_order_and_its_repeat_is_refused_again_without_a_call(rig, error):
    rig.mlm.fail["create_licence"] = [error]
    licence = rig.issue()
    assert licence.state is LicenceState.REJECTED
    assert licence.message == error.message
    assert state(rig) is LicenceState.REJECTED
    assert rig.published == []
    rig.mlm.calls.clear()
    assert rig.issue().state is LicenceState.REJECTED
    assert rig.mlm.calls == []


def test_a_refused_order_asked_again_with_corrected_data_is_reopened_and_issued(rig):
    rig.mlm.fail["create_licence"] = [InvalidLicenceData("mlm", "bad url", status=422)]
    rig.issue()
    rig.clock.now += 30

    licence = rig.issue(url="https://fixed.example.org")

    assert licence.state is LicenceState.ISSUED
    record = rig.store.order("order-1")
    assert record.retries == 1
    assert record.licence.sites == ["https://fixed.example.org"]
    assert len(rig.mlm.licences) == 1


def test_a_corrected_retry_with_an_unknown_product_is_refused_before_reopening(rig):
    rig.mlm.fail["create_licence"] = [InvalidLicenceData("mlm", "bad url", status=422)]
    rig.issue()
    with pytest.raises(flow.CatalogueMismatch):
        rig.issue(product_id=9)
    assert state(rig) is LicenceState.REJECTED


# ---------------------------------------------------------------- outages: at most one licence


def test_an_outage_before_anything_was_noted_frees_the_order(rig):
    rig.mlm.fail["newest_licence_id"] = [PartnerUnavailable("mlm", "503", status=503)]
    with pytest.raises(PartnerUnavailable):
        rig.issue()
    assert state(rig) is None


@pytest.mark.parametrize(
    "error",
    [PartnerUnavailable("mlm", "connect timeout"), PartnerUnavailable("mlm", "429", status=429, retry_after=1),
     PartnerAuthError("mlm", "401", status=401), RuntimeError("a bug")],
)  # fmt: skip
def test_a_create_that_surely_made_nothing_leaves_the_order_uncertain_and_the_next_attempt_looks_then_creates(
    rig, error
):
    rig.mlm.fail["create_licence"] = [error]
    with pytest.raises(type(error)):
        rig.issue()
    record = rig.store.order("order-1")
    assert record.state is LicenceState.UNCERTAIN
    assert record.recreate_after == 0  # not ambiguous: no grace to wait for
    rig.mlm.calls.clear()

    licence = rig.issue()

    assert rig.mlm.calls == ["find_new_licence", "newest_licence_id", "create_licence"]
    assert licence.state is LicenceState.ISSUED
    assert len(rig.mlm.licences) == 1


def test_an_ambiguous_create_that_landed_is_found_by_the_next_attempt_not_made_again(rig):
    rig.mlm.fail["create_licence"] = [PartnerUnavailable("mlm", "read timeout", ambiguous=True)]
    rig.mlm.land = True
    with pytest.raises(PartnerUnavailable):
        rig.issue()
    assert rig.store.order("order-1").recreate_after == int(START) + GRACE
    rig.mlm.calls.clear()
    rig.clock.now += 5

    licence = rig.issue()

    assert rig.mlm.calls == ["find_new_licence"]
    assert licence.state is LicenceState.ISSUED
    assert licence.licence_id == next(iter(rig.mlm.licences))
    assert len(rig.mlm.licences) == 1
    assert len(rig.published) == 1


def test_an_ambiguous_create_not_found_is_only_looked_for_until_its_grace_ends(rig):
    rig.mlm.fail["create_licence"] = [PartnerUnavailable("mlm", "read timeout", ambiguous=True)]
    with pytest.raises(PartnerUnavailable):
        rig.issue()
    rig.clock.now += GRACE - 1
    with pytest.raises(flow.OrderInProgress):
        rig.issue()
    assert rig.mlm.calls.count("create_licence") == 1
    assert state(rig) is LicenceState.UNCERTAIN
    rig.clock.now += 1

    assert rig.issue().state is LicenceState.ISSUED
    assert rig.mlm.calls.count("create_licence") == 2
    assert len(rig.mlm.licences) == 1


def test_the_look_up_skips_a_new_licence_another_order_already_claimed(rig):
    rig.mlm.fail["create_licence"] = [PartnerUnavailable("mlm", "connect timeout")]
    with pytest.raises(PartnerUnavailable):
        rig.issue()
    theirs = rig.mlm.make(3, 2, "https://theirs.example.org")  # same kind, newer, but another order's
    assert rig.store.claim_licence(theirs.id, "order-other")

    licence = rig.issue()

    assert licence.licence_id != theirs.id
    assert rig.mlm.calls.count("find_new_licence") == 2  # found theirs, excluded it, found none
    assert rig.mlm.calls.count("create_licence") == 2


def test_the_look_up_ignores_new_licences_of_another_kind(rig):
    rig.mlm.fail["create_licence"] = [PartnerUnavailable("mlm", "connect timeout")]
    with pytest.raises(PartnerUnavailable):
        rig.issue()
    other = rig.mlm.make(4, 5, "https://other-kind.example.org")
    licence = rig.issue()
    assert licence.licence_id != other.id
    assert licence.product_id == 3


def test_a_look_up_pimenko_cannot_answer_keeps_the_order_uncertain(rig):
    rig.mlm.fail["create_licence"] = [PartnerUnavailable("mlm", "connect timeout")]
    with pytest.raises(PartnerUnavailable):
        rig.issue()
    rig.mlm.fail["find_new_licence"] = [PartnerUnavailable("mlm", "503", status=503)]
    with pytest.raises(PartnerUnavailable):
        rig.issue()
    assert state(rig) is LicenceState.UNCERTAIN
    assert rig.mlm.calls.count("create_licence") == 1


# ---------------------------------------------------------------- one create of a kind at a time


def _hold_turn(rig: Rig, holder: str = "other-attempt") -> None:
    assert rig.store.take_turn(3, 2, holder=holder, now=int(START), lease_seconds=LEASE)


def test_the_turn_is_given_back_after_each_create(rig):
    rig.issue(order_id="order-1")
    rig.issue(order_id="order-2")
    assert rig.pauses.slept == []
    assert rig.store.take_turn(3, 2, holder="probe", now=int(START), lease_seconds=LEASE)


def test_the_turn_is_given_back_after_a_failed_create_too(rig):
    rig.mlm.fail["create_licence"] = [PartnerUnavailable("mlm", "connect timeout")]
    with pytest.raises(PartnerUnavailable):
        rig.issue()
    assert rig.store.take_turn(3, 2, holder="probe", now=int(START), lease_seconds=LEASE)


def test_a_busy_turn_is_waited_for_with_growing_pauses_up_to_the_wait_limit(rig):
    _hold_turn(rig)
    with pytest.raises(flow.OrderInProgress):
        rig.issue()
    assert rig.pauses.slept == [0.05, 0.1, 0.2, 0.4, 0.8] + [1.0] * 8  # 9.55 s: one more would pass 10
    assert sum(rig.pauses.slept) <= SETTINGS.turn_wait_seconds
    assert "create_licence" not in rig.mlm.calls
    assert state(rig) is None  # nothing was noted: the order is free for its next delivery


def test_the_wait_for_a_turn_stops_when_the_deadline_leaves_no_room_for_a_create(rig):
    _hold_turn(rig)
    rig.deadline_left = SETTINGS.turn_create_seconds + 0.3
    with pytest.raises(flow.OrderInProgress):
        rig.issue()
    assert rig.pauses.slept == [0.05, 0.1, 0.2]  # a pause of 0.4 plus a create would not fit


def test_a_turn_freed_during_the_wait_is_taken_and_the_order_issued(rig):
    _hold_turn(rig)
    rig.pauses.during = [lambda: None, lambda: rig.store.end_turn(3, 2, holder="other-attempt")]
    assert rig.issue().state is LicenceState.ISSUED
    assert rig.pauses.slept == [0.05, 0.1]


def test_an_uncertain_order_waiting_for_its_turn_stays_uncertain(rig):
    rig.mlm.fail["create_licence"] = [PartnerUnavailable("mlm", "connect timeout")]
    with pytest.raises(PartnerUnavailable):
        rig.issue()
    _hold_turn(rig)
    rig.deadline_left = 0
    with pytest.raises(flow.OrderInProgress):
        rig.issue()
    record = rig.store.order("order-1")
    assert record.state is LicenceState.UNCERTAIN
    assert record.after_id == 0


def test_a_turn_of_another_kind_does_not_block(rig):
    assert rig.store.take_turn(4, 5, holder="other-kind", now=int(START), lease_seconds=LEASE)
    assert rig.issue().state is LicenceState.ISSUED
    assert rig.pauses.slept == []


# ---------------------------------------------------------------- reads and sites


def test_an_order_s_record_is_read_back(rig):
    assert flow.licence_for_order(rig.services, "order-1") is None
    licence = rig.issue()
    assert flow.licence_for_order(rig.services, "order-1").licence == licence


def test_a_site_is_added_to_a_licence_we_issued(rig):
    key = rig.issue().key
    rig.clock.now += 10
    licence, added = flow.add_site(rig.services, key, "https://second.example.org")
    assert added is True
    assert licence.sites == [ORDER["url"], "https://second.example.org"]
    assert rig.mlm.sites[key] == [ORDER["url"], "https://second.example.org"]


def test_a_site_already_there_is_answered_without_pimenko(rig):
    key = rig.issue().key
    rig.mlm.calls.clear()
    licence, added = flow.add_site(rig.services, key, ORDER["url"])
    assert added is False
    assert licence.sites == [ORDER["url"]]
    assert rig.mlm.calls == []


def test_a_licence_full_on_our_record_is_refused_before_pimenko(rig):
    key = rig.issue(licence_type=5, product_id=4).key  # Solo: one site
    rig.mlm.calls.clear()
    with pytest.raises(flow.MaxSitesOnRecord) as raised:
        flow.add_site(rig.services, key, "https://second.example.org")
    assert raised.value.limit == 1
    assert "add_site" not in rig.mlm.calls


def test_pimenko_refusing_a_site_propagates_and_our_record_is_unchanged(rig):
    key = rig.issue().key
    rig.mlm.fail["add_site"] = [MaxSitesReached("mlm", "Nombre maximal de sites atteint")]
    with pytest.raises(MaxSitesReached):
        flow.add_site(rig.services, key, "https://second.example.org")
    assert rig.store.order("order-1").licence.sites == [ORDER["url"]]


@pytest.mark.parametrize("setup", ["unknown", "rejected"])
def test_a_site_for_a_key_we_did_not_issue_is_not_found(rig, setup):
    if setup == "rejected":
        rig.mlm.fail["create_licence"] = [InvalidLicenceData("mlm", "bad", status=422)]
        rig.issue()
    with pytest.raises(LookupError):
        flow.add_site(rig.services, "KEY-NOT-OURS", "https://second.example.org")
    assert "add_site" not in rig.mlm.calls


def test_pimenko_not_finding_the_licence_propagates(rig):
    key = rig.issue().key
    rig.mlm.fail["add_site"] = [PartnerNotFound("mlm", "no such licence", status=404)]
    with pytest.raises(PartnerNotFound):
        flow.add_site(rig.services, key, "https://second.example.org")


# ---------------------------------------------------------------- app's miles member ids (flow.with_verified_member)

KEY_RING = "k" * 40  # the shop's signing key, in moto's SSM as the template's MEMBER_SIGNING_KEY_PARAM names it


@pytest.fixture
def key_ring(rig, monkeypatch) -> str:
    boto3.client("ssm").put_parameter(Name="/hub/member-signing-key", Value=KEY_RING, Type="SecureString")
    monkeypatch.setenv("MEMBER_SIGNING_KEY_PARAM", "/hub/member-signing-key")
    return KEY_RING


def verified(rig: Rig, **changes: Any) -> tuple[LicenceRequest, Verdict | None]:
    return flow.with_verified_member(rig.services, LicenceRequest.model_validate(ORDER | changes))


def order_item(order_id: str = "order-1") -> dict[str, Any]:
    return boto3.client("dynamodb").get_item(TableName="Licences", Key={"pk": {"S": f"order#{order_id}"}})["Item"]


def test_a_member_id_the_shop_signed_travels_with_the_order_and_its_signature_never_does(rig, key_ring):
    signature = sign("member-1", int(START) + 600, key_ring)
    request, verdict = verified(rig, apps_miles_user_id="member-1", apps_miles_signature=signature)
    assert (verdict, request.apps_miles_user_id, request.apps_miles_signature) == (Verdict.VALID, "member-1", None)
    flow.issue(rig.services, request)
    item = order_item()
    assert item["apps_miles_user_id"] == {"S": "member-1"}  # where the loyalty relay reads it
    assert signature not in json.dumps(item)
    [(_, _, detail)] = rig.published
    assert detail["apps_miles_member"] is True
    assert "member-1" not in json.dumps(detail)  # LicenceIssued names no one


@pytest.mark.parametrize(
    ("signature", "advance", "expected"),
    [
        (None, 0, Verdict.UNSIGNED),
        ("someone-else", 0, Verdict.BAD_SIGNATURE),  # a signature the shop gave another member
        ("123.abc", 0, Verdict.BAD_SIGNATURE),
        ("expiring", 600, Verdict.EXPIRED),  # at the injected clock, not the wall's
        ("too-long-lived", 0, Verdict.TOO_LONG_LIVED),
    ],
)
def test_a_member_id_without_a_valid_signature_is_dropped_and_the_order_still_issued(
    rig, key_ring, signature, advance, expected
):
    made = {
        "someone-else": sign("someone-else", int(START) + 600, key_ring),
        "expiring": sign("member-1", int(START) + 600, key_ring),
        "too-long-lived": sign("member-1", int(START) + SETTINGS.member_signature_max_seconds + 60, key_ring),
    }
    rig.clock.now += advance
    request, verdict = verified(rig, apps_miles_user_id="member-1", apps_miles_signature=made.get(signature, signature))
    assert (verdict, request.apps_miles_user_id, request.apps_miles_signature) == (expected, None, None)
    assert flow.issue(rig.services, request).state is LicenceState.ISSUED
    assert "apps_miles_user_id" not in order_item()
    [(_, _, detail)] = rig.published
    assert "apps_miles_member" not in detail


def test_an_order_without_a_member_id_needs_no_key_ring(rig, monkeypatch):
    monkeypatch.delenv("MEMBER_SIGNING_KEY_PARAM", raising=False)  # reading it would raise ConfigError
    request, verdict = verified(rig, apps_miles_signature="123.abc")
    assert (verdict, request.apps_miles_user_id, request.apps_miles_signature) == (None, None, None)


def test_an_order_repeated_with_a_fresh_signature_is_the_same_order(rig, key_ring):
    first, _ = verified(
        rig, apps_miles_user_id="member-1", apps_miles_signature=sign("member-1", int(START) + 60, key_ring)
    )
    again, _ = verified(
        rig, apps_miles_user_id="member-1", apps_miles_signature=sign("member-1", int(START) + 120, key_ring)
    )
    assert flow.issue(rig.services, first) == flow.issue(rig.services, again)
    assert rig.mlm.calls.count("create_licence") == 1


# ---------------------------------------------------------------- the retry queue (requeue.py), on moto's SQS


@pytest.fixture
def queued(rig) -> Iterator[tuple[Rig, str]]:
    url = boto3.client("sqs").create_queue(QueueName="LicenceRetryQueue")["QueueUrl"]
    config = SETTINGS.model_copy(
        update={"licence_retry_queue_url": url, "requeue_delay_min_seconds": 0, "requeue_delay_max_seconds": 0}
    )
    rig.services = LicenceServices(**{**rig.services.__dict__, "settings": config, "send_retry": retry_sender(url)})
    return rig, url


def _received(url: str) -> list[dict[str, Any]]:
    return boto3.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])


def _record(message: dict[str, Any]) -> dict[str, Any]:
    return {
        "messageId": message["MessageId"], "body": message["Body"], "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:LicenceRetryQueue",
        "receiptHandle": message["ReceiptHandle"], "attributes": {}, "messageAttributes": {},
    }  # fmt: skip


def _waiting(waiting_id: str) -> dict[str, Any] | None:
    key = {"pk": {"S": f"waiting#{waiting_id}"}}
    return boto3.client("dynamodb").get_item(TableName="Licences", Key=key).get("Item")


@pytest.mark.parametrize(("url", "requeues", "expected"), [("", 0, False), ("q", 29, True), ("q", 30, False)])
def test_an_event_is_requeued_only_with_a_queue_and_under_its_limit(rig, url, requeues, expected):
    config = SETTINGS.model_copy(update={"licence_retry_queue_url": url, "licence_max_requeues": 30})
    services = LicenceServices(**{**rig.services.__dict__, "settings": config})
    assert requeue.can_requeue(services, requeues) is expected


def test_a_requeued_event_waits_in_the_table_and_its_message_carries_only_an_id_and_a_count(queued):
    rig, url = queued
    event = {"id": "event-1", "detail": ORDER}
    requeue.requeue(rig.services, event, 2)

    [message] = _received(url)
    body = json.loads(message["Body"])
    assert set(body) == {requeue.WAITING_ID, "requeues"}
    assert body["requeues"] == 3
    assert "cust-42" not in message["Body"]
    waiting = _waiting(body[requeue.WAITING_ID])
    assert json.loads(waiting["event"]["S"]) == event
    assert int(waiting["expires_at"]["N"]) == int(START) + requeue.WAITING_SECONDS


def test_a_retry_message_runs_its_waiting_event_once_with_its_count_then_forgets_it(queued):
    rig, url = queued
    event = {"id": "event-1", "detail": ORDER}
    requeue.requeue(rig.services, event, 4)
    [message] = _received(url)
    handled: list[tuple[dict[str, Any], int]] = []

    def handle(event: dict[str, Any], *, requeues: int) -> dict[str, Any]:
        handled.append((event, requeues))
        return {}

    assert requeue.handle_batch(rig.services, {"Records": [_record(message)]}, None, handle) == {
        "batchItemFailures": []
    }
    assert handled == [(event, 5)]
    assert _waiting(json.loads(message["Body"])[requeue.WAITING_ID]) is None
    # A second delivery (at least once) finds nothing to run, and is acknowledged.
    assert requeue.handle_batch(rig.services, {"Records": [_record(message)]}, None, handle) == {
        "batchItemFailures": []
    }
    assert len(handled) == 1


def test_a_retry_whose_handling_fails_is_reported_and_its_event_kept_for_the_next_delivery(queued):
    rig, url = queued
    requeue.requeue(rig.services, {"id": "event-1", "detail": ORDER}, 0)
    [message] = _received(url)

    def handle(event: dict[str, Any], *, requeues: int) -> dict[str, Any]:
        raise ConnectionError("our table is out")

    answer = requeue.handle_batch(rig.services, {"Records": [_record(message)]}, None, handle)
    assert answer == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert _waiting(json.loads(message["Body"])[requeue.WAITING_ID]) is not None


def test_a_retry_the_deadline_has_no_room_for_goes_back_untouched(queued):
    rig, url = queued
    requeue.requeue(rig.services, {"id": "event-1", "detail": ORDER}, 0)
    [message] = _received(url)
    rig.deadline_left = SETTINGS.record_seconds - 1
    handled: list[Any] = []
    answer = requeue.handle_batch(
        rig.services, {"Records": [_record(message)]}, None, lambda event, requeues: handled.append(event)
    )
    assert answer == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    assert handled == []
    assert _waiting(json.loads(message["Body"])[requeue.WAITING_ID]) is not None


def test_a_message_from_before_ids_is_run_from_its_own_body(queued):
    rig, _ = queued
    event = {"id": "event-old", "detail": ORDER}
    message = {"MessageId": "m-old", "Body": json.dumps({"event": event, "requeues": 1}), "ReceiptHandle": "r"}
    handled: list[tuple[Any, int]] = []
    requeue.handle_batch(
        rig.services, {"Records": [_record(message)]}, None, lambda event, requeues: handled.append((event, requeues))
    )
    assert handled == [(event, 1)]
