"""The template sizes batches and timeouts together: a batch at its per-record worst fits the Timeout."""

from __future__ import annotations

import pytest

from hub_core.deadline import DEFAULT_MARGIN_SECONDS
from hub_local.template import load_template
from tests.conftest import ROOT

# Each SQS consumer's per-record worst case, as the variable its code bounds every record (or chunk) by.
RECORD_BUDGETS = {
    ("LeadIntakeFunction", "RetryQueue"): "RETRY_RECORD_SECONDS",
    ("LoyaltyRelayFunction", "LoyaltyActions"): "RECORD_SECONDS",
    ("DonationIngesterFunction", "FoldTotals"): "FOLD_CAMPAIGN_SECONDS",
    ("ErasureFunction", "RetryQueue"): "RETRY_RECORD_SECONDS",
    ("LicenceIssuanceFunction", "LicenceRetries"): "RECORD_SECONDS",
}


@pytest.fixture(scope="module")
def template():
    return load_template(ROOT / "template.yaml")


def _sources(template):
    return [(function, source) for function in template.functions.values() for source in function.sqs_sources]


def test_every_sqs_consumer_declares_its_per_record_budget(template):
    consumers = {(function.logical_id, source.event_name) for function, source in _sources(template)}
    assert consumers == set(RECORD_BUDGETS)
    for function, source in _sources(template):
        variable = RECORD_BUDGETS[(function.logical_id, source.event_name)]
        assert float(function.environment[variable]) > 0, f"{function.logical_id}: {variable}"


def test_a_whole_batch_at_its_worst_fits_the_function_timeout(template):
    for function, source in _sources(template):
        record_seconds = float(function.environment[RECORD_BUDGETS[(function.logical_id, source.event_name)]])
        margin = float(function.environment.get("DEADLINE_MARGIN_SECONDS", DEFAULT_MARGIN_SECONDS))
        worst = source.batch_size * record_seconds + margin
        assert worst <= function.timeout, (
            f"{function.logical_id}.{source.event_name}: {source.batch_size} x {record_seconds} s + {margin} s "
            f"= {worst} s > Timeout {function.timeout} s"
        )


def test_a_record_budget_holds_at_least_one_attempt_with_room_to_record_it(template):
    # Under this, the deadline would refuse every record: the queue would cycle each one into its DLQ.
    for function, source in _sources(template):
        record_seconds = float(function.environment[RECORD_BUDGETS[(function.logical_id, source.event_name)]])
        margin = float(function.environment.get("DEADLINE_MARGIN_SECONDS", DEFAULT_MARGIN_SECONDS))
        assert record_seconds + margin <= function.timeout


def test_queues_stay_invisible_while_their_consumer_may_still_run(template):
    # AWS's advice for an SQS event source: a visibility timeout of six times the function's Timeout.
    for function, source in _sources(template):
        queue = template.queues[source.queue]
        assert queue.visibility_timeout >= 6 * function.timeout, f"{source.queue}"


def test_every_function_keeps_a_margin_smaller_than_its_timeout(template):
    for function in template.functions.values():
        margin = float(function.environment["DEADLINE_MARGIN_SECONDS"])
        assert 0 < margin < min(function.timeout, 30)
