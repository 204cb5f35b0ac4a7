"""hub_core.events: the entry each event becomes, and what publish and publish_many report of EventBridge's answer."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from hub_core import aws, events
from tests.conftest import in_process_aws


@pytest.fixture
def bus(monkeypatch):
    with in_process_aws(monkeypatch):
        monkeypatch.setenv("EVENT_BUS_NAME", "hub-bus")
        aws.events().create_event_bus(Name="hub-bus")
        yield


def sent_entries(monkeypatch) -> list[list[dict[str, Any]]]:
    """The Entries of each PutEvents request, as the client was asked to send them."""
    requests: list[list[dict[str, Any]]] = []
    aws.events().meta.events.register(
        "before-parameter-build.events.PutEvents", lambda params, **_: requests.append(list(params["Entries"]))
    )
    return requests


def test_an_event_is_one_compact_entry_on_the_named_bus_under_the_hubs_source(bus, monkeypatch):
    requests = sent_entries(monkeypatch)
    events.publish("lead_intake", "LeadCaptured", {"lead_id": "l1", "amount": 5})
    [[entry]] = requests
    assert entry == {
        "Source": "partner-hub.lead_intake",
        "DetailType": "LeadCaptured",
        "Detail": '{"lead_id":"l1","amount":5}',
        "EventBusName": "hub-bus",
    }


def test_a_detail_value_json_cannot_hold_is_written_as_its_string(bus, monkeypatch):
    requests = sent_entries(monkeypatch)
    at = datetime(2027, 1, 2, 3, 4, 5, tzinfo=UTC)
    events.publish("donation_ingester", "DonationReceived", {"amount": Decimal("12"), "at": at})
    detail = json.loads(requests[0][0]["Detail"])
    assert detail == {"amount": "12", "at": "2027-01-02 03:04:05+00:00"}


def test_without_a_bus_name_nothing_is_sent(bus, monkeypatch):
    monkeypatch.delenv("EVENT_BUS_NAME")
    requests = sent_entries(monkeypatch)
    with pytest.raises(KeyError, match="EVENT_BUS_NAME"):
        events.publish("x", "Y", {})
    assert requests == []


def test_an_accepted_event_raises_nothing_and_a_refusal_names_only_its_code(bus):
    with Stubber(aws.events()) as stub:
        stub.add_response("put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "e1"}]})
        events.publish("x", "Accepted", {"member": "am-secret"})
        stub.add_response("put_events", {"FailedEntryCount": 1, "Entries": [{"ErrorMessage": "no code"}]})
        with pytest.raises(events.EventNotPublished) as refused:
            events.publish("x", "Refused", {"member": "am-secret"})
    assert str(refused.value) == "Refused not published: unknown"
    assert "am-secret" not in str(refused.value)


def test_a_failure_to_reach_eventbridge_is_the_sdks_error_for_publish(bus):
    with Stubber(aws.events()) as stub:
        stub.add_client_error("put_events", service_error_code="ThrottlingException", http_status_code=400)
        with pytest.raises(Exception, match="ThrottlingException"):
            events.publish("x", "Y", {})


def test_publish_many_reports_an_unreachable_bus_as_not_put_and_goes_on(bus, monkeypatch):
    calls: list[int] = []

    class Unreachable:
        def put_events(self, Entries: list[dict[str, Any]]) -> dict[str, Any]:
            calls.append(len(Entries))
            if len(calls) == 1:
                raise EndpointConnectionError(endpoint_url="https://events.example")
            return {"FailedEntryCount": 0, "Entries": [{"EventId": "e"} for _ in Entries]}

    monkeypatch.setattr(aws, "events", Unreachable)
    put = events.publish_many("x", "Y", [{"n": n} for n in range(12)])
    assert calls == [10, 2]
    assert put == [False] * 10 + [True] * 2


def test_publish_many_counts_an_entry_missing_from_the_answer_as_not_put(bus):
    with Stubber(aws.events()) as stub:
        stub.add_response("put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "e1"}]})
        assert events.publish_many("x", "Y", [{"n": 1}, {"n": 2}]) == [True, False]


def test_publish_many_on_moto_puts_every_entry_in_requests_of_ten(bus, monkeypatch):
    requests = sent_entries(monkeypatch)
    put = events.publish_many("fold", "DonationReceived", [{"n": n} for n in range(21)])
    assert put == [True] * 21
    assert [len(entries) for entries in requests] == [10, 10, 1]
    assert [json.loads(entry["Detail"])["n"] for entries in requests for entry in entries] == list(range(21))
    assert events.PUT_EVENTS_MAX_ENTRIES == 10  # PutEvents' own limit
