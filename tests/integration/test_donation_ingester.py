"""Donation ingester through its handler: Umbrella's callbacks in three forms, the fold queue, reconciliation."""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest

from donation_ingester import flow
from hub_core import aws, events
from hub_core.caches import reset_all
from hub_core.tokens import CallbackSigner
from tests.conftest import load_event
from tests.integration.conftest import CANARY_MSISDN, UMBRELLA_KEY, response_json
from tests.integration.test_campaign_lifecycle import campaign_event, create, unique_code

FUNCTION = "DonationIngesterFunction"
PLACEHOLDER = "REPLACE-WITH-THE-CALLBACK-TOKEN"


# ---------------------------------------------------------------- helpers


def ref_of(fields: dict[str, Any]) -> str:
    return f"{fields['serviceId']}/{fields['route']}/{fields['donationCode']}"


def signing_key(stack) -> str:
    name = stack.function_env(FUNCTION)["CALLBACK_SIGNING_KEY_PARAM"]
    return stack.boto3_client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"]


def token_for(stack, ref: str) -> str:
    return CallbackSigner(lambda: signing_key(stack)).token_for(ref)


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


def totals(stack, fields) -> dict[str, Any]:
    response = stack.invoke("CampaignLifecycleFunction", campaign_event("get_campaign.json", fields))
    assert response["statusCode"] == 200, response["body"]
    return response_json(response)["collected"]


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


@pytest.mark.parametrize("token", ["not-a-token", "local.AAAA", "nokey.abcdef"])
def test_a_wrong_token_is_refused_and_stores_nothing(stack, umbrella, token):
    fields, _ = create(stack)
    payload = donation(fields)
    response = send(stack, fields, payload, token=token)
    assert response["statusCode"] in (401, 403)
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
    response = send(stack, fields, {"amount": "nonsense"}, token="local.wrong")
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
def test_each_payload_form_records_the_donation_once_and_counts_it(stack, umbrella, form):
    fields, _ = create(stack)
    umbrella.clear_requests()
    payload = donation(fields, amount=2500)
    response = send(stack, fields, payload, form=form)
    assert response["statusCode"] == 200, response["body"]
    assert response_json(response) == {"status": "recorded", "messageKey": payload["messageKey"]}
    item = ledger_item(stack, payload["messageKey"])
    assert item["amount"]["N"] == "2500"
    assert item["campaign_ref"]["S"] == ref_of(fields)
    assert "flags" not in item
    settle(stack)
    assert totals(stack, fields) == {"amount": 2500, "count": 1, "note": None}
    assert "folded_at" in ledger_item(stack, payload["messageKey"])
    assert umbrella.requests == []  # a callback never calls Umbrella


def test_the_event_files_carry_each_form(stack, umbrella):
    """The committed files (with the placeholder swapped for a real token) are accepted as they are."""
    for name in ("callback_post_json.json", "callback_post_form.json", "callback_get_query.json"):
        event = load_event(f"donation_ingester/{name}")
        token = token_for(stack, "1/hjerte/anna50")
        event["rawPath"] = event["requestContext"]["http"]["path"] = event["rawPath"].replace(PLACEHOLDER, token)
        event["pathParameters"]["token"] = token
        response = stack.invoke(FUNCTION, event)
        assert response["statusCode"] == 200, (name, response["body"])
        assert response_json(response)["status"] in ("recorded", "duplicate")


def test_the_event_file_with_its_placeholder_token_is_refused(stack, umbrella):
    response = stack.invoke(FUNCTION, load_event("donation_ingester/callback_post_json.json"))
    assert response["statusCode"] == 401


def test_a_minimal_payload_takes_the_campaign_from_the_url_and_the_time_from_our_clock(stack, umbrella):
    fields, _ = create(stack)
    payload = {"messageKey": f"umb-{unique_code()}", "amount": "7500"}
    before = int(time.time())
    response = send(stack, fields, payload, form="query")
    assert response["statusCode"] == 200, response["body"]
    item = ledger_item(stack, payload["messageKey"])
    assert item["amount"]["N"] == "7500"
    assert int(item["donated_at"]["N"]) >= before
    assert "msisdn" not in item


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
def test_each_bad_field_is_named(stack, umbrella, payload, field):
    fields, _ = create(stack)
    response = send(stack, fields, donation(fields, **payload))
    assert response["statusCode"] == 400, response["body"]
    assert field in {problem["field"] for problem in response_json(response)["problems"]}


@pytest.mark.parametrize("optional", ["donationCode", "routeName", "text"])
def test_a_null_optional_text_field_is_absent_not_a_500(stack, umbrella, optional):
    """Found by the API fuzz: JSON null in a length-limited optional field raised a TypeError in pydantic (500)."""
    fields, _ = create(stack)
    payload = donation(fields, msisdn=None) | {optional: None}
    response = send(stack, fields, payload)
    assert response["statusCode"] == 200, response["body"]
    too_long = send(stack, fields, donation(fields, msisdn=None) | {optional: "x" * 1001})
    assert too_long["statusCode"] == 400
    assert [(p["field"], p["rule"]) for p in response_json(too_long)["problems"]] == [(optional, "max_length")]


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


def test_a_repeat_returns_200_and_changes_nothing(stack, umbrella):
    fields, _ = create(stack)
    payload = donation(fields)
    assert response_json(send(stack, fields, payload))["status"] == "recorded"
    settle(stack)
    first = ledger_item(stack, payload["messageKey"])
    for form in ("json", "form", "query"):
        response = send(stack, fields, payload, form=form)
        assert response["statusCode"] == 200
        assert response_json(response)["status"] == "duplicate"
    # Folded already, so the repeat had nothing to announce again.
    assert queued_events(stack) == []
    settle(stack)
    assert ledger_item(stack, payload["messageKey"]) == first
    assert totals(stack, fields) == {"amount": 5000, "count": 1, "note": None}


def test_100_concurrent_identical_callbacks_leave_one_record_and_one_count(stack, umbrella, monkeypatch):
    fields, _ = create(stack)
    payload = donation(fields)
    for name, value in stack.function_env(FUNCTION).items():
        monkeypatch.setenv(name, value)
    reset_all()
    campaign = flow.CampaignRef(str(fields["serviceId"]), fields["route"], fields["donationCode"])
    parsed = flow.parse_donation(payload)
    with ThreadPoolExecutor(max_workers=16) as pool:
        outcomes = list(pool.map(lambda _: flow.receive(campaign, parsed).status, range(100)))
    assert outcomes.count("recorded") == 1
    assert outcomes.count("duplicate") == 99
    assert len(donations_of(stack, ref_of(fields))) == 1
    settle(stack)
    assert totals(stack, fields) == {"amount": 5000, "count": 1, "note": None}


def test_a_stored_donation_whose_event_failed_is_a_503_and_the_repeat_publishes_it(stack, umbrella, monkeypatch):
    fields, _ = create(stack)
    payload = donation(fields)
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


def test_a_repeat_before_the_fold_publishes_again_and_the_fold_counts_once(stack, umbrella):
    fields, _ = create(stack)
    payload = donation(fields)
    send(stack, fields, payload)
    send(stack, fields, payload)
    assert stack.drain_events(timeout=20)
    queued = queued_events(stack)
    assert len(queued) == 2
    assert queued[0]["detail"]["eventId"] == queued[1]["detail"]["eventId"]
    assert queued[0]["detail"]["messageKey"] == payload["messageKey"]
    assert "msisdn" not in json.dumps(queued)
    assert CANARY_MSISDN not in json.dumps(queued)
    settle(stack)
    assert totals(stack, fields) == {"amount": 5000, "count": 1, "note": None}


def test_the_event_names_the_creators_loyalty_user(stack, umbrella):
    fields, _ = create(stack, appsMilesUserId="am-user-4711")
    send(stack, fields, donation(fields))
    assert stack.drain_events(timeout=20)
    [event] = queued_events(stack)
    assert event["source"] == "partner-hub.donation-ingester"
    assert event["detail-type"] == "DonationReceived"
    detail = event["detail"]
    assert detail["appsMilesUserId"] == "am-user-4711"
    assert detail["campaign"] == ref_of(fields)
    assert detail["amount"] == 5000
    settle(stack)


# ---------------------------------------------------------------- flagged, not dropped


def test_a_donation_for_an_unknown_campaign_is_stored_flagged_and_counted(stack, umbrella):
    fields = {"serviceId": 1, "route": "hjerte", "donationCode": unique_code()}
    payload = donation(fields)
    response = send(stack, fields, payload)
    assert response["statusCode"] == 200
    assert response_json(response)["flags"] == ["unknown_campaign"]
    item = ledger_item(stack, payload["messageKey"])
    assert [flag["S"] for flag in item["flags"]["L"]] == ["unknown_campaign"]
    settle(stack)
    assert "folded_at" in ledger_item(stack, payload["messageKey"])


def test_a_donation_for_a_stopped_campaign_is_stored_and_flagged(stack, umbrella):
    fields, created = create(stack)
    stopped = stack.invoke(
        "CampaignLifecycleFunction", campaign_event("delete_campaign.json", fields, created["manageToken"])
    )
    assert stopped["statusCode"] == 200
    payload = donation(fields)
    response = send(stack, fields, payload)
    assert response["statusCode"] == 200
    assert response_json(response)["flags"] == ["campaign_stopped"]
    settle(stack)
    assert totals(stack, fields)["amount"] == 5000


def test_a_payload_naming_another_code_is_flagged(stack, umbrella):
    fields, _ = create(stack)
    response = send(stack, fields, donation(fields, donationCode="zz99", routeName="other"))
    assert response_json(response)["flags"] == ["donation_code_mismatch", "route_mismatch"]


def test_a_different_donation_under_a_known_message_key_is_not_counted_twice(stack, umbrella):
    fields, _ = create(stack)
    payload = donation(fields)
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


def test_a_record_that_is_not_a_donation_received_fails_alone(stack, umbrella):
    fields, _ = create(stack)
    payload = donation(fields)
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


def test_one_fold_writes_a_campaigns_total_once_per_chunk(stack, umbrella, monkeypatch):
    fields, _ = create(stack)
    for _ in range(12):
        send(stack, fields, donation(fields, amount=100))
    assert stack.drain_events(timeout=20)
    sqs = stack.boto3_client("sqs")
    url = stack.physical("DonationTotalsQueue")
    messages = []
    while len(messages) < 12:
        messages += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    records = [
        {"messageId": m["MessageId"], "body": m["Body"], "eventSource": "aws:sqs", "receiptHandle": m["ReceiptHandle"]}
        for m in messages
    ]
    for name, value in stack.function_env(FUNCTION).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("FOLD_CHUNK", "5")
    reset_all()
    client = aws.dynamodb()  # bound to moto by the function's environment, set just above
    original = client.transact_write_items
    transactions: list[int] = []

    def counting(**kwargs):
        transactions.append(len(kwargs["TransactItems"]))
        return original(**kwargs)

    monkeypatch.setattr(client, "transact_write_items", counting)
    report = flow.fold_batch(records)
    assert report.failed_message_ids == []
    assert report.folded == 12
    assert transactions == [6, 6, 3]  # 5 + 5 + 2 donations, each chunk with the total's one update
    for message in messages:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    reset_all()
    assert totals(stack, fields) == {"amount": 1200, "count": 12, "note": None}


# ---------------------------------------------------------------- reconciliation


def test_a_dropped_callback_is_recovered_by_reconciliation_exactly_once(stack, umbrella):
    fields, _ = create(stack)
    first = umbrella.donate(fields["serviceId"], fields["route"], fields["donationCode"], amount=3000, deliver=False)
    umbrella.donate(fields["serviceId"], fields["route"], fields["donationCode"], amount=2000, deliver=False)
    result = result_for(reconcile(stack, ref_of(fields)), fields)
    assert result["recovered"] == 2
    assert result["status"] == "ok"
    assert result["partner_amount"] == result["ledger_amount"] == 5000
    item = ledger_item(stack, first["donation"]["messageKey"])
    assert item["source"]["S"] == "reconciliation"
    settle(stack)
    assert totals(stack, fields) == {"amount": 5000, "count": 2, "note": None}

    again = result_for(reconcile(stack, ref_of(fields)), fields)
    assert again["recovered"] == 0
    assert again["fetched"] == 2
    settle(stack)
    assert totals(stack, fields) == {"amount": 5000, "count": 2, "note": None}
    # The callback that finally arrives is a duplicate.
    late = send(stack, fields, first["donation"])
    assert response_json(late)["status"] == "duplicate"


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


def test_the_reconcile_event_file_reports_an_unknown_campaign(stack, umbrella):
    summary = stack.invoke(FUNCTION, load_event("donation_ingester/reconcile_campaign.json"))
    assert summary["campaigns"][0]["campaign"] == "1/hjerte/anna50"
    assert summary["campaigns"][0]["status"] == "unknown_campaign"  # nothing in this module creates anna50


def test_drift_is_reported_with_the_campaign_and_never_the_donors(stack, umbrella, caplog, monkeypatch):
    fields, _ = create(stack)
    long_ago = datetime.now(UTC) - timedelta(hours=3)
    # Stamped before the watermark's overlap: reconciliation cannot see it, so the totals disagree.
    umbrella.donate(
        fields["serviceId"], fields["route"], fields["donationCode"], amount=4200, deliver=False, donated_at=long_ago
    )
    caplog.set_level(logging.INFO)
    emitted: list[tuple[str, float]] = []
    add_metric = flow.metrics.add_metric
    monkeypatch.setattr(
        flow.metrics, "add_metric", lambda **kw: (emitted.append((kw["name"], kw["value"])), add_metric(**kw))[1]
    )
    summary = reconcile(stack, ref_of(fields))
    result = result_for(summary, fields)
    assert result["status"] == "drift"
    assert (result["ledger_amount"], result["partner_amount"]) == (0, 4200)
    assert summary["drift"] == 1
    [warning] = [record for record in caplog.records if record.getMessage().startswith("ledger differs")]
    assert warning.levelno == logging.WARNING
    assert warning.campaign == ref_of(fields)
    assert (warning.ledger_amount, warning.partner_amount) == (0, 4200)
    assert ("ReconciliationDrift", 1) in emitted
    assert CANARY_MSISDN not in str(warning.__dict__)


def test_an_outage_during_reconciliation_loses_nothing_and_moves_no_watermark(stack, umbrella):
    fields, _ = create(stack)
    umbrella.donate(fields["serviceId"], fields["route"], fields["donationCode"], amount=900, deliver=False)
    umbrella.faults.add("status", status=503, count=50)
    result = result_for(reconcile(stack, ref_of(fields)), fields)
    assert result["status"] == "partner_unavailable"
    assert result["recovered"] == 0
    state = stack.boto3_client("dynamodb").get_item(
        TableName=stack.physical("DonationsTable"), Key={"pk": {"S": f"reconcile#{ref_of(fields)}"}}
    )
    assert "Item" not in state
    umbrella.faults.clear()
    after = result_for(reconcile(stack, ref_of(fields)), fields)
    assert after["recovered"] == 1
    settle(stack)
    assert totals(stack, fields)["amount"] == 900


def test_a_timeout_during_reconciliation_is_an_outage_too(stack, umbrella):
    fields, _ = create(stack)
    umbrella.donate(fields["serviceId"], fields["route"], fields["donationCode"], amount=900, deliver=False)
    umbrella.faults.add("slow", delay=1.0, count=10)
    result = result_for(reconcile(stack, ref_of(fields)), fields)
    assert result["status"] == "partner_unavailable"
    umbrella.faults.clear()
    time.sleep(1.0)


def test_a_stored_but_unannounced_donation_is_announced_by_reconciliation(stack, umbrella, monkeypatch):
    fields, _ = create(stack)
    sent = umbrella.donate(fields["serviceId"], fields["route"], fields["donationCode"], amount=700, deliver=False)
    monkeypatch.setattr(events, "publish", lambda *_: (_ for _ in ()).throw(events.EventNotPublished("down")))
    assert send(stack, fields, sent["donation"])["statusCode"] == 503
    first = result_for(reconcile(stack, ref_of(fields)), fields)
    assert first["republished"] == 0  # too recent to be anything but in flight
    monkeypatch.undo()
    for name, value in stack.function_env(FUNCTION).items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("REPUBLISH_AFTER_SECONDS", "0")
    reset_all()
    campaign = flow.directory().get(ref_of(fields))
    result = flow.reconcile_campaign(campaign)
    assert result.republished == 1
    settle(stack)
    assert totals(stack, fields) == {"amount": 700, "count": 1, "note": None}


def test_an_unrecognised_event_fails_loudly(stack):
    with pytest.raises(ValueError, match="unrecognised event"):
        stack.invoke(FUNCTION, {"hello": "world"})


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
    send(stack, fields, payload, token="local.wrong")
    umbrella.donate(fields["serviceId"], fields["route"], fields["donationCode"], deliver=False)
    reconcile(stack, ref_of(fields))
    settle(stack)
    out, err = capsys.readouterr()
    logs = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records) + out + err
    assert "donation recorded" in logs
    for secret in (CANARY_MSISDN, UMBRELLA_KEY, token, token.split(".")[1]):
        assert secret not in logs
