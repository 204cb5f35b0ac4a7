"""EventBridge in the local stack: rules, asynchronous invocation with retries and destinations, schedules."""

from __future__ import annotations

import datetime
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub_cli.app import main
from hub_local.async_invoke import AsyncInvoker
from hub_local.cfn import TemplateError
from hub_local.cron import next_fire_time, parse_schedule_expression
from hub_local.event_targets import (
    entries_from_document,
    event_envelope,
    json_path,
    render_target_input,
    tap_queue_name,
    transform_input,
)
from hub_local.resources import UnknownResourceError
from hub_local.specs import AsyncDestination, FunctionSpec, RuleTarget
from hub_local.stack import LocalStack
from hub_local.template import load_template
from tests.local import fake_handlers
from tests.local.fake_handlers import RECEIVED, REQUEST_IDS
from tests.local.test_stack import request

HANDLERS = "tests.local.fake_handlers"
BUS = "hub-local-events"

TEMPLATE = f"""
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    CodeUri: .
    Timeout: 5
    Handler: {HANDLERS}.record_event
    Environment:
      Variables:
        EVENT_BUS_NAME: !Ref HubBus
Resources:
  HubBus:
    Type: AWS::Events::EventBus
    Properties:
      Name: !Sub "${{AWS::StackName}}-events"
  OrdersFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        OrderPlaced:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref HubBus
            Pattern: {{source: [shop], detail-type: [OrderPlaced]}}
  BigOrdersFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        BigOrder:
          Type: EventBridgeRule
          Properties:
            EventBusName: !GetAtt HubBus.Arn
            Pattern: {{source: [shop], detail: {{amount: [{{numeric: [">=", 1000]}}]}}}}
  DisabledFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Muted:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref HubBus
            State: DISABLED
            Pattern: {{source: [shop]}}
  ChainStartFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: {HANDLERS}.chain_start
      Events:
        Start:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref HubBus
            Pattern: {{detail-type: [ChainStart]}}
  ChainEndFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Next:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref HubBus
            Pattern: {{source: [hub.chain], detail-type: [ChainNext]}}
  FlakyFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: {HANDLERS}.flaky
      EventInvokeConfig:
        MaximumRetryAttempts: 2
        DestinationConfig:
          OnFailure: {{Type: SQS, Destination: !GetAtt FailureQueue.Arn}}
          OnSuccess: {{Type: SQS, Destination: !GetAtt SuccessQueue.Arn}}
      Events:
        Flaky:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref HubBus
            Pattern: {{detail-type: [Flaky]}}
  DlqFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: {HANDLERS}.flaky
      EventInvokeConfig:
        MaximumRetryAttempts: 1
      DeadLetterQueue: {{Type: SQS, TargetArn: !GetAtt FunctionDLQ.Arn}}
      Events:
        Dlq:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref HubBus
            Pattern: {{detail-type: [DlqFlaky]}}
  FailureQueue:
    Type: AWS::SQS::Queue
  SuccessQueue:
    Type: AWS::SQS::Queue
  FunctionDLQ:
    Type: AWS::SQS::Queue
  LoyaltyQueue:
    Type: AWS::SQS::Queue
  ShopRule:
    Type: AWS::Events::Rule
    Properties:
      EventBusName: !Ref HubBus
      EventPattern: {{source: [shop], detail-type: [OrderPlaced]}}
      Targets:
        - {{Arn: !GetAtt LoyaltyQueue.Arn, Id: loyalty}}
        - {{Arn: !GetAtt AuditFunction.Arn, Id: audit, InputPath: $.detail}}
        - {{Arn: !Sub "arn:aws:logs:${{AWS::Region}}:${{AWS::AccountId}}:log-group:orders", Id: logs}}
  LoyaltyFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: {HANDLERS}.record_bodies
      Events:
        Loyalty: {{Type: SQS, Properties: {{Queue: !GetAtt LoyaltyQueue.Arn, BatchSize: 10}}}}
  AuditFunction:
    Type: AWS::Serverless::Function
  NightlyFunction:
    Type: AWS::Serverless::Function
    Properties:
      Events:
        Tick:
          Type: Schedule
          Properties: {{Schedule: rate(1 minute)}}
        Reconcile:
          Type: Schedule
          Properties:
            Schedule: cron(0 3 * * ? *)
            Input: '{{"job": "reconcile"}}'
        Poll:
          Type: ScheduleV2
          Properties: {{ScheduleExpression: rate(5 minutes), ScheduleExpressionTimezone: Europe/Copenhagen}}
        PollWithInput:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: cron(0 6 ? * MON-FRI *)
            Input: '{{"at": "<aws.scheduler.scheduled-time>"}}'
        Paused:
          Type: Schedule
          Properties: {{Schedule: rate(1 day), Enabled: false}}
"""

TIMER_TEMPLATE = f"""
Transform: AWS::Serverless-2016-10-31
Resources:
  TimerBus:
    Type: AWS::Events::EventBus
    Properties:
      Name: hub-local-timer
  TickFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Handler: {HANDLERS}.record_event
      Events:
        Tick: {{Type: Schedule, Properties: {{Schedule: rate(1 minute)}}}}
        Ping:
          Type: EventBridgeRule
          Properties: {{EventBusName: !Ref TimerBus, Pattern: {{source: [ping]}}}}
"""

ISOLATION_TEMPLATE = f"""
Transform: AWS::Serverless-2016-10-31
Resources:
  IsoBus:
    Type: AWS::Events::EventBus
    Properties:
      Name: hub-local-isolation
  IsoFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Handler: {HANDLERS}.record_event
      Events:
        Iso:
          Type: EventBridgeRule
          Properties: {{EventBusName: !Ref IsoBus, Pattern: {{source: [iso]}}}}
"""


def write(directory: Path, text: str) -> Path:
    path = directory / "template.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(autouse=True)
def _clear_records() -> None:
    RECEIVED.clear()
    REQUEST_IDS.clear()
    fake_handlers.ATTEMPTS.clear()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with LocalStack(
        write(tmp_path_factory.mktemp("events"), TEMPLATE),
        partners=[],
        environ={},
        pump_queues=False,
        async_retry_seconds=0.05,
        sqs_retry_seconds=0,
    ) as local:
        yield local


def put(stack: LocalStack, detail_type: str, detail: dict[str, Any], source: str = "shop") -> str:
    answer = stack.put_events([{"Source": source, "DetailType": detail_type, "Detail": detail}])
    assert answer["FailedEntryCount"] == 0, answer
    assert stack.drain_events()
    event_id: str = answer["Entries"][0]["EventId"]
    return event_id


def queue_messages(stack: LocalStack, queue: str) -> list[dict[str, Any]]:
    """Every message of a queue (received and deleted)."""
    sqs = stack.boto3_client("sqs")
    messages: list[dict[str, Any]] = []
    while batch := sqs.receive_message(
        QueueUrl=stack.physical(queue), MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    ).get("Messages", []):
        for message in batch:
            sqs.delete_message(QueueUrl=stack.physical(queue), ReceiptHandle=message["ReceiptHandle"])
        messages.extend(batch)
    return messages


# ------------------------------------------------------------------------------------------------ rules


def test_an_event_reaches_each_matching_function_once_as_eventbridge_sends_it(stack: LocalStack) -> None:
    event_id = put(stack, "OrderPlaced", {"order": "o-1", "amount": 20})

    (event,) = RECEIVED["OrdersFunction"]
    assert list(event) == ["version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"]
    assert event["id"] == event_id
    assert (event["source"], event["detail-type"], event["detail"]) == (
        "shop",
        "OrderPlaced",
        {"order": "o-1", "amount": 20},
    )
    assert (event["account"], event["region"], event["version"], event["resources"]) == (
        "123456789012",
        "eu-west-1",
        "0",
        [],
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    # A numeric filter that does not match, a disabled rule, other detail-types: nothing.
    assert set(RECEIVED) == {"OrdersFunction", "AuditFunction"}
    assert RECEIVED["AuditFunction"] == [{"order": "o-1", "amount": 20}]  # InputPath $.detail

    put(stack, "Shipped", {"amount": 5000})
    assert [e["detail-type"] for e in RECEIVED["BigOrdersFunction"]] == ["Shipped"]
    assert len(RECEIVED["OrdersFunction"]) == 1


def test_a_function_s_own_event_reaches_the_next_function(stack: LocalStack) -> None:
    event_id = put(stack, "ChainStart", {"step": 1}, source="hub.test")
    assert [event["id"] for event in RECEIVED["ChainStartFunction"]] == [event_id]
    (following,) = RECEIVED["ChainEndFunction"]
    assert (following["source"], following["detail"]) == ("hub.chain", {"from": event_id})


def test_a_rule_with_a_queue_target_feeds_the_queue_s_function(stack: LocalStack) -> None:
    assert stack.drain("LoyaltyQueue")  # what earlier tests' orders left there
    RECEIVED.clear()
    event_id = put(stack, "OrderPlaced", {"order": "o-2", "amount": 1})
    assert "LoyaltyFunction" not in RECEIVED  # the SQS event source runs when drained
    assert stack.drain("LoyaltyQueue")
    (body,) = RECEIVED["LoyaltyFunction"]
    assert body["id"] == event_id
    assert body["account"] == "123456789012"
    assert body["detail"] == {"order": "o-2", "amount": 1}


def test_rules_are_listed_and_registered_in_moto(stack: LocalStack) -> None:
    rules = {rule.logical_id: rule for rule in stack.event_rules}
    assert rules["ShopRule"].queues == ["LoyaltyQueue"]
    assert rules["ShopRule"].functions == ["AuditFunction"]  # the log group target is not served
    orders = rules["OrdersFunctionOrderPlaced"]
    assert (orders.bus, orders.functions, orders.pattern) == (
        BUS,
        ["OrdersFunction"],
        {"source": ["shop"], "detail-type": ["OrderPlaced"]},
    )
    assert not rules["DisabledFunctionMuted"].enabled
    events = stack.boto3_client("events")
    listed = {rule["Name"]: rule for rule in events.list_rules(EventBusName=BUS)["Rules"]}
    assert listed["DisabledFunctionMuted"]["State"] == "DISABLED"
    assert json.loads(listed["OrdersFunctionOrderPlaced"]["EventPattern"]) == orders.pattern
    assert "hub-local-bus-tap" in listed
    # Delivery is the router's: template rules hold no target in moto.
    assert events.list_targets_by_rule(Rule="ShopRule", EventBusName=BUS)["Targets"] == []


def test_a_failing_function_is_retried_then_its_on_failure_destination_gets_lambda_s_record(
    stack: LocalStack,
) -> None:
    event_id = put(stack, "Flaky", {"fail_times": "always"}, source="hub.test")
    assert fake_handlers.ATTEMPTS[event_id] == 3  # the call and MaximumRetryAttempts (2) retries
    assert len(set(REQUEST_IDS["FlakyFunction"])) == 1  # Lambda keeps the request id across retries
    (message,) = queue_messages(stack, "FailureQueue")
    record = json.loads(message["Body"])
    assert list(record) == [
        "version",
        "timestamp",
        "requestContext",
        "requestPayload",
        "responseContext",
        "responsePayload",
    ]
    assert record["version"] == "1.0"
    assert record["requestContext"] == {
        "requestId": REQUEST_IDS["FlakyFunction"][0],
        "functionArn": "arn:aws:lambda:eu-west-1:123456789012:function:FlakyFunction:$LATEST",
        "condition": "RetriesExhausted",
        "approximateInvokeCount": 3,
    }
    assert record["requestPayload"]["id"] == event_id
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert record["responsePayload"]["errorMessage"] == "flaky failure 3"
    assert record["responsePayload"]["errorType"] == "ValueError"
    assert queue_messages(stack, "SuccessQueue") == []


def test_an_async_invocation_past_its_timeout_is_retried_then_sent_to_on_failure(
    stack: LocalStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack.functions["FlakyFunction"], "handler", "tests.local.fake_handlers.slow")
    monkeypatch.setitem(stack.timeout_overrides, "FlakyFunction", 0.2)
    queue_messages(stack, "FailureQueue")
    event_id = put(stack, "Flaky", {"sleep": 0.5}, source="hub.test")
    (message,) = queue_messages(stack, "FailureQueue")
    record = json.loads(message["Body"])
    assert record["requestPayload"]["id"] == event_id
    assert record["requestContext"]["condition"] == "RetriesExhausted"
    assert record["requestContext"]["approximateInvokeCount"] == 3
    assert record["responsePayload"]["errorType"] == "Sandbox.Timedout"
    assert record["responsePayload"]["errorMessage"] == "Task timed out after 0.20 seconds"
    assert queue_messages(stack, "SuccessQueue") == []  # the late answers counted for nothing


def test_a_retry_that_succeeds_goes_to_on_success(stack: LocalStack) -> None:
    event_id = put(stack, "Flaky", {"fail_times": 1}, source="hub.test")
    assert fake_handlers.ATTEMPTS[event_id] == 2
    assert queue_messages(stack, "FailureQueue") == []
    (message,) = queue_messages(stack, "SuccessQueue")
    record = json.loads(message["Body"])
    assert record["requestContext"]["condition"] == "Success"
    assert record["requestContext"]["approximateInvokeCount"] == 2
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert record["responsePayload"] == {"ok": True, "attempts": 2}


def test_without_destination_the_dead_letter_queue_gets_the_event(stack: LocalStack) -> None:
    event_id = put(stack, "DlqFlaky", {"fail_times": "always"}, source="hub.test")
    assert fake_handlers.ATTEMPTS[event_id] == 2  # MaximumRetryAttempts: 1
    (message,) = queue_messages(stack, "FunctionDLQ")
    assert json.loads(message["Body"]) == RECEIVED["DlqFunction"][0]
    attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
    assert attributes == {
        "RequestID": REQUEST_IDS["DlqFunction"][0],
        "ErrorCode": "200",
        "ErrorMessage": "flaky failure 2",
    }


def test_put_events_defaults_maps_and_reports(stack: LocalStack) -> None:
    answer = stack.put_events(
        [
            {"Source": "shop", "DetailType": "OrderPlaced", "Detail": '{"order": "text"}', "EventBusName": "HubBus"},
            {"Source": "shop", "DetailType": "OrderPlaced", "Detail": "not json"},
            {"Source": "shop", "DetailType": "OrderPlaced", "Detail": {}, "Time": "2026-01-02T03:04:05Z"},
        ]
    )
    assert answer["FailedEntryCount"] == 1
    assert answer["Entries"][1] == {"ErrorCode": "MalformedDetail", "ErrorMessage": "Detail is malformed."}
    assert stack.drain_events()
    assert [event["detail"] for event in RECEIVED["OrdersFunction"]] == [{"order": "text"}, {}]
    assert RECEIVED["OrdersFunction"][1]["time"] == "2026-01-02T03:04:05Z"
    many = stack.put_events([{"Source": "nobody", "DetailType": "X", "Detail": {"n": n}} for n in range(12)])
    assert (many["FailedEntryCount"], len(many["Entries"])) == (0, 12)
    with pytest.raises(ValueError, match="at least one"):
        stack.put_events([])
    assert stack.drain_events()


# ------------------------------------------------------------------------------------------------ schedules


def test_run_schedule_sends_the_scheduled_event(stack: LocalStack) -> None:
    assert stack.run_schedule("NightlyFunction", "Tick") == {"recorded": "NightlyFunction"}
    (event,) = RECEIVED["NightlyFunction"]
    assert (event["source"], event["detail-type"], event["detail"]) == ("aws.events", "Scheduled Event", {})
    assert event["resources"] == ["arn:aws:events:eu-west-1:123456789012:rule/NightlyFunctionTick"]
    assert event["account"] == "123456789012"

    stack.run_schedule("NightlyFunction", "Reconcile")
    assert RECEIVED["NightlyFunction"][1] == {"job": "reconcile"}  # Input is the whole event

    stack.run_schedule("NightlyFunction", "Poll")
    scheduler = RECEIVED["NightlyFunction"][2]
    assert (scheduler["source"], scheduler["detail"]) == ("aws.scheduler", "{}")
    assert scheduler["resources"] == ["arn:aws:scheduler:eu-west-1:123456789012:schedule/default/NightlyFunctionPoll"]

    stack.run_schedule("NightlyFunction", "PollWithInput")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", RECEIVED["NightlyFunction"][3]["at"])


def test_run_schedule_errors_and_schedule_listing(stack: LocalStack) -> None:
    with pytest.raises(ValueError, match="several schedules"):
        stack.run_schedule("NightlyFunction")
    with pytest.raises(UnknownResourceError, match="no schedule 'Nope'"):
        stack.run_schedule("NightlyFunction", "Nope")
    with pytest.raises(UnknownResourceError, match="no function"):
        stack.run_schedule("Missing")
    schedules = {schedule.event_name: schedule for schedule in stack.schedules}
    assert (schedules["Poll"].kind, schedules["Poll"].expression.timezone) == ("ScheduleV2", "Europe/Copenhagen")
    assert not schedules["Paused"].enabled
    assert stack.schedule_timer is None  # run_schedules=False: nothing fires by itself
    listed = {rule["Name"] for rule in stack.boto3_client("events").list_rules()["Rules"]}
    assert {"NightlyFunctionTick", "NightlyFunctionReconcile", "NightlyFunctionPaused"} <= listed


def test_the_timer_fires_schedules_in_scaled_time(tmp_path: Path) -> None:
    with LocalStack(
        write(tmp_path, TIMER_TEMPLATE),
        partners=[],
        environ={},
        gateway_port=None,
        pump_queues=True,
        run_schedules=True,
        schedule_time_scale=600,  # one schedule minute per 0.1 s
    ) as local:
        deadline = time.monotonic() + 5
        while len(RECEIVED.get("TickFunction", [])) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        # Events flow in the background too (pump_queues=True): drain_events only waits.
        local.put_events([{"Source": "ping", "DetailType": "Ping", "Detail": {}}])
        assert local.drain_events()
        ticks = [event for event in RECEIVED["TickFunction"] if event.get("detail-type") == "Scheduled Event"]
        assert any(event.get("source") == "ping" for event in RECEIVED["TickFunction"])
    first, second = (datetime.datetime.fromisoformat(tick["time"]) for tick in ticks[:2])
    assert second - first == datetime.timedelta(minutes=1)


def test_next_fire_times() -> None:
    def at(text: str) -> datetime.datetime:
        return datetime.datetime.fromisoformat(text)

    def fire(expression: str, after: str, timezone: str = "UTC") -> str | None:
        parsed = parse_schedule_expression(expression, "T", timezone=timezone, allow_at=True)
        following = next_fire_time(parsed, at(after))
        return None if following is None else following.strftime("%Y-%m-%dT%H:%MZ")

    assert fire("rate(5 minutes)", "2026-03-10T03:00:00+00:00") == "2026-03-10T03:05Z"
    assert fire("cron(0 3 * * ? *)", "2026-03-10T03:00:00+00:00") == "2026-03-11T03:00Z"
    # 2026-11-27 is a Friday: after its last slot comes Monday's first.
    assert fire("cron(0/15 9-17 ? * MON-FRI *)", "2026-11-27T17:50:00+00:00") == "2026-11-30T09:00Z"
    assert fire("cron(30 8 1 JAN,JUL ? 2027)", "2026-11-24T00:00:00+00:00") == "2027-01-01T08:30Z"
    assert fire("cron(0 9 * * ? *)", "2026-07-01T00:00:00+00:00", "Europe/Copenhagen") == "2026-07-01T07:00Z"
    assert fire("cron(0 0 1 1 ? 2020)", "2026-01-01T00:00:00+00:00") is None
    assert fire("cron(0 0 L * ? *)", "2026-01-01T00:00:00+00:00") is None  # on demand only
    assert fire("at(2027-01-01T00:00:00)", "2026-01-01T00:00:00+00:00") == "2027-01-01T00:00Z"
    assert fire("at(2027-01-01T00:00:00)", "2028-01-01T00:00:00+00:00") is None


# ------------------------------------------------------------------------------------- gateway and command line


def test_post_local_events_on_the_gateway(stack: LocalStack) -> None:
    assert stack.gateway_url is not None
    url = f"{stack.gateway_url}/_local/events"
    entry = {"Source": "shop", "DetailType": "OrderPlaced", "Detail": {"order": "http"}}
    status, _headers, body = request(
        url, "POST", [("Content-Type", "application/json")], json.dumps({"Entries": [entry]}).encode()
    )
    assert status == 200
    answer = json.loads(body)
    assert answer["FailedEntryCount"] == 0
    assert stack.drain_events()
    assert [event["id"] for event in RECEIVED["OrdersFunction"]] == [answer["Entries"][0]["EventId"]]

    status, _headers, body = request(url, "POST", body=b"{not json")
    assert status == 400
    status, _headers, body = request(url, "POST", body=json.dumps(entry | {"EventBusName": "nope"}).encode())
    assert (status, json.loads(body)["code"]) == (400, "ResourceNotFoundException")


def test_put_events_cli_against_a_running_stack(stack: LocalStack, tmp_path: Path, capsys: Any) -> None:
    envelope = {
        "version": "0",
        "id": "6f2b3a1e-1c4d-4e5f-8a9b-0c1d2e3f4a5b",
        "detail-type": "OrderPlaced",
        "source": "shop",
        "account": "123456789012",
        "time": "2026-11-24T10:00:00Z",
        "region": "eu-west-1",
        "resources": [],
        "detail": {"order": "from-a-file"},
    }
    path = tmp_path / "event.json"
    path.write_text(json.dumps(envelope), encoding="utf-8")
    assert main(["local", "put-events", str(path), "--url", str(stack.gateway_url)]) == 0
    answer = json.loads(capsys.readouterr().out)
    assert stack.drain_events()
    (event,) = RECEIVED["OrdersFunction"]
    assert (event["id"], event["time"], event["detail"]) == (
        answer["Entries"][0]["EventId"],
        "2026-11-24T10:00:00Z",
        {"order": "from-a-file"},
    )
    path.write_text(json.dumps({"Entries": [{"Source": "s", "DetailType": "d", "Detail": "{"}]}), encoding="utf-8")
    assert main(["local", "put-events", str(path), "--url", str(stack.gateway_url)]) == 1  # a failed entry
    assert main(["local", "put-events", str(path), "--url", "http://example.com:3000"]) == 2
    path.write_text("[1]", encoding="utf-8")
    assert main(["local", "put-events", str(path), "--url", str(stack.gateway_url)]) == 2
    capsys.readouterr()


# ------------------------------------------------------------------------------------------ isolation, parsing


def test_two_stacks_one_after_the_other_do_not_share_events(tmp_path: Path) -> None:
    path = write(tmp_path, ISOLATION_TEMPLATE)
    options: dict[str, Any] = {"partners": [], "environ": {}, "gateway_port": None, "pump_queues": False}
    with LocalStack(path, **options) as first:
        first.put_events([{"Source": "iso", "DetailType": "Left", "Detail": {"n": 1}}])  # never drained
    with LocalStack(path, **options) as second:
        assert second.drain_events()
        assert "IsoFunction" not in RECEIVED
        second.put_events([{"Source": "iso", "DetailType": "Seen", "Detail": {"n": 2}}])
        assert second.drain_events()
        assert [event["detail"] for event in RECEIVED["IsoFunction"]] == [{"n": 2}]
        names = [
            rule["Name"]
            for rule in second.boto3_client("events").list_rules(EventBusName="hub-local-isolation")["Rules"]
        ]
        assert sorted(names) == ["IsoFunctionIso", "hub-local-bus-tap"]


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ("T: {Type: Schedule, Properties: {Schedule: rate(1 minutes)}}", "F.T: rate(1 minutes) is not valid"),
        ("T: {Type: Schedule, Properties: {Schedule: cron(0 3 * * * *)}}", "exactly one of day-of-month"),
        ('T: {Type: Schedule, Properties: {Schedule: "cron(61 3 * * ? *)"}}', "bad minutes field '61'"),
        ("T: {Type: Schedule, Properties: {Schedule: at(2027-01-01T00:00:00)}}", "is not a rate(...) or cron(...)"),
        ("T: {Type: Schedule, Properties: {Schedule: rate(1 day), Input: {a: 1}}}", "Input must be a JSON string"),
        ("T: {Type: EventBridgeRule, Properties: {EventBusName: other, Pattern: {source: [a]}}}", "bus 'other'"),
        ("T: {Type: EventBridgeRule, Properties: {Pattern: {source: a}}}", "must be an object or a non-empty array"),
        (
            "T: {Type: ScheduleV2, Properties: {ScheduleExpression: rate(1 hour), ScheduleExpressionTimezone: Mars}}",
            "unknown ScheduleExpressionTimezone",
        ),
    ],
)
def test_event_template_errors(tmp_path: Path, events: str, message: str) -> None:
    text = f"""
Resources:
  F:
    Type: AWS::Serverless::Function
    Properties:
      Handler: x.y
      Events:
        {events}
"""
    with pytest.raises(TemplateError, match=re.escape(message)):
        load_template(write(tmp_path, text))


def test_async_config_and_rule_targets_are_read_or_refused(tmp_path: Path) -> None:
    text = """
Globals:
  Function:
    EventInvokeConfig: {MaximumRetryAttempts: 1}
Resources:
  Q:
    Type: AWS::SQS::Queue
  F:
    Type: AWS::Serverless::Function
    Properties:
      Handler: x.y
      EventInvokeConfig:
        DestinationConfig:
          OnFailure: {Type: SNS, Destination: arn:aws:sns:eu-west-1:123456789012:topic}
          OnSuccess: {Type: Lambda, Destination: !GetAtt G.Arn}
      Events:
        Bucket: {Type: S3, Properties: {Bucket: b, Events: s3:ObjectCreated:*}}
  G:
    Type: AWS::Serverless::Function
    Properties: {Handler: x.y}
  Config:
    Type: AWS::Lambda::EventInvokeConfig
    Properties: {FunctionName: !Ref G, Qualifier: $LATEST, MaximumRetryAttempts: 0,
                 DestinationConfig: {OnFailure: {Destination: !GetAtt Q.Arn}}}
  Scheduled:
    Type: AWS::Events::Rule
    Properties:
      ScheduleExpression: rate(2 hours)
      Targets: [{Arn: !GetAtt G.Arn, Id: g, Input: '{"from": "rule"}'}]
"""
    template = load_template(write(tmp_path, text))
    f, g = template.functions["F"], template.functions["G"]
    assert (f.maximum_retry_attempts, f.on_failure) == (1, None)
    assert f.on_success is not None
    assert (f.on_success.kind, f.on_success.target) == ("Lambda", "G")
    assert (g.maximum_retry_attempts, g.on_failure and g.on_failure.target) == (0, "Q")
    assert list(f.unserved_events) == ["Bucket"]
    assert any("SNS destinations are not served" in warning for warning in template.warnings)
    assert any("events of type S3 are not served" in warning for warning in template.warnings)
    (schedule,) = template.schedules
    assert (schedule.logical_id, schedule.function, schedule.target.input) == ("Scheduled", "G", '{"from": "rule"}')

    refused = text.replace("!GetAtt Q.Arn}}}", "arn:aws:sqs:eu-west-1:123456789012:Missing}}}")
    with pytest.raises(TemplateError, match=r"Config OnFailure: destination .*Missing is not a queue"):
        load_template(write(tmp_path, refused))
    with pytest.raises(TemplateError, match="MaximumRetryAttempts must be 0, 1 or 2"):
        load_template(write(tmp_path, text.replace("MaximumRetryAttempts: 0", "MaximumRetryAttempts: 3")))


def test_entries_inputs_and_envelopes() -> None:
    envelope = {"detail-type": "D", "source": "s", "detail": {"a": 1}, "resources": ["r"], "time": "t"}
    assert entries_from_document(envelope) == [
        {"Source": "s", "DetailType": "D", "Detail": {"a": 1}, "Resources": ["r"], "Time": "t"}
    ]
    entry = {"Source": "s", "DetailType": "D", "Detail": "{}"}
    assert entries_from_document({"Entries": [entry]}) == entries_from_document(entry) == [entry]
    for bad in ([], [{"x": 1}], "text"):
        with pytest.raises(ValueError, match="entr"):
            entries_from_document(bad)

    event = event_envelope({"detail": {"items": [{"id": 7}]}, "id": "e", "source": "s", "ingestion-time": 1.5})
    assert event == {"id": "e", "source": "s", "account": "123456789012", "detail": {"items": [{"id": 7}]}}
    assert json_path(event, "$.detail.items[0].id") == 7
    assert json_path(event, "$.detail.missing.x") is None
    transformer = {
        "InputPathsMap": {"src": "$.source", "items": "$.detail.items"},
        "InputTemplate": '{"s": "<src>", "i": <items>, "r": "<aws.events.rule-name>"}',
    }
    assert json.loads(transform_input(transformer, event, "R", "arn")) == {"s": "s", "i": [{"id": 7}], "r": "R"}
    assert render_target_input(RuleTarget("t", "arn", queue="Q", input='{"k": 1}'), event, "R", "arn") == '{"k": 1}'
    assert tap_queue_name("partner-hub-local") == "hub-local-bus-tap-partner-hub-local"
    assert tap_queue_name("a.b").startswith("hub-local-bus-tap-a-b-")


def test_async_invoker_drops_nothing_silently_on_a_broken_destination(capsys: Any) -> None:
    """An outcome that cannot be delivered is reported; the worker goes on."""

    def failing_invoke(function: str, event: Any, *, request_id: str) -> Any:
        raise RuntimeError("always")

    function = FunctionSpec("F", "x.y", {}, 3, 128, maximum_retry_attempts=0)
    function.on_failure = AsyncDestination("SQS", "arn:aws:sqs:eu-west-1:123456789012:Gone", "Gone")
    invoker = AsyncInvoker(
        invoke=failing_invoke, functions={"F": function}, queues={}, sqs=None, events=None, retry_seconds=0
    )
    invoker.submit("F", {"n": 1})
    assert invoker.run_due() == 1
    assert invoker.pending == 0
    assert "delivery of the outcome failed" in capsys.readouterr().err
