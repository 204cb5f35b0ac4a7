"""template.yaml alarms: every dead-letter queue and every function has its alarms, and they all reach the topic."""

from __future__ import annotations

import pytest

from hub_cli.deadletters import dead_letter_queues
from hub_core.observability import METRICS_NAMESPACE
from hub_local.cfn import load_yaml
from hub_local.template import load_template
from tests.conftest import ROOT

TEMPLATE = ROOT / "template.yaml"


@pytest.fixture(scope="module")
def resources():
    return load_yaml(TEMPLATE)["Resources"]


def alarms(resources):
    return {name: r["Properties"] for name, r in resources.items() if r["Type"] == "AWS::CloudWatch::Alarm"}


def get_att(value):
    """(logical id, attribute) of a GetAtt, whichever way it was written."""
    argument = value["Fn::GetAtt"]
    return tuple(argument.split(".", 1)) if isinstance(argument, str) else tuple(argument)


def dimensions(metric):
    return {dimension["Name"]: dimension["Value"] for dimension in metric.get("Dimensions", [])}


def test_every_alarm_notifies_the_topic_on_alarm_and_on_recovery(resources):
    for name, alarm in alarms(resources).items():
        assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["OKActions"] == [{"Ref": "AlarmTopic"}], name
        assert alarm["TreatMissingData"] == "notBreaching", name


def test_the_topic_is_encrypted_with_a_key_cloudwatch_may_use(resources):
    topic = resources["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    statements = resources["AlarmTopicKey"]["Properties"]["KeyPolicy"]["Statement"]
    cloudwatch = [s for s in statements if s["Principal"].get("Service") == "cloudwatch.amazonaws.com"]
    assert cloudwatch
    assert set(cloudwatch[0]["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert resources["AlarmTopicKey"]["Properties"]["EnableKeyRotation"] is True


def test_the_email_subscription_exists_only_when_an_address_is_given(resources):
    subscription = resources["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"]["Endpoint"] == {"Ref": "AlarmEmail"}
    assert load_yaml(TEMPLATE)["Parameters"]["AlarmEmail"]["Default"] == ""


def test_every_dead_letter_queue_alarms_on_any_message(resources):
    queues = set(dead_letter_queues(TEMPLATE)) | {
        name for name, r in resources.items() if r["Type"] == "AWS::SQS::Queue" and name.endswith("DLQ")
    }
    assert queues >= {"LeadRetryDLQ", "LicenceRequestDLQ"}
    watched = {
        get_att(dimensions(alarm)["QueueName"])[0]
        for alarm in alarms(resources).values()
        if alarm.get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and alarm["ComparisonOperator"] == "GreaterThanThreshold"
        and alarm["Threshold"] == 0
    }
    assert queues <= watched, f"no depth alarm for {sorted(queues - watched)}"


def _error_rate_functions(resources):
    found = set()
    for alarm in alarms(resources).values():
        metrics = {metric["Id"]: metric for metric in alarm.get("Metrics", [])}
        if not {"errors", "invocations", "errorRate"} <= set(metrics):
            continue
        stats = {key: metrics[key]["MetricStat"]["Metric"] for key in ("errors", "invocations")}
        assert stats["errors"]["MetricName"] == "Errors"
        assert stats["invocations"]["MetricName"] == "Invocations"
        functions = {dimensions(metric)["FunctionName"]["Ref"] for metric in stats.values()}
        assert len(functions) == 1
        assert "errors / invocations" in metrics["errorRate"]["Expression"]
        assert alarm["Threshold"] == {"Ref": "FunctionErrorRatePercent"}
        found |= functions
    return found


def test_every_function_alarms_on_its_error_rate_and_throttles(resources):
    functions = {
        name for name, r in resources.items() if r["Type"] in ("AWS::Serverless::Function", "AWS::Lambda::Function")
    }
    assert len(functions) >= 3
    throttled = {
        dimensions(alarm)["FunctionName"]["Ref"]
        for alarm in alarms(resources).values()
        if alarm.get("Namespace") == "AWS/Lambda" and alarm.get("MetricName") == "Throttles"
    }
    error_rate = _error_rate_functions(resources)
    assert functions <= error_rate, f"no error-rate alarm for {sorted(functions - error_rate)}"
    assert functions <= throttled, f"no throttles alarm for {sorted(functions - throttled)}"


def test_the_http_api_alarms_on_5xx(resources):
    api_alarms = [a for a in alarms(resources).values() if a.get("Namespace") == "AWS/ApiGateway"]
    assert any(a["MetricName"] == "5xx" and dimensions(a)["ApiId"] == {"Ref": "HubHttpApi"} for a in api_alarms)


def test_reconciliation_drift_alarms_on_the_ingesters_metric(resources):
    [drift] = [a for a in alarms(resources).values() if a.get("MetricName") == "ReconciliationDrift"]
    assert drift["Namespace"] == METRICS_NAMESPACE
    assert dimensions(drift) == {"service": "donation-ingester"}
    assert (drift["ComparisonOperator"], drift["Threshold"]) == ("GreaterThanThreshold", 0)


def test_unconfirmed_donation_callbacks_alarm_on_the_ingesters_metric(resources):
    """A callback Umbrella never confirmed (forged, or Umbrella late): the metric the ingester emits, one alarm."""
    [unconfirmed] = [a for a in alarms(resources).values() if a.get("MetricName") == "DonationUnconfirmed"]
    assert unconfirmed["Namespace"] == METRICS_NAMESPACE
    assert dimensions(unconfirmed) == {"service": "donation-ingester"}
    assert (unconfirmed["ComparisonOperator"], unconfirmed["Threshold"]) == ("GreaterThanThreshold", 0)
    assert unconfirmed["Statistic"] == "Sum"
    source = (ROOT / "functions/donation_ingester/fold.py").read_text()
    assert 'name="DonationUnconfirmed"' in source


def test_each_alarm_description_resolves_and_tells_where_to_look():
    """The generated descriptions (Fn::ForEach, Mappings DeadLetterAlarmText) name their own queue or function."""
    template = load_template(TEMPLATE, parameter_overrides={"Stage": "prod"})
    described = {
        name: template.resolver.resolve(resource["Properties"]["AlarmDescription"])
        for name, resource in template.resources.items()
        if resource["Type"] == "AWS::CloudWatch::Alarm"
    }
    for name, text in described.items():
        assert isinstance(text, str), name
        assert "${" not in text, name
        if name.endswith("DLQDepthAlarm"):
            queue = name.removesuffix("DepthAlarm")
            assert f"hub --stage prod dlq show {queue};" in text, name
            assert text.split(" Why: ")[0].strip(), name  # what waits there, from DeadLetterAlarmText
        elif name.endswith("FunctionErrorRateAlarm"):
            function = name.removesuffix("ErrorRateAlarm")
            log_group = template.resources[function]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
            log_group_name = template.resolver.resolve(template.resources[log_group]["Properties"]["LogGroupName"])
            assert text.startswith(f"{function} fails more than "), name
            assert text.endswith(f"Logs: {log_group_name}."), name
        elif name.endswith("FunctionThrottlesAlarm"):
            assert text.startswith(f"{name.removesuffix('ThrottlesAlarm')} was throttled"), name
    assert sum(name.endswith("DLQDepthAlarm") for name in described) >= 8
