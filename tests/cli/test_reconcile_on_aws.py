"""`hub --stage … reconcile` against a deployed stack in moto: CloudFormation's resources, CampaignsTable in
DynamoDB, and the ingester's Invoke (moto runs Lambda code in Docker only, so the deployed function's answers are
given here, at the Invoke call, and every call is recorded)."""

from __future__ import annotations

import io
import json
import time

import pytest
from botocore.awsrequest import AWSResponse
from botocore.response import StreamingBody
from moto import mock_aws

from hub_cli.target import Target
from tests.cli.conftest import one_line_error

REGION = "eu-west-1"
STACK = "partner-hub-test"
DAY = 86_400
DEPLOYED = {
    "Resources": {
        "CampaignsTable": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "AttributeDefinitions": [
                    {"AttributeName": "campaign_ref", "AttributeType": "S"},
                    {"AttributeName": "reconcilable", "AttributeType": "S"},
                    {"AttributeName": "open_until", "AttributeType": "N"},
                ],
                "KeySchema": [{"AttributeName": "campaign_ref", "KeyType": "HASH"}],
                "GlobalSecondaryIndexes": [
                    {
                        "IndexName": "ReconcilableIndex",
                        "KeySchema": [
                            {"AttributeName": "reconcilable", "KeyType": "HASH"},
                            {"AttributeName": "open_until", "KeyType": "RANGE"},
                        ],
                        "Projection": {"ProjectionType": "KEYS_ONLY"},
                    }
                ],
                "BillingMode": "PAY_PER_REQUEST",
            },
        },
        "DonationIngesterRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "lambda.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
            },
        },
        "DonationIngesterFunction": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.13",
                "Handler": "index.handler",
                "Role": {"Fn::GetAtt": ["DonationIngesterRole", "Arn"]},
                "Code": {"ZipFile": "def handler(event, context): raise NotImplementedError"},
            },
        },
    }
}


def result(ref: str, status: str = "ok", **values: object) -> dict:
    return {
        "campaign": ref,
        "status": status,
        "fetched": 0,
        "recovered": 0,
        "republished": 0,
        "watermark": 1_790_000_000,
        "ledger_amount": 0,
        "partner_amount": 0,
    } | values


class DeployedIngester:
    """The deployed DonationIngesterFunction's answers to Invoke, per campaign; `calls` holds what it was sent."""

    def __init__(self) -> None:
        self.answers: dict[str, dict] = {}
        self.calls: list[tuple[str, str, dict]] = []
        self.errors: dict[str, dict] = {}
        self.refusal: str | None = None

    def __call__(self, params, **_):
        body = json.loads(params["body"])
        name = params["url_path"].split("/functions/")[1].split("/")[0]
        self.calls.append((name, params["headers"].get("X-Amz-Invocation-Type", ""), body))
        if self.refusal:
            error = {"Error": {"Code": "AccessDeniedException", "Message": self.refusal}}
            return AWSResponse("https://lambda", 403, {}, None), error
        answer: dict = {"StatusCode": 200}
        [ref] = body["reconcile"]["campaigns"]
        if ref in self.errors:
            document, answer["FunctionError"] = self.errors[ref], "Unhandled"
        else:
            found = self.answers.get(ref, result(ref, "unknown_campaign"))
            document = {"campaigns": [found], "reconciled": 1, "left": 0, "drift": 0, "recovered": 0}
        data = document if isinstance(document, bytes) else json.dumps(document).encode()
        answer["Payload"] = StreamingBody(io.BytesIO(data), len(data))
        return AWSResponse("https://lambda", 200, {}, None), answer


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "HUB_STAGE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        import boto3  # noqa: PLC0415 - clients made inside the mock

        cloudformation = boto3.client("cloudformation", region_name=REGION)
        cloudformation.create_stack(StackName=STACK, TemplateBody=json.dumps(DEPLOYED))
        physical = {
            row["LogicalResourceId"]: row["PhysicalResourceId"]
            for row in cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
        }
        yield boto3.client("dynamodb", region_name=REGION), physical


@pytest.fixture
def ingester(monkeypatch):
    deployed = DeployedIngester()
    make_client = Target.client

    def client(self, service, config=None):
        made = make_client(self, service, config)
        made.meta.events.register("before-call.lambda.Invoke", deployed)
        return made

    monkeypatch.setattr(Target, "client", client)
    return deployed


@pytest.fixture
def deployed(hub):
    return lambda *args: hub("--stage", "test", "--region", REGION, *args)


def put_campaign(aws, ref: str, state: str, stopped_ago: int | None = None, *, indexed: bool = True) -> None:
    """A campaign as the lifecycle writes it (indexed), or as it wrote it before ReconcilableIndex existed."""
    dynamodb, physical = aws
    item = {"campaign_ref": {"S": ref}, "state": {"S": state}, "created_at": {"N": str(int(time.time()) - 5 * DAY)}}
    stopped_at = None if stopped_ago is None else int(time.time()) - stopped_ago
    if stopped_at is not None:
        item["stopped_at"] = {"N": str(stopped_at)}
    if indexed and state in {"active", "stopped"}:
        item |= {"reconcilable": {"S": "campaign"}, "open_until": {"N": str(stopped_at or 9_999_999_999)}}
    dynamodb.put_item(TableName=physical["CampaignsTable"], Item=item)


def test_campaigns_index_puts_older_campaigns_where_reconcile_finds_them(aws, ingester, deployed):
    put_campaign(aws, "1/hjerte/old-active", "active", indexed=False)
    put_campaign(aws, "1/hjerte/old-stopped-today", "stopped", stopped_ago=3600, indexed=False)
    put_campaign(aws, "1/hjerte/old-stopped-long-ago", "stopped", stopped_ago=2 * DAY, indexed=False)
    put_campaign(aws, "1/hjerte/old-pending", "pending", indexed=False)
    put_campaign(aws, "1/hjerte/new-active", "active")
    for ref in ("1/hjerte/old-active", "1/hjerte/old-stopped-today", "1/hjerte/new-active"):
        ingester.answers[ref] = result(ref)

    before = deployed("reconcile")
    assert [body["reconcile"]["campaigns"] for _, _, body in ingester.calls] == [["1/hjerte/new-active"]], before.err
    ingester.calls.clear()
    indexed = deployed("campaigns", "index")
    assert indexed.status == 0, indexed.err
    assert "3 campaign(s) added" in indexed.out
    assert "0 campaign(s) added" in deployed("campaigns", "index").out  # a second run changes nothing

    outcome = deployed("reconcile")
    assert outcome.status == 0, outcome.err
    assert [body["reconcile"]["campaigns"][0] for _, _, body in ingester.calls] == [
        "1/hjerte/new-active",
        "1/hjerte/old-active",
        "1/hjerte/old-stopped-today",
    ]


def test_reconcile_invokes_the_deployed_ingester_once_per_reconcilable_campaign(aws, ingester, deployed):
    put_campaign(aws, "1/hjerte/b-active", "active")
    put_campaign(aws, "1/hjerte/a-active", "active")
    put_campaign(aws, "1/hjerte/stopped-today", "stopped", stopped_ago=3600)
    put_campaign(aws, "1/hjerte/stopped-long-ago", "stopped", stopped_ago=2 * DAY)
    put_campaign(aws, "1/hjerte/pending", "pending")
    ingester.answers["1/hjerte/a-active"] = result("1/hjerte/a-active", fetched=2, recovered=1, ledger_amount=2500)
    ingester.answers["1/hjerte/a-active"]["partner_amount"] = 2500
    ingester.answers["1/hjerte/b-active"] = result("1/hjerte/b-active")
    ingester.answers["1/hjerte/stopped-today"] = result("1/hjerte/stopped-today", "gone", ledger_amount=None)

    outcome = deployed("reconcile")
    assert outcome.status == 0, outcome.err
    function_name = aws[1]["DonationIngesterFunction"]
    assert ingester.calls == [
        (function_name, "RequestResponse", {"reconcile": {"campaigns": [ref]}})
        for ref in ("1/hjerte/a-active", "1/hjerte/b-active", "1/hjerte/stopped-today")
    ]
    assert f"Reconciliation of stack {STACK} in {REGION}" in outcome.out
    assert "3 campaign(s) reconciled: 1 donation(s) recovered, 0 drifting, 0 failed." in outcome.out
    row = next(line for line in outcome.out.splitlines() if "stopped-today" in line)
    assert [cell.strip() for cell in row.split("│")[2:8]] == ["gone", "0", "0", "0", "n/a", "0.00"]


def test_drift_or_an_outage_on_aws_exits_1(aws, ingester, deployed):
    put_campaign(aws, "1/hjerte/drifting", "active")
    put_campaign(aws, "1/hjerte/unreachable", "active")
    ingester.answers["1/hjerte/drifting"] = result("1/hjerte/drifting", "drift", ledger_amount=1000)
    ingester.answers["1/hjerte/drifting"]["partner_amount"] = 1500
    ingester.answers["1/hjerte/unreachable"] = result(
        "1/hjerte/unreachable", "partner_unavailable", ledger_amount=None, partner_amount=None
    )
    outcome = deployed("reconcile", "--json")
    assert outcome.status == 1
    summary = json.loads(outcome.out)
    assert (summary["reconciled"], summary["drift"], summary["failed"]) == (2, 1, 1)
    assert [item["status"] for item in summary["campaigns"]] == ["drift", "partner_unavailable"]


def test_one_campaign_on_aws(aws, ingester, deployed):
    ingester.answers["7/mad/x1"] = result("7/mad/x1", fetched=1)
    outcome = deployed("reconcile", "7/mad/x1")
    assert outcome.status == 0, outcome.err
    assert [call[2] for call in ingester.calls] == [{"reconcile": {"campaigns": ["7/mad/x1"]}}]
    assert "unknown_campaign" not in outcome.out
    line = one_line_error(deployed("reconcile", "7/mad/nope"))
    assert line == f"hub: no campaign 7/mad/nope in stack {STACK} in {REGION}: the hub never created it"


def test_a_function_error_on_aws_is_one_line(aws, ingester, deployed):
    put_campaign(aws, "1/hjerte/a-fine", "active")
    put_campaign(aws, "1/hjerte/b-slow", "active")
    put_campaign(aws, "1/hjerte/c-never-reached", "active")
    ingester.answers["1/hjerte/a-fine"] = result("1/hjerte/a-fine")
    ingester.errors["1/hjerte/b-slow"] = {
        "errorType": "Sandbox.Timedout",
        "errorMessage": "Task timed out after 60.00 seconds",
    }
    line = one_line_error(deployed("reconcile"))
    assert line == (
        "hub: DonationIngesterFunction failed on 1/hjerte/b-slow: Sandbox.Timedout: Task timed out after 60.00 "
        "seconds (1 of 3 campaigns reconciled before)"
    )
    assert len(ingester.calls) == 2  # it stops there
    # Lambda's error document, however long, stays one short line.
    ingester.errors["1/hjerte/b-slow"] = {"errorType": "RuntimeError", "errorMessage": "x\n" * 500}
    line = one_line_error(deployed("reconcile", "1/hjerte/b-slow"))
    assert line.endswith("…")
    assert len(line) < 400
    ingester.errors["1/hjerte/b-slow"] = b"Internal failure, not JSON"  # type: ignore[assignment]
    line = one_line_error(deployed("reconcile", "1/hjerte/b-slow"))
    assert line == "hub: DonationIngesterFunction failed on 1/hjerte/b-slow: Internal failure, not JSON"


def test_an_answer_that_is_not_a_summary_is_one_line(aws, ingester, deployed):
    ingester.answers["1/hjerte/odd"] = "not a result"  # type: ignore[assignment]
    line = one_line_error(deployed("reconcile", "1/hjerte/odd"))
    assert "did not answer a reconciliation summary for 1/hjerte/odd" in line


def test_a_refused_invoke_is_one_line(aws, ingester, deployed):
    ingester.refusal = "not authorized to perform: lambda:InvokeFunction"
    line = one_line_error(deployed("reconcile", "1/hjerte/any"))
    assert line.startswith("hub: AWS refused Invoke: AccessDeniedException: not authorized")


def test_a_stack_without_the_ingester_is_one_line(hub, monkeypatch):
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "HUB_STAGE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        import boto3  # noqa: PLC0415

        only_queues = {"Resources": {"LeadRetryDLQ": {"Type": "AWS::SQS::Queue"}}}
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="partner-hub-old", TemplateBody=json.dumps(only_queues)
        )
        line = one_line_error(hub("--stage", "old", "--region", REGION, "reconcile"))
    assert line == (
        "hub: stack partner-hub-old in eu-west-1 has no DonationIngesterFunction, which reconciles donations "
        "(sam deploy --config-env old)"
    )
