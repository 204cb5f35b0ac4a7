"""The benchmark finds its subjects in template.yaml and marks functions not written yet instead of failing."""

from __future__ import annotations

import contextlib
import json
import os
import typing
from pathlib import Path

import pytest

from bench import cold_start, common, cost, invocations
from bench.common import Handler
from bench.stack import NEW_EVENTS, load_event


def test_handlers_come_from_the_template():
    handlers = {handler.logical_id: handler for handler in common.declared_handlers()}
    assert handlers["LeadIntakeFunction"] == Handler("LeadIntakeFunction", "lead_intake.app", "lambda_handler")
    assert {"CampaignLifecycleFunction", "LicenceIssuanceFunction"} <= set(handlers)


def test_a_declared_function_without_its_package_is_not_built():
    assert common.is_built(Handler("LeadIntakeFunction", "lead_intake.app", "lambda_handler"))
    assert not common.is_built(Handler("LoyaltyRelayFunction", "loyalty_relay_not_written.app", "lambda_handler"))


def test_every_warm_scenario_names_a_template_function():
    declared = {handler.logical_id for handler in common.declared_handlers()}
    assert {scenario.logical_id for scenario in invocations.WARM} <= declared


def test_counts_filter_by_service_and_operation():
    calls = [("ssm", "GetParameter", {}), ("ssm", "PutParameter", {}), ("dynamodb", "GetItem", {})]
    assert invocations.AwsCalls.count(calls, "ssm", invocations.SSM_READS) == 1
    assert invocations.AwsCalls.count(calls, "dynamodb") == 1


def test_every_http_function_has_a_first_request_or_prints_not_built():
    http = cold_start.http_functions()
    assert {"LeadIntakeFunction", "CampaignLifecycleFunction", "LicenceIssuanceFunction"} <= set(http)
    # An HTTP function added to the template without a first request would print n/a, not pass unmeasured.
    assert "LoyaltyRelayFunction" not in http  # SQS only
    assert set(http) <= set(cold_start.FIRST_REQUESTS)


def test_write_paths_have_their_own_target():
    writes = {s.logical_id for s in invocations.WARM if s.description.startswith("write:")}
    assert writes == {
        "LeadIntakeFunction",
        "CampaignLifecycleFunction",
        "DonationIngesterFunction",
        "LicenceIssuanceFunction",
        "LoyaltyRelayFunction",
    }
    assert {s.target for s in invocations.WARM if s.description.startswith("write:")} == {"<= 1.3"}


def test_profile_entries_are_grouped_by_package():
    tottime = {
        "~:0(<method 'recv_into' of '_socket.socket' objects>)": 0.004,
        "/x/site-packages/botocore/parsers.py:10(parse)": 0.002,
        "/x/site-packages/botocore/hooks.py:1(emit)": 0.001,
    }
    assert cold_start.call_top(tottime) == [("waiting on I/O (socket)", 4.0), ("botocore", 3.0)]


def test_profile_entries_from_the_layer_are_its_packages_not_the_standard_library(tmp_path):
    tottime = {f"{tmp_path}/botocore/hooks.py:1(emit)": 0.002, "/usr/lib/python3.13/json/decoder.py:1(decode)": 0.001}
    with common.third_party_from(tmp_path):
        assert cold_start.call_top(tottime) == [("botocore", 2.0), ("stdlib decoder", 1.0)]


def test_request_units_price_transactions_double_and_batch_reads_per_key():
    calls = [
        ("dynamodb", "PutItem", {}),
        ("dynamodb", "TransactWriteItems", {"TransactItems": [{}, {}]}),
        ("dynamodb", "BatchGetItem", {"RequestItems": {"t": {"Keys": [{}, {}, {}]}}}),
        ("events", "PutEvents", {}),
        ("sqs", "SendMessage", {}),
    ]
    assert cost._units(calls) == {"dynamodb.write": 5, "dynamodb.read": 3, "events": 1, "sqs": 1}


def test_every_cost_operation_names_a_template_function():
    declared = {handler.logical_id for handler in common.declared_handlers()}
    assert {operation.logical_id for operation in cost.OPERATIONS} <= declared
    assert cost.AWS_TARGETS["accepted lead"] == "<= 5 AWS requests"


def test_fold_records_are_the_hints_the_callbacks_published_as_eventbridge_delivers_them():
    detail = {"campaign": "1/hjerte/anna50", "messageKey": "k1"}
    entry = {"Source": "partner-hub.donation-ingester", "DetailType": "DonationCallbackReceived"}
    calls = [
        ("dynamodb", "PutItem", {}),
        ("events", "PutEvents", {"Entries": [entry | {"Detail": json.dumps(detail)}]}),
    ]
    [record] = cost._hint_records(calls)
    body = json.loads(record["body"])
    assert record["eventSource"] == "aws:sqs"
    assert (body["detail-type"], body["source"], body["detail"]) == (
        "DonationCallbackReceived",
        "partner-hub.donation-ingester",
        detail,
    )


def test_every_time_budget_scenario_names_a_template_function_with_a_partner_to_slow():
    from bench import time_budgets  # noqa: PLC0415

    declared = {handler.logical_id for handler in common.declared_handlers()}
    assert {scenario.logical_id for scenario in time_budgets.SCENARIOS} <= declared
    # Every HTTP function that calls a partner on a visitor's request is in it.
    assert {"LeadIntakeFunction", "CampaignLifecycleFunction", "LicenceIssuanceFunction"} <= {
        scenario.logical_id for scenario in time_budgets.SCENARIOS
    }


def test_a_refused_answer_is_named_by_status_and_error_code():
    busy = {"statusCode": 503, "body": json.dumps({"error": "service_unavailable"})}
    assert common.refusal(busy) == "503 service_unavailable"
    assert common.refusal({"statusCode": 201, "body": "{}"}) is None
    assert common.refusal({"batchItemFailures": []}) is None
    assert common.refusal({"batchItemFailures": [{"itemIdentifier": "1"}]}) == "1 batch item failure(s)"
    assert common.refusal({"statusCode": 500, "body": "<html>"}) == "500 unreadable body"
    assert common.refusal(None) == "answered NoneType"


def test_a_run_with_any_refused_answer_is_not_a_valid_reading():
    created = {"statusCode": 201, "body": "{}"}
    busy = {"statusCode": 503, "body": json.dumps({"error": "service_unavailable"})}
    common.check_answers([created, created])
    with pytest.raises(common.InvalidReading, match=r"^2 of 3 answers refused: 2 x 503 service_unavailable$"):
        common.check_answers([created, busy, busy])


def test_warm_cpu_gives_every_invocation_its_own_deadline(monkeypatch):
    # One context shared by a long run runs out of time: its handler would then time a fast refusal.
    deadlines = []

    class Spec:
        handler = "x.handler"

    class Stack:
        sandboxes: typing.ClassVar[dict] = {}

        def function(self, logical_id):
            return Spec()

    def handler(event, context):
        deadlines.append(context)
        return {"statusCode": 201, "body": "{}"}

    monkeypatch.setattr(invocations, "function_environment", lambda stack, logical_id: contextlib.nullcontext())
    monkeypatch.setattr(invocations, "load_handler", lambda name: handler)
    monkeypatch.setattr(invocations, "LambdaContext", lambda spec: object())
    monkeypatch.setattr(invocations, "minimal_handler", lambda stack, calls, partner: handler)
    scenario = invocations.WarmScenario("LeadIntakeFunction", "write", lambda stack: dict)
    invocations.warm_cpu(Stack(), scenario, blocks=2, per_block=3)  # type: ignore[arg-type]
    assert len(deadlines) == len({id(context) for context in deadlines}) == 5 + 1 + 5 + 2 * 2 * 3


def test_probes_take_third_party_packages_from_the_layer_alone_while_it_is_given(tmp_path):
    (tmp_path / "pydantic").mkdir()
    assert "-S" not in common.python("-c", "pass")
    assert common.probes_can_import("aws_xray_sdk")  # the venv has whatever the dev tools installed
    with common.third_party_from(tmp_path):
        assert common.python("-c", "pass")[1:] == ["-S", "-c", "pass"]  # no venv site-packages
        assert common.base_env([Path("/code")])["PYTHONPATH"].split(os.pathsep) == ["/code", str(tmp_path)]
        assert common.probes_can_import("pydantic")
        assert not common.probes_can_import("aws_xray_sdk")
        assert "built layer" in common.third_party_source()
    assert "-S" not in common.python("-c", "pass")
    assert "dev venv" in common.third_party_source()


def test_each_measured_erasure_is_of_a_person_of_its_own():
    # The events file's person is every bench donation's donor: erasing them would erase thousands of records.
    new_event = NEW_EVENTS["ErasureFunction"](None)  # type: ignore[arg-type]
    people = [json.loads(new_event()["body"]) for _ in range(2)]
    donor = json.loads(load_event("donation_ingester/callback_post_json.json")["body"])["msisdn"]
    assert people[0]["msisdn"] != people[1]["msisdn"]
    assert donor not in {p["msisdn"] for p in people}
    assert len({p["email"] for p in people}) == len({p["appsMilesUserId"] for p in people}) == 2
