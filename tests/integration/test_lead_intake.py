"""Lead intake end to end through its handler: the real events, moto from the template, the MiiMOSA sandbox."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode

import pytest

from lead_intake import flow
from lead_intake.models import LeadForm, LeadSubmission
from lead_intake.services import services
from tests.conftest import load_event, member_signature
from tests.integration.conftest import (
    CANARY_EMAIL,
    CANARY_LASTNAME,
    CANARY_PHONE,
    MIIMOSA_KEY,
    lead_fields,
    post_event,
    response_json,
)

FUNCTION = "LeadIntakeFunction"


def invoke(stack, event):
    return stack.invoke(FUNCTION, event)


def lead_item(stack, lead_id):
    item = stack.boto3_client("dynamodb").get_item(
        TableName=stack.physical("LeadsTable"), Key={"lead_id": {"S": lead_id}}, ConsistentRead=True
    )
    return item.get("Item")


def lead_count(stack):
    return stack.boto3_client("dynamodb").scan(TableName=stack.physical("LeadsTable"), Select="COUNT")["Count"]


def retry_event(*lead_ids):
    """events/lead_intake/retry_batch.json, pointed at the given leads."""
    event = load_event("lead_intake/retry_batch.json")
    template = event["Records"][0]
    event["Records"] = [
        {**template, "messageId": f"msg-{index}", "body": json.dumps({"lead_id": lead_id})}
        for index, lead_id in enumerate(lead_ids)
    ]
    return event


def purge_retry_queue(stack):
    stack.boto3_client("sqs").purge_queue(QueueUrl=stack.physical("LeadRetryQueue"))


# ---------------------------------------------------------------- accepted leads


def test_the_valid_event_file_is_forwarded_and_stored(stack, miimosa):
    response = invoke(stack, load_event("lead_intake/post_valid.json"))
    body = response_json(response)
    assert response["statusCode"] == 201, body
    assert body["status"] == "forwarded"
    item = lead_item(stack, body["lead_id"])
    assert item["status"]["S"] == "forwarded"
    assert [r.path for r in miimosa.requests] == ["/leads"]
    assert miimosa.leads[-1]["email"] == "ann.bee@example.org"


def test_the_form_encoded_event_file_is_forwarded(stack, miimosa):
    response = invoke(stack, load_event("lead_intake/post_form.json"))
    assert response["statusCode"] == 201, response["body"]
    assert miimosa.leads[-1]["email"] == "carl.dune@example.org"


def test_a_lead_carries_a_ttl_of_the_retention_period(stack, miimosa):
    body = response_json(invoke(stack, post_event(lead_fields())))
    expires_at = int(lead_item(stack, body["lead_id"])["expires_at"]["N"])
    assert abs(expires_at - (time.time() + 90 * 86400)) < 120


def test_a_safety_net_retry_is_queued_naming_only_the_lead(stack, miimosa):
    purge_retry_queue(stack)
    body = response_json(invoke(stack, post_event(lead_fields())))
    messages = stack.boto3_client("sqs").receive_message(
        QueueUrl=stack.physical("LeadRetryQueue"), MaxNumberOfMessages=10
    )["Messages"]
    assert [json.loads(m["Body"]) for m in messages] == [{"lead_id": body["lead_id"]}]
    # The settled lead makes the safety net a no-op: no second call to MiiMOSA.
    result = invoke(stack, retry_event(body["lead_id"]))
    assert result == {"batchItemFailures": []}
    assert len(miimosa.requests) == 1


# ---------------------------------------------------------------- bad input: clear 4xx, nothing stored or sent


def test_the_invalid_event_file_names_each_field_and_rule(stack, miimosa):
    before = lead_count(stack)
    response = invoke(stack, load_event("lead_intake/post_invalid.json"))
    body = response_json(response)
    assert response["statusCode"] == 422
    assert body["error"] == "validation_failed"
    found = {(p["field"], p["rule"]) for p in body["problems"]}
    assert found == {("email", "email_syntax"), ("collect_type", "one_of"), ("favourite_colour", "unknown_field")}
    assert lead_count(stack) == before
    assert miimosa.requests == []


@pytest.mark.parametrize(
    ("body", "content_type", "status", "error"),
    [
        ("not json", "application/json", 400, "malformed_body"),
        ("[1, 2]", "application/json", 400, "malformed_body"),
        ("", "application/json", 400, "malformed_body"),
        ("email=a", "text/plain", 415, "unsupported_media_type"),
        ("{}", "", 415, "unsupported_media_type"),
        ("x" * (16 * 1024 + 1), "application/json", 413, "payload_too_large"),
    ],
)
def test_malformed_oversized_and_foreign_bodies(stack, miimosa, body, content_type, status, error):
    before = lead_count(stack)
    response = invoke(stack, post_event(body, content_type=content_type))
    assert response["statusCode"] == status
    assert response_json(response)["error"] == error
    assert lead_count(stack) == before
    assert miimosa.requests == []


def test_json_with_a_charset_parameter_is_accepted(stack, miimosa):
    response = invoke(stack, post_event(lead_fields(), content_type="application/json; charset=utf-8"))
    assert response["statusCode"] == 201


def test_bodies_that_are_not_utf8_or_not_base64_are_refused(stack, miimosa):
    event = post_event(content_type="application/x-www-form-urlencoded")
    event["isBase64Encoded"] = True
    event["body"] = base64.b64encode(b"email=\xff\xfe").decode()
    assert invoke(stack, event)["statusCode"] == 400
    event["body"] = "***not base64***"
    assert invoke(stack, event)["statusCode"] == 400
    assert miimosa.requests == []


def test_a_field_given_twice_in_a_form_is_refused(stack, miimosa):
    form = urlencode(lead_fields()) + "&email=other%40example.org"
    response = invoke(stack, post_event(form, content_type="application/x-www-form-urlencoded"))
    assert response["statusCode"] == 422
    assert response_json(response)["problems"] == [
        {"field": "email", "rule": "single_value", "message": "must be given once"}
    ]


def test_an_empty_optional_form_field_is_absent_not_invalid(stack, miimosa):
    form = urlencode(lead_fields(siret="", category="", website=""))
    response = invoke(stack, post_event(form, content_type="application/x-www-form-urlencoded"))
    assert response["statusCode"] == 201, response["body"]
    assert "siret" not in miimosa.leads[-1]


def test_a_bad_idempotency_key_is_refused(stack, miimosa):
    response = invoke(stack, post_event(lead_fields(), headers={"idempotency-key": "short"}))
    assert response["statusCode"] == 400
    assert response_json(response)["problems"][0]["field"] == "Idempotency-Key"


# ---------------------------------------------------------------- bots


def test_a_filled_honeypot_looks_like_success_and_does_nothing(stack, miimosa):
    before = lead_count(stack)
    response = invoke(stack, post_event(lead_fields(website="http://spam.example")))
    assert response["statusCode"] == 201
    assert response_json(response)["status"] == "forwarded"
    assert lead_count(stack) == before
    assert miimosa.requests == []


# ---------------------------------------------------------------- MiiMOSA failure modes


def test_miimosa_400_is_a_422_with_its_message_recorded_as_rejected(stack, miimosa):
    miimosa.faults.add("status", status=400, count=1, path_prefix="/leads")
    response = invoke(stack, post_event(lead_fields()))
    body = response_json(response)
    assert response["statusCode"] == 422
    assert body["error"] == "rejected_by_partner"
    assert lead_item(stack, body["lead_id"])["status"]["S"] == "rejected"


@pytest.mark.parametrize(
    "fault",
    [
        {"mode": "status", "status": 500},
        {"mode": "status", "status": 503},
        {"mode": "status", "status": 401},
        {"mode": "status", "status": 404},
        {"mode": "rate_limit", "retry_after": 30},
        {"mode": "slow", "delay": 1.0},
        {"mode": "drop"},
    ],
    ids=["500", "503", "401", "404", "429", "timeout", "dropped"],
)
def test_miimosa_unavailable_means_202_and_queued(stack, miimosa, fault):
    mode = fault.pop("mode")
    miimosa.faults.add(mode, count=1, **fault)
    response = invoke(stack, post_event(lead_fields()))
    body = response_json(response)
    assert response["statusCode"] == 202, body
    assert body["status"] == "queued"
    assert lead_item(stack, body["lead_id"])["status"]["S"] == "queued"
    assert len(miimosa.requests) == 1  # a POST is never retried blindly


def test_an_unreadable_key_holds_the_lead_until_the_operator_restores_it(stack, miimosa):
    ssm = stack.boto3_client("ssm")
    name = stack.function_env(FUNCTION)["MIIMOSA_API_KEY_PARAM"]
    ssm.delete_parameter(Name=name)
    try:
        response = invoke(stack, post_event(lead_fields()))
        assert response["statusCode"] == 202
        lead_id = response_json(response)["lead_id"]
        assert miimosa.requests == []
    finally:
        ssm.put_parameter(Name=name, Value=MIIMOSA_KEY, Type="SecureString", Overwrite=True)
    assert invoke(stack, retry_event(lead_id)) == {"batchItemFailures": []}
    assert lead_item(stack, lead_id)["status"]["S"] == "forwarded"


def test_a_submit_in_progress_is_a_409_to_wait_for(stack, miimosa, monkeypatch):
    def busy(_services, _submission):
        raise flow.SubmissionInProgress

    monkeypatch.setattr(flow, "submit", busy)
    response = invoke(stack, post_event(lead_fields()))
    assert response["statusCode"] == 409
    assert response["headers"]["Retry-After"] == "2"


def test_garbage_json_after_miimosa_took_the_lead_is_still_201(stack, miimosa):
    miimosa.faults.add("malformed", count=1)
    assert invoke(stack, post_event(lead_fields()))["statusCode"] == 201


def test_a_retry_during_the_outage_fails_only_its_record(stack, miimosa):
    miimosa.faults.add("status", status=503, count=2)
    lead_id = response_json(invoke(stack, post_event(lead_fields())))["lead_id"]
    result = invoke(stack, retry_event("00000000-dead-beef-0000-000000000000", lead_id))
    assert result == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    item = lead_item(stack, lead_id)
    assert item["status"]["S"] == "queued"
    assert item["attempts"]["N"] == "2"


def test_a_retry_message_without_a_lead_id_is_dropped_not_cycled(stack, miimosa):
    event = retry_event("x")
    event["Records"][0]["body"] = "garbage"
    assert invoke(stack, event) == {"batchItemFailures": []}
    assert miimosa.requests == []


# ---------------------------------------------------------------- duplicates


def test_an_idempotency_key_replays_and_refuses_reuse_with_another_lead(stack, miimosa):
    headers = {"idempotency-key": "form-7c1e2b9a"}
    fields = lead_fields()
    first = invoke(stack, post_event(fields, headers=headers))
    again = invoke(stack, post_event(fields, headers=headers))
    assert response_json(again) == response_json(first)
    reused = invoke(stack, post_event(lead_fields(), headers=headers))
    assert reused["statusCode"] == 422
    assert response_json(reused)["error"] == "idempotency_key_reused"
    assert len(miimosa.requests) == 1


# ---------------------------------------------------------------- projects


def test_the_projects_event_file_lists_filtered_projects(stack, miimosa):
    response = invoke(stack, load_event("lead_intake/get_projects.json"))
    body = response_json(response)
    assert response["statusCode"] == 200
    assert body["count"] == len(body["projects"]) > 0
    assert all(p["category"] == "apiculture" for p in body["projects"])
    assert response["headers"]["Cache-Control"].startswith("public")


def test_project_lists_are_cached_briefly(stack, miimosa):
    invoke(stack, load_event("lead_intake/get_projects.json"))
    invoke(stack, load_event("lead_intake/get_projects.json"))
    assert len(miimosa.requests) == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [({"category": "fishing"}, "category"), ({"order": "oldest"}, "order"), ({"region": "../x"}, "region")],
)
def test_project_filters_are_validated_before_any_call(stack, miimosa, query, field):
    event = load_event("lead_intake/get_projects.json")
    event["queryStringParameters"] = query
    event["rawQueryString"] = urlencode(query)
    response = invoke(stack, event)
    assert response["statusCode"] == 422
    assert [p["field"] for p in response_json(response)["problems"]] == [field]
    assert miimosa.requests == []


def test_projects_unavailable_is_503_with_retry_after(stack, miimosa):
    miimosa.faults.add("status", status=503, count=5)
    event = load_event("lead_intake/get_projects.json")
    event["queryStringParameters"] = {"type": "lending"}
    response = invoke(stack, event)
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"]
    assert response_json(response)["retryable"] is True


def test_projects_malformed_is_502(stack, miimosa):
    miimosa.faults.add("malformed", count=5)
    event = load_event("lead_intake/get_projects.json")
    event["queryStringParameters"] = {"order": "populars"}
    assert invoke(stack, event)["statusCode"] == 502


def test_a_project_by_id_and_not_found(stack, miimosa):
    found = invoke(stack, load_event("lead_intake/get_project.json"))
    assert found["statusCode"] == 200
    assert response_json(found)["id"] == 3
    missing = load_event("lead_intake/get_project.json")
    missing["rawPath"] = missing["requestContext"]["http"]["path"] = "/projects/999999"
    response = invoke(stack, missing)
    assert response["statusCode"] == 404
    assert response_json(response)["error"] == "not_found"


def test_a_project_id_must_be_a_positive_integer(stack, miimosa):
    event = load_event("lead_intake/get_project.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/projects/abc"
    response = invoke(stack, event)
    assert response["statusCode"] == 422
    assert response_json(response)["problems"][0]["field"] == "id"


def test_an_unknown_route_is_a_json_404(stack, miimosa):
    event = load_event("lead_intake/get_projects.json")
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/nowhere"
    response = invoke(stack, event)
    assert response["statusCode"] == 404
    assert response_json(response)["error"] == "not_found"


# ---------------------------------------------------------------- privacy


def test_no_key_or_personal_data_in_any_log_line(stack, miimosa, caplog, capsys):
    caplog.set_level(logging.INFO)  # the production level; botocore at DEBUG prints whole responses
    miimosa.faults.add("status", status=503, count=1)
    queued = response_json(invoke(stack, post_event(lead_fields())))
    invoke(stack, retry_event(queued["lead_id"]))
    invoke(stack, post_event(lead_fields(email="not-an-email")))
    miimosa.faults.add("status", status=400, count=1)
    invoke(stack, post_event(lead_fields()))
    invoke(stack, load_event("lead_intake/post_valid.json"))
    out, err = capsys.readouterr()
    # Every record with all its structured fields, plus whatever reached stdout/stderr (metrics, print).
    logs = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records) + out + err
    assert "lead forwarded to MiiMOSA" in logs  # the logs were captured at all
    for secret in (MIIMOSA_KEY, CANARY_EMAIL, CANARY_PHONE, "98 76 54 32", CANARY_LASTNAME, "ann.bee@example.org"):
        assert secret not in logs


# ---------------------------------------------------------------- concurrency and events


def test_concurrent_identical_submits_forward_once(stack, miimosa, monkeypatch):
    """Twenty simultaneous double-clicks: one lead at MiiMOSA; every other answer is the outcome or 'in progress'.

    The flow is called from threads (Lambda would run separate containers): what must hold is DynamoDB's
    conditional put of the lead's record, not anything of one process. Powertools Metrics is not thread-safe,
    so the handler's decorators stay out of this test.
    """
    for name, value in stack.function_env(FUNCTION).items():
        monkeypatch.setenv(name, value)
    miimosa.faults.add("slow", delay=0.3, count=1)  # keep the first forward in flight while the others arrive
    lead = LeadForm.model_validate(lead_fields())
    submission = LeadSubmission(dedup_key=f"body:{lead.fingerprint()}", fingerprint=lead.fingerprint(), lead=lead)

    def submit(_):
        try:
            return flow.submit(services(), submission).lead_id
        except flow.SubmissionInProgress:
            return "in progress"

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(submit, range(20)))
    lead_ids = set(answers) - {"in progress"}
    assert len(lead_ids) == 1
    assert "in progress" in answers
    assert len([r for r in miimosa.requests if r.path == "/leads"]) == 1
    assert flow.submit(services(), submission).lead_id in lead_ids  # once settled, a repeat replays the outcome


def test_a_forwarded_lead_is_announced_on_the_bus_without_personal_data(stack, miimosa):
    events_client = stack.boto3_client("events")
    sqs = stack.boto3_client("sqs")
    bus = stack.physical("HubEventBus")
    capture_url = sqs.create_queue(QueueName="lead-captured-capture")["QueueUrl"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events_client.put_rule(Name="capture", EventBusName=bus, EventPattern=json.dumps({"detail-type": ["LeadCaptured"]}))
    events_client.put_targets(Rule="capture", EventBusName=bus, Targets=[{"Id": "q", "Arn": capture_arn}])

    fields = lead_fields()
    lead_id = response_json(invoke(stack, post_event(fields)))["lead_id"]
    messages = sqs.receive_message(QueueUrl=capture_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    event = json.loads(messages[0]["Body"])
    assert event["source"] == "partner-hub.lead-intake"
    assert event["detail"] == {
        "lead_id": lead_id,
        "collect_type": "donation",
        "category": "nature",
        "campaign_id": fields["campaign_id"],
        "lead_source": None,
    }
    assert CANARY_EMAIL not in messages[0]["Body"]


def test_a_member_s_lead_is_announced_with_a_flag_not_the_member_id(stack, miimosa):
    sqs = stack.boto3_client("sqs")
    events_client = stack.boto3_client("events")
    bus = stack.physical("HubEventBus")
    capture_url = sqs.create_queue(QueueName="lead-member-capture")["QueueUrl"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"detail-type": ["LeadCaptured"]}
    events_client.put_rule(Name="capture-member", EventBusName=bus, EventPattern=json.dumps(pattern))
    events_client.put_targets(Rule="capture-member", EventBusName=bus, Targets=[{"Id": "q", "Arn": capture_arn}])
    member = f"member-{time.time_ns()}"

    fields = lead_fields(apps_miles_user_id=member, apps_miles_signature=member_signature(stack, member))
    lead_id = response_json(invoke(stack, post_event(fields)))["lead_id"]

    messages = sqs.receive_message(QueueUrl=capture_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    [body] = [m["Body"] for m in messages if json.loads(m["Body"])["detail"]["lead_id"] == lead_id]
    assert json.loads(body)["detail"]["apps_miles_member"] is True
    # The event (and the loyalty DLQ it may end in) names the lead; the relay reads the member id from it.
    assert member not in body
    assert lead_item(stack, lead_id)["apps_miles_user_id"]["S"] == member


def test_a_lost_lead_captured_event_does_not_undo_the_201(stack, miimosa, caplog):
    events_client = stack.boto3_client("events")
    bus = stack.physical("HubEventBus")
    events_client.delete_event_bus(Name=bus)
    try:
        response = invoke(stack, post_event(lead_fields()))
    finally:
        events_client.create_event_bus(Name=bus)
    assert response["statusCode"] == 201
    assert "LeadCaptured not published" in caplog.text


def test_an_internationalised_address_is_accepted_and_forwarded_as_typed(stack, miimosa):
    email = f"zo\u00eb-{uuid.uuid4().hex[:8]}@example.org"
    response = invoke(stack, post_event(lead_fields(email=email)))
    assert response["statusCode"] == 201, response["body"]
    (sent,) = miimosa.requests
    assert sent.body_json["email"] == email
    item = lead_item(stack, response_json(response)["lead_id"])
    assert item["email_key"]["S"] == email


# ---------------------------------------------------------------- app's miles member ids


def test_a_signed_member_id_is_kept_for_the_loyalty_relay(stack, miimosa, capsys):
    member = f"member-{time.time_ns()}"
    fields = lead_fields(apps_miles_user_id=member, apps_miles_signature=member_signature(stack, member))
    response = invoke(stack, post_event(fields))
    assert response["statusCode"] == 201, response["body"]
    item = lead_item(stack, response_json(response)["lead_id"])
    assert item["apps_miles_user_id"]["S"] == member
    # Neither the id nor the signature reaches MiiMOSA, and the signature is not stored.
    sent = miimosa.requests[-1].body_json
    assert "apps_miles_user_id" not in sent
    assert "apps_miles_signature" not in sent
    assert fields["apps_miles_signature"] not in json.dumps(item)
    assert "MemberIdDropped" not in capsys.readouterr().out


def _forged(stack, member):
    other = f"{member}-other"
    expired = member_signature(stack, member, valid_for=-1)
    future = member_signature(stack, member, valid_for=30 * 86_400)
    good = member_signature(stack, member)
    expiry, _, mac = good.partition(".")
    return {
        "unsigned": None,
        "garbled": "not-a-signature",
        "another member's": member_signature(stack, other),
        "expired": expired,
        "good for a month": future,
        "expiry moved": f"{int(expiry) + 60}.{mac}",
        "mac of another key": f"{expiry}.{'A' * 43}",
    }


def test_an_unsigned_badly_signed_or_expired_member_id_is_dropped_and_counted(stack, miimosa, capsys):
    member = f"member-{time.time_ns()}"
    for name, signature in _forged(stack, member).items():
        fields = lead_fields(apps_miles_user_id=member, apps_miles_signature=signature)
        response = invoke(stack, post_event(fields))
        # The lead still goes through, with no member: it earns no one anything.
        assert response["statusCode"] == 201, (name, response["body"])
        item = lead_item(stack, response_json(response)["lead_id"])
        assert "apps_miles_user_id" not in item, name
        out = capsys.readouterr().out
        assert '"MemberIdDropped":[1.0]' in out, name
        assert member not in out, name


def test_a_lead_without_a_member_id_reads_no_signing_key(stack, miimosa, monkeypatch):
    from hub_core import member_signature as module  # noqa: PLC0415

    def no_ssm() -> str:
        raise AssertionError("the signing key was read for a lead without a member id")

    monkeypatch.setattr(module, "site_key_ring", no_ssm)
    response = invoke(stack, post_event(lead_fields()))
    assert response["statusCode"] == 201, response["body"]
