"""LicencesTable's conditional writes on moto in-process: who holds an order, a licence, a create turn."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from licence_issuance.models import IssuedLicence, LicenceRequest, LicenceState
from licence_issuance.store import LicenceStore, OrderHeld, OrderRecord, key_digest
from tests.conftest import create_hash_table, in_process_aws

TABLE = "Licences"
NOW = 1_800_000_000


@pytest.fixture
def licence_store(monkeypatch):
    with in_process_aws(monkeypatch):
        create_hash_table(TABLE, "pk")
        yield LicenceStore(TABLE)


def request(order_id: str, **changes) -> LicenceRequest:
    fields = {"order_id": order_id, "customer_reference": "c", "product_id": 1, "licence_type": 1}
    return LicenceRequest(**(fields | {"url": "https://a.example.org"} | changes))


def raw(pk: str) -> dict | None:
    return boto3.client("dynamodb").get_item(TableName=TABLE, Key={"pk": {"S": pk}}).get("Item")


def licence(order_id: str, key: str = "KEY-1") -> IssuedLicence:
    return IssuedLicence(
        order_id=order_id, state=LicenceState.CREATING, licence_id=9001, key=key, status=None,
        expires_at="2027-12-02", product_id=1, licence_type=1, sites=["https://a.example.org"], message="x",
    )  # fmt: skip


def test_an_order_held_by_a_live_attempt_is_refused_to_another(licence_store):
    first = licence_store.hold_order(request("store-1"), attempt_id="a1", now=NOW, lease_seconds=30)
    assert first.state is LicenceState.CREATING
    second = licence_store.hold_order(request("store-1"), attempt_id="a2", now=NOW + 1, lease_seconds=30)
    assert isinstance(second, OrderHeld)
    assert second.record.attempt_id == "a1"
    # Once the lease has run out, another attempt may take the order over.
    third = licence_store.hold_order(request("store-1"), attempt_id="a3", now=NOW + 31, lease_seconds=30)
    assert third.attempt_id == "a3"


def test_a_held_order_counts_its_attempts_and_keeps_its_creation_time(licence_store):
    licence_store.hold_order(request("store-7"), attempt_id="a1", now=NOW, lease_seconds=30)
    licence_store.hold_order(request("store-7"), attempt_id="a2", now=NOW + 31, lease_seconds=30)
    item = raw("order#store-7")
    assert item is not None
    assert (item["attempts"], item["created_at"], item["updated_at"]) == (
        {"N": "2"}, {"N": str(NOW)}, {"N": str(NOW + 31)},
    )  # fmt: skip
    assert item["lease_until"] == {"N": str(NOW + 61)}
    assert "apps_miles_user_id" not in item  # no member id given: none written


def test_a_member_id_is_kept_on_the_order_but_is_no_part_of_its_fingerprint(licence_store):
    held = licence_store.hold_order(
        request("store-8", apps_miles_user_id="am-7"), attempt_id="a1", now=NOW, lease_seconds=30
    )
    assert isinstance(held, OrderRecord)
    assert held.fingerprint == request("store-8").fingerprint()
    assert raw("order#store-8")["apps_miles_user_id"] == {"S": "am-7"}  # type: ignore[index]


def test_a_different_request_under_the_same_order_id_is_never_taken_over(licence_store):
    licence_store.hold_order(request("store-2"), attempt_id="a1", now=NOW, lease_seconds=30)
    other = licence_store.hold_order(request("store-2", product_id=3), attempt_id="a2", now=NOW + 99, lease_seconds=30)
    assert isinstance(other, OrderHeld)


def test_an_uncertain_order_keeps_where_its_look_up_starts(licence_store):
    licence_store.hold_order(request("store-3"), attempt_id="a1", now=NOW, lease_seconds=30)
    licence_store.note_after_id("store-3", "a1", 41)
    licence_store.settle_uncertain("store-3", "a1", now=NOW, message="ReadTimeout")
    resumed = licence_store.hold_order(request("store-3"), attempt_id="a2", now=NOW + 1, lease_seconds=30)
    assert (resumed.state, resumed.after_id, resumed.attempt_id) == (LicenceState.CREATING, 41, "a2")
    with pytest.raises(ClientError):  # the old attempt may no longer settle it
        licence_store.release_order("store-3", "a1")


def test_an_uncertain_order_may_be_resumed_at_once_but_not_by_another_request(licence_store):
    licence_store.hold_order(request("store-9"), attempt_id="a1", now=NOW, lease_seconds=30)
    licence_store.settle_uncertain("store-9", "a1", now=NOW, message="ReadTimeout")
    record = licence_store.order("store-9")
    assert record is not None
    assert (record.state, record.lease_until, record.licence.message) == (LicenceState.UNCERTAIN, 0, "ReadTimeout")
    another = request("store-9", url="https://b.example.org")
    other = licence_store.hold_order(another, attempt_id="x", now=NOW + 1, lease_seconds=30)
    assert isinstance(other, OrderHeld)
    assert other.record.state is LicenceState.UNCERTAIN


def test_an_empty_pimenko_account_is_a_noted_start_and_the_recreate_grace_survives_attempts(licence_store):
    first = licence_store.hold_order(request("store-5"), attempt_id="a1", now=NOW, lease_seconds=30)
    assert first.after_id is None  # not noted yet: nothing to look for
    licence_store.note_after_id("store-5", "a1", 0)  # Pimenko had no licence at all
    licence_store.settle_uncertain("store-5", "a1", now=NOW, message="ReadTimeout", recreate_after=NOW + 60)
    second = licence_store.hold_order(request("store-5"), attempt_id="a2", now=NOW + 1, lease_seconds=30)
    assert (second.after_id, second.recreate_after) == (0, NOW + 60)
    licence_store.settle_uncertain("store-5", "a2", now=NOW + 1, message="OrderInProgress")
    third = licence_store.hold_order(request("store-5"), attempt_id="a3", now=NOW + 2, lease_seconds=30)
    assert third.recreate_after == NOW + 60  # a later failure does not shorten the grace


def test_only_the_holding_attempt_notes_or_settles_its_order(licence_store):
    licence_store.hold_order(request("store-10"), attempt_id="a1", now=NOW, lease_seconds=30)
    for call in (
        lambda: licence_store.note_after_id("store-10", "a2", 5),
        lambda: licence_store.settle_uncertain("store-10", "a2", now=NOW, message="m"),
        lambda: licence_store.release_order("store-10", "a2"),
        lambda: licence_store.issue("store-10", "a2", licence=licence("store-10"), now=NOW),
    ):
        with pytest.raises(ClientError):
            call()
    record = licence_store.order("store-10")
    assert record is not None
    assert (record.state, record.after_id) == (LicenceState.CREATING, None)
    licence_store.release_order("store-10", "a1")
    assert licence_store.order("store-10") is None


def test_an_issued_licence_is_found_by_its_key_whose_digest_alone_is_stored(licence_store):
    licence_store.hold_order(request("store-11"), attempt_id="a1", now=NOW, lease_seconds=30)
    issued = licence_store.issue("store-11", "a1", licence=licence("store-11", "SECRET-KEY"), now=NOW + 3)
    assert (issued.state, issued.status, issued.message) == (LicenceState.ISSUED, "", "")
    record = licence_store.order_by_key("SECRET-KEY")
    assert record is not None
    assert (record.order_id, record.state, record.lease_until) == ("store-11", LicenceState.ISSUED, 0)
    assert record.licence.key == "SECRET-KEY"
    assert record.licence.sites == ["https://a.example.org"]
    assert raw(f"key#{key_digest('SECRET-KEY')}") == {
        "pk": {"S": f"key#{key_digest('SECRET-KEY')}"}, "order_id": {"S": "store-11"},
    }  # fmt: skip
    assert licence_store.order_by_key("ANOTHER-KEY") is None
    # Settled: no attempt takes it again, whatever its lease said.
    again = licence_store.hold_order(request("store-11"), attempt_id="a2", now=NOW + 99, lease_seconds=30)
    assert isinstance(again, OrderHeld)


def test_a_site_is_appended_to_the_issued_licence(licence_store):
    licence_store.hold_order(request("store-12"), attempt_id="a1", now=NOW, lease_seconds=30)
    licence_store.issue("store-12", "a1", licence=licence("store-12", "K-12"), now=NOW)
    licence_store.add_site("store-12", "https://b.example.org", now=NOW + 5)
    record = licence_store.order("store-12")
    assert record is not None
    assert record.licence.sites == ["https://a.example.org", "https://b.example.org"]


def test_a_refusal_is_written_once_and_answers_repeats(licence_store):
    licence_store.reject(request("store-13"), now=NOW, message="too long")
    licence_store.reject(request("store-13"), now=NOW + 1, message="again")  # a race lost: the first one stays
    record = licence_store.order("store-13")
    assert record is not None
    assert (record.state, record.licence.message, record.attempt_id) == (LicenceState.REJECTED, "too long", "")
    repeat = licence_store.hold_order(request("store-13"), attempt_id="a", now=NOW + 9, lease_seconds=30)
    assert isinstance(repeat, OrderHeld)


def test_an_attempt_rejects_the_order_it_holds_and_only_that(licence_store):
    licence_store.hold_order(request("store-14"), attempt_id="a1", now=NOW, lease_seconds=30)
    licence_store.reject(request("store-14"), now=NOW, message="m", attempt_id="a2")  # not a2's order
    assert licence_store.order("store-14").state is LicenceState.CREATING  # type: ignore[union-attr]
    licence_store.reject(request("store-14"), now=NOW, message="Pimenko refused", attempt_id="a1")
    assert licence_store.order("store-14").state is LicenceState.REJECTED  # type: ignore[union-attr]


def test_a_refused_order_is_reopened_once_with_its_refusal_in_its_history(licence_store):
    licence_store.reject(request("store-15"), now=NOW, message="bad url")
    refused = licence_store.order("store-15")
    assert refused is not None
    corrected = request("store-15", url="https://short.example.org")
    assert licence_store.reopen_refused(corrected, refused=refused, now=NOW + 10)
    assert not licence_store.reopen_refused(corrected, refused=refused, now=NOW + 11)  # the second retry lost
    reopened = licence_store.order("store-15")
    assert reopened is not None
    assert (reopened.state, reopened.retries, reopened.lease_until, reopened.url) == (
        LicenceState.CREATING, 1, 0, "https://short.example.org",
    )  # fmt: skip
    assert reopened.fingerprint == corrected.fingerprint()
    [entry] = licence_store.history("store-15")
    assert (entry["fingerprint"], entry["message"], int(entry["at"])) == (refused.fingerprint, "bad url", NOW + 10)
    # Left with an expired lease: the corrected request's next attempt takes it at once.
    taken = licence_store.hold_order(corrected, attempt_id="a1", now=NOW + 12, lease_seconds=30)
    assert isinstance(taken, OrderRecord)
    assert taken.attempt_id == "a1"


def test_an_order_without_refusals_has_no_history(licence_store):
    assert licence_store.history("never") == []
    licence_store.hold_order(request("store-16"), attempt_id="a1", now=NOW, lease_seconds=30)
    assert licence_store.history("store-16") == []


def test_an_unreadable_event_is_kept_under_its_own_prefix(licence_store):
    licence_store.record_rejected_event("ev-1", problems=[{"field": "order_id", "rule": "missing"}], now=NOW)
    item = raw("rejected-event#ev-1")
    assert item is not None
    assert item["problems"]["L"][0]["M"]["rule"] == {"S": "missing"}
    assert licence_store.order("ev-1") is None


def test_a_pimenko_licence_is_claimed_by_one_order_only(licence_store):
    assert licence_store.claim_licence(9001, "order-a")
    assert licence_store.claim_licence(9001, "order-a")  # the same order again: still its own
    assert not licence_store.claim_licence(9001, "order-b")


def test_create_turns_are_exclusive_until_ended_or_expired(licence_store):
    assert licence_store.take_turn(7, 7, holder="h1", now=NOW, lease_seconds=30)
    assert not licence_store.take_turn(7, 7, holder="h2", now=NOW + 1, lease_seconds=30)
    assert licence_store.take_turn(7, 8, holder="h2", now=NOW + 1, lease_seconds=30)  # another kind
    licence_store.end_turn(7, 7, holder="h2")  # not h2's turn: nothing happens
    assert not licence_store.take_turn(7, 7, holder="h2", now=NOW + 2, lease_seconds=30)
    licence_store.end_turn(7, 7, holder="h1")
    assert licence_store.take_turn(7, 7, holder="h2", now=NOW + 3, lease_seconds=30)
    assert licence_store.take_turn(7, 7, holder="h3", now=NOW + 40, lease_seconds=30)  # h2's lease ran out


def test_a_holder_renews_its_own_turn(licence_store):
    assert licence_store.take_turn(2, 2, holder="h1", now=NOW, lease_seconds=30)
    assert licence_store.take_turn(2, 2, holder="h1", now=NOW + 20, lease_seconds=30)
    assert not licence_store.take_turn(2, 2, holder="h2", now=NOW + 40, lease_seconds=30)  # renewed to NOW + 50
    assert raw("turn#2#2")["lease_until"] == {"N": str(NOW + 50)}  # type: ignore[index]


def test_a_table_error_that_is_not_a_race_is_raised(licence_store):
    missing = LicenceStore("no-such-table")
    for call in (
        lambda: missing.hold_order(request("x"), attempt_id="a", now=NOW, lease_seconds=1),
        lambda: missing.claim_licence(1, "x"),
        lambda: missing.take_turn(1, 1, holder="h", now=NOW, lease_seconds=1),
        lambda: missing.end_turn(1, 1, holder="h"),
        lambda: missing.reject(request("x"), now=NOW, message="m"),
    ):
        with pytest.raises(ClientError, match="ResourceNotFound"):
            call()


def test_a_waiting_event_is_kept_until_forgotten_and_expires_with_the_dlq(licence_store):
    event = {"id": "event-1", "detail": {"orderId": "o-1", "customerReference": "cust-42"}}
    licence_store.keep_waiting("w-1", event, expires_at=NOW + 60)
    assert licence_store.waiting_event("w-1") == event
    assert raw("waiting#w-1")["expires_at"] == {"N": str(NOW + 60)}  # the table's TTL attribute
    assert licence_store.waiting_event("w-2") is None
    licence_store.forget_waiting("w-1")
    assert licence_store.waiting_event("w-1") is None
    licence_store.forget_waiting("w-1")  # a second delivery's forget is harmless
