"""`hub --stage …` against a deployed stack: CloudFormation, SQS, SSM and EventBridge of moto's in-process mock."""

from __future__ import annotations

import json

import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws

from hub_cli.commands.secrets import SECRETS
from hub_cli.target import Target
from tests.cli.conftest import one_line_error
from tests.conftest import EVENTS, ROOT

REGION = "eu-west-1"
TEMPLATE = str(ROOT / "template.yaml")
# The deployed stack's queues and bus under the template's logical ids (moto cannot deploy the SAM template itself).
DEPLOYED = {
    "Resources": {
        "LeadRetryDLQ": {"Type": "AWS::SQS::Queue"},
        "LeadRetryQueue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["LeadRetryDLQ", "Arn"]}, "maxReceiveCount": 12}
            },
        },
        "LicenceRequestDLQ": {"Type": "AWS::SQS::Queue"},
        "HubEventBus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": "partner-hub-test"}},
    }
}


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "HUB_STAGE"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        import boto3  # noqa: PLC0415 - clients made inside the mock

        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="partner-hub-test", TemplateBody=json.dumps(DEPLOYED)
        )
        yield boto3.client("sqs", region_name=REGION)


@pytest.fixture
def deployed(hub):
    return lambda *args: hub("--stage", "test", "--region", REGION, "--template", TEMPLATE, *args)


def queue_url(sqs, logical_id):
    return next(url for url in sqs.list_queues()["QueueUrls"] if f"-{logical_id}-" in url)


def test_dlq_list_finds_the_stacks_queues(aws, deployed):
    sqs = aws
    sqs.send_message(QueueUrl=queue_url(sqs, "LeadRetryDLQ"), MessageBody='{"lead_id":"l-1"}')
    outcome = deployed("dlq", "list")
    assert outcome.status == 0, outcome.err
    assert "stack partner-hub-test in eu-west-1" in outcome.out
    row = next(line for line in outcome.out.splitlines() if "LeadRetryDLQ" in line)
    assert [cell.strip() for cell in row.split("│")[4:5]] == ["1"]
    assert "1 message(s) dead-lettered" in outcome.out


def test_dlq_show_says_why_on_aws_too(aws, deployed):
    aws.send_message(QueueUrl=queue_url(aws, "LeadRetryDLQ"), MessageBody='{"lead_id":"l-2"}')
    outcome = deployed("dlq", "show", "LeadRetryDLQ", "--json")
    assert outcome.status == 0, outcome.err
    [message] = json.loads(outcome.out)
    assert message["event"] == {"lead_id": "l-2"}
    assert message["why"] == "not processed after 12 deliveries from LeadRetryQueue"


def test_dlq_redrive_starts_a_message_move_task_on_aws(aws, deployed, monkeypatch):
    # moto 5.2.5 has no StartMessageMoveTask: this one call is answered here, the rest is moto's.
    calls = []

    def answer(params, **_):
        calls.append(json.loads(params["body"]))
        return AWSResponse("https://sqs", 200, {}, None), {"TaskHandle": "task-1"}

    make_client = Target.client

    def client(self, service):
        made = make_client(self, service)
        made.meta.events.register("before-call.sqs.StartMessageMoveTask", answer)
        return made

    monkeypatch.setattr(Target, "client", client)
    outcome = deployed("dlq", "redrive", "LeadRetryDLQ")
    assert outcome.status == 0, outcome.err
    assert "task task-1" in outcome.out
    dlq_arn = aws.get_queue_attributes(QueueUrl=queue_url(aws, "LeadRetryDLQ"), AttributeNames=["QueueArn"])
    assert calls == [{"SourceArn": dlq_arn["Attributes"]["QueueArn"]}]
    assert "--limit is not available on AWS" in one_line_error(
        deployed("dlq", "redrive", "LeadRetryDLQ", "--limit", "1")
    )


def test_secrets_set_puts_a_secure_string_under_the_stage(aws, deployed, monkeypatch):
    import io  # noqa: PLC0415

    import boto3  # noqa: PLC0415

    monkeypatch.setattr("sys.stdin", io.StringIO("umbrella-live-key\n"))
    outcome = deployed("secrets", "set", "umbrella/api-key", "--from-stdin")
    assert outcome.status == 0, outcome.err
    ssm = boto3.client("ssm", region_name=REGION)
    parameter = ssm.get_parameter(Name="/partner-hub/test/umbrella/api-key", WithDecryption=True)["Parameter"]
    assert (parameter["Value"], parameter["Type"]) == ("umbrella-live-key", "SecureString")
    assert "umbrella-live-key" not in outcome.out + outcome.err
    listed = deployed("secrets", "list")
    assert listed.status == 1  # the others are not there yet
    assert listed.out.count("MISSING") == len(SECRETS) - 1


def test_secrets_are_set_before_the_first_deploy(aws, hub, monkeypatch):
    import io  # noqa: PLC0415

    import boto3  # noqa: PLC0415

    monkeypatch.setattr("sys.stdin", io.StringIO("mlm-live-token\n"))
    outcome = hub("--stage", "fresh", "--region", REGION, "secrets", "set", "mlm/api-token", "--from-stdin")
    assert outcome.status == 0, outcome.err
    ssm = boto3.client("ssm", region_name=REGION)
    stored = ssm.get_parameter(Name="/partner-hub/fresh/mlm/api-token", WithDecryption=True)["Parameter"]
    assert stored["Value"] == "mlm-live-token"


def test_events_put_on_the_stacks_bus(aws, deployed):
    event_file = str(EVENTS / "licence_issuance/licence_requested.json")
    # moto's CloudFormation leaves an EventBus's physical id empty (AWS's is its name): the bus is named here.
    line = one_line_error(deployed("events", "put", event_file))
    assert "EventBusName is required" in line
    assert "(pass --bus)" in line
    outcome = deployed("events", "put", event_file, "--bus", "partner-hub-test")
    assert outcome.status == 0, outcome.err
    assert "1 of 1 events put on stack partner-hub-test" in outcome.out
    assert "partner-hub-test" in outcome.out


def test_an_aws_refusal_is_one_line(aws, deployed):
    aws.delete_queue(QueueUrl=queue_url(aws, "LicenceRequestDLQ"))
    line = one_line_error(deployed("dlq", "list"))
    assert line.startswith("hub: AWS refused GetQueueAttributes")


def test_a_stack_that_is_not_there(aws, hub):
    line = one_line_error(hub("--stage", "nope", "--region", REGION, "dlq", "list"))
    assert line == "hub: stack partner-hub-nope does not exist in eu-west-1 (deploy it: sam deploy --config-env nope)"


@pytest.fixture
def no_aws_config(monkeypatch, tmp_path):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_no_credentials_is_one_line(no_aws_config, hub):
    line = one_line_error(hub("--stage", "dev", "--region", REGION, "dlq", "list"))
    assert line.startswith("hub: no AWS credentials found")


def test_no_region_is_one_line(no_aws_config, hub):
    assert one_line_error(hub("--stage", "dev", "dlq", "list")) == "hub: no AWS region: pass --region or set AWS_REGION"


def test_an_unknown_profile_is_one_line(no_aws_config, hub):
    line = one_line_error(hub("--stage", "dev", "--profile", "ghost", "dlq", "list"))
    assert "ghost" in line
    assert line.startswith("hub: ")


def test_region_without_stage_is_a_usage_error(hub):
    outcome = hub("--region", REGION, "dlq", "list")
    assert outcome.status == 2
    assert "--region and --stack-name need --stage" in one_line_error(outcome)


def test_a_bug_of_hub_itself_is_still_one_line(aws, deployed, monkeypatch):
    def broken(_path):
        raise RuntimeError("catalogue exploded")

    monkeypatch.setattr("hub_cli.commands.dlq.dead_letter_queues", broken)
    line = one_line_error(deployed("dlq", "list"))
    assert line == "hub: unexpected RuntimeError: catalogue exploded (HUB_DEBUG=1 for a traceback)"
    monkeypatch.setenv("HUB_DEBUG", "1")
    with pytest.raises(RuntimeError):
        deployed("dlq", "list")
