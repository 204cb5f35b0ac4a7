"""CampaignsTable's conditional writes on moto in-process: a code held by one attempt, changes on a live campaign."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from campaign_lifecycle.models import CampaignForm, CampaignKey, CampaignState
from campaign_lifecycle.store import CampaignStore, Claim, CodeHeld
from hub_core import reconcile_index
from tests.conftest import create_hash_table, in_process_aws

TABLE = "Campaigns"
NOW = 1_800_000_000


@pytest.fixture
def campaign_store(monkeypatch):
    with in_process_aws(monkeypatch):
        create_hash_table(TABLE, "campaign_ref")
        yield CampaignStore(TABLE)


def form(code: str, **changes) -> CampaignForm:
    fields = {
        "serviceId": 1, "route": "hjerte", "donationCode": code, "amount": 100, "campaignName": "Anna",
        "confirmMsisdn": "4512345678", "appsMilesUserId": "am-1",
    }  # fmt: skip
    return CampaignForm(**(fields | changes))


def key(code: str) -> CampaignKey:
    return CampaignKey(service_id=1, route="hjerte", donation_code=code)


def claim(campaign_store, code, attempt, now=NOW, **changes):
    return campaign_store.claim(
        form(code, **changes), attempt_id=attempt, manage_token_hash="h", answer_message="Tak",
        confirm_text="Ok", callback_base="https://x", now=now, lease_seconds=30,
    )  # fmt: skip


def raw_item(code: str) -> dict:
    return boto3.client("dynamodb").get_item(TableName=TABLE, Key={"campaign_ref": {"S": key(code).ref}})["Item"]


def test_a_code_is_held_by_one_attempt_until_its_lease_runs_out(campaign_store):
    assert isinstance(claim(campaign_store, "st1", "a1"), Claim)
    held = claim(campaign_store, "st1", "a2", now=NOW + 1)
    assert isinstance(held, CodeHeld)
    assert held.record.state is CampaignState.CREATING
    assert claim(campaign_store, "st1", "a2", now=NOW + 30).__class__ is CodeHeld  # the lease's last second
    taken_over = claim(campaign_store, "st1", "a3", now=NOW + 31)
    assert isinstance(taken_over, Claim)
    assert taken_over.previous is not None
    assert taken_over.previous.attempt_id == "a1"


def test_a_new_code_has_no_previous_attempt_and_a_fresh_record(campaign_store):
    claimed = claim(campaign_store, "st0", "a1")
    assert claimed == Claim("a1", None)
    record = campaign_store.get(key("st0"))
    assert record is not None
    assert (record.state, record.version, record.lease_until) == (CampaignState.CREATING, 1, NOW + 30)
    assert (record.amount, record.confirm_msisdn, record.apps_miles_user_id) == (100, "4512345678", "am-1")
    assert record.history == [{"at": NOW, "action": "create_requested"}]
    assert record.callback_token_hash is None  # not given: not written
    assert record.request_fingerprint == form("st0").fingerprint()


def test_the_callback_token_hash_is_kept_and_no_member_id_without_one(campaign_store):
    campaign_store.claim(
        form("st9", appsMilesUserId=None), attempt_id="a1", manage_token_hash="h", answer_message="Tak",
        confirm_text="Ok", callback_base="https://x", now=NOW, lease_seconds=30, callback_token_hash="cb",
    )  # fmt: skip
    item = raw_item("st9")
    assert item["callback_token_hash"] == {"S": "cb"}
    assert "apps_miles_user_id" not in item


def test_an_unknown_code_reads_as_none(campaign_store):
    assert campaign_store.get(key("nothing")) is None


def test_an_active_campaign_is_never_taken_over(campaign_store):
    claim(campaign_store, "st2", "a1")
    active = campaign_store.activate(key("st2"), "a1", now=NOW, recovered=False)
    assert active.apps_miles_user_id == "am-1"
    assert active.state is CampaignState.ACTIVE
    assert active.lease_until == 0  # the lease is removed: the code is the campaign's for good
    assert isinstance(claim(campaign_store, "st2", "a2", now=NOW + 999), CodeHeld)


def test_activation_enters_the_reconcilable_index_and_notes_a_recovery(campaign_store):
    claim(campaign_store, "st6", "a1")
    active = campaign_store.activate(
        key("st6"), "a1", now=NOW + 5, recovered=True, manage_token_hash="h-new", callback_token_hash="cb-new"
    )
    assert active.history[-1] == {"at": NOW + 5, "action": "created", "recovered": True}
    assert (active.manage_token_hash, active.callback_token_hash) == ("h-new", "cb-new")
    item = raw_item("st6")
    assert item[reconcile_index.PARTITION_ATTRIBUTE] == {"S": reconcile_index.PARTITION}
    assert item[reconcile_index.OPEN_UNTIL_ATTRIBUTE] == {"N": str(reconcile_index.STILL_OPEN)}
    assert "ambiguous" not in item


def test_only_the_attempt_holding_the_code_may_settle_it(campaign_store):
    claim(campaign_store, "st7", "a1")
    for settle in (
        lambda: campaign_store.activate(key("st7"), "a2", now=NOW, recovered=False),
        lambda: campaign_store.hold(key("st7"), "a2", now=NOW, ambiguous=True),
        lambda: campaign_store.release(key("st7"), "a2"),
    ):
        with pytest.raises(ClientError, match="ConditionalCheckFailed"):
            settle()
    record = campaign_store.get(key("st7"))
    assert record is not None
    assert (record.state, record.attempt_id) == (CampaignState.CREATING, "a1")


def test_a_released_code_is_free_for_anyone(campaign_store):
    claim(campaign_store, "st8", "a1")
    campaign_store.release(key("st8"), "a1")
    assert campaign_store.get(key("st8")) is None
    assert claim(campaign_store, "st8", "a2", now=NOW + 1) == Claim("a2", None)


def test_a_held_code_is_pending_and_may_be_claimed_at_once(campaign_store):
    claim(campaign_store, "st10", "a1")
    held = campaign_store.hold(key("st10"), "a1", now=NOW + 2, ambiguous=True)
    assert (held.state, held.ambiguous, held.lease_until) == (CampaignState.PENDING, True, 0)
    assert held.history[-1] == {"at": NOW + 2, "action": "create_interrupted"}
    again = claim(campaign_store, "st10", "a2", now=NOW + 3)  # no lease to wait for
    assert isinstance(again, Claim)
    assert again.previous is not None
    assert again.previous.ambiguous


def test_a_restored_attempt_is_pending_under_its_own_request(campaign_store):
    claim(campaign_store, "st3", "a1")
    campaign_store.hold(key("st3"), "a1", now=NOW, ambiguous=True)
    other = claim(campaign_store, "st3", "a2", now=NOW + 1, amount=999)
    assert isinstance(other, Claim)
    assert other.previous is not None
    campaign_store.restore(other.previous, "a2")
    restored = campaign_store.get(key("st3"))
    assert restored is not None
    assert (restored.state, restored.attempt_id, restored.amount) == (CampaignState.PENDING, "a1", 100)
    assert restored.history == other.previous.history
    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        campaign_store.restore(other.previous, "a2")  # a2 no longer holds it: a third attempt's state stays


def test_a_restored_attempt_of_an_erased_creator_has_no_empty_number(campaign_store):
    claim(campaign_store, "st11", "a1")
    previous = campaign_store.get(key("st11"))
    assert previous is not None
    erased = type(previous)(**{**previous.__dict__, "confirm_msisdn": "", "apps_miles_user_id": None})
    campaign_store.restore(erased, "a1")
    item = raw_item("st11")
    assert "confirm_msisdn" not in item  # an index key may not be an empty string
    assert "apps_miles_user_id" not in item
    assert campaign_store.get(key("st11")).confirm_msisdn == ""  # type: ignore[union-attr]


def test_changes_need_the_version_they_were_read_at(campaign_store):
    claim(campaign_store, "st4", "a1")
    record = campaign_store.activate(key("st4"), "a1", now=NOW, recovered=False)
    changed = campaign_store.apply_changes(
        record, {"amount": 200}, now=NOW, callback_base="https://x", callback_token_hash="h2"
    )
    assert changed is not None
    assert changed.version == record.version + 1
    assert (
        campaign_store.apply_changes(
            record, {"amount": 300}, now=NOW, callback_base="https://x", callback_token_hash="h3"
        )
        is None
    )
    assert campaign_store.mark_stopped(key("st4"), now=NOW) is not None
    assert campaign_store.mark_stopped(key("st4"), now=NOW) is None


def test_changes_are_written_under_the_tables_names_with_their_history(campaign_store):
    claim(campaign_store, "st12", "a1")
    record = campaign_store.activate(key("st12"), "a1", now=NOW, recovered=False)
    changed = campaign_store.apply_changes(
        record, {"answerMessage": "Mange tak", "confirmText": "Ja", "amount": 250}, now=NOW + 9,
        callback_base="https://y", callback_token_hash="cb2",
    )  # fmt: skip
    assert changed is not None
    assert (changed.answer_message, changed.confirm_text, changed.amount) == ("Mange tak", "Ja", 250)
    assert (changed.callback_base, changed.callback_token_hash, changed.updated_at) == ("https://y", "cb2", NOW + 9)
    fields = ["amount", "answerMessage", "confirmText"]
    assert changed.history[-1] == {"at": NOW + 9, "action": "updated", "fields": fields}


def test_a_campaign_still_being_created_takes_no_changes(campaign_store):
    claim(campaign_store, "st13", "a1")
    creating = campaign_store.get(key("st13"))
    assert creating is not None
    unchanged = campaign_store.apply_changes(
        creating, {"amount": 1}, now=NOW, callback_base="https://x", callback_token_hash="h"
    )
    assert unchanged is None
    assert campaign_store.mark_stopped(key("st13"), now=NOW) is None
    assert campaign_store.mark_stopped(key("never-made"), now=NOW) is None


def test_a_stop_closes_the_campaigns_index_range_at_its_time(campaign_store):
    claim(campaign_store, "st14", "a1")
    campaign_store.activate(key("st14"), "a1", now=NOW, recovered=False)
    stopped = campaign_store.mark_stopped(key("st14"), now=NOW + 60, action="stopped_by_owner")
    assert stopped is not None
    assert (stopped.state, stopped.stopped_at, stopped.version) == (CampaignState.STOPPED, NOW + 60, 2)
    assert stopped.history[-1] == {"at": NOW + 60, "action": "stopped_by_owner"}
    assert raw_item("st14")[reconcile_index.OPEN_UNTIL_ATTRIBUTE] == {"N": str(NOW + 60)}


def test_a_table_error_that_is_not_a_race_is_raised(campaign_store):
    missing = CampaignStore("no-such-table")
    for call in (
        lambda: claim(missing, "st5", "a"),
        lambda: missing.mark_stopped(key("st5"), now=NOW),
    ):
        with pytest.raises(ClientError, match="ResourceNotFound"):
            call()
