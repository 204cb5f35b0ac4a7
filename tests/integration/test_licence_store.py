"""LicencesTable's conditional writes against moto: who holds an order, a licence, a create turn."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from licence_issuance.models import LicenceRequest, LicenceState
from licence_issuance.store import LicenceStore, OrderHeld

NOW = 1_800_000_000


@pytest.fixture
def licence_store(stack, monkeypatch):
    for name, value in stack.function_env("LicenceIssuanceFunction").items():
        monkeypatch.setenv(name, value)
    return LicenceStore(stack.physical("LicencesTable"))


def request(order_id: str, **changes) -> LicenceRequest:
    fields = {"order_id": order_id, "customer_reference": "c", "product_id": 1, "licence_type": 1}
    return LicenceRequest(**(fields | {"url": "https://a.example.org"} | changes))


def test_an_order_held_by_a_live_attempt_is_refused_to_another(licence_store):
    first = licence_store.hold_order(request("store-1"), attempt_id="a1", now=NOW, lease_seconds=30)
    assert first.state is LicenceState.CREATING
    second = licence_store.hold_order(request("store-1"), attempt_id="a2", now=NOW + 1, lease_seconds=30)
    assert isinstance(second, OrderHeld)
    assert second.record.attempt_id == "a1"
    # Once the lease has run out, another attempt may take the order over.
    third = licence_store.hold_order(request("store-1"), attempt_id="a3", now=NOW + 31, lease_seconds=30)
    assert third.attempt_id == "a3"


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


def test_a_table_error_that_is_not_a_race_is_raised(stack, monkeypatch):
    for name, value in stack.function_env("LicenceIssuanceFunction").items():
        monkeypatch.setenv(name, value)
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
