"""template.yaml as SAM transforms it: least-privilege IAM, encryption at rest, API throttling, log retention."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from cfnlint.decode import cfn_yaml
from samtranslator.policy_template_processor.processor import PolicyTemplatesProcessor
from samtranslator.translator.transform import transform

from hub_local.language_extensions import expand_language_extensions
from tests.conftest import ROOT

POLICY_TEMPLATES = PolicyTemplatesProcessor(PolicyTemplatesProcessor.get_default_policy_templates_json())


class _NoManagedPolicies:
    def load(self) -> dict[str, str]:
        return {}


def _source() -> dict[str, Any]:
    return expand_language_extensions(cfn_yaml.load(str(ROOT / "template.yaml")))


@pytest.fixture(scope="module")
def source() -> dict[str, Any]:
    return _source()


def _transform(template: dict[str, Any]) -> dict[str, Any]:
    # The transform wants S3 code locations, as after `sam package`; where they point does not matter here.
    template["Globals"]["Function"]["CodeUri"] = "s3://bucket/functions.zip"
    template["Resources"]["AdaptersLayer"]["Properties"]["ContentUri"] = "s3://bucket/layer.zip"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        return transform(template, {"Stage": "test"}, _NoManagedPolicies())


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    return _transform(_source())


def _of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {name: resource for name, resource in template["Resources"].items() if resource["Type"] == kind}


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _is_wildcard(statement: dict[str, Any]) -> bool:
    resources = _listed(statement.get("Resource", []))
    actions = _listed(statement.get("Action", []))
    return "*" in resources or any(isinstance(action, str) and "*" in action for action in actions)


def _template_statements(source: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every statement the SAM policy templates named in the source expand to."""
    for function in _of_type(source, "AWS::Serverless::Function").values():
        for policy in function["Properties"].get("Policies", []):
            if isinstance(policy, dict) and len(policy) == 1:
                ((name, parameters),) = policy.items()
                if POLICY_TEMPLATES.has(name):
                    yield from POLICY_TEMPLATES.convert(name, parameters)["Statement"]


def _inline_statements(transformed: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, role in _of_type(transformed, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in _listed(policy["PolicyDocument"]["Statement"]):
                yield f"{name}/{policy['PolicyName']}", statement


def _unexplained_wildcards(source: dict[str, Any], transformed: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    from_templates = list(_template_statements(source))
    return [
        (where, statement)
        for where, statement in _inline_statements(transformed)
        if _is_wildcard(statement) and statement not in from_templates
    ]


def test_no_wildcard_in_iam_beyond_what_sam_policy_templates_emit(source, transformed):
    assert _unexplained_wildcards(source, transformed) == []
    # The check does see inline policies: SSMParameterReadPolicy's DescribeParameters on "*" is one of them.
    assert any(_is_wildcard(statement) for _, statement in _inline_statements(transformed))


def test_a_hand_written_wildcard_statement_is_caught():
    source = _source()
    handmade = {"Effect": "Allow", "Action": ["dynamodb:*"], "Resource": "*"}
    source["Resources"]["LeadIntakeFunction"]["Properties"]["Policies"].append({"Statement": [handmade]})
    flagged = _unexplained_wildcards(source, _transform(copy.deepcopy(source)))
    assert [statement for _, statement in flagged] == [handmade]


def test_resource_policies_name_their_resource(transformed):
    for name, policy in _of_type(transformed, "AWS::SQS::QueuePolicy").items():
        for statement in _listed(policy["Properties"]["PolicyDocument"]["Statement"]):
            assert not _is_wildcard(statement), name
            assert statement.get("Condition"), f"{name}: a service principal without a source condition"


def test_tables_and_queues_are_encrypted_at_rest(transformed):
    tables = _of_type(transformed, "AWS::DynamoDB::Table")
    queues = _of_type(transformed, "AWS::SQS::Queue")
    assert tables
    assert queues
    for name, table in tables.items():
        assert table["Properties"].get("SSESpecification", {}).get("SSEEnabled") is True, name
    for name, queue in queues.items():
        properties = queue["Properties"]
        assert properties.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in properties, name


def test_every_http_api_route_is_throttled(source, transformed):
    stages = _of_type(transformed, "AWS::ApiGatewayV2::Stage")
    assert stages
    defaults = {name: spec.get("Default") for name, spec in source["Parameters"].items()}
    for name, stage in stages.items():
        settings = stage["Properties"].get("DefaultRouteSettings", {})
        for limit in ("ThrottlingBurstLimit", "ThrottlingRateLimit"):
            value = settings.get(limit)
            assert value is not None, f"{name}: no {limit}"
            resolved = defaults[value["Ref"]] if isinstance(value, dict) else value
            assert int(resolved) > 0, f"{name}: {limit} {resolved}"


def test_every_log_group_has_a_retention_and_every_function_logs_to_one(transformed):
    groups = _of_type(transformed, "AWS::Logs::LogGroup")
    for name, group in groups.items():
        assert group["Properties"].get("RetentionInDays"), name
    functions = _of_type(transformed, "AWS::Lambda::Function")
    assert functions
    for name, function in functions.items():
        # Without LoggingConfig Lambda creates /aws/lambda/<name> itself, kept forever.
        target = function["Properties"].get("LoggingConfig", {}).get("LogGroup")
        assert isinstance(target, dict), name
        assert target.get("Ref") in groups, name
    for name, stage in _of_type(transformed, "AWS::ApiGatewayV2::Stage").items():
        destination = stage["Properties"]["AccessLogSettings"]["DestinationArn"]
        assert destination["Fn::GetAtt"][0] in groups, name


def test_campaign_creation_has_its_own_throttle_below_the_forms_default(source, transformed):
    defaults = {name: spec.get("Default") for name, spec in source["Parameters"].items()}
    (stage,) = _of_type(transformed, "AWS::ApiGatewayV2::Stage").values()
    route = stage["Properties"]["RouteSettings"]["POST /campaigns"]
    default = stage["Properties"]["DefaultRouteSettings"]
    for limit in ("ThrottlingBurstLimit", "ThrottlingRateLimit"):
        assert int(defaults[route[limit]["Ref"]]) < int(defaults[default[limit]["Ref"]]), limit
    # No WAF association is faked: WAFv2 cannot protect an HTTP API (REST API stages only).
    assert _of_type(transformed, "AWS::WAFv2::WebACLAssociation") == {}


def test_the_rate_limit_table_expires_its_counters(transformed):
    table = transformed["Resources"]["RateLimitTable"]["Properties"]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
