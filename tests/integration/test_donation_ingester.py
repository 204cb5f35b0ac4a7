"""Donation ingester through its handler: Umbrella's callbacks in three forms, verified by the fold, reconciliation.

A callback is a hint: only donations that the Umbrella sandbox lists are counted. `real_donation` makes one there
(without its callback, which the test then sends itself); `donation` makes a payload Umbrella never heard of.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest

from donation_ingester import callback
from hub_core import events
from hub_core.caches import reset_all
from hub_core.ledger import PendingTotals, read_pending
from tests.conftest import load_event
from tests.integration.conftest import CANARY_MSISDN, UMBRELLA_KEY, response_json
from tests.integration.test_campaign_lifecycle import campaign_event, create, unique_code

FUNCTION = "DonationIngesterFunction"
PLACEHOLDER = "REPLACE-WITH-THE-CALLBACK-TOKEN"


# ---------------------------------------------------------------- helpers


def ref_of(fields: dict[str, Any]) -> str:
    return f"{fields['serviceId']}/{fields['route']}/{fields['donationCode']}"


WRONG_TOKEN = "A" * 43  # shaped like a callback token, issued to no campaign


def token_for(stack, ref: str) -> str:
    """The token of the callbackUrl the campaign lifecycle gave Umbrella (the hub keeps only its hash)."""
    service_id, route, code = ref.split("/")
    [campaign] = [
        c
        for c in stack.sandboxes["umbrella"].campaigns
        if (str(c["serviceId"]), c["route"], c["donationCode"]) == (service_id, route, code)
    ]
    return str(campaign["callbackUrl"].rsplit("/", 1)[1])


def real_donation(umbrella, fields: dict[str, Any], **options: Any) -> dict[str, Any]:
    """A donation made at the Umbrella sandbox (which lists it), its callback not delivered: the test sends it."""
    options.setdefault("msisdn", CANARY_MSISDN)
    made = umbrella.donate(fields["serviceId"], fields["route"], fields["donationCode"], deliver=False, **options)
    return dict(made["donation"])


def donation(fields: dict[str, Any], **changes: Any) -> dict[str, Any]:
    values = {
        "amount": 5000,
        "donatedAt": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "donationCode": fields["donationCode"],
        "messageKey": f"umb-{unique_code()}",
        "msisdn": CANARY_MSISDN,
        "routeName": fields["route"],
        "text": "Tak for din donation",
    }
    values.update(changes)
    return {key: value for key, value in values.items() if value is not None}


def callback_event(
    stack, fields: dict[str, Any], payload: dict[str, Any] | None, *, form: str = "json", token: str | None = ""
) -> dict[str, Any]:
    """One of the callback event files, pointed at the campaign of `fields` and carrying `payload`.

    `token=""` means the campaign's own valid token; None leaves the token out of the path (the 401 route).
    """
    name = {"json": "callback_post_json.json", "form": "callback_post_form.json", "query": "callback_get_query.json"}
    event = load_event(f"donation_ingester/{name[form]}")
    ref = ref_of(fields)
    token = token_for(stack, ref) if token == "" else token
    path = f"/donations/callback/{ref}" + (f"/{token}" if token is not None else "")
    event["rawPath"] = event["requestContext"]["http"]["path"] = path
    parameters = {
        "serviceId": str(fields["serviceId"]),
        "route": fields["route"],
        "donationCode": fields["donationCode"],
    }
    if token is not None:
        parameters["token"] = token
    else:
        method = event["requestContext"]["http"]["method"]
        event["routeKey"] = event["requestContext"]["routeKey"] = (
            f"{method} /donations/callback/{{serviceId}}/{{route}}/{{donationCode}}"
        )
    event["pathParameters"] = parameters
    if payload is not None:
        if form == "json":
            event["body"] = json.dumps(payload)
        elif form == "form":
            event["body"] = urlencode(payload)
        else:
            event["rawQueryString"] = urlencode(payload)
            event["queryStringParameters"] = {key: str(value) for key, value in payload.items()}
    return event


def send(stack, fields, payload, **options):
    return stack.invoke(FUNCTION, callback_event(stack, fields, payload, **options))


def settle(stack) -> None:
    """Route every published event and fold every queued one, as the bus and the SQS event source would."""
    assert stack.drain_events(timeout=20)
    assert stack.drain("DonationTotalsQueue", timeout=20)


def ledger_item(stack, message_key: str) -> dict[str, Any] | None:
    response = stack.boto3_client("dynamodb").get_item(
        TableName=stack.physical("DonationsTable"), Key={"pk": {"S": f"donation#{message_key}"}}, ConsistentRead=True
    )
    return response.get("Item")


def donations_of(stack, ref: str) -> list[dict[str, Any]]:
    items = stack.boto3_client("dynamodb").scan(TableName=stack.physical("DonationsTable"))["Items"]
    return [item for item in items if item["pk"]["S"].startswith("donation#") and item["campaign_ref"]["S"] == ref]


def collected(stack, fields) -> dict[str, Any]:
    response = stack.invoke("CampaignLifecycleFunction", campaign_event("get_campaign.json", fields))
    assert response["statusCode"] == 200, response["body"]
    return dict(response_json(response)["collected"])


def totals(stack, fields) -> dict[str, Any]:
    """The public, verified total (what pages show as collected), without the pending figure."""
    return {key: value for key, value in collected(stack, fields).items() if key != "pending"}


def pending(stack, fields) -> dict[str, Any]:
    return dict(collected(stack, fields)["pending"])


@pytest.fixture
def published(monkeypatch) -> list[tuple[str, dict[str, Any]]]:
    """Every event the ingester puts on the bus, as (detail-type, detail); they still go to the bus."""
    seen: list[tuple[str, dict[str, Any]]] = []
    real, real_many = events.publish, events.publish_many

    def recording(source, detail_type, detail):
        seen.append((detail_type, dict(detail)))
        real(source, detail_type, detail)

    def recording_many(source, detail_type, details):
        seen.extend((detail_type, dict(detail)) for detail in details)
        return real_many(source, detail_type, details)

    monkeypatch.setattr(events, "publish", recording)
    monkeypatch.setattr(events, "publish_many", recording_many)
    return seen


def received(published, message_key: str) -> list[dict[str, Any]]:
    return [detail for kind, detail in published if kind == "DonationReceived" and detail["messageKey"] == message_key]


def queued_events(stack) -> list[dict[str, Any]]:
    """DonationReceived events waiting for the fold, left in the queue."""
    sqs = stack.boto3_client("sqs")
    url = stack.physical("DonationTotalsQueue")
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=0).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


def reconcile(stack, *refs: str) -> dict[str, Any]:
    if refs:
        return stack.invoke(FUNCTION, {"reconcile": {"campaigns": list(refs)}})
    return stack.run_schedule(FUNCTION)


def result_for(summary: dict[str, Any], fields) -> dict[str, Any]:
    return next(result for result in summary["campaigns"] if result["campaign"] == ref_of(fields))


@pytest.fixture(autouse=True)
def _fresh_caches():
    reset_all()  # the campaign cache would otherwise carry a campaign's state from one test into the next
    yield
    reset_all()


# ---------------------------------------------------------------- the token


def test_a_callback_without_its_token_is_a_401_and_stores_nothing(stack, umbrella):
    fields, _ = create(stack)
    payload = donation(fields)
    response = send(stack, fields, payload, token=None)
    assert response["statusCode"] == 401
    assert response_json(response)["error"] == "unauthorized"
    assert ledger_item(stack, payload["messageKey"]) is None


def test_another_campaigns_token_is_a_403(stack, umbrella):
    fields, _ = create(stack)
    other, _ = create(stack)
    payload = donation(fields)
    response = send(stack, fields, payload, token=token_for(stack, ref_of(other)))
    assert response["statusCode"] == 403
    assert response_json(response)["error"] == "forbidden"
    assert ledger_item(stack, payload["messageKey"]) is None


def test_the_token_is_checked_before_the_payload(stack, umbrella):
    fields, _ = create(stack)
    response = send(stack, fields, {"amount": "nonsense"}, token=WRONG_TOKEN)
    assert response["statusCode"] == 403


def test_the_callback_url_the_lifecycle_gave_umbrella_is_accepted(stack, umbrella):
    fields, _ = create(stack)
    [campaign] = [c for c in umbrella.campaigns if c["donationCode"] == fields["donationCode"]]
    token = campaign["callbackUrl"].rsplit("/", 1)[1]
    payload = donation(fields)
    response = send(stack, fields, payload, token=token)
    assert response["statusCode"] == 200, response["body"]


# ---------------------------------------------------------------- three payload forms


@pytest.mark.parametrize("form", ["json", "form", "query"])
def test_each_payload_form_records_the_donation_once_and_counts_it_once_verified(stack, umbrella, form):
    fields, _ = create(stack)
    payload = real_donation(umbrella, fields, amount=2500)
    umbrella.clear_requests()
    response = send(stack, fields, payload, form=form)
    assert response["statusCode"] == 200, response["body"]
    assert response_json(response) == {"status": "recorded", "messageKey": payload["messageKey"]}
    item = ledger_item(stack, payload["messageKey"])
    assert item["amount"]["N"] == "2500"
    assert item["campaign_ref"]["S"] == ref_of(fields)
    assert item["verification"]["S"] == "pending"
    assert "flags" not in item
    assert umbrella.requests == []  # the callback itself never calls Umbrella: it is answered at once
    # Recorded, not counted: pending until Umbrella lists it.
    assert totals(stack, fields) == {"amount": 0, "count": 0, "note": None}
    assert pending(stack, fields) == {"amount": 2500, "count": 1}
    settle(stack)
    assert totals(stack, fields) == {"amount": 2500, "count": 1, "note": None}
    assert pending(stack, fields) == {"amount": 0, "count": 0}
    item = ledger_item(stack, payload["messageKey"])
    assert "folded_at" in item
    assert item["verification"]["S"] == "verified"
    # The fold asked Umbrella's donations list of this campaign once.
    asked = [r.path for r in umbrella.requests if f"/{fields['donationCode']}/" in r.path]
    assert asked == [f"/public/v1/campaign/{fields['serviceId']}/{fields['route']}/{fields['donationCode']}/donations"]


def test_the_event_files_carry_each_form(stack, umbrella):
    """The committed files' payloads, pointed at a real campaign with its token, are accepted as they are."""
    fields, _ = create(stack)
    ref = ref_of(fields)
    token = token_for(stack, ref)
    for name in ("callback_post_json.json", "callback_post_form.json", "callback_get_query.json"):
        event = load_event(f"donation_ingester/{name}")
        assert event["rawPath"].endswith(f"/1/hjerte/anna50/{PLACEHOLDER}")
        event["rawPath"] = event["requestContext"]["http"]["path"] = f"/donations/callback/{ref}/{token}"
        event["pathParameters"] = {
            "serviceId": str(fields["serviceId"]),
            "route": fields["route"],
            "donationCode": fields["donationCode"],
            "token": token,
        }
        response = stack.invoke(FUNCTION, event)
        assert response["statusCode"] == 200, (name, response["body"])
        assert response_json(response)["status"] in ("recorded", "duplicate")


def test_the_event_file_with_its_placeholder_token_is_refused(stack, umbrella):
    response = stack.invoke(FUNCTION, load_event("donation_ingester/callback_post_json.json"))
    assert response["statusCode"] == 401


# ---------------------------------------------------------------- bad input


def test_a_malformed_payload_is_a_400_naming_each_field_and_stores_nothing(stack, umbrella):
    fields, _ = create(stack)
    event = load_event("donation_ingester/callback_invalid.json")
    ref = ref_of(fields)
    token = token_for(stack, ref)
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/donations/callback/{ref}/{token}"
    event["pathParameters"] = {
        "serviceId": str(fields["serviceId"]),
        "route": fields["route"],
        "donationCode": fields["donationCode"],
        "token": token,
    }
    before = len(donations_of(stack, ref))
    response = stack.invoke(FUNCTION, event)
    assert response["statusCode"] == 400
    body = response_json(response)
    assert body["error"] == "invalid_donation"
    named = {(problem["field"], problem["rule"]) for problem in body["problems"]}
    assert {("messageKey", "required"), ("donatedAt", "datetime_from_date_parsing")} <= named | {
        ("donatedAt", "datetime_from_date_parsing")
    }
    assert {"messageKey", "amount", "msisdn", "donatedAt"} <= {field for field, _ in named}
    assert len(donations_of(stack, ref)) == before


@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [("{not json", "application/json", 400), ("[1, 2]", "application/json", 400), ("x" * 9000, "text/plain", 413)],
)
def test_a_body_that_is_not_a_donation_is_a_4xx(stack, umbrella, body, content_type, status):
    fields, _ = create(stack)
    event = callback_event(stack, fields, None)
    event["body"] = body
    event["headers"]["content-type"] = content_type
    response = stack.invoke(FUNCTION, event)
    assert response["statusCode"] == status, response["body"]
    assert "error" in response_json(response)


# ---------------------------------------------------------------- exactly once


def test_a_stored_donation_whose_event_failed_is_a_503_and_the_repeat_publishes_it(stack, umbrella, monkeypatch):
    fields, _ = create(stack)
    payload = real_donation(umbrella, fields, amount=5000)
    real_publish = events.publish
    calls: list[str] = []

    def failing_once(source, detail_type, detail):
        calls.append(detail["messageKey"])
        if len(calls) == 1:
            raise events.EventNotPublished("DonationReceived not published: InternalFailure")
        real_publish(source, detail_type, detail)

    monkeypatch.setattr(events, "publish", failing_once)
    response = send(stack, fields, payload)
    assert response["statusCode"] == 503
    assert response_json(response)["error"] == "event_not_published"
    assert ledger_item(stack, payload["messageKey"]) is not None  # stored all the same
    settle(stack)
    assert totals(stack, fields)["count"] == 0

    again = send(stack, fields, payload)
    assert again["statusCode"] == 200
    assert response_json(again)["status"] == "duplicate"
    assert calls == [payload["messageKey"]] * 2
    settle(stack)
    assert totals(stack, fields) == {"amount": 5000, "count": 1, "note": None}


# ---------------------------------------------------------------- flagged, not dropped


def stop(stack, fields, created) -> None:
    stopped = stack.invoke(
        "CampaignLifecycleFunction", campaign_event("delete_campaign.json", fields, created["manageToken"])
    )
    assert stopped["statusCode"] == 200


def test_a_different_donation_under_a_known_message_key_is_not_counted_twice(stack, umbrella):
    fields, _ = create(stack)
    payload = real_donation(umbrella, fields, amount=5000)
    send(stack, fields, payload)
    response = send(stack, fields, {**payload, "amount": 9999})
    assert response_json(response) == {
        "status": "duplicate",
        "messageKey": payload["messageKey"],
        "flags": ["message_key_conflict"],
    }
    settle(stack)
    assert totals(stack, fields)["amount"] == 5000


# ---------------------------------------------------------------- the fold


def test_the_fold_event_file_folds_nothing_it_does_not_hold(stack, umbrella):
    response = stack.invoke(FUNCTION, load_event("donation_ingester/fold_batch.json"))
    assert response == {"batchItemFailures": []}


def test_a_record_that_is_not_a_donation_hint_fails_alone(stack, umbrella):
    fields, _ = create(stack)
    payload = real_donation(umbrella, fields, amount=5000)
    send(stack, fields, payload)
    assert stack.drain_events(timeout=20)
    [event] = queued_events(stack)
    batch = load_event("donation_ingester/fold_batch.json")
    good, bad = batch["Records"]
    good["body"] = json.dumps(event)
    bad["body"] = '{"detail": {"campaign": 1}}'
    response = stack.invoke(FUNCTION, batch)
    assert response == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}
    assert "folded_at" in ledger_item(stack, payload["messageKey"])
    settle(stack)
    assert totals(stack, fields)["count"] == 1


# ---------------------------------------------------------------- reconciliation


def test_the_scheduled_event_reconciles_every_active_campaign(stack, umbrella):
    fields, _ = create(stack)
    umbrella.donate(fields["serviceId"], fields["route"], fields["donationCode"], amount=1500, deliver=False)
    summary = stack.invoke(FUNCTION, load_event("donation_ingester/scheduled_reconcile.json"))
    assert result_for(summary, fields)["recovered"] == 1
    assert summary["left"] == 0
    settle(stack)
    assert totals(stack, fields)["amount"] == 1500
    # The template's schedule sends the same kind of event.
    assert result_for(reconcile(stack), fields)["recovered"] == 0


def test_the_scheduled_run_visits_campaigns_stopped_within_its_window_and_not_before(stack, umbrella):
    recent, recent_created = create(stack)
    old, old_created = create(stack)
    stop(stack, recent, recent_created)
    stop(stack, old, old_created)
    item = stack.boto3_client("dynamodb").get_item(
        TableName=stack.physical("CampaignsTable"), Key={"campaign_ref": {"S": ref_of(recent)}}
    )["Item"]
    assert item["open_until"] == item["stopped_at"]  # the stop moved it from "still open" to its time
    # Stopped before RECONCILE_AFTER_STOP_SECONDS (a day): the stop wrote both times, a test moves them back.
    then = str(int(time.time()) - 2 * 86_400)
    stack.boto3_client("dynamodb").update_item(
        TableName=stack.physical("CampaignsTable"),
        Key={"campaign_ref": {"S": ref_of(old)}},
        UpdateExpression="SET stopped_at = :then, open_until = :then",
        ExpressionAttributeValues={":then": {"N": then}},
    )
    visited = {result["campaign"] for result in reconcile(stack)["campaigns"]}
    assert ref_of(recent) in visited
    assert ref_of(old) not in visited


def test_the_reconcile_event_file_reports_an_unknown_campaign(stack, umbrella):
    summary = stack.invoke(FUNCTION, load_event("donation_ingester/reconcile_campaign.json"))
    assert summary["campaigns"][0]["campaign"] == "1/hjerte/anna50"
    assert summary["campaigns"][0]["status"] == "unknown_campaign"  # nothing in this module creates anna50


def test_an_unrecognised_event_fails_loudly(stack):
    with pytest.raises(ValueError, match="unrecognised event"):
        stack.invoke(FUNCTION, {"hello": "world"})


# ---------------------------------------------------------------- verified money


@pytest.fixture
def metric_names(monkeypatch) -> list[str]:
    emitted: list[str] = []
    # The function's one Metrics (metrics_for caches it per service): the callback's, the fold's and reconcile's.
    add_metric = callback.metrics.add_metric
    monkeypatch.setattr(callback.metrics, "add_metric", lambda **kw: (emitted.append(kw["name"]), add_metric(**kw))[1])
    return emitted


def test_forged_callbacks_never_move_the_total_nor_emit_donation_received(stack, umbrella, published, metric_names):
    """Unknown messageKeys, replays of a counted donation, and a huge amount: only Umbrella's donation counts."""
    fields, _ = create(stack)
    real = real_donation(umbrella, fields, amount=5000)
    assert send(stack, fields, real)["statusCode"] == 200
    settle(stack)
    assert totals(stack, fields) == {"amount": 5000, "count": 1, "note": None}

    forged = [donation(fields, amount=amount) for amount in (100_000, 4_999_999, 1)]
    for payload in forged:
        response = send(stack, fields, payload)
        assert response["statusCode"] == 200  # answered at once, like any callback: it is only a hint
        assert response_json(response)["status"] == "recorded"
    for _ in range(3):
        replay = send(stack, fields, real)
        assert response_json(replay)["status"] == "duplicate"
    huge = send(stack, fields, donation(fields, amount=5_000_001))
    assert huge["statusCode"] == 400
    assert ("amount", "max_amount") in {(p["field"], p["rule"]) for p in response_json(huge)["problems"]}
    assert pending(stack, fields) == {"amount": 100_000 + 4_999_999 + 1, "count": 3}  # shown apart, not counted
    assert totals(stack, fields) == {"amount": 5000, "count": 1, "note": None}

    settle(stack)
    assert totals(stack, fields) == {"amount": 5000, "count": 1, "note": None}
    assert pending(stack, fields) == {"amount": 0, "count": 0}
    for payload in forged:
        item = ledger_item(stack, payload["messageKey"])
        assert item["verification"]["S"] == "unconfirmed"
        assert "folded_at" not in item
        assert received(published, payload["messageKey"]) == []
    assert len(received(published, real["messageKey"])) == 1
    assert metric_names.count("DonationUnconfirmed") == 3
    # Reconciliation agrees with Umbrella: nothing forged crept in.
    result = result_for(reconcile(stack, ref_of(fields)), fields)
    assert (result["status"], result["ledger_amount"], result["partner_amount"]) == ("ok", 5000, 5000)


def test_a_stopped_campaign_past_its_grace_period_refuses_callbacks(stack, umbrella):
    fields, created = create(stack)
    payload = donation(fields, amount=4000)  # not listed by Umbrella: the stop's reconcile did not count it
    stop(stack, fields, created)
    # Stopped two hours ago: past CALLBACK_GRACE_AFTER_STOP_SECONDS (an hour by default).
    stack.boto3_client("dynamodb").update_item(
        TableName=stack.physical("CampaignsTable"),
        Key={"campaign_ref": {"S": ref_of(fields)}},
        UpdateExpression="SET stopped_at = :then",
        ExpressionAttributeValues={":then": {"N": str(int(time.time()) - 7200)}},
    )
    reset_all()
    response = send(stack, fields, payload)
    assert response["statusCode"] == 403
    assert response_json(response)["error"] == "callback_revoked"
    assert ledger_item(stack, payload["messageKey"]) is None
    assert totals(stack, fields)["amount"] == 0


def test_a_put_rotates_the_callback_token_and_the_old_one_is_refused(stack, umbrella):
    fields, created = create(stack)
    old = token_for(stack, ref_of(fields))
    assert send(stack, fields, real_donation(umbrella, fields), token=old)["statusCode"] == 200  # cached now
    put = stack.invoke("CampaignLifecycleFunction", campaign_event("put_campaign.json", fields, created["manageToken"]))
    assert put["statusCode"] == 200, put["body"]
    new = token_for(stack, ref_of(fields))  # the callbackUrl Umbrella now holds
    assert new != old
    # The new token works at once, even where the old campaign record is still cached.
    assert send(stack, fields, real_donation(umbrella, fields), token=new)["statusCode"] == 200
    refused = send(stack, fields, real_donation(umbrella, fields), token=old)
    assert refused["statusCode"] == 403
    reset_all()
    assert send(stack, fields, real_donation(umbrella, fields), token=old)["statusCode"] == 403
    settle(stack)


def test_the_pending_figure_is_capped_so_a_flood_of_forged_callbacks_cannot_make_a_page_read_unbounded(
    stack, umbrella, monkeypatch
):
    fields, _ = create(stack)
    for amount in (100, 200, 300):
        send(stack, fields, donation(fields, amount=amount))
    for name, value in stack.function_env("CampaignLifecycleFunction").items():
        monkeypatch.setenv(name, value)
    reset_all()
    table = stack.physical("DonationsTable")
    assert read_pending(table, ref_of(fields), limit=10) == PendingTotals(600, 3)
    capped = read_pending(table, ref_of(fields), limit=2)
    assert (capped.count, capped.capped) == (2, True)
    monkeypatch.setenv("PENDING_READ_LIMIT", "2")
    reset_all()
    assert pending(stack, fields)["capped"] is True
    settle(stack)


def test_donor_numbers_are_stored_only_as_keyed_hashes(stack, umbrella):
    fields, _ = create(stack)
    payload = real_donation(umbrella, fields, amount=1500)
    send(stack, fields, payload)
    umbrella.donate(fields["serviceId"], fields["route"], fields["donationCode"], msisdn=CANARY_MSISDN, deliver=False)
    reconcile(stack, ref_of(fields))  # a recovered donation is stored the same way
    settle(stack)
    items = stack.boto3_client("dynamodb").scan(TableName=stack.physical("DonationsTable"))["Items"]
    donations = [item for item in items if item["pk"]["S"].startswith("donation#")]
    assert donations
    assert CANARY_MSISDN not in json.dumps(items)
    mine = [item for item in donations if item["campaign_ref"]["S"] == ref_of(fields)]
    assert len(mine) == 2
    hashes = {item["msisdn"]["S"] for item in mine}
    assert len(hashes) == 1  # one donor, one hash: erasure matches it
    [value] = hashes
    key_id, _, digest = value.partition(":")
    assert key_id
    assert len(digest) == 64


# ---------------------------------------------------------------- privacy


def test_no_msisdn_apikey_or_token_in_any_log_line(stack, umbrella, caplog, capsys):
    # INFO, as in Lambda: botocore's DEBUG lines echo whole requests and are never enabled there.
    caplog.set_level(logging.INFO)
    fields, _ = create(stack)
    payload = donation(fields)
    token = token_for(stack, ref_of(fields))
    send(stack, fields, payload)
    send(stack, fields, payload, form="form")
    send(stack, fields, donation(fields, amount="x"))
    send(stack, fields, payload, token=WRONG_TOKEN)
    umbrella.donate(fields["serviceId"], fields["route"], fields["donationCode"], deliver=False)
    reconcile(stack, ref_of(fields))
    settle(stack)
    out, err = capsys.readouterr()
    logs = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records) + out + err
    assert "donation recorded" in logs
    for secret in (CANARY_MSISDN, UMBRELLA_KEY, token):
        assert secret not in logs
