"""Template loading: CloudFormation short tags, intrinsic resolution, and the specs read from a template."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub_local.cfn import NO_VALUE, Resolver, TemplateError, load_yaml
from hub_local.specs import IMPLICIT_HTTP_API
from hub_local.template import load_template
from tests.local.fake_handlers import TEMPLATE

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str, name: str = "template.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def minimal(resources: str, extra: str = "") -> str:
    return f"{extra}\nResources:\n{resources}"


# ---------------------------------------------------------------------------------------------------- tags


def test_short_tags_become_long_form(tmp_path: Path) -> None:
    document = load_yaml(
        write(
            tmp_path,
            """
ref: !Ref Stage
sub: !Sub "x-${Stage}"
sub_list: !Sub ["${A}-${B}", {A: 1, B: !Ref Stage}]
att: !GetAtt Queue.Arn
att_dotted: !GetAtt Db.Endpoint.Address
att_list: [!GetAtt [Queue, QueueName]]
join: !Join [",", [a, b]]
select: !Select [1, [a, b]]
split: !Split [",", "a,b"]
if: !If [IsLocal, a, b]
equals: !Equals [a, b]
not: !Not [!Condition IsLocal]
map: !FindInMap [M, k, v]
b64: !Base64 text
azs: !GetAZs ""
transform: !Transform {Name: AWS::Include}
plain: !!str 12
""",
        )
    )
    assert document == {
        "ref": {"Ref": "Stage"},
        "sub": {"Fn::Sub": "x-${Stage}"},
        "sub_list": {"Fn::Sub": ["${A}-${B}", {"A": 1, "B": {"Ref": "Stage"}}]},
        "att": {"Fn::GetAtt": ["Queue", "Arn"]},
        "att_dotted": {"Fn::GetAtt": ["Db", "Endpoint.Address"]},
        "att_list": [{"Fn::GetAtt": ["Queue", "QueueName"]}],
        "join": {"Fn::Join": [",", ["a", "b"]]},
        "select": {"Fn::Select": [1, ["a", "b"]]},
        "split": {"Fn::Split": [",", "a,b"]},
        "if": {"Fn::If": ["IsLocal", "a", "b"]},
        "equals": {"Fn::Equals": ["a", "b"]},
        "not": {"Fn::Not": [{"Condition": "IsLocal"}]},
        "map": {"Fn::FindInMap": ["M", "k", "v"]},
        "b64": {"Fn::Base64": "text"},
        "azs": {"Fn::GetAZs": ""},
        "transform": {"Fn::Transform": {"Name": "AWS::Include"}},
        "plain": "12",
    }


def test_short_tags_do_not_leak_into_yaml_safe_loader() -> None:
    with pytest.raises(yaml.constructor.ConstructorError):
        yaml.safe_load("a: !Ref B")


def test_load_yaml_rejects_a_non_mapping(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="not a CloudFormation template"):
        load_yaml(write(tmp_path, "- a list\n"))


# ---------------------------------------------------------------------------------------------- intrinsics


@pytest.fixture
def resolver() -> Resolver:
    return Resolver(
        parameters={"Stage": "local", "Origins": ["https://a.example", "https://b.example"], "Days": 90},
        physical={
            "Queue": {"Ref": "http://q/Queue", "Arn": "arn:aws:sqs:eu-west-1:123456789012:Queue", "QueueName": "Queue"},
            "Bus": {"Ref": "bus-local", "Name": "bus-local"},
        },
        conditions={
            "IsLocal": {"Fn::Equals": [{"Ref": "Stage"}, "local"]},
            "IsProd": {"Fn::Equals": ["prod", {"Ref": "Stage"}]},
            "Both": {"Fn::And": [{"Condition": "IsLocal"}, {"Fn::Not": [{"Condition": "IsProd"}]}]},
            "Either": {"Fn::Or": [{"Condition": "IsProd"}, "false"]},
        },
        mappings={"Sizes": {"local": {"Memory": 256}}},
        stack_name="my-stack",
    )


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ({"Ref": "Stage"}, "local"),
        ({"Ref": "Origins"}, ["https://a.example", "https://b.example"]),
        ({"Ref": "Queue"}, "http://q/Queue"),
        ({"Ref": "AWS::Region"}, "eu-west-1"),
        ({"Fn::Sub": "${AWS::Region}/${AWS::AccountId}/${AWS::URLSuffix}"}, "eu-west-1/123456789012/amazonaws.com"),
        ({"Fn::Sub": "${AWS::StackName}-${Stage}-${Days}"}, "my-stack-local-90"),
        ({"Fn::Sub": "${Queue.QueueName}|${Bus}|${!Literal}"}, "Queue|bus-local|${Literal}"),
        ({"Fn::Sub": "${Origins}"}, "https://a.example,https://b.example"),
        ({"Fn::Sub": ["${Name}-${Stage}", {"Name": {"Ref": "Bus"}}]}, "bus-local-local"),
        ({"Fn::GetAtt": ["Queue", "Arn"]}, "arn:aws:sqs:eu-west-1:123456789012:Queue"),
        ({"Fn::GetAtt": ["Bus", "Name"]}, "bus-local"),
        ({"Fn::Join": ["|", {"Ref": "Origins"}]}, "https://a.example|https://b.example"),
        ({"Fn::Join": ["", ["a", {"Ref": "Stage"}, 1, True]]}, "alocal1true"),
        ({"Fn::Select": ["1", {"Ref": "Origins"}]}, "https://b.example"),
        ({"Fn::Select": [0, {"Fn::Split": [":", {"Fn::GetAtt": ["Queue", "Arn"]}]}]}, "arn"),
        ({"Fn::If": ["IsLocal", "yes", "no"]}, "yes"),
        ({"Fn::If": ["IsProd", "yes", {"Ref": "Stage"}]}, "local"),
        ({"Fn::If": ["Both", 1, 2]}, 1),
        ({"Fn::If": ["Either", 1, 2]}, 2),
        ({"Fn::Not": [{"Fn::Equals": ["a", "b"]}]}, True),
        ({"Fn::FindInMap": ["Sizes", {"Ref": "Stage"}, "Memory"]}, 256),
        ({"Fn::Base64": "hi"}, "aGk="),
        ({"Fn::GetAZs": ""}, ["eu-west-1a", "eu-west-1b", "eu-west-1c"]),
        ({"Fn::ToJsonString": {"a": {"Ref": "Stage"}}}, '{"a":"local"}'),
        ({"Fn::Length": {"Ref": "Origins"}}, 2),
        ({"Ref": "AWS::StackId"}, "arn:aws:cloudformation:eu-west-1:123456789012:stack/my-stack/local"),
    ],
)
def test_intrinsics_resolve(resolver: Resolver, expression: Any, expected: Any) -> None:
    assert resolver.resolve(expression) == expected


def test_no_value_is_dropped_from_maps_and_lists(resolver: Resolver) -> None:
    value = {
        "keep": 1,
        "drop": {"Fn::If": ["IsLocal", {"Ref": "AWS::NoValue"}, 2]},
        "list": [{"Ref": "AWS::NoValue"}, 3],
    }
    assert resolver.resolve(value) == {"keep": 1, "list": [3]}
    assert repr(NO_VALUE) == "AWS::NoValue"


def test_a_condition_key_that_is_not_a_reference_is_a_plain_property(resolver: Resolver) -> None:
    statement = {"Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}}
    assert resolver.resolve(statement) == {"Condition": {"StringEquals": {"aws:SourceAccount": "123456789012"}}}
    assert resolver.resolve({"Condition": "IsLocal"}) is True


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ({"Ref": "Nope"}, "unknown parameter or resource 'Nope'"),
        ({"Ref": ["not", "a", "name"]}, "Ref takes a name"),
        ({"Fn::GetAtt": ["Queue", "Nope"]}, "Queue.Nope has no local value"),
        ({"Fn::Sub": "${Nope.Arn}"}, "Nope.Arn has no local value"),
        ({"Fn::If": ["Unknown", 1, 2]}, "unknown condition 'Unknown'"),
        ({"Fn::FindInMap": ["Sizes", "prod", "Memory"]}, "Sizes/prod/Memory is not in Mappings"),
        ({"Fn::ImportValue": "Export"}, "Fn::ImportValue cannot be resolved locally"),
    ],
)
def test_unresolvable_intrinsics_raise(resolver: Resolver, expression: Any, message: str) -> None:
    with pytest.raises(TemplateError, match=message.replace("(", r"\(").replace(".", r"\.")):
        resolver.resolve(expression)


# ---------------------------------------------------------------------------------------------- parameters


def test_parameters_default_stage_to_local_and_split_lists(tmp_path: Path) -> None:
    template = load_template(write(tmp_path, TEMPLATE))
    assert template.parameters["Stage"] == "local"
    assert template.stage == "local"
    assert template.parameters["AllowedOrigins"] == ["https://site.example", "https://other.example"]


def test_parameters_template_defaults_and_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, TEMPLATE)
    assert load_template(path, local_defaults={}).parameters["Stage"] == "dev"
    overridden = load_template(path, parameter_overrides={"Stage": "qa", "AllowedOrigins": "https://x.example"})
    assert overridden.parameters["Stage"] == "qa"
    assert overridden.parameters["AllowedOrigins"] == ["https://x.example"]
    assert overridden.buses["Bus"].name == "test-bus-qa"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"Nope": "x"}, "undeclared parameter"),
        ({"Stage": "Not-Valid"}, "does not match"),
    ],
)
def test_parameter_overrides_are_checked(tmp_path: Path, overrides: dict[str, str], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        load_template(write(tmp_path, TEMPLATE), parameter_overrides=overrides)


def test_allowed_values_and_missing_defaults(tmp_path: Path) -> None:
    parameters = """
Parameters:
  Days: {Type: Number, AllowedValues: [1, 7], Default: 7}
"""
    path = write(tmp_path, minimal("  Bus: {Type: AWS::Events::EventBus}", parameters))
    assert load_template(path, parameter_overrides={"Days": "1"}).parameters["Days"] == "1"
    with pytest.raises(TemplateError, match="not one of"):
        load_template(path, parameter_overrides={"Days": "2"})
    required = write(tmp_path, minimal("  Bus: {Type: AWS::Events::EventBus}", "Parameters:\n  Key: {Type: String}"))
    with pytest.raises(TemplateError, match="no Default"):
        load_template(required)


# ------------------------------------------------------------------------------------------------ specs


def test_the_test_template_is_read_into_specs(tmp_path: Path) -> None:
    template = load_template(write(tmp_path, TEMPLATE), endpoint_url="http://127.0.0.1:9999/")

    echo = template.functions["EchoFunction"]
    assert echo.handler == "tests.local.fake_handlers.echo"
    assert (echo.timeout, echo.memory_size) == (7, 256)
    assert echo.environment == {
        "STAGE": "local",
        "BUS_NAME": "test-bus-local",
        "SHARED": "from-globals",
        "ECHO_ONLY": "yes",
        "TABLE_NAME": "ItemsTable",
        "QUEUE_URL": "http://127.0.0.1:9999/123456789012/WorkQueue",
        "QUEUE_NAME": "WorkQueue",
        "FAKE_BASE_URL": "https://fake.example",
        "MODE": "local-mode",
    }
    assert [(route.method, route.path, route.route_key) for route in echo.http_routes] == [
        ("GET", "/items/{id}", "GET /items/{id}"),
        ("POST", "/items", "POST /items"),
        ("ANY", "/files/{proxy+}", "ANY /files/{proxy+}"),
    ]
    assert echo.code_dirs == [tmp_path.resolve()]
    assert template.functions["PlainFunction"].timeout == 1
    assert template.functions["EnvFunction"].memory_size == 1024

    worker = template.functions["WorkerFunction"]
    work, poison = worker.sqs_sources
    assert (work.queue, work.batch_size, work.reports_batch_item_failures) == ("WorkQueue", 5, True)
    assert (poison.queue, poison.batch_size, poison.reports_batch_item_failures) == ("PoisonQueue", 1, False)
    assert worker.other_events == {"Nightly": {"Type": "Schedule", "Properties": {"Schedule": "rate(1 day)"}}}

    items = template.tables["ItemsTable"]
    assert items.key_schema == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert items.ttl_attribute == "expires_at"
    assert items.global_secondary_indexes[0]["IndexName"] == "by-gsi"
    assert items.stream_specification == {"StreamViewType": "NEW_IMAGE"}
    counters = template.tables["CountersTable"]
    assert counters.attribute_definitions == [{"AttributeName": "counter", "AttributeType": "N"}]
    assert (counters.billing_mode, counters.ttl_attribute) == ("PAY_PER_REQUEST", None)

    work_queue = template.queues["WorkQueue"]
    assert work_queue.visibility_timeout == 30
    assert (work_queue.dead_letter_queue, work_queue.max_receive_count) == ("WorkDLQ", 2)
    assert json.loads(work_queue.attributes["RedrivePolicy"]) == {
        "deadLetterTargetArn": "arn:aws:sqs:eu-west-1:123456789012:WorkDLQ",
        "maxReceiveCount": 2,
    }
    assert template.queues["WorkDLQ"].visibility_timeout == 30
    assert "OnlyDeployedQueue" not in template.queues

    assert template.buses["Bus"].arn == "arn:aws:events:eu-west-1:123456789012:event-bus/test-bus-local"
    cors = template.http_apis["Api"].cors
    assert cors is not None
    assert cors.allow_origins == ("https://site.example", "https://other.example")
    assert (cors.allow_methods, cors.allow_headers, cors.max_age) == (
        ("GET", "POST"),
        ("content-type", "idempotency-key"),
        300,
    )
    assert template.physical("WorkQueue") == "http://127.0.0.1:9999/123456789012/WorkQueue"


def test_fifo_queues_string_redrive_literal_arns_and_the_implicit_api(tmp_path: Path) -> None:
    resources = """
  Jobs:
    Type: AWS::SQS::Queue
    Properties:
      FifoQueue: true
      ContentBasedDeduplication: true
      RedrivePolicy: '{"deadLetterTargetArn": "arn:aws:sqs:eu-west-1:123456789012:JobsDLQ.fifo", "maxReceiveCount": 3}'
      RedriveAllowPolicy: {redrivePermission: allowAll}
  JobsDLQ:
    Type: AWS::SQS::Queue
    Properties: {FifoQueue: true}
  Provisioned:
    Type: AWS::Serverless::SimpleTable
    Properties:
      ProvisionedThroughput: {ReadCapacityUnits: 1, WriteCapacityUnits: 1}
  Logs:
    Type: AWS::Logs::LogGroup
    Properties: {LogGroupName: !Sub "/x/${AWS::StackName}"}
  Layer:
    Type: AWS::Serverless::LayerVersion
    Properties: {ContentUri: layer/}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Handler: app.handler
      CodeUri: {Bucket: b, Key: k}
      Layers: [!Ref Layer, arn:aws:lambda:eu-west-1:1:layer:x:1]
      Environment:
        Variables:
          LOGS: !Ref Logs
          LAYER: !Ref Layer
          ENABLED: true
          FUNCTION_ARN: !GetAtt Worker.Arn
          OTHER: !Ref Other
      Events:
        Jobs: {Type: SQS, Properties: {Queue: "arn:aws:sqs:eu-west-1:123456789012:Jobs.fifo", Enabled: false}}
        Anything: {Type: HttpApi}
        Root: {Type: HttpApi, Properties: {Path: /, Method: x-amazon-apigateway-any-method}}
  Other:
    Type: AWS::SNS::Topic
"""
    globals_ = "Globals:\n  HttpApi:\n    CorsConfiguration: true\n"
    template = load_template(write(tmp_path, minimal(resources, globals_)), stack_name="s")

    jobs = template.queues["Jobs"]
    assert (jobs.name, jobs.fifo, jobs.dead_letter_queue, jobs.max_receive_count) == ("Jobs.fifo", True, "JobsDLQ", 3)
    assert jobs.attributes["ContentBasedDeduplication"] == "true"
    assert json.loads(jobs.attributes["RedriveAllowPolicy"]) == {"redrivePermission": "allowAll"}
    assert template.tables["Provisioned"].billing_mode == "PROVISIONED"

    worker = template.functions["Worker"]
    assert worker.environment == {
        "LOGS": "/x/s",
        "LAYER": "arn:aws:lambda:eu-west-1:123456789012:layer:Layer:1",
        "ENABLED": "true",
        "FUNCTION_ARN": "arn:aws:lambda:eu-west-1:123456789012:function:Worker",
        "OTHER": "Other",
    }
    assert (worker.timeout, worker.memory_size) == (3, 128)
    assert worker.code_dirs == [(tmp_path / "layer").resolve()]
    assert worker.sqs_sources[0].queue == "Jobs"
    assert worker.sqs_sources[0].enabled is False
    assert [route.route_key for route in worker.http_routes] == ["$default", "ANY /"]
    assert {route.api_id for route in worker.http_routes} == {IMPLICIT_HTTP_API}
    cors = template.http_apis[IMPLICIT_HTTP_API].cors
    assert cors is not None
    assert cors.allow_origins == ("*",)


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        (
            """
  Queue:
    Type: AWS::SQS::Queue
    Properties: {RedrivePolicy: {deadLetterTargetArn: "arn:aws:sqs:eu-west-1:1:Elsewhere", maxReceiveCount: 1}}
""",
            "dead-letter queue .* is not declared",
        ),
        (
            """
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Handler: a.b
      Events: {Q: {Type: SQS, Properties: {Queue: "arn:aws:sqs:eu-west-1:1:Elsewhere"}}}
""",
            "Fn.Q: queue .* is not declared",
        ),
        (
            """
  A:
    Type: AWS::Serverless::Function
    Properties: {Handler: a.b, Events: {E: {Type: HttpApi, Properties: {Path: /x, Method: GET}}}}
  B:
    Type: AWS::Serverless::Function
    Properties: {Handler: a.b, Events: {F: {Type: HttpApi, Properties: {Path: /x, Method: get}}}}
""",
            "declared by both A.E and B.F",
        ),
    ],
)
def test_template_errors(tmp_path: Path, resources: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        load_template(write(tmp_path, minimal(resources)))


def test_the_real_template() -> None:
    template = load_template(REPO / "template.yaml")

    lead_intake = template.functions["LeadIntakeFunction"]
    assert lead_intake.handler == "lead_intake.app.lambda_handler"
    assert {route.route_key for route in lead_intake.http_routes} == {
        "POST /leads",
        "GET /projects",
        "GET /projects/{id}",
    }
    (source,) = lead_intake.sqs_sources
    assert (source.queue, source.batch_size, source.reports_batch_item_failures) == ("LeadRetryQueue", 2, True)
    assert lead_intake.environment["LEADS_TABLE_NAME"] == "LeadsTable"
    assert lead_intake.environment["MIIMOSA_API_KEY_PARAM"] == "/partner-hub/local/miimosa/api-key"
    assert lead_intake.environment["EVENT_BUS_NAME"] == "partner-hub-local"

    assert "LeadsTable" in set(template.tables)
    assert template.tables["LeadsTable"].ttl_attribute == "expires_at"
    assert {"LeadRetryQueue", "LeadRetryDLQ"} <= set(template.queues)
    retry = template.queues["LeadRetryQueue"]
    assert retry.dead_letter_queue == "LeadRetryDLQ"
    assert retry.max_receive_count is not None
    assert template.buses["HubEventBus"].name == "partner-hub-local"
    cors = template.http_apis["HubHttpApi"].cors
    assert cors is not None
    assert cors.allow_origins
