"""template.yaml as SAM transforms it: each function may put on the bus only the event sources its code emits."""

from __future__ import annotations

import ast
import copy
from pathlib import Path
from typing import Any

import pytest

from hub_core.events import SOURCE_PREFIX
from tests.conftest import ROOT
from tests.infra.test_template_security import _listed, _of_type, _source, _transform

# Packages whose code a function runs in-process, besides its own: a campaign's stop reconciles it first with the
# ingester's code (campaign_lifecycle.management._reconcile_first), which announces what it recovers.
HOSTS = {"campaign_lifecycle": ("donation_ingester",)}


@pytest.fixture(scope="module")
def transformed() -> dict[str, Any]:
    return _transform(_source())


def _emitted_sources(package: Path) -> set[str]:
    """The `source` of every `events.publish(source, …)` (or `services.publish`) in a function's package.

    Read from the code itself, so a new publish with a new source fails this test until the template allows it.
    """
    found: set[str] = set()
    trees = {module: ast.parse(module.read_text()) for module in package.glob("*.py")}
    # The package's module-level string constants: a source may be named in models.py and published elsewhere.
    constants = {
        target.id: node.value.value
        for tree in trees.values()
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        for target in node.targets
        if isinstance(target, ast.Name) and isinstance(node.value.value, str)
    }
    for module, tree in trees.items():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "publish"
                and isinstance(node.func.value, ast.Name)
                # events.publish, or the flow's injected publisher (lead_intake.services.LeadServices.publish)
                and node.func.value.id in ("events", "services")
            ):
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.add(f"{SOURCE_PREFIX}.{first.value}")
                elif isinstance(first, ast.Name) and first.id in constants:
                    found.add(f"{SOURCE_PREFIX}.{constants[first.id]}")
                else:  # pragma: no cover - the test must be taught a new way of naming a source
                    pytest.fail(f"{module}: events.publish with a source this test cannot read")
    return found


def _role_of(function: dict[str, Any]) -> str:
    return str(function["Properties"]["Role"]["Fn::GetAtt"][0])


def _put_events_statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    statements = [
        statement
        for policy in role["Properties"].get("Policies", [])
        for statement in _listed(policy["PolicyDocument"]["Statement"])
    ]
    return [
        statement
        for statement in statements
        if any(action in ("events:PutEvents", "events:*", "*") for action in _listed(statement.get("Action", [])))
    ]


def _expected_sources(transformed: dict[str, Any]) -> dict[str, set[str]]:
    """Role name → the sources its function's code emits (empty for a function that publishes nothing)."""
    expected: dict[str, set[str]] = {}
    for function in _of_type(transformed, "AWS::Lambda::Function").values():
        package = str(function["Properties"]["Handler"]).split(".")[0]
        expected[_role_of(function)] = set().union(
            *(_emitted_sources(ROOT / "functions" / hosted) for hosted in (package, *HOSTS.get(package, ())))
        )
    return expected


def _allowed_sources(statement: dict[str, Any]) -> set[str] | None:
    """The events:source values a statement is conditioned on; None when it has no such StringEquals."""
    equals = statement.get("Condition", {}).get("StringEquals", {})
    if "events:source" not in equals:
        return None
    return set(_listed(equals["events:source"]))


def _problems(transformed: dict[str, Any]) -> list[str]:
    roles = _of_type(transformed, "AWS::IAM::Role")
    problems = []
    for role_name, sources in _expected_sources(transformed).items():
        statements = _put_events_statements(roles[role_name])
        if not sources and statements:
            problems.append(f"{role_name} may put events but its function publishes none")
        if sources and not statements:
            problems.append(f"{role_name} may not put the events its function publishes")
        for statement in statements:
            allowed = _allowed_sources(statement)
            if allowed is None:
                problems.append(f"{role_name}: events:PutEvents without a StringEquals events:source")
            elif allowed != sources:
                problems.append(f"{role_name}: events:source {sorted(allowed)}, its code emits {sorted(sources)}")
    return problems


def test_the_code_of_the_publishing_functions_is_found():
    assert _emitted_sources(ROOT / "functions" / "lead_intake") == {"partner-hub.lead-intake"}
    assert _emitted_sources(ROOT / "functions" / "licence_issuance") == {"partner-hub.licence-issuance"}
    assert _emitted_sources(ROOT / "functions" / "donation_ingester") == {"partner-hub.donation-ingester"}
    assert _emitted_sources(ROOT / "functions" / "erasure") == set()


def test_every_put_events_permission_is_limited_to_the_sources_its_function_emits(transformed):
    assert _problems(transformed) == []
    # The check did look at real statements: three functions publish, and the campaign function hosts the ingester's.
    roles = _of_type(transformed, "AWS::IAM::Role")
    assert sum(1 for role in roles.values() if _put_events_statements(role)) == 4


def test_the_permission_names_the_hubs_bus_only(transformed):
    roles = _of_type(transformed, "AWS::IAM::Role")
    for name, role in roles.items():
        for statement in _put_events_statements(role):
            assert statement["Resource"] == {"Fn::GetAtt": ["HubEventBus", "Arn"]}, name


def test_sams_unconditioned_policy_or_a_foreign_source_is_caught():
    source = _source()
    policies = source["Resources"]["ErasureFunction"]["Properties"]["Policies"]
    policies.append({"EventBridgePutEventsPolicy": {"EventBusName": {"Ref": "HubEventBus"}}})
    lead_policies = source["Resources"]["LeadIntakeFunction"]["Properties"]["Policies"]
    for policy in lead_policies:
        for statement in policy.get("Statement", []) if isinstance(policy, dict) else []:
            if statement.get("Action") == "events:PutEvents":
                statement["Condition"]["StringEquals"]["events:source"] = ["partner-hub.lead-intake", "shop"]
    problems = _problems(_transform(copy.deepcopy(source)))
    assert any("ErasureFunctionRole may put events but its function publishes none" in p for p in problems)
    assert any("ErasureFunctionRole: events:PutEvents without a StringEquals" in p for p in problems)
    foreign = "LeadIntakeFunctionRole: events:source ['partner-hub.lead-intake', 'shop']"
    assert any(p.startswith(foreign) for p in problems)
