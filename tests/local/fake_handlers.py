"""The small template the local runner's tests serve, and its handlers (echo, fail on demand, partial batches)."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

TEMPLATE = """
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: dev
    AllowedPattern: "^[a-z]+$"
  AllowedOrigins:
    Type: CommaDelimitedList
    Default: "https://site.example, https://other.example"
  FakeBaseUrl:
    Type: String
    Default: https://fake.example
Conditions:
  IsLocal: !Equals [!Ref Stage, local]
  IsDeployed: !Not [!Condition IsLocal]
Globals:
  Function:
    Timeout: 7
    MemorySize: 256
    CodeUri: .
    Environment:
      Variables:
        STAGE: !Ref Stage
        BUS_NAME: !Ref Bus
        SHARED: from-globals
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
    Properties:
      CorsConfiguration:
        AllowOrigins: !Ref AllowedOrigins
        AllowMethods: [GET, POST]
        AllowHeaders: [content-type, idempotency-key]
        MaxAge: 300
  Bus:
    Type: AWS::Events::EventBus
    Properties:
      Name: !Sub "test-bus-${Stage}"
  DefaultBus:
    Type: AWS::Events::EventBus
    Properties:
      Name: default
  ItemsTable:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      AttributeDefinitions:
        - {AttributeName: pk, AttributeType: S}
        - {AttributeName: gsi_pk, AttributeType: S}
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      GlobalSecondaryIndexes:
        - IndexName: by-gsi
          KeySchema: [{AttributeName: gsi_pk, KeyType: HASH}]
          Projection: {ProjectionType: ALL}
      TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}
      StreamSpecification: {StreamViewType: NEW_IMAGE}
  CountersTable:
    Type: AWS::Serverless::SimpleTable
    Properties:
      PrimaryKey: {Name: counter, Type: Number}
  WorkQueue:
    Type: AWS::SQS::Queue
    Properties:
      VisibilityTimeout: 30
      RedrivePolicy:
        deadLetterTargetArn: !GetAtt WorkDLQ.Arn
        maxReceiveCount: 2
  WorkDLQ:
    Type: AWS::SQS::Queue
  PoisonQueue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: {deadLetterTargetArn: !GetAtt PoisonDLQ.Arn, maxReceiveCount: 2}
  PoisonDLQ:
    Type: AWS::SQS::Queue
  OnlyDeployedQueue:
    Type: AWS::SQS::Queue
    Condition: IsDeployed
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.local.fake_handlers.echo
      Environment:
        Variables:
          ECHO_ONLY: "yes"
          TABLE_NAME: !Ref ItemsTable
          QUEUE_URL: !Ref WorkQueue
          QUEUE_NAME: !GetAtt WorkQueue.QueueName
          FAKE_BASE_URL: !Ref FakeBaseUrl
          MODE: !If [IsLocal, local-mode, cloud-mode]
          OPTIONAL: !If [IsLocal, !Ref AWS::NoValue, present]
      Events:
        GetItem: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: "/items/{id}", Method: get}}
        PostItems: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: /items, Method: POST}}
        Files: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: "/files/{proxy+}", Method: ANY}}
  PlainFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.local.fake_handlers.plain
      Timeout: 1
      Events:
        Special: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: /items/special, Method: GET}}
  BoomFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.local.fake_handlers.boom
      Events:
        Boom: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: /boom, Method: GET}}
  BinaryFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.local.fake_handlers.binary
      Events:
        Binary: {Type: HttpApi, Properties: {ApiId: !Ref Api, Path: /binary, Method: GET}}
  EnvFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.local.fake_handlers.environment
      MemorySize: 1024
      Environment:
        Variables:
          ENV_ONLY: "yes"
          OTHER_BASE_URL: https://other.example
  WorkerFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: tests.local.fake_handlers.batch
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt WorkQueue.Arn
            BatchSize: 5
            FunctionResponseTypes: [ReportBatchItemFailures]
        Poison:
          Type: SQS
          Properties:
            Queue: !GetAtt PoisonQueue.Arn
            BatchSize: 1
        Nightly:
          Type: Schedule
          Properties:
            Schedule: rate(1 day)
"""

# Bodies of every SQS record the batch handler saw, in order, and the events themselves; tests clear them.
SEEN: list[str] = []
EVENTS: list[dict[str, Any]] = []


def echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An HTTP handler that returns the event it got, and a CORS header API Gateway must replace."""
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json", "access-control-allow-origin": "https://evil.example"},
        "body": json.dumps(
            {
                "event": event,
                "function": context.function_name,
                "env": {name: os.environ.get(name) for name in ("ECHO_ONLY", "ENV_ONLY", "AWS_LAMBDA_FUNCTION_NAME")},
            }
        ),
    }


def plain(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A result without statusCode; also prints, which `invoke` must keep off stdout."""
    print("plain was here")
    return {"hello": "world", "event": event}


def boom(event: dict[str, Any], context: Any) -> None:
    raise RuntimeError("boom")


def binary(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "statusCode": 201,
        "headers": {"content-type": "image/png"},
        "multiValueHeaders": {"x-multi": ["one", "two"]},
        "cookies": ["a=1; Path=/", "b=2"],
        "body": base64.b64encode(b"\x89PNG\x00\xff").decode(),
        "isBase64Encoded": True,
    }


def environment(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The environment the function runs in and what its context says."""
    return {
        "environ": dict(os.environ),
        "context": {
            "function_name": context.function_name,
            "function_version": context.function_version,
            "invoked_function_arn": context.invoked_function_arn,
            "memory_limit_in_mb": context.memory_limit_in_mb,
            "aws_request_id": context.aws_request_id,
            "log_group_name": context.log_group_name,
            "log_stream_name": context.log_stream_name,
            "remaining": context.get_remaining_time_in_millis(),
        },
    }


def batch(event: dict[str, Any], context: Any) -> dict[str, Any] | None:
    """An SQS handler: bodies starting with "fail" are reported failed, "raise" fails the batch, "bogus" answers
    with an identifier that is not in the batch, "none" returns None."""
    bodies = [record["body"] for record in event["Records"]]
    SEEN.extend(bodies)
    EVENTS.append(event)
    if "raise" in bodies:
        raise RuntimeError("batch failed")
    if "bogus" in bodies:
        return {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}
    if "none" in bodies:
        return None
    return {
        "batchItemFailures": [
            {"itemIdentifier": record["messageId"]} for record in event["Records"] if record["body"].startswith("fail")
        ]
    }


# ----------------------------------------------------------------------------------------- EventBridge handlers

# What each event-driven function received, by function name, and the aws_request_id of each of its calls.
RECEIVED: dict[str, list[Any]] = {}
REQUEST_IDS: dict[str, list[str]] = {}
# Calls per event id of `flaky`.
ATTEMPTS: dict[str, int] = {}


def _received(event: Any, context: Any) -> None:
    RECEIVED.setdefault(context.function_name, []).append(event)
    REQUEST_IDS.setdefault(context.function_name, []).append(context.aws_request_id)


def record_event(event: Any, context: Any) -> dict[str, Any]:
    """Records the event; answers which function it was."""
    _received(event, context)
    return {"recorded": context.function_name}


def chain_start(event: dict[str, Any], context: Any) -> None:
    """Records the event and puts a ChainNext event on the bus named by EVENT_BUS_NAME, as functions do."""
    import boto3  # noqa: PLC0415 - this file is only appended to; boto3 reads AWS_ENDPOINT_URL now

    _received(event, context)
    boto3.client("events").put_events(
        Entries=[
            {
                "Source": "hub.chain",
                "DetailType": "ChainNext",
                "Detail": json.dumps({"from": event["id"]}),
                "EventBusName": os.environ["EVENT_BUS_NAME"],
            }
        ]
    )


def flaky(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Fails the first `detail.fail_times` calls for an event (every call when it is "always")."""
    _received(event, context)
    ATTEMPTS[event["id"]] = ATTEMPTS.get(event["id"], 0) + 1
    fail_times = event["detail"].get("fail_times", 0)
    if fail_times == "always" or ATTEMPTS[event["id"]] <= fail_times:
        raise ValueError(f"flaky failure {ATTEMPTS[event['id']]}")
    return {"ok": True, "attempts": ATTEMPTS[event["id"]]}


def record_bodies(event: dict[str, Any], context: Any) -> None:
    """An SQS handler that records each record's body (JSON decoded)."""
    for record in event["Records"]:
        _received(json.loads(record["body"]), context)


# Request ids of `slow` calls that ran to their end (after the runner stopped waiting, when it timed them out).
SLOW_FINISHED: list[str] = []


def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Sleeps `sleep` seconds (from the event, its EventBridge detail, or its first SQS record's body), then answers."""
    import time  # noqa: PLC0415 - this file is only appended to

    if "Records" in event:
        seconds = float(event["Records"][0]["body"])
    else:
        seconds = float(event.get("sleep", (event.get("detail") or {}).get("sleep", 0)))
    time.sleep(seconds)
    SLOW_FINISHED.append(context.aws_request_id)
    return {"statusCode": 200, "body": "late", "batchItemFailures": []}
