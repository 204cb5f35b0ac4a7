"""Every invocation ends within its function's Timeout, which the local runner enforces as Lambda does.

The Timeouts are lowered to a few seconds here (the runner's timeout_overrides) while the partners' own timeouts
stay long: what keeps each invocation in time is its deadline, not a short partner timeout. An invocation that ran
over would raise FunctionTimedOut instead of returning.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from hub_local.stack import LocalStack
from tests.conftest import ROOT, load_event
from tests.integration.conftest import (
    FUNCTION_OVERRIDES,
    MIIMOSA_KEY,
    MLM_TOKEN,
    UMBRELLA_KEY,
    lead_fields,
    post_event,
    response_json,
)
from tests.integration.test_campaign_lifecycle import campaign_fields
from tests.integration.test_campaign_lifecycle import post_event as campaign_post_event

TIMEOUTS = {"LeadIntakeFunction": 4.5, "CampaignLifecycleFunction": 3.0, "LicenceIssuanceFunction": 3.0}
OVERRIDES = FUNCTION_OVERRIDES | {
    "MIIMOSA_READ_TIMEOUT": "8",
    "MIIMOSA_CONNECT_TIMEOUT": "3",
    "UMBRELLA_READ_TIMEOUT": "8",
    "UMBRELLA_CONNECT_TIMEOUT": "3",
    "MLM_READ_TIMEOUT": "8",
    "MLM_CONNECT_TIMEOUT": "3",
    "DEADLINE_MARGIN_SECONDS": "0.6",
    # Deadline 4.5 - 0.6 = 3.9 s; a record needs 2 s: with MiiMOSA answering in 1 s, two records fit and a third
    # (started at 2 s or later, with at most 1.9 s left) does not.
    "RETRY_RECORD_SECONDS": "2",
}


@pytest.fixture(scope="module")
def stack():
    with LocalStack(
        ROOT / "template.yaml",
        gateway_port=None,
        pump_queues=False,
        environ={"MIIMOSA_API_KEY": MIIMOSA_KEY, "UMBRELLA_API_KEY": UMBRELLA_KEY, "MLM_API_TOKEN": MLM_TOKEN},
        function_overrides=OVERRIDES,
        timeout_overrides=TIMEOUTS,
    ) as local:
        yield local


def retry_event(*lead_ids):
    event = load_event("lead_intake/retry_batch.json")
    template = event["Records"][0]
    event["Records"] = [
        {**template, "messageId": f"msg-{index}", "body": json.dumps({"lead_id": lead_id})}
        for index, lead_id in enumerate(lead_ids)
    ]
    return event


def test_a_hanging_umbrella_gets_the_hub_s_own_503_in_time_and_the_create_resumes(stack, umbrella):
    umbrella.faults.add("hang", delay=20)
    fields = campaign_fields()
    response = stack.invoke("CampaignLifecycleFunction", campaign_post_event(fields))  # no FunctionTimedOut
    assert response["statusCode"] == 503
    assert int(response["headers"]["Retry-After"]) >= 1
    assert response_json(response)["error"] == "partner_unavailable"

    umbrella.faults.clear()
    again = stack.invoke("CampaignLifecycleFunction", campaign_post_event(fields))
    assert again["statusCode"] == 201, again["body"]
    created = [r for r in umbrella.requests if r.method == "POST" and not r.faulted]
    assert len(created) == 1


def test_a_hanging_pimenko_gets_the_hub_s_own_503_in_time_and_the_order_is_issued_on_retry(stack, mlm):
    from tests.integration.test_licence_issuance import order  # noqa: PLC0415
    from tests.integration.test_licence_issuance import post_event as licence_post_event  # noqa: PLC0415

    mlm.faults.add("hang", delay=20)
    fields = order()
    response = stack.invoke("LicenceIssuanceFunction", licence_post_event(fields))  # no FunctionTimedOut
    assert response["statusCode"] == 503, response["body"]
    assert int(response["headers"]["Retry-After"]) >= 1

    mlm.faults.clear()
    again = stack.invoke("LicenceIssuanceFunction", licence_post_event(fields))
    assert again["statusCode"] == 201, again["body"]


def test_a_hanging_miimosa_still_gets_the_lead_accepted_in_time(stack, miimosa):
    miimosa.faults.add("hang", delay=20, path_prefix="/leads")
    response = stack.invoke("LeadIntakeFunction", post_event(lead_fields()))
    assert response["statusCode"] == 202  # stored, and forwarded later: the visitor is not kept waiting past it


def test_a_slow_miimosa_batch_returns_its_untried_records_and_forwards_none_twice(stack, miimosa):
    miimosa.faults.add("status", status=503, count=4, path_prefix="/leads")
    fields = [lead_fields() for _ in range(4)]
    lead_ids = [response_json(stack.invoke("LeadIntakeFunction", post_event(f)))["lead_id"] for f in fields]
    miimosa.faults.clear()
    miimosa.faults.add("slow", delay=1.0)

    first = stack.invoke("LeadIntakeFunction", retry_event(*lead_ids))
    assert sorted(item["itemIdentifier"] for item in first["batchItemFailures"]) == ["msg-2", "msg-3"]
    forwarded = Counter(lead["campaign_id"] for lead in miimosa.leads)
    assert [forwarded[f["campaign_id"]] for f in fields] == [1, 1, 0, 0]  # the untried ones were not touched

    # The queue brings the two back (one to an invocation here: two records of 1 s each leave the 3.9 s deadline
    # too little slack on a loaded machine); all four are then at MiiMOSA exactly once.
    for lead_id in lead_ids[2:]:
        assert stack.invoke("LeadIntakeFunction", retry_event(lead_id)) == {"batchItemFailures": []}
    forwarded = Counter(lead["campaign_id"] for lead in miimosa.leads)
    assert [forwarded[f["campaign_id"]] for f in fields] == [1, 1, 1, 1]


# ------------------------------------------------------------------ no duplicate after the partner said yes


def _failing_forwarded_settles(monkeypatch, times):
    """The next `times` writes recording a lead as forwarded fail, as a throttled or unreachable DynamoDB would."""
    from botocore.exceptions import ClientError  # noqa: PLC0415

    from lead_intake.models import LeadStatus  # noqa: PLC0415
    from lead_intake.store import LeadStore  # noqa: PLC0415

    real = LeadStore.settle
    failures = {"left": times}

    def settle(self, lead_id, status, **options):
        if status is LeadStatus.FORWARDED and failures["left"] > 0:
            failures["left"] -= 1
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem")
        return real(self, lead_id, status, **options)

    monkeypatch.setattr(LeadStore, "settle", settle)
    return failures


def test_a_failed_write_after_miimosa_said_yes_is_retried_within_the_budget(stack, miimosa, monkeypatch):
    failures = _failing_forwarded_settles(monkeypatch, 2)
    fields = lead_fields()
    response = stack.invoke("LeadIntakeFunction", post_event(fields))
    assert response["statusCode"] == 201, response["body"]
    assert failures["left"] == 0
    assert Counter(lead["campaign_id"] for lead in miimosa.leads)[fields["campaign_id"]] == 1


def test_a_write_that_never_takes_is_a_202_being_recorded_and_a_resubmit_is_not_forwarded(stack, miimosa, monkeypatch):
    _failing_forwarded_settles(monkeypatch, 1000)
    fields = lead_fields()
    response = stack.invoke("LeadIntakeFunction", post_event(fields))
    assert response["statusCode"] == 202, response["body"]  # never a 500 that invites a resubmit
    body = response_json(response)
    assert body["status"] == "forwarding"
    assert "being recorded" in body["message"]

    again = stack.invoke("LeadIntakeFunction", post_event(fields))  # the visitor submits again all the same
    assert again["statusCode"] == 202
    assert response_json(again)["lead_id"] == body["lead_id"]
    assert Counter(lead["campaign_id"] for lead in miimosa.leads)[fields["campaign_id"]] == 1
