"""Erasure's decisions on in-memory collaborators and an injected clock: no emulator, no network, no sleep.

What each identifier erases where, what app's miles' answers make of the report, and what becomes of an erasure
that cannot finish at once (kept by id, retried, never a DLQ holding the person's identifiers).
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from erasure import app, deferred, flow
from erasure.models import MIIMOSA_NOTE, AppsMilesOutcome
from erasure.services import ErasureServices
from erasure.settings import ErasureSettings
from hub_core.config import ConfigError
from partners.appsmiles_wire import MultideleteResult
from partners.errors import PartnerAuthError, PartnerBadResponse, PartnerError, PartnerRejected, PartnerUnavailable

START = 1_800_000_000.0
EMAIL = "Zoe.Canary@Example.org"
NUMBER = "4512345678"
USER = "member-42"


class FakeStore:
    """ErasureStore: each call recorded with its arguments; `counts` says how many items each one erases."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.counts = {"leads": 2, "campaigns": 1, "donations": 3, "loyalty": 4, "licences": 1}
        self.fail: str | None = None

    def _called(self, name: str, **arguments: Any) -> int:
        self.calls.append((name, arguments))
        if self.fail == name:
            raise RuntimeError("ProvisionedThroughputExceededException")
        return self.counts[name]

    def erase_leads(self, *, email_key: str | None, user_id: str | None, phone_key: str | None = None) -> int:
        return self._called("leads", email_key=email_key, user_id=user_id, phone_key=phone_key)

    def erase_campaign_creator(self, *, msisdn: str | None, user_id: str | None, now: int) -> int:
        return self._called("campaigns", msisdn=msisdn, user_id=user_id, now=now)

    def erase_donor(self, msisdn_keys: list[str]) -> int:
        return self._called("donations", keys=list(msisdn_keys))

    def erase_loyalty_user(self, user_id: str) -> int:
        return self._called("loyalty", user_id=user_id)

    def erase_licence_member(self, user_id: str) -> int:
        return self._called("licences", user_id=user_id)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


class FakeHasher:
    def candidates(self, msisdn: str) -> list[str]:
        return [f"k2:hash-{len(msisdn)}", f"k1:hash-{len(msisdn)}"]


class FakeAppsMiles:
    def __init__(self) -> None:
        self.calls: list[list[str]] = []
        self.error: PartnerError | None = None
        self.known: set[str] = {USER}

    def multidelete(self, user_ids: list[str]) -> MultideleteResult:
        self.calls.append(list(user_ids))
        if self.error is not None:
            raise self.error
        return MultideleteResult(
            deleted=[u for u in user_ids if u in self.known], unknown=[u for u in user_ids if u not in self.known]
        )


class FakeDeferred:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def keep(self, request_id: str, request: dict[str, Any], *, created_at: int, expires_at: int) -> None:
        self.items[request_id] = {"request": request, "created_at": created_at, "expires_at": expires_at}

    def get(self, request_id: str) -> dict[str, Any] | None:
        item = self.items.get(request_id)
        return None if item is None else dict(item["request"])

    def delete(self, request_id: str) -> None:
        self.items.pop(request_id, None)


class World:
    def __init__(self, **settings: Any) -> None:
        self.now = START
        self.store = FakeStore()
        self.appsmiles = FakeAppsMiles()
        self.appsmiles_built = 0
        self.deferred = FakeDeferred()
        self.sent: list[tuple[dict[str, Any], int]] = []
        self.ids = iter(f"req-{index}" for index in range(100))
        self.settings = ErasureSettings(
            leads_table_name="leads",
            campaigns_table_name="campaigns",
            donations_table_name="donations",
            loyalty_table_name="loyalty",
            licences_table_name="licences",
            erasure_requests_table_name="requests",
            erasure_retry_queue_url="http://127.0.0.1:9/queue",
            phone_country_code="45",
            **settings,
        )

    def _appsmiles(self) -> FakeAppsMiles:
        self.appsmiles_built += 1
        return self.appsmiles

    @property
    def services(self) -> ErasureServices:
        return ErasureServices(
            settings=self.settings,
            store=self.store,  # type: ignore[arg-type]
            hasher=FakeHasher(),  # type: ignore[arg-type]
            appsmiles=self._appsmiles,  # type: ignore[arg-type]
            deferred=self.deferred,  # type: ignore[arg-type]
            send_retry=lambda body, delay: self.sent.append((dict(body), delay)),
            new_id=lambda: next(self.ids),
            now=lambda: self.now,
        )

    def erase(self, **fields: Any) -> Any:
        return flow.erase(self.services, flow.parse(self.services, fields))


@pytest.fixture
def world() -> World:
    return World()


# ------------------------------------------------------------------------------------------- what is erased where


def test_an_email_erases_leads_by_their_key_and_asks_no_partner(world):
    world.services  # noqa: B018 - built as the handler's edge would, and app's miles not asked to build a client
    report = world.erase(email=EMAIL)
    assert world.store.calls == [("leads", {"email_key": "zoe.canary@example.org", "user_id": None, "phone_key": None})]
    assert (report.erased.leads, report.appsmiles, report.notes) == (2, AppsMilesOutcome.NOT_ASKED, [MIIMOSA_NOTE])
    assert world.appsmiles_built == 0  # no app's miles setting is needed for this one


@pytest.mark.parametrize("typed", ["+45 12 34 56 78", "0045 12345678", "4512345678"])
def test_a_number_however_typed_is_erased_as_the_hub_stores_it(world, typed):
    report = world.erase(msisdn=typed)
    calls = dict(world.store.calls)
    assert calls["leads"]["phone_key"] == NUMBER
    assert calls["campaigns"] == {"msisdn": NUMBER, "user_id": None, "now": int(START)}
    # Every key of the ring, and the number itself (donations stored before hashing).
    assert calls["donations"] == {"keys": ["k2:hash-10", "k1:hash-10", NUMBER]}
    assert "loyalty" not in calls
    assert (report.erased.campaigns, report.erased.donations, report.notes) == (1, 3, [])


def test_an_app_s_miles_user_is_erased_here_then_there(world):
    report = world.erase(appsMilesUserId=USER)
    assert world.store.names() == ["leads", "campaigns", "loyalty", "licences"]
    assert world.appsmiles.calls == [[USER]]
    assert report.appsmiles == AppsMilesOutcome.DELETED
    assert report.body()["erased"] == {"leads": 2, "campaigns": 1, "donations": 0, "loyalty_records": 4, "licences": 1}


def test_a_user_app_s_miles_does_not_know_is_reported_unknown(world):
    world.appsmiles.known = set()
    assert world.erase(appsMilesUserId=USER).appsmiles == AppsMilesOutcome.UNKNOWN


@pytest.mark.parametrize(
    "error",
    [
        PartnerUnavailable("appsmiles", "503", status=503),
        PartnerUnavailable("appsmiles", "read timed out", ambiguous=True),
        PartnerUnavailable("appsmiles", "429", status=429, retry_after=7.0),
        PartnerBadResponse("appsmiles", "multidelete answered no deleted/unknown lists"),
        PartnerAuthError("appsmiles", "401", status=401),
        PartnerRejected("appsmiles", "400", status=400),
    ],
    ids=["5xx", "timeout", "429", "malformed", "auth", "4xx"],
)
def test_when_app_s_miles_fails_the_local_erasure_stands_and_is_reported(world, error):
    world.appsmiles.error = error
    with pytest.raises(flow.PartnerStepFailed) as caught:
        world.erase(appsMilesUserId=USER)
    assert caught.value.cause is error
    assert caught.value.report.appsmiles is None
    assert caught.value.report.erased.loyalty_records == 4  # the hub's tables were erased first
    assert world.store.names() == ["leads", "campaigns", "loyalty", "licences"]


def test_nothing_is_logged_of_the_person(world, caplog):
    caplog.set_level(logging.DEBUG)
    world.erase(email=EMAIL, msisdn=NUMBER, appsMilesUserId=USER)
    text = caplog.text + json.dumps([record.__dict__ for record in caplog.records], default=str)
    for value in (EMAIL, EMAIL.casefold(), NUMBER, USER):
        assert value not in text


# ------------------------------------------------------------------------------------------- what is refused


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({}, "body"),
        ({"email": "not-an-address"}, "email"),
        ({"msisdn": "call me"}, "msisdn"),
        ({"appsMilesUserId": "has spaces"}, "appsMilesUserId"),
        ({"email": EMAIL, "name": "Zoe"}, "name"),
    ],
)
def test_a_request_that_names_nobody_acceptably_erases_nothing(world, fields, field):
    with pytest.raises(flow.Invalid) as caught:
        world.erase(**fields)
    problems = [problem.as_dict() for problem in caught.value.problems]
    assert field in json.dumps(problems)
    assert "not-an-address" not in json.dumps(problems)
    assert "call me" not in json.dumps(problems)
    assert world.store.calls == []


def test_a_body_that_is_not_an_object_is_invalid(world):
    with pytest.raises(flow.Invalid):
        flow.parse(world.services, ["someone@example.org"])


@pytest.mark.parametrize(
    ("body", "field", "rule"),
    [
        ({}, "body", "identifier_required"),
        ({"email": None}, "body", "identifier_required"),
        ([1, 2], "body", "object"),
        ({"msisdn": "+45 1234"}, "msisdn", "msisdn_format"),
        ({"email": "x" * 300 + "@example.org"}, "email", "max_length"),
        ({"appsMilesUserId": ""}, "appsMilesUserId", "pattern"),
        ({"phone": "4512345678"}, "phone", "unknown_field"),
    ],
)
def test_each_refusal_names_its_field_and_rule(world, body, field, rule):
    with pytest.raises(flow.Invalid) as caught:
        flow.parse(world.services, body)
    assert {"field": field, "rule": rule} in [
        {"field": p["field"], "rule": p["rule"]} for p in (problem.as_dict() for problem in caught.value.problems)
    ]


# ------------------------------------------------------------------------------------------- by event, and later


def event(detail: Any) -> dict[str, Any]:
    return {"id": "ev-1", "detail-type": "ErasureRequested", "source": "back-office", "detail": detail}


def test_a_bad_event_is_acknowledged_with_its_problems_and_not_kept(world):
    answer = app.handle_erasure_requested(world.services, event({"email": "nope"}))
    assert answer["rejected"] is True
    assert {p["field"] for p in answer["problems"]} == {"email"}
    answer = app.handle_erasure_requested(world.services, event({"phone": "4512345678"}))
    assert {p["field"] for p in answer["problems"]} == {"phone"}
    assert (world.deferred.items, world.sent) == ({}, [])


def test_an_event_app_s_miles_cannot_finish_is_kept_by_id_and_retried_by_id(world):
    world.appsmiles.error = PartnerUnavailable("appsmiles", "503", status=503)
    answer = app.handle_erasure_requested(world.services, event({"appsMilesUserId": USER, "email": EMAIL}))
    assert answer["deferred"] == "req-0"
    assert answer["erased"]["loyalty_records"] == 4
    kept = world.deferred.items["req-0"]
    assert kept["request"] == {"appsMilesUserId": USER, "email": "Zoe.Canary@example.org"}  # as check_email gives it
    assert kept["expires_at"] - kept["created_at"] == 14 * 86_400
    # The queue's message (and so its DLQ's) carries the id, never the person.
    assert world.sent == [({deferred.MESSAGE_KEY: "req-0"}, 60)]


def test_an_event_whose_tables_fail_part_way_is_kept_for_a_whole_new_attempt(world):
    world.store.fail = "donations"
    answer = app.handle_erasure_requested(world.services, event({"msisdn": NUMBER}))
    assert answer == {"deferred": "req-0"}
    assert world.deferred.items["req-0"]["request"] == {"msisdn": NUMBER}


def test_a_retry_that_fails_again_keeps_the_request_and_one_that_succeeds_forgets_it(world):
    world.appsmiles.error = PartnerUnavailable("appsmiles", "503", status=503)
    request_id = deferred.defer(world.services, flow.parse(world.services, {"appsMilesUserId": USER}))
    with pytest.raises(deferred.ErasureNotDoneYet):
        deferred.retry(world.services, request_id)
    assert request_id in world.deferred.items
    world.appsmiles.error = None
    report = deferred.retry(world.services, request_id)
    assert report is not None
    assert report["appsmiles"] == "deleted"
    assert world.deferred.items == {}
    assert deferred.retry(world.services, request_id) is None  # done: a redelivery does nothing


def test_a_retry_record_naming_a_request_retries_it(world):
    world.deferred.keep("r-1", {"email": EMAIL}, created_at=0, expires_at=1)
    record = SQSRecord({"messageId": "m1", "body": json.dumps({deferred.MESSAGE_KEY: "r-1"})})
    deferred._retry_record(world.services, record)
    assert world.store.names() == ["leads"]
    assert world.deferred.items == {}


def test_lambda_s_failure_record_of_an_event_is_erased_from_its_event(world):
    body = {"requestPayload": event({"appsMilesUserId": USER}), "responsePayload": {"errorType": "Exception"}}
    deferred._retry_record(world.services, SQSRecord({"messageId": "m1", "body": json.dumps(body)}))
    assert world.appsmiles.calls == [[USER]]


@pytest.mark.parametrize("body", ["not json", json.dumps({"other": 1}), json.dumps([1, 2])])
def test_a_retry_message_without_a_request_is_dropped_not_retried_for_ever(world, body):
    deferred._retry_record(world.services, SQSRecord({"messageId": "m1", "body": body}))
    assert world.store.calls == []


def test_the_cli_s_erasure_answers_app_s_miles_failure_as_data(world):
    world.appsmiles.error = PartnerUnavailable("appsmiles", "503 from app's miles", status=503)
    answer = app.handle_direct(world.services, {"appsMilesUserId": USER})
    assert (answer["error"], answer["retryable"], answer["erased"]["licences"]) == ("partner_unavailable", True, 1)
    world.appsmiles.error = PartnerRejected("appsmiles", "unknown partner")
    answer = app.handle_direct(world.services, {"appsMilesUserId": USER})
    assert (answer["error"], answer["retryable"]) == ("partner_failed", False)
    assert app.handle_direct(world.services, {})["error"] == "validation_failed"


def test_a_missing_app_s_miles_setting_fails_only_an_erasure_that_needs_app_s_miles(world):
    def unconfigured() -> Any:
        raise ConfigError("APPSMILES_BASE_URL is not set")

    services = world.services
    services = ErasureServices(**{**services.__dict__, "appsmiles": unconfigured})
    assert flow.erase(services, flow.parse(services, {"email": EMAIL})).erased.leads == 2
    with pytest.raises(ConfigError):
        flow.erase(services, flow.parse(services, {"appsMilesUserId": USER}))


# ------------------------------------------------------------------------------------------- the fake's contract


def test_the_deferred_requests_table_keeps_a_request_until_it_is_deleted(monkeypatch):
    import boto3  # noqa: PLC0415
    from moto import mock_aws  # noqa: PLC0415

    from erasure.store import DeferredRequests  # noqa: PLC0415
    from hub_core import aws  # noqa: PLC0415

    with mock_aws():
        client = boto3.client("dynamodb", region_name="eu-north-1")
        client.create_table(
            TableName="requests",
            KeySchema=[{"AttributeName": "request_id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "request_id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        monkeypatch.setattr(aws, "dynamodb", lambda: client)
        for table in (DeferredRequests("requests"), FakeDeferred()):
            assert table.get("r-1") is None
            table.keep("r-1", {"email": EMAIL, "appsMilesUserId": USER}, created_at=10, expires_at=20)
            assert table.get("r-1") == {"email": EMAIL, "appsMilesUserId": USER}
            table.delete("r-1")
            assert table.get("r-1") is None
            table.delete("r-1")  # a second delete (a redelivery) is no error
        item = client.scan(TableName="requests")["Items"]
        assert item == []


def test_the_real_services_are_built_once_per_container_without_calling_anything(monkeypatch):
    from erasure import services as edge  # noqa: PLC0415
    from hub_core import aws  # noqa: PLC0415

    for name in ("LEADS", "CAMPAIGNS", "DONATIONS", "LOYALTY", "ERASURE_REQUESTS"):
        monkeypatch.setenv(f"{name}_TABLE_NAME", name.lower())
    monkeypatch.setenv("ERASURE_RETRY_QUEUE_URL", "http://127.0.0.1:9/queue")

    def no_aws() -> Any:
        raise AssertionError("building the services called AWS")

    monkeypatch.setattr(aws, "dynamodb", no_aws)
    monkeypatch.setattr(aws, "sqs", no_aws)
    built = edge.services()
    assert built is edge.services()
    assert (built.store.leads, built.deferred.table_name) == ("leads", "erasure_requests")
    assert built.new_id() != built.new_id()
