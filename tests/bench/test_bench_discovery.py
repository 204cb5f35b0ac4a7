"""The benchmark finds its subjects in template.yaml and marks functions not written yet instead of failing."""

from __future__ import annotations

from bench import common, invocations
from bench.common import Handler


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
