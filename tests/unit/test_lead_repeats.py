"""Lead intake's double submits answered from the lead's own record: each branch of its one conditional put (moto)."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from typing import Any

import boto3
import pytest
from moto import mock_aws

from lead_intake import flow
from lead_intake.models import LeadForm, LeadStatus, LeadSubmission, lead_id_for
from lead_intake.services import LeadServices, services
from lead_intake.store import LeadStore
from partners.errors import PartnerRejected, PartnerUnavailable
from partners.miimosa import LeadReceipt

TABLE = "Leads"


class FakeMiimosa:
    """MiiMOSA's POST /leads: counts the leads it gets, and answers what the test says (or runs `during`)."""

    def __init__(self) -> None:
        self.leads: list[dict[str, str]] = []
        self.answers: list[Exception | None] = []
        self.during: Any = None

    def create_lead(self, lead: dict[str, str]) -> LeadReceipt:
        self.leads.append(dict(lead))
        if self.during is not None:
            self.during()
        answer = self.answers.pop(0) if self.answers else None
        if answer is not None:
            raise answer
        return LeadReceipt(reference=f"mm-{len(self.leads)}")


@pytest.fixture
def leads(monkeypatch):
    for name, value in {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "LEADS_TABLE_NAME": TABLE,
        "MIIMOSA_BASE_URL": "http://127.0.0.1:9",
        "LEAD_RETRY_DELAY_SECONDS": "0",  # the safety net receivable at once
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        dynamodb = boto3.client("dynamodb")
        dynamodb.create_table(
            TableName=TABLE,
            AttributeDefinitions=[{"AttributeName": "lead_id", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "lead_id", "KeyType": "HASH"}],
            BillingMode="PAY_PER_REQUEST",
        )
        queue_url = boto3.client("sqs").create_queue(QueueName="LeadRetryQueue")["QueueUrl"]
        monkeypatch.setenv("LEAD_RETRY_QUEUE_URL", queue_url)
        fake = FakeMiimosa()
        announced: list[str] = []
        # The real store and retry queue (moto); MiiMOSA and the bus are the test's (flow.LeadServices).
        wired = dataclasses.replace(
            services(), miimosa=fake, publish=lambda _source, _kind, detail: announced.append(detail["lead_id"])
        )
        yield Leads(fake, wired)


@dataclasses.dataclass
class Leads:
    """The fixture: MiiMOSA's fake, and the collaborators the flow is given."""

    miimosa: FakeMiimosa
    services: LeadServices

    def submit(self, submission: LeadSubmission) -> Any:
        return flow.submit(self.services, submission)


def submission(key: str | None = None, **changes: str) -> LeadSubmission:
    fields = {
        "email": "ann.bee@example.org",
        "firstname": "Ann",
        "lastname": "Bee",
        "phone": "06 12 34 56 78",
        "collect_type": "donation",
        "project_description": "Verger conservatoire",
        "project_total_budget": "12000",
        "publication_timeframe": "next_months",
        "campaign_id": f"unit-{uuid.uuid4()}",
    } | changes
    lead = LeadForm.model_validate(fields)
    fingerprint = lead.fingerprint()
    return LeadSubmission(dedup_key=f"key:{key}" if key else f"body:{fingerprint}", fingerprint=fingerprint, lead=lead)


def item(lead_id: str) -> dict[str, Any] | None:
    answer = boto3.client("dynamodb").get_item(TableName=TABLE, Key={"lead_id": {"S": lead_id}}, ConsistentRead=True)
    return answer.get("Item")


def count() -> int:
    return boto3.client("dynamodb").scan(TableName=TABLE, Select="COUNT")["Count"]


def window_ends(lead_id: str, attribute: str = "dedup_until") -> None:
    """As if the dedup window (or a successor's) had passed: no test waits 15 minutes."""
    boto3.client("dynamodb").update_item(
        TableName=TABLE,
        Key={"lead_id": {"S": lead_id}},
        UpdateExpression="SET #a = :past",
        ExpressionAttributeNames={"#a": attribute},
        ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}},
    )


def retry_messages() -> list[dict[str, Any]]:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName="LeadRetryQueue")["QueueUrl"]
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(message["Body"]) for message in messages]


# ---------------------------------------------------------------- new


def test_a_new_lead_is_stored_under_its_dedup_key_s_id_and_forwarded(leads):
    first = submission()
    outcome = leads.submit(first)
    assert outcome.lead_id == lead_id_for(first.dedup_key)
    assert (outcome.status, outcome.message) == (LeadStatus.FORWARDED, flow.FORWARDED_MESSAGE)
    stored = item(outcome.lead_id)
    assert stored is not None
    assert stored["status"]["S"] == "forwarded"
    assert stored["fingerprint"]["S"] == first.fingerprint
    assert int(stored["dedup_until"]["N"]) - time.time() > 890
    assert "answer_by" not in stored  # answered: a repeat is no longer "in progress"
    assert retry_messages() == [{"lead_id": outcome.lead_id}]
    assert len(leads.miimosa.leads) == 1


def test_the_lead_id_keeps_the_key_and_the_person_out_of_sight():
    key = lead_id_for("key:form-7c1e2b9a")
    assert key == lead_id_for("key:form-7c1e2b9a")
    assert key != lead_id_for("key:form-7c1e2b9b")
    assert uuid.UUID(key).version == 8
    assert "7c1e2b9a" not in key
    fingerprint = submission().fingerprint
    assert fingerprint not in lead_id_for(f"body:{fingerprint}")


# ---------------------------------------------------------------- repeats within the window


def test_a_repeat_of_a_forwarded_lead_gets_its_outcome_and_no_second_forward(leads):
    first = submission()
    outcome = leads.submit(first)
    assert leads.submit(first) == outcome
    assert len(leads.miimosa.leads) == 1
    assert count() == 1


def test_a_repeat_of_a_queued_lead_gets_the_queued_answer(leads):
    leads.miimosa.answers.append(PartnerUnavailable("miimosa", "503", status=503))
    first = submission()
    outcome = leads.submit(first)
    assert outcome.status is LeadStatus.QUEUED
    again = leads.submit(first)
    assert again == outcome
    assert again.message == flow.QUEUED_MESSAGE  # not the record's reason (PartnerUnavailable)
    assert len(leads.miimosa.leads) == 1


def test_a_repeat_of_a_rejected_lead_gets_miimosa_s_refusal(leads):
    leads.miimosa.answers.append(PartnerRejected("miimosa", "phone is not valid", status=400))
    first = submission()
    outcome = leads.submit(first)
    again = leads.submit(first)
    assert again == outcome
    assert (again.status, again.message) == (LeadStatus.REJECTED, "phone is not valid")
    assert len(leads.miimosa.leads) == 1


def test_a_repeat_while_the_first_is_being_answered_is_in_progress(leads):
    first = submission()
    seen: list[BaseException] = []

    def repeat_meanwhile() -> None:
        with pytest.raises(flow.SubmissionInProgress) as caught:
            leads.submit(first)
        seen.append(caught.value)

    leads.miimosa.during = repeat_meanwhile
    leads.submit(first)
    assert len(seen) == 1
    assert len(leads.miimosa.leads) == 1


def test_a_repeat_after_the_first_invocation_died_is_told_the_lead_is_on_its_way(leads):
    first = submission()
    lead_id = lead_id_for(first.dedup_key)
    now = int(time.time())
    LeadStore(TABLE).create(
        lead_id, first.lead.for_partner(), now=now, lease_seconds=30, expires_at=now + 3600,
        fingerprint=first.fingerprint, dedup_until=now + 900, answer_by=now - 1,
    )  # fmt: skip
    outcome = leads.submit(first)
    assert (outcome.lead_id, outcome.status) == (lead_id, LeadStatus.FORWARDING)
    assert outcome.message == flow.PENDING_MESSAGE
    assert leads.miimosa.leads == []  # the safety net forwards it, not the repeat


def test_a_repeat_after_an_unrecorded_yes_gets_the_being_recorded_answer(leads, monkeypatch):
    real = LeadStore.settle

    def failing(self, lead_id, status, **options):
        if status is LeadStatus.FORWARDED:
            raise RuntimeError("throttled")
        return real(self, lead_id, status, **options)

    monkeypatch.setattr(LeadStore, "settle", failing)
    monkeypatch.setattr(flow, "SETTLE_PAUSES", ())
    first = submission()
    outcome = leads.submit(first)
    assert (outcome.status, outcome.message) == (LeadStatus.FORWARDING, flow.RECORDING_MESSAGE)
    assert leads.submit(first) == outcome
    assert len(leads.miimosa.leads) == 1


def test_an_idempotency_key_with_another_lead_is_refused_and_nothing_stored(leads):
    leads.submit(submission("form-7c1e2b9a"))
    with pytest.raises(flow.IdempotencyKeyReused):
        leads.submit(submission("form-7c1e2b9a", firstname="Bob"))
    assert count() == 1
    assert len(leads.miimosa.leads) == 1


def test_an_idempotency_key_replays_whatever_the_spelling_of_the_e_mail(leads):
    first = leads.submit(submission("form-7c1e2b9a", campaign_id="c-1"))
    again = leads.submit(submission("form-7c1e2b9a", campaign_id="c-1", email="ANN.BEE@example.org"))
    assert again == first


# ---------------------------------------------------------------- after the window


def test_after_the_window_the_same_lead_is_a_new_one_and_its_repeats_find_it(leads):
    first = submission()
    head = leads.submit(first)
    window_ends(head.lead_id)
    second = leads.submit(first)
    assert second.lead_id != head.lead_id
    assert second.status is LeadStatus.FORWARDED
    stored_head = item(head.lead_id)
    assert stored_head is not None
    assert stored_head["successor"]["S"] == second.lead_id
    assert stored_head["status"]["S"] == "forwarded"  # the first lead is kept as it was
    assert leads.submit(first) == second  # a repeat within the new lead's window
    assert len(leads.miimosa.leads) == 2
    assert count() == 2


def test_after_the_successor_s_window_a_third_lead_takes_its_place(leads):
    first = submission()
    head = leads.submit(first)
    window_ends(head.lead_id)
    second = leads.submit(first)
    window_ends(head.lead_id, "successor_until")
    third = leads.submit(first)
    assert len({head.lead_id, second.lead_id, third.lead_id}) == 3
    assert item(head.lead_id)["successor"]["S"] == third.lead_id  # type: ignore[index]
    assert item(second.lead_id) is not None
    assert len(leads.miimosa.leads) == 3


def test_after_the_window_an_idempotency_key_may_carry_another_lead(leads):
    head = leads.submit(submission("form-7c1e2b9a"))
    window_ends(head.lead_id)
    other = leads.submit(submission("form-7c1e2b9a", firstname="Bob"))
    assert other.lead_id != head.lead_id
    assert leads.miimosa.leads[-1]["firstname"] == "Bob"
    with pytest.raises(flow.IdempotencyKeyReused):  # and within its window, the key is that lead's
        leads.submit(submission("form-7c1e2b9a", firstname="Carl"))


def test_an_erased_successor_within_its_window_makes_room_for_a_new_lead(leads):
    first = submission()
    head = leads.submit(first)
    window_ends(head.lead_id)
    second = leads.submit(first)
    boto3.client("dynamodb").delete_item(TableName=TABLE, Key={"lead_id": {"S": second.lead_id}})
    third = leads.submit(first)
    assert third.lead_id not in (head.lead_id, second.lead_id)
    assert item(head.lead_id)["successor"]["S"] == third.lead_id  # type: ignore[index]
    assert len(leads.miimosa.leads) == 3


def test_a_submission_losing_the_race_to_name_the_successor_answers_as_the_winner_s_repeat(leads, monkeypatch):
    first = submission()
    head = leads.submit(first)
    window_ends(head.lead_id)
    real = LeadStore.link_successor
    won: list[str] = []

    def another_wins_first(self, head_id, successor_id, **options):
        if not won:
            # Another container stores and names its lead between this one's store and link.
            monkeypatch.setattr(LeadStore, "link_successor", real)
            won.append(leads.submit(first).lead_id)
        return real(self, head_id, successor_id, **options)

    monkeypatch.setattr(LeadStore, "link_successor", another_wins_first)
    answer = leads.submit(first)
    assert answer.lead_id == won[0]
    assert count() == 2  # the loser's own lead was discarded
    assert len(leads.miimosa.leads) == 2


# ---------------------------------------------------------------- no safety net, no lead


def test_a_lead_whose_safety_net_could_not_be_queued_is_discarded_and_a_resubmit_starts_afresh(leads):
    first = submission()

    def down(*_args, **_options):
        raise RuntimeError("SQS unreachable")

    with pytest.raises(RuntimeError):
        flow.submit(dataclasses.replace(leads.services, send_retry=down), first)
    assert count() == 0
    assert leads.miimosa.leads == []
    assert leads.submit(first).status is LeadStatus.FORWARDED
    assert len(leads.miimosa.leads) == 1
