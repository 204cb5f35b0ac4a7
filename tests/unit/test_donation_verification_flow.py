"""More of the donation ingester's decisions on tests/unit/test_donation_flow.py's fakes: what a callback may carry,
what the fold announces, and what reconciliation recovers, verifies, marks and reports. No emulator, network or sleep.
"""

from __future__ import annotations

import json
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from donation_ingester import callback, fold, reconcile
from donation_ingester.errors import CallbackTokenMissing, InvalidDonation
from donation_ingester.models import DONATION_HINT, DONATION_RECEIVED
from hub_core import aws
from hub_core.http_api import problems_from
from hub_core.ledger import UNCONFIRMED, VERIFIED, read_totals
from partners.errors import PartnerUnavailable
from tests.unit.test_donation_flow import KEY, OTHER, REF, START, World, real_ledger  # noqa: F401 - a fixture

NUMBER = "4512345678"


@pytest.fixture
def world() -> World:
    return World()


@pytest.fixture
def metric_names(monkeypatch) -> list[str]:
    """The names of the metrics the ingester emits (callback, fold and reconcile share the function's one Metrics)."""
    assert callback.metrics is fold.metrics is reconcile.metrics
    emitted: list[str] = []
    add_metric = callback.metrics.add_metric
    monkeypatch.setattr(callback.metrics, "add_metric", lambda **kw: (emitted.append(kw["name"]), add_metric(**kw))[1])
    return emitted


def problems(world: World, payload: dict[str, Any]) -> list[tuple[str, str]]:
    """The (field, rule) pairs the callback's 400 names for `payload` (app.py: problems_from(InvalidDonation))."""
    with pytest.raises(InvalidDonation) as refused:
        callback.parse_donation(world.services, payload)
    return [(problem.field, problem.rule) for problem in problems_from(refused.value.errors)]


# ---------------------------------------------------------------------------------------------------- the callback


@pytest.mark.parametrize("token", ["not-a-token", "local.AAAA", "nokey.abcdef", ""])
def test_a_token_not_shaped_like_one_is_refused_as_missing_before_anything_is_read(world, token):
    with pytest.raises(CallbackTokenMissing):
        callback.verify_token(world.services, KEY, token)
    assert world.directory.reads == 0
    assert world.ledger.items == {}


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"amount": 0}, "amount"),
        ({"amount": -100}, "amount"),
        ({"amount": 12.5}, "amount"),
        ({"amount": 2**31}, "amount"),
        ({"messageKey": "a\x00b"}, "messageKey"),
        ({"msisdn": "+45 12"}, "msisdn"),
        ({"text": "x" * 1001}, "text"),
    ],
)
def test_each_bad_field_is_named(world, payload, field):
    named = problems(world, {"messageKey": "mk-1", "amount": 5000, "msisdn": NUMBER} | payload)
    assert field in {name for name, _ in named}
    assert world.ledger.items == {}


def test_a_malformed_payload_names_each_field_and_its_rule(world):
    named = problems(world, {"amount": "nonsense", "msisdn": "12", "donatedAt": "yesterday"})
    assert ("messageKey", "required") in named
    assert {"messageKey", "amount", "msisdn", "donatedAt"} <= {name for name, _ in named}


@pytest.mark.parametrize("optional", ["donationCode", "routeName", "text"])
def test_a_null_optional_text_field_is_absent_and_a_too_long_one_is_named(world, optional):
    """Found by the API fuzz: JSON null in a length-limited optional field raised a TypeError in pydantic (a 500)."""
    parsed = callback.parse_donation(world.services, {"messageKey": "mk-1", "amount": 5000, optional: None})
    assert getattr(parsed, optional) is None
    assert world.call(**{optional: None}).status == "recorded"
    too_long = {"messageKey": "mk-2", "amount": 5000, optional: "x" * 1001}
    assert problems(world, too_long) == [(optional, "max_length")]


def test_a_callback_without_a_number_stores_none(world):
    world.call(messageKey="mk-minimal", amount="7500")
    item = world.ledger.items["mk-minimal"]
    assert (item["amount"], item["campaign_ref"]) == (7500, REF)  # the campaign from the URL
    assert "msisdn" not in item


def test_the_hint_handed_to_the_fold_names_no_donor(world):
    world.call(msisdn=NUMBER)
    world.call(msisdn=NUMBER)  # a repeat before the fold hands it again, under the same event id
    first, second = world.bus.of(DONATION_HINT)
    assert first["eventId"] == second["eventId"]
    assert first["messageKey"] == "mk-1"
    assert "msisdn" not in json.dumps([first, second])
    assert NUMBER not in json.dumps(world.bus.events)


def test_a_payload_naming_another_code_and_route_is_flagged_for_both(world):
    received = world.call(donationCode="zz99", routeName="other")
    assert received.flags == ["donation_code_mismatch", "route_mismatch"]


# ---------------------------------------------------------------------------------------------------- the fold


def test_the_received_event_flags_the_creators_membership_and_names_the_campaign_not_the_member(world):
    world.campaign(KEY, apps_miles_user_id="am-user-4711")
    world.call(msisdn=NUMBER)
    world.umbrella.lists(KEY, "mk-1", 5000, at=START)
    [(source, kind, _)] = world.bus.events
    assert (source, kind) == ("donation-ingester", DONATION_HINT)  # a hint for the fold, nothing anyone acts on
    world.fold()
    [detail] = world.bus.of(DONATION_RECEIVED)
    assert (detail["appsMilesMember"], detail["campaign"], detail["amount"]) == (True, REF, 5000)
    assert "am-user-4711" not in json.dumps(detail)  # the relay reads it from the campaign
    assert NUMBER not in json.dumps(detail)


def test_a_received_event_of_an_anonymous_campaign_claims_no_member(world):
    world.call()
    world.umbrella.lists(KEY, "mk-1", 5000, at=START)
    world.fold()
    [detail] = world.bus.of(DONATION_RECEIVED)
    assert not detail.get("appsMilesMember")


def test_a_hint_never_confirmed_is_counted_in_a_metric(metric_names):
    world = World(confirm_window_seconds=0)
    world.call()
    assert world.fold().unconfirmed == 1
    assert metric_names.count("DonationUnconfirmed") == 1


# ---------------------------------------------------------------------------------------------------- reconciliation


def reconciled(world: World, key: Any = KEY) -> reconcile.Reconciled:
    return reconcile.reconcile_campaign(world.services, world.directory.campaigns[key.ref])


def test_a_dropped_callback_is_recovered_once_and_its_late_callback_is_a_duplicate(world):
    world.umbrella.lists(KEY, "first", 3000, at=START - 200)
    world.umbrella.lists(KEY, "second", 2000, at=START - 100)
    world.umbrella.collected[REF] = 5000
    result = reconciled(world)
    assert (result.status, result.recovered, result.ledger_amount, result.partner_amount) == ("ok", 2, 5000, 5000)
    again = reconciled(world)
    assert (again.recovered, again.fetched) == (0, 2)
    assert world.ledger.total(REF) == (5000, 2)
    late = world.call(messageKey="first", amount="3000")
    assert (late.status, late.published) == ("duplicate", False)
    assert len(world.bus.of(DONATION_RECEIVED)) == 2


@pytest.mark.parametrize(
    "error",
    [PartnerUnavailable("umbrella", "503", status=503), PartnerUnavailable("umbrella", "timed out", ambiguous=True)],
    ids=["5xx", "timeout"],
)
def test_a_reconciliation_umbrella_cannot_answer_loses_nothing_and_the_next_one_recovers(world, error):
    world.umbrella.lists(KEY, "lost", 900, at=START - 100)
    world.umbrella.error = error
    result = reconciled(world)
    assert (result.status, result.recovered) == ("partner_unavailable", 0)
    assert REF not in world.ledger.states  # no watermark moved
    world.umbrella.error = None
    world.umbrella.collected[REF] = 900
    assert reconciled(world).recovered == 1
    assert world.ledger.total(REF) == (900, 1)


def test_a_real_message_key_sent_to_another_campaigns_url_counts_only_where_umbrella_lists_it():
    world = World(confirm_window_seconds=0)
    world.campaign(OTHER)
    world.umbrella.lists(KEY, "real", 3000, at=START)
    world.umbrella.collected[REF] = 3000
    world.call(OTHER, messageKey="real", amount="3000")  # someone holding the other campaign's URL
    world.fold()
    assert world.ledger.verification("real") == UNCONFIRMED
    assert world.ledger.total(OTHER.ref) == (0, 0)
    result = reconciled(world)
    assert (result.verified, result.status) == (1, "ok")
    assert world.ledger.total(REF) == (3000, 1)
    assert world.ledger.total(OTHER.ref) == (0, 0)
    item = world.ledger.items["real"]
    assert (item["campaign_ref"], item["verification"]) == (REF, VERIFIED)
    assert [detail["campaign"] for detail in world.bus.of(DONATION_RECEIVED)] == [REF]


def test_reconciliation_counts_a_never_listed_callback_it_marks_in_a_metric(metric_names):
    world = World(confirm_window_seconds=0)
    world.call()
    assert reconciled(world).unconfirmed == 1
    assert world.ledger.verification("mk-1") == UNCONFIRMED
    assert "DonationUnconfirmed" in metric_names
    assert world.fold().folded == 0  # its hint then finds nothing left to verify
    assert world.ledger.total(REF) == (0, 0)


def test_drift_is_reported_with_the_campaign_and_never_the_donors(world, caplog, monkeypatch):
    emitted: list[tuple[str, float]] = []
    add_metric = reconcile.metrics.add_metric
    monkeypatch.setattr(
        reconcile.metrics, "add_metric", lambda **kw: (emitted.append((kw["name"], kw["value"])), add_metric(**kw))[1]
    )
    world.umbrella.collected[REF] = 4200  # listed before the watermark's overlap: reconciliation cannot see it
    caplog.set_level(logging.INFO)
    summary = reconcile.reconcile_refs(world.services, [REF])
    [result] = summary["campaigns"]
    assert (result["status"], result["ledger_amount"], result["partner_amount"]) == ("drift", 0, 4200)
    assert summary["drift"] == 1
    [warning] = [record for record in caplog.records if record.getMessage().startswith("ledger differs")]
    assert warning.levelno == logging.WARNING
    assert (warning.campaign, warning.ledger_amount, warning.partner_amount) == (REF, 0, 4200)
    assert ("ReconciliationDrift", 1) in emitted
    assert NUMBER not in str(warning.__dict__)


# ------------------------------------------------------------------------------------------ on the real ledger (moto)


def donation_items() -> list[dict[str, Any]]:
    items = aws.dynamodb().scan(TableName="donations")["Items"]
    return [item for item in items if item["pk"]["S"].startswith("donation#")]


def test_100_concurrent_identical_callbacks_leave_one_record_and_one_count(real_ledger):  # noqa: F811
    world = World()
    world.ledger = real_ledger  # type: ignore[assignment] - DonationLedger's conditional put on moto
    world.umbrella.lists(KEY, "mk-1", 5000, at=START)
    services = world.services
    parsed = callback.parse_donation(services, {"messageKey": "mk-1", "amount": "5000", "msisdn": NUMBER})
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(lambda _: callback.receive(services, KEY, parsed).status, range(100)))
    assert (outcomes.count("recorded"), outcomes.count("duplicate")) == (1, 99)
    assert len(donation_items()) == 1
    report = world.fold()
    assert report.folded == 1
    totals = read_totals("donations", REF)
    assert (totals.amount, totals.count) == (5000, 1)


def test_one_fold_writes_a_campaigns_total_once_per_chunk_on_the_real_ledger(real_ledger, monkeypatch):  # noqa: F811
    world = World(fold_chunk=5)
    world.ledger = real_ledger  # type: ignore[assignment]
    for index in range(12):
        world.call(messageKey=f"k{index}", amount="100")
        world.umbrella.lists(KEY, f"k{index}", 100, at=START)
    client = aws.dynamodb()
    original = client.transact_write_items
    transactions: list[int] = []

    def counting(**kwargs: Any) -> Any:
        transactions.append(len(kwargs["TransactItems"]))
        return original(**kwargs)

    monkeypatch.setattr(client, "transact_write_items", counting)
    report = world.fold()
    assert (report.failed_message_ids, report.folded) == ([], 12)
    assert transactions == [6, 6, 3]  # 5 + 5 + 2 donations, each chunk with the total's one update
    assert report.umbrella_calls == 1  # twelve donations, one campaign, one batch: one question to Umbrella
    assert len(world.umbrella.calls) == 1
    totals = read_totals("donations", REF)
    assert (totals.amount, totals.count) == (1200, 12)
