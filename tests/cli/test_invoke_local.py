"""`hub invoke` without a running stack: the function runs in this process, like a Docker-free sam local invoke."""

from __future__ import annotations

import json

from tests.cli.conftest import one_line_error
from tests.conftest import EVENTS, ROOT

TEMPLATE = str(ROOT / "template.yaml")


def test_invoke_prints_the_result_alone_on_stdout(hub):
    outcome = hub("--template", TEMPLATE, "invoke", "LeadIntakeFunction", str(EVENTS / "lead_intake/post_invalid.json"))
    assert outcome.status == 0, outcome.err
    result = json.loads(outcome.out)
    assert result["statusCode"] == 422
    assert {problem["field"] for problem in json.loads(result["body"])["problems"]} >= {"email"}


def test_invoke_names_an_unknown_function(hub):
    line = one_line_error(hub("--template", TEMPLATE, "invoke", "Nope", str(EVENTS / "lead_intake/post_valid.json")))
    assert "no function 'Nope'" in line
    assert "LeadIntakeFunction" in line


def test_invoke_names_a_missing_event_file(hub):
    line = one_line_error(hub("--template", TEMPLATE, "invoke", "LeadIntakeFunction", "no/such/event.json"))
    assert "cannot read event file no/such/event.json" in line


def test_invoke_needs_both_arguments(hub):
    line = one_line_error(hub("invoke", "LeadIntakeFunction"))
    assert line.startswith("hub invoke: Missing argument 'EVENT_FILE'")


def test_invoke_runs_a_reconciliation_from_the_event_file(hub):
    # The file's seed (events/donation_ingester/given/) creates its campaign first, so it reconciles cleanly.
    event = str(EVENTS / "donation_ingester/reconcile_campaign.json")
    outcome = hub("--template", TEMPLATE, "invoke", "DonationIngesterFunction", event)
    assert outcome.status == 0, outcome.err
    summary = json.loads(outcome.out)
    assert [(item["campaign"], item["status"]) for item in summary["campaigns"]] == [("1/hjerte/anna50", "ok")]
    assert (summary["reconciled"], summary["left"]) == (1, 0)
