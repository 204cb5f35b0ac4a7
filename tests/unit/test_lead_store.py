"""LeadStore on moto in-process: a lead stored once, one forwarding attempt at a time, uncertain leads held back."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from hub_core.dynamo import Written, from_item
from lead_intake import store as lead_store
from lead_intake.models import LeadStatus
from lead_intake.store import UNRECORDED, ClaimRefused, LeadRecord, LeadStore, LeadVanished
from tests.conftest import create_hash_table, in_process_aws

TABLE = "Leads"
NOW = 1_800_000_000
LEAD = {"email": "Ann.Bee@Example.org", "phone": "06 12 34 56 78", "firstname": "Ann"}


@pytest.fixture
def store(monkeypatch):
    with in_process_aws(monkeypatch):
        create_hash_table(TABLE, "lead_id")
        yield LeadStore(TABLE, phone_country_code="33")


def raw(lead_id: str) -> dict[str, Any]:
    item = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"lead_id": {"S": lead_id}}).get("Item")
    return from_item(item) if item else {}


def created(store: LeadStore, lead_id: str = "l1", **options: Any) -> LeadRecord | None:
    return store.create(lead_id, LEAD, now=NOW, lease_seconds=30, expires_at=NOW + 86_400, **options)


def queued(store: LeadStore, lead_id: str = "l1", **settle: Any) -> None:
    created(store, lead_id)
    store.settle(lead_id, LeadStatus.QUEUED, now=NOW, message="MiiMOSA unavailable", **settle)


def test_a_new_lead_is_stored_claimed_with_the_keys_erasure_finds_it_by(store):
    assert created(store, apps_miles_user_id="am-1", fingerprint="f", dedup_until=NOW + 60, answer_by=NOW + 25) is None
    item = raw("l1")
    assert (item["status"], item["attempts"], item["lease_until"]) == ("forwarding", 1, NOW + 30)
    assert (item["email_key"], item["phone_key"]) == ("ann.bee@example.org", "33612345678")
    assert (item["apps_miles_user_id"], item["fingerprint"], item["dedup_until"]) == ("am-1", "f", NOW + 60)
    assert (item["answer_by"], item["expires_at"]) == (NOW + 25, NOW + 86_400)


def test_a_lead_without_email_phone_or_member_has_no_index_keys(store):
    store.create("l2", {"firstname": "Ann", "phone": "not a number"}, now=NOW, lease_seconds=30, expires_at=NOW + 1)
    item = raw("l2")
    for absent in ("email_key", "phone_key", "apps_miles_user_id", "fingerprint", "dedup_until", "answer_by"):
        assert absent not in item  # a sparse index key may not be empty


def test_the_same_id_again_answers_with_the_stored_lead_unchanged(store):
    created(store, fingerprint="first", dedup_until=NOW + 60)
    other = {"email": "x@example.org"}
    existing = store.create("l1", other, now=NOW + 5, lease_seconds=30, expires_at=NOW, fingerprint="second")
    assert existing is not None
    assert (existing.fingerprint, existing.lead["email"], existing.dedup_until) == ("first", LEAD["email"], NOW + 60)
    assert raw("l1")["updated_at"] == NOW


def test_a_refusal_with_nothing_behind_it_is_a_vanished_lead(store, monkeypatch):
    monkeypatch.setattr(lead_store, "put_if", lambda **_: Written(applied=False))  # erased between check and answer
    with pytest.raises(LeadVanished) as caught:
        created(store)
    assert "l1" not in str(caught.value)
    monkeypatch.setattr(lead_store, "update_if", lambda **_: Written(applied=False))
    with pytest.raises(LeadVanished):
        store.link_successor("l1", "l2", now=NOW, until=NOW + 60)


def test_get_reads_the_lead_or_none(store):
    assert store.get("l1") is None
    created(store)
    record = store.get("l1")
    assert record is not None
    assert (record.status, record.attempts, record.answer_by, record.successor) == (
        LeadStatus.FORWARDING, 1, None, None,
    )  # fmt: skip


def test_only_a_lead_no_attempt_took_is_discarded(store):
    created(store, "l1")
    store.discard("l1")
    assert store.get("l1") is None
    queued(store, "l2")
    store.claim("l2", now=NOW + 1, lease_seconds=30)  # a second attempt took it: attempts 2
    store.discard("l2")
    assert store.get("l2") is not None


def test_a_successor_is_linked_only_after_the_heads_window_and_the_last_successors(store):
    created(store, "head", fingerprint="f", dedup_until=NOW + 60)
    refused = store.link_successor("head", "s1", now=NOW + 59, until=NOW + 120)
    assert refused is not None  # the head's own window is still open
    assert store.link_successor("head", "s1", now=NOW + 61, until=NOW + 120) is None
    other = store.link_successor("head", "s2", now=NOW + 100, until=NOW + 180)
    assert other is not None
    assert other.successor == "s1"
    assert store.link_successor("head", "s2", now=NOW + 100, until=NOW + 180, replacing="s1") is None  # s1 gone
    assert store.link_successor("head", "s3", now=NOW + 181, until=NOW + 240) is None  # s2's window is over
    assert (raw("head")["successor"], raw("head")["successor_until"]) == ("s3", NOW + 240)


def test_a_missing_head_is_no_link(store):
    with pytest.raises(LeadVanished):
        store.link_successor("no-head", "s1", now=NOW, until=NOW + 60)


def test_an_unrecorded_acceptance_is_marked_on_a_forwarding_lead_only(store):
    created(store, "l1", answer_by=NOW + 25)
    store.mark_unrecorded("l1")
    record = store.get("l1")
    assert record is not None
    assert (record.message, record.answer_by) == (UNRECORDED, None)
    store.settle("l1", LeadStatus.FORWARDED, now=NOW, message="accepted")
    store.mark_unrecorded("l1")  # settled meanwhile: nothing to mark
    assert store.get("l1").message == "accepted"  # type: ignore[union-attr]


def test_a_queued_lead_is_claimed_by_one_delivery_only(store):
    queued(store)
    claimed = store.claim("l1", now=NOW + 1, lease_seconds=30)
    assert isinstance(claimed, LeadRecord)
    assert (claimed.status, claimed.attempts) == (LeadStatus.FORWARDING, 2)
    again = store.claim("l1", now=NOW + 2, lease_seconds=30)
    assert isinstance(again, ClaimRefused)
    assert again.record is not None
    assert again.record.attempts == 2


def test_a_claim_waits_for_miimosas_retry_after(store):
    queued(store, not_before=NOW + 120)
    assert isinstance(store.claim("l1", now=NOW + 119, lease_seconds=30), ClaimRefused)
    assert isinstance(store.claim("l1", now=NOW + 120, lease_seconds=30), LeadRecord)


def test_a_claim_of_a_gone_or_settled_lead_is_refused(store):
    assert store.claim("never", now=NOW, lease_seconds=30) == ClaimRefused(None)
    created(store)
    store.settle("l1", LeadStatus.FORWARDED, now=NOW, reference="mm-1")
    refused = store.claim("l1", now=NOW + 999, lease_seconds=30)
    assert isinstance(refused, ClaimRefused)
    assert refused.record.status is LeadStatus.FORWARDED  # type: ignore[union-attr]


def test_an_expired_forwarding_lease_is_never_claimed_until_it_is_uncertain_and_its_extra_lease_ends(store):
    created(store)  # leased until NOW + 30
    assert isinstance(store.claim("l1", now=NOW + 31, lease_seconds=30), ClaimRefused)  # it may be at MiiMOSA
    assert not store.mark_uncertain("l1", now=NOW + 29, lease_seconds=30)  # the lease still runs
    assert store.mark_uncertain("l1", now=NOW + 31, lease_seconds=30)
    assert not store.mark_uncertain("l1", now=NOW + 99, lease_seconds=30)  # marked once, the extra lease kept
    assert raw("l1")["uncertain_since"] == NOW + 31
    assert isinstance(store.claim("l1", now=NOW + 61, lease_seconds=30), ClaimRefused)  # within the extra lease
    claimed = store.claim("l1", now=NOW + 62, lease_seconds=30)
    assert isinstance(claimed, LeadRecord)
    assert "uncertain_since" not in raw("l1")


def test_a_late_acceptance_settles_a_forwarding_or_queued_lead_once(store):
    created(store, "l1", answer_by=NOW + 25)
    store.mark_uncertain("l1", now=NOW + 31, lease_seconds=30)
    settled = store.settle_accepted("l1", now=NOW + 40, reference="mm-9")
    assert settled is not None
    assert (settled.status, settled.message, settled.answer_by) == (LeadStatus.FORWARDED, "", None)
    item = raw("l1")
    assert item["partner_reference"] == "mm-9"
    assert not {"lease_until", "uncertain_since", "not_before"} & set(item)
    assert store.settle_accepted("l1", now=NOW + 41, reference="mm-9") is None
    queued(store, "l2", not_before=NOW + 300)
    assert store.settle_accepted("l2", now=NOW + 1, reference=None) is not None
    assert "partner_reference" not in raw("l2")
    assert store.settle_accepted("never", now=NOW, reference=None) is None


def test_a_settle_releases_the_lease_and_sets_or_clears_the_pause(store):
    queued(store, not_before=NOW + 60)
    assert raw("l1")["not_before"] == NOW + 60
    store.settle("l1", LeadStatus.REJECTED, now=NOW + 1, message="bad phone")
    item = raw("l1")
    assert (item["status"], item["message"]) == ("rejected", "bad phone")
    assert not {"lease_until", "not_before", "answer_by"} & set(item)


def test_a_table_error_that_is_not_a_race_is_raised(store):
    missing = LeadStore("no-such-table")
    for call in (
        lambda: created(missing),
        lambda: missing.claim("l1", now=NOW, lease_seconds=1),
        lambda: missing.mark_uncertain("l1", now=NOW, lease_seconds=1),
        lambda: missing.settle("l1", LeadStatus.QUEUED, now=NOW),
    ):
        with pytest.raises(ClientError, match="ResourceNotFound"):
            call()
