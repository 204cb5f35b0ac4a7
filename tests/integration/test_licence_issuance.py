"""Licence issuance through its handler: the real events, moto from the template, the Pimenko MLM sandbox."""

from __future__ import annotations

import json
import logging
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from hub_core.caches import reset_all
from licence_issuance import app, flow
from licence_issuance.models import LicenceRequest
from licence_issuance.services import LicenceServices, services
from tests.conftest import load_event, member_signature
from tests.integration.conftest import MLM_TOKEN, response_json

FUNCTION = "LicenceIssuanceFunction"


def invoke(stack, event):
    return stack.invoke(FUNCTION, event)


def order(**changes: Any) -> dict[str, Any]:
    fields = {
        "order_id": f"order-{uuid.uuid4().hex[:12]}",
        "customer_reference": "cust-42",
        "product_id": 2,
        "licence_type": 1,
        "url": "https://moodle.example.org",
    }
    fields.update(changes)
    return {key: value for key, value in fields.items() if value is not None}


def post_event(body: Any) -> dict[str, Any]:
    event = load_event("licence_issuance/post_licence.json")
    event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


def bridge_event(detail: dict[str, Any]) -> dict[str, Any]:
    event = load_event("licence_issuance/licence_requested.json")
    event["id"] = str(uuid.uuid4())
    event["detail"] = detail
    return event


def issue(stack, **changes: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    fields = order(**changes)
    response = invoke(stack, post_event(fields))
    assert response["statusCode"] == 201, response["body"]
    return fields, response_json(response)["licence"]


def licences_for(mlm, product_id=2, licence_type=1, url=None):
    return [
        licence
        for licence in mlm.licences
        if licence["product_id"] == product_id
        and licence["licence_type_id"] == licence_type
        and (url is None or any(site["url"] == url for site in licence["sites"]))
    ]


def creates(mlm):
    return [r for r in mlm.requests if r.method == "POST" and r.path == "/licence/create"]


def problems(response):
    return {(p["field"], p["rule"]) for p in response_json(response).get("problems", [])}


def table_item(stack, pk):
    item = stack.boto3_client("dynamodb").get_item(
        TableName=stack.physical("LicencesTable"), Key={"pk": {"S": pk}}, ConsistentRead=True
    )
    return item.get("Item")


def site_event(key: str, url: str) -> dict[str, Any]:
    event = load_event("licence_issuance/post_site.json")
    event["pathParameters"] = {"key": key}
    event["rawPath"] = event["requestContext"]["http"]["path"] = f"/licences/{key}/sites"
    event["body"] = json.dumps({"url": url})
    return event


# ---------------------------------------------------------------- issue over HTTP


def test_the_post_event_file_issues_one_licence_and_records_it(stack, mlm):
    response = invoke(stack, load_event("licence_issuance/post_licence.json"))
    assert response["statusCode"] == 201, response["body"]
    licence = response_json(response)["licence"]
    assert licence["state"] == "issued"
    assert licence["sites"] == ["https://moodle.example.org"]
    (created,) = [entry for entry in mlm.licences if entry["key"] == licence["key"]]
    assert created["sites"][0]["url"] == "https://moodle.example.org"
    item = table_item(stack, "order#shop-order-1001")
    assert item["state"]["S"] == "issued"
    assert item["licence_key"]["S"] == licence["key"]
    assert table_item(stack, f"licence#{licence['licence_id']}")["order_id"]["S"] == "shop-order-1001"
    got = invoke(stack, load_event("licence_issuance/get_licence.json"))
    assert response_json(got)["licence"] == licence


def test_an_order_id_reused_for_another_request_is_a_409(stack, mlm):
    fields, _ = issue(stack)
    response = invoke(stack, post_event({**fields, "product_id": 3}))
    assert response["statusCode"] == 409
    assert response_json(response)["error"] == "order_conflict"
    assert invoke(stack, post_event({**fields, "url": "https://other.example.org"}))["statusCode"] == 409


def test_concurrent_identical_orders_make_one_licence(stack, mlm, monkeypatch):
    for name, value in stack.function_env(FUNCTION).items():
        monkeypatch.setenv(name, value)
    request = LicenceRequest.model_validate(order(product_id=3, licence_type=3))

    def attempt(_: int) -> str:
        try:
            return flow.issue(services(), request).state.value
        except flow.OrderInProgress:
            return "in_progress"

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(attempt, range(10)))
    assert outcomes.count("issued") >= 1
    assert set(outcomes) <= {"issued", "in_progress"}
    assert len(licences_for(mlm, 3, 3)) == 1
    # Those told "in progress" get the one licence when they come back.
    assert flow.issue(services(), request).state.value == "issued"
    assert len(licences_for(mlm, 3, 3)) == 1


def test_concurrent_different_orders_of_one_kind_each_get_their_own(stack, mlm, monkeypatch):
    for name, value in stack.function_env(FUNCTION).items():
        monkeypatch.setenv(name, value)
    requests = [LicenceRequest.model_validate(order(licence_type=2, url=f"https://s{i}.example.org")) for i in range(4)]

    def until_issued(request: LicenceRequest) -> int:
        for _ in range(200):
            try:
                licence = flow.issue(services(), request)
            except flow.OrderInProgress:
                continue
            assert licence.licence_id is not None
            return licence.licence_id
        raise AssertionError("never issued")

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(until_issued, requests))
    assert len(set(ids)) == 4


@pytest.mark.parametrize("mode", ["status", "slow"])
def test_a_create_that_failed_after_pimenko_made_it_is_found_not_made_twice(stack, mlm, mode):
    mlm.fail_after_commit(mode=mode, status=500, delay=0.8, path_prefix="/licence/create")
    fields = order(url=f"https://{mode}.example.org")
    first = invoke(stack, post_event(fields))
    assert first["statusCode"] == 503, first["body"]
    assert response_json(first)["retryable"] is True
    assert table_item(stack, f"order#{fields['order_id']}")["state"]["S"] == "uncertain"
    # Another order of the same kind goes through meanwhile, and must not be mistaken for the first one's.
    _, other = issue(stack)
    retry = invoke(stack, post_event(fields))
    assert retry["statusCode"] == 201, retry["body"]
    licence = response_json(retry)["licence"]
    (made,) = licences_for(mlm, url=fields["url"])
    assert licence["key"] == made["key"]
    assert licence["key"] != other["key"]
    assert len(creates(mlm)) == 2  # the interrupted one and the other order's; none for the retry


def test_a_create_refused_before_it_was_sent_is_simply_made_on_retry(stack, mlm):
    mlm.faults.add("status", status=503, path_prefix="/licences")
    fields = order()
    response = invoke(stack, post_event(fields))
    assert response["statusCode"] == 503
    assert table_item(stack, f"order#{fields['order_id']}") is None
    mlm.faults.clear()
    assert invoke(stack, post_event(fields))["statusCode"] == 201


def test_pimenko_refusing_the_data_is_a_final_422(stack, mlm):
    mlm.faults.add("status", status=422, count=1, path_prefix="/licence/create")
    fields = order()
    response = invoke(stack, post_event(fields))
    assert response["statusCode"] == 422
    assert response_json(response)["error"] == "rejected_by_pimenko"
    mlm.clear_requests()
    assert invoke(stack, post_event(fields))["statusCode"] == 422
    assert creates(mlm) == []


def test_our_token_refused_is_a_502_and_leaves_no_record(stack, mlm):
    mlm.faults.add("status", status=401, path_prefix="/licences")
    fields = order()
    response = invoke(stack, post_event(fields))
    assert response["statusCode"] == 502
    assert response_json(response)["error"] == "partner_misconfigured"
    assert table_item(stack, f"order#{fields['order_id']}") is None


def test_rate_limited_is_a_503_with_retry_after(stack, mlm):
    mlm.faults.add("rate_limit", retry_after=20, path_prefix="/licences")
    response = invoke(stack, post_event(order()))
    assert response["statusCode"] == 503
    assert response["headers"]["Retry-After"] == "20"


def test_a_malformed_catalogue_is_a_502(stack, mlm):
    mlm.faults.add("malformed", path_prefix="/products")
    response = invoke(stack, load_event("licence_issuance/get_products.json"))
    assert response["statusCode"] == 502


# ---------------------------------------------------------------- validation


# Each rule is named by tests/unit/test_licence_request_rules.py and test_licence_flow.py (the catalogue's): here one
# of the model's and one of the catalogue's, through the app's 422.
@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"url": "https://user:secret@moodle.example.org"}, "url", "url_credentials"),
        ({"product_id": 99}, "product_id", "unknown_product"),
    ],
)
def test_each_rule_is_named_and_no_licence_is_created(stack, mlm, changes, field, rule):
    response = invoke(stack, post_event(order(**changes)))
    assert response["statusCode"] == 422, response["body"]
    assert (field, rule) in problems(response)
    assert creates(mlm) == []


def test_a_request_that_did_not_pass_iam_is_refused(stack, mlm):
    event = post_event(order())
    del event["requestContext"]["authorizer"]
    response = invoke(stack, event)
    assert response["statusCode"] == 403
    assert creates(mlm) == []


@pytest.mark.parametrize(
    "caller",
    [
        "arn:aws:sts::123456789012:assumed-role/some-other-role/session",
        "arn:aws:sts::999999999999:assumed-role/shop-backend/session",  # the right name in another account
        "arn:aws:iam::123456789012:user/someone",
        "",
    ],
)
def test_a_signed_caller_not_on_the_allow_list_is_refused(stack, mlm, caller):
    event = post_event(order())
    event["requestContext"]["authorizer"]["iam"]["userArn"] = caller
    response = invoke(stack, event)
    assert response["statusCode"] == 403
    assert "allow-list" in response_json(response)["message"]
    assert caller == "" or caller not in response["body"]
    assert creates(mlm) == []


def test_the_shops_role_session_and_the_local_gateways_caller_are_on_the_default_list(stack, mlm):
    from hub_local.httpapi import LOCAL_IAM_CALLER  # noqa: PLC0415

    allowed = stack.function_env(FUNCTION)["IAM_CALLER_ARNS"].split(",")
    assert LOCAL_IAM_CALLER["userArn"] in allowed
    event = post_event(order())
    event["requestContext"]["authorizer"]["iam"]["userArn"] = LOCAL_IAM_CALLER["userArn"]
    assert invoke(stack, event)["statusCode"] in (200, 201, 202)


# ---------------------------------------------------------------- event path


def test_the_event_file_issues_a_licence_and_announces_it(stack, mlm):
    events_client = stack.boto3_client("events")
    sqs = stack.boto3_client("sqs")
    bus = stack.physical("HubEventBus")
    capture_url = sqs.create_queue(QueueName="licence-issued-capture")["QueueUrl"]
    capture_arn = sqs.get_queue_attributes(QueueUrl=capture_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events_client.put_rule(Name="capture-licence", EventBusName=bus, EventPattern='{"detail-type": ["LicenceIssued"]}')
    events_client.put_targets(Rule="capture-licence", EventBusName=bus, Targets=[{"Id": "q", "Arn": capture_arn}])

    result = invoke(stack, load_event("licence_issuance/licence_requested.json"))
    assert result["state"] == "issued"
    messages = sqs.receive_message(QueueUrl=capture_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    announced = json.loads(messages[0]["Body"])
    assert announced["source"] == "partner-hub.licence-issuance"
    assert announced["detail"]["order_id"] == "shop-order-1002"
    key = table_item(stack, "order#shop-order-1002")["licence_key"]["S"]
    assert key not in messages[0]["Body"]
    assert announced["detail"]["licence_key_hint"] == f"{key[:4]}…{key[-4:]}"
    # The order names the customer: the event names the order only.
    assert "customer_reference" not in announced["detail"]
    assert "cust-5521" not in messages[0]["Body"]
    # The same event delivered again (EventBridge is at least once) changes nothing.
    assert invoke(stack, load_event("licence_issuance/licence_requested.json"))["licence_id"] == result["licence_id"]
    assert len([entry for entry in mlm.licences if entry["id"] == result["licence_id"]]) == 1


def test_an_order_put_on_the_bus_reaches_the_function_through_its_rule(stack, mlm):
    fields = order(url="https://via-the-bus.example.org")
    answer = stack.put_events([{"Source": "shop", "DetailType": "LicenceRequested", "Detail": fields}])
    assert answer["FailedEntryCount"] == 0
    assert stack.drain_events()
    assert len(licences_for(mlm, url=fields["url"])) == 1
    assert table_item(stack, f"order#{fields['order_id']}")["state"]["S"] == "issued"
    # Another source or detail-type is not the shop's order: the rule does not match it.
    stack.put_events([{"Source": "someone-else", "DetailType": "LicenceRequested", "Detail": order()}])
    assert stack.drain_events()
    assert len(creates(mlm)) == 1


def test_an_order_pimenko_never_takes_ends_in_the_retry_dlq_as_an_id_never_as_the_shop_s_event(stack, mlm):
    sqs = stack.boto3_client("sqs")
    for queue in ("LicenceRequestDLQ", "LicenceRetryDLQ"):
        sqs.purge_queue(QueueUrl=stack.physical(queue))
    stack.set_function_env(FUNCTION, {"LICENCE_MAX_REQUEUES": "2"})
    reset_all()
    try:
        mlm.faults.add("status", status=503, path_prefix="/licences")
        fields = order(customer_reference="ref-kept-out-of-dlqs")
        stack.put_events([{"Source": "shop", "DetailType": "LicenceRequested", "Detail": fields}])
        assert stack.drain_events(timeout=20)
        # Re-queued twice by id, then failed on the retry queue until SQS dead-lettered its message.
        assert stack.drain("LicenceRetryQueue", timeout=60)
        retried = sqs.receive_message(
            QueueUrl=stack.physical("LicenceRetryDLQ"), MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        assert len(retried) == 1
        body = json.loads(retried[0]["Body"])
        assert set(body) == {"waiting_id", "requeues"}
        assert "ref-kept-out-of-dlqs" not in retried[0]["Body"]
        # The order waits in LicencesTable for the operator's redrive; Lambda's own DLQ got nothing.
        waiting = table_item(stack, f"waiting#{body['waiting_id']}")
        assert json.loads(waiting["event"]["S"])["detail"] == fields
        left = sqs.receive_message(QueueUrl=stack.physical("LicenceRequestDLQ"), WaitTimeSeconds=1)
        assert left.get("Messages", []) == []
    finally:
        mlm.faults.clear()
        stack.set_function_env(FUNCTION, {"LICENCE_MAX_REQUEUES": "30"})
        reset_all()


def test_a_bad_event_is_recorded_as_rejected_and_not_retried(stack, mlm):
    event = load_event("licence_issuance/licence_requested_invalid.json")
    result = invoke(stack, event)  # returns: Lambda does not retry it
    assert result["rejected"] is True
    assert {p["field"] for p in result["problems"]} >= {"product_id", "url", "colour"}
    recorded = table_item(stack, f"rejected-event#{event['id']}")
    assert {p["M"]["field"]["S"] for p in recorded["problems"]["L"]} >= {"product_id", "url"}
    assert creates(mlm) == []


def test_an_event_without_a_detail_object_is_rejected_too(stack, mlm):
    event = load_event("licence_issuance/licence_requested.json")
    event["detail"] = "not an object"
    assert invoke(stack, event)["rejected"] is True


def test_an_event_naming_an_unknown_product_is_rejected(stack, mlm):
    result = invoke(stack, bridge_event(order(product_id=77)))
    assert ("product_id", "unknown_product") in {(p["field"], p["rule"]) for p in result["problems"]}


def test_a_passing_failure_on_the_event_path_is_requeued_by_id_so_lambda_keeps_no_failure_record(stack, mlm):
    mlm.faults.add("status", status=503, path_prefix="/licences")
    assert invoke(stack, bridge_event(order())) == {"requeued": True, "requeues": 1}


def test_an_event_whose_turn_is_taken_is_requeued_then_issued_once_the_turn_is_free(stack, mlm, monkeypatch):
    for name, value in stack.function_env(FUNCTION).items():
        monkeypatch.setenv(name, value)
    fields = order(url="https://requeued.example.org")
    blocker = services().store
    assert blocker.take_turn(2, 1, holder="someone-else", now=int(time.time()), lease_seconds=30)
    try:
        assert invoke(stack, bridge_event(fields)) == {"requeued": True, "requeues": 1}
    finally:
        blocker.end_turn(2, 1, holder="someone-else")
    assert creates(mlm) == []
    assert stack.drain("LicenceRetryQueue", timeout=20)
    assert table_item(stack, f"order#{fields['order_id']}")["state"]["S"] == "issued"
    assert len(licences_for(mlm, url=fields["url"])) == 1


def test_an_event_out_of_requeues_raises_so_lambda_retries(stack, mlm, monkeypatch):
    for name, value in stack.function_env(FUNCTION).items():
        monkeypatch.setenv(name, value)
    blocker = services().store
    assert blocker.take_turn(2, 1, holder="someone-else", now=int(time.time()), lease_seconds=30)
    try:
        with pytest.raises(flow.OrderInProgress):
            app.handle_licence_requested(bridge_event(order()), requeues=30)
    finally:
        blocker.end_turn(2, 1, holder="someone-else")


# ---------------------------------------------------------------- sites, reads


def test_a_site_is_added_at_pimenko_and_recorded(stack, mlm):
    _, licence = issue(stack)
    response = invoke(stack, site_event(licence["key"], "https://second.example.org"))
    assert response["statusCode"] == 201, response["body"]
    assert response_json(response)["licence"]["sites"] == ["https://moodle.example.org", "https://second.example.org"]
    (at_pimenko,) = [entry for entry in mlm.licences if entry["key"] == licence["key"]]
    assert [site["url"] for site in at_pimenko["sites"]][-1] == "https://second.example.org"


def test_pimenkos_max_sites_refusal_is_a_409(stack, mlm):
    _, licence = issue(stack)
    # Sites added elsewhere (Pimenko's dashboard): our record thinks there is room, Pimenko knows better.
    for index in range(4):
        mlm_add_site_directly(mlm, licence["key"], f"https://direct{index}.example.org")
    response = invoke(stack, site_event(licence["key"], "https://one-too-many.example.org"))
    assert response["statusCode"] == 409
    assert response_json(response)["error"] == "max_sites_reached"


def mlm_add_site_directly(mlm, key, url):
    from partners.mlm import MlmClient  # noqa: PLC0415

    MlmClient(mlm.url, api_token=lambda: MLM_TOKEN).add_site(key, url)


def test_a_site_for_a_key_we_did_not_issue_is_a_404(stack, mlm):
    response = invoke(stack, site_event("550E8400-E29B-41D4-A716-446655440000-unknown", "https://x.example.org"))
    assert response["statusCode"] == 404


def test_an_unknown_order_is_a_404(stack, mlm):
    event = load_event("licence_issuance/get_licence.json")
    event["pathParameters"] = {"orderId": "never-ordered"}
    event["rawPath"] = event["requestContext"]["http"]["path"] = "/licences/never-ordered"
    assert invoke(stack, event)["statusCode"] == 404


def test_catalogue_routes_list_and_cache(stack, mlm):
    for _ in range(2):
        types = invoke(stack, load_event("licence_issuance/get_licence_types.json"))
        products = invoke(stack, load_event("licence_issuance/get_products.json"))
    assert {kind["name"] for kind in response_json(types)["licence_types"]} >= {"Standard", "Solo"}
    assert response_json(products)["products"][0]["slug"]
    assert sorted(r.path for r in mlm.requests) == ["/licencestypes", "/products"]


# ---------------------------------------------------------------- privacy


def test_no_token_or_licence_key_in_any_log_line(stack, mlm, caplog, capsys):
    caplog.set_level(logging.INFO)
    _, licence = issue(stack)
    invoke(stack, site_event(licence["key"], "https://second.example.org"))
    mlm.fail_after_commit(mode="status", status=500, path_prefix="/licences/")
    invoke(stack, site_event(licence["key"], "https://third.example.org"))
    mlm.fail_after_commit(mode="status", status=500, path_prefix="/licence/create")
    fields = order()
    invoke(stack, post_event(fields))
    invoke(stack, post_event(fields))
    ambiguous_key = licences_for(mlm)[-1]["key"]
    invoke(stack, bridge_event(order()))
    out, err = capsys.readouterr()
    logs = "\n".join(f"{record.getMessage()} {record.__dict__}" for record in caplog.records) + out + err
    assert "licence issued" in logs
    for secret in (MLM_TOKEN, licence["key"], ambiguous_key):
        assert secret not in logs


def test_a_licence_key_sits_only_in_its_order_record_and_a_replay_answers_it_from_there(stack, mlm):
    fields, first = issue(stack)
    assert first["key"]
    dynamodb = stack.boto3_client("dynamodb")
    holding = [
        (table, item.get("pk", {}).get("S"))
        for table in dynamodb.list_tables()["TableNames"]  # every table of the stack
        for item in dynamodb.scan(TableName=table)["Items"]
        if first["key"] in json.dumps(item)
    ]
    assert holding == [(stack.physical("LicencesTable"), f"order#{fields['order_id']}")]

    again = invoke(stack, post_event(fields))

    assert again["statusCode"] in (200, 201), again["body"]
    assert response_json(again)["licence"] == first
    assert len(creates(mlm)) == 1


def test_lead_intake_shares_no_table_with_licence_issuance(stack):
    lead = set(stack.function_env("LeadIntakeFunction").values())
    licence = stack.function_env("LicenceIssuanceFunction")
    assert "IDEMPOTENCY_TABLE_NAME" not in licence
    assert "IDEMPOTENCY_TABLE_NAME" not in stack.function_env("LeadIntakeFunction")
    assert licence["LICENCES_TABLE_NAME"] not in lead


# ---------------------------------------------------------------- app's miles member ids


@pytest.fixture
def issued_requests(monkeypatch):
    """The requests flow.issue is given, after the handler checked their member id."""
    seen: list[LicenceRequest] = []
    original = flow.issue

    def spy(collaborators: LicenceServices, request: LicenceRequest):
        seen.append(request)
        return original(collaborators, request)

    monkeypatch.setattr(flow, "issue", spy)
    return seen


def test_a_signed_member_id_travels_with_the_order_and_a_forged_one_is_dropped(stack, mlm, issued_requests, capsys):
    member = f"member-{uuid.uuid4().hex[:10]}"
    signed = order(apps_miles_user_id=member, apps_miles_signature=member_signature(stack, member))
    assert invoke(stack, post_event(signed))["statusCode"] == 201
    forged = order(apps_miles_user_id=member, apps_miles_signature=member_signature(stack, "someone-else"))
    assert invoke(stack, post_event(forged))["statusCode"] == 201
    unsigned = order(apps_miles_user_id=member)
    assert invoke(stack, bridge_event(unsigned))["state"] == "issued"
    assert [request.apps_miles_user_id for request in issued_requests] == [member, None, None]
    # Only the verified member id is kept on its order, where the loyalty relay reads it (LicenceIssued names none).
    orders = [table_item(stack, f"order#{fields['order_id']}") for fields in (signed, forged, unsigned)]
    assert [o.get("apps_miles_user_id", {}).get("S") for o in orders] == [member, None, None]
    assert {request.apps_miles_signature for request in issued_requests} == {None}
    assert capsys.readouterr().out.count('"MemberIdDropped":[1.0]') == 2
