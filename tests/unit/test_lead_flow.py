"""Lead intake's flow decisions on in-memory collaborators and an injected clock: no emulator, no sleep, no network.

The fake store keeps LeadStore's conditional semantics (each method's ConditionExpression, written out in Python);
the contract tests at the end run the same steps against the real LeadStore on moto, so the two cannot drift apart.
"""

from __future__ import annotations

import dataclasses
import json
import math
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from hub_core.config import ConfigError
from hub_core.dynamo import to_item
from lead_intake import flow, retries
from lead_intake.models import LeadForm, LeadStatus, LeadSubmission, lead_id_for
from lead_intake.services import LeadServices
from lead_intake.settings import LeadIntakeSettings
from lead_intake.store import UNRECORDED, ClaimRefused, LeadRecord, LeadStore
from partners.deadline import Deadline, bounded_by
from partners.errors import (
    OutOfTime,
    PartnerAuthError,
    PartnerBadResponse,
    PartnerNotFound,
    PartnerRejected,
    PartnerUnavailable,
)
from partners.miimosa import LeadReceipt, ProjectPage
from tests.conftest import create_hash_table, in_process_aws

START = 1_800_000_000.0  # any moment: every assertion is relative to the clock


class Clock:
    """Seconds since the epoch that move only when the test (or the flow's injected sleep) says so."""

    def __init__(self) -> None:
        self.now = START
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds

    def sleep(self, seconds: float) -> None:
        if seconds:  # the first write's pause is sleep(0): no pause at all
            self.slept.append(seconds)
        self.now += seconds


class Throttled(Exception):
    """What a throttled or unreachable DynamoDB raises, as far as the flow can tell."""


class FakeStore:
    """LeadStore's methods the flow uses, on a dict, with the same conditions; `faults` makes a method fail.

    A fault key is the method's name, or `settle:<status>` for one kind of settle; its value the failures left.
    """

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}
        self.faults: dict[str, int] = {}

    def _trip(self, key: str) -> None:
        if self.faults.get(key, 0) > 0:
            self.faults[key] -= 1
            raise Throttled(key)

    def _record(self, lead_id: str) -> LeadRecord:
        return LeadRecord.from_item(to_item(self.items[lead_id]))

    def create(
        self,
        lead_id: str,
        lead: dict[str, str],
        *,
        now: int,
        lease_seconds: int,
        expires_at: int,
        apps_miles_user_id: str | None = None,
        fingerprint: str = "",
        dedup_until: int = 0,
        answer_by: int | None = None,
    ) -> LeadRecord | None:
        self._trip("create")
        if lead_id in self.items:  # attribute_not_exists(lead_id), ALL_OLD on failure
            return self._record(lead_id)
        item: dict[str, Any] = {
            "lead_id": lead_id,
            "status": LeadStatus.FORWARDING.value,
            "lead": dict(lead),
            "attempts": 1,
            "created_at": now,
            "updated_at": now,
            "lease_until": now + lease_seconds,
            "expires_at": expires_at,
        }
        if fingerprint:
            item |= {"fingerprint": fingerprint, "dedup_until": dedup_until}
        if answer_by is not None:
            item["answer_by"] = answer_by
        if apps_miles_user_id:
            item["apps_miles_user_id"] = apps_miles_user_id
        self.items[lead_id] = item
        return None

    def get(self, lead_id: str) -> LeadRecord | None:
        self._trip("get")
        return self._record(lead_id) if lead_id in self.items else None

    def discard(self, lead_id: str) -> None:
        self._trip("discard")
        item = self.items.get(lead_id)
        if item is not None and item["status"] == LeadStatus.FORWARDING.value and item["attempts"] == 1:
            del self.items[lead_id]

    def link_successor(
        self, head_id: str, successor_id: str, *, now: int, until: int, replacing: str | None = None
    ) -> LeadRecord | None:
        self._trip("link_successor")
        head = self.items.get(head_id)
        if head is None:
            raise LookupError(head_id)  # the real one re-raises the condition failure: nothing to answer from
        free = "successor_until" not in head or head["successor_until"] < now
        if replacing is not None and head.get("successor") == replacing:
            free = True
        if not (_lt(head.get("dedup_until"), now) and free):
            return self._record(head_id)
        head |= {"successor": successor_id, "successor_until": until}
        return None

    def mark_unrecorded(self, lead_id: str) -> None:
        self._trip("mark_unrecorded")
        item = self.items.get(lead_id)
        if item is not None and item["status"] == LeadStatus.FORWARDING.value:
            item["message"] = UNRECORDED
            item.pop("answer_by", None)

    def claim(self, lead_id: str, *, now: int, lease_seconds: int) -> LeadRecord | ClaimRefused:
        self._trip("claim")
        item = self.items.get(lead_id)
        if item is None:
            return ClaimRefused(None)
        takeable = item["status"] == LeadStatus.QUEUED.value or (
            item["status"] == LeadStatus.FORWARDING.value
            and _lt(item.get("lease_until"), now)
            and "uncertain_since" in item
        )
        if not takeable or not ("not_before" not in item or item["not_before"] <= now):
            return ClaimRefused(self._record(lead_id))
        item |= {
            "status": LeadStatus.FORWARDING.value,
            "lease_until": now + lease_seconds,
            "updated_at": now,
            "attempts": item.get("attempts", 0) + 1,
        }
        item.pop("uncertain_since", None)
        return self._record(lead_id)

    def mark_uncertain(self, lead_id: str, *, now: int, lease_seconds: int) -> bool:
        self._trip("mark_uncertain")
        item = self.items.get(lead_id)
        if item is None or item["status"] != LeadStatus.FORWARDING.value:
            return False
        if not _lt(item.get("lease_until"), now) or "uncertain_since" in item:
            return False
        item |= {"uncertain_since": now, "lease_until": now + lease_seconds, "updated_at": now}
        return True

    def settle_accepted(self, lead_id: str, *, now: int, reference: str | None) -> LeadRecord | None:
        self._trip("settle_accepted")
        item = self.items.get(lead_id)
        if item is None or item["status"] not in (LeadStatus.FORWARDING.value, LeadStatus.QUEUED.value):
            return None
        item |= {"status": LeadStatus.FORWARDED.value, "updated_at": now, "message": ""}
        if reference is not None:
            item["partner_reference"] = reference
        for name in ("lease_until", "not_before", "uncertain_since", "answer_by"):
            item.pop(name, None)
        return self._record(lead_id)

    def settle(
        self,
        lead_id: str,
        status: LeadStatus,
        *,
        now: int,
        message: str = "",
        reference: str | None = None,
        not_before: int | None = None,
    ) -> None:
        self._trip(f"settle:{status.value}")
        # No condition: like UpdateItem, it writes (and would create) the item whatever it holds.
        item = self.items.setdefault(lead_id, {"lead_id": lead_id})
        item |= {"status": status.value, "updated_at": now, "message": message}
        for name in ("lease_until", "uncertain_since", "answer_by"):
            item.pop(name, None)
        if reference is not None:
            item["partner_reference"] = reference
        if not_before is not None:
            item["not_before"] = not_before
        else:
            item.pop("not_before", None)


def _lt(value: Any, bound: int) -> bool:
    """DynamoDB's `a < :b`: false when the attribute is absent."""
    return value is not None and value < bound


class FakeMiimosa:
    """MiiMOSA's client: records each lead it is given and gives the answers queued in `answers` (default: yes)."""

    def __init__(self) -> None:
        self.leads: list[dict[str, str]] = []
        self.answers: list[BaseException | LeadReceipt] = []
        self.during: Any = None
        self.project_reads: list[dict[str, Any]] = []

    def create_lead(self, lead: Mapping[str, str]) -> LeadReceipt:
        self.leads.append(dict(lead))
        if self.during is not None:
            self.during()
        answer = self.answers.pop(0) if self.answers else LeadReceipt(reference=f"mm-{len(self.leads)}")
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def list_projects(self, **filters: Any) -> ProjectPage:
        self.project_reads.append(filters)
        return ProjectPage(projects=[{"id": len(self.project_reads)}], truncated=False)

    def get_project(self, project_id: int) -> dict[str, Any]:
        return {"id": project_id}


@dataclasses.dataclass
class Rig:
    """The flow's collaborators as the tests hold them, and what they recorded."""

    clock: Clock
    store: FakeStore
    miimosa: FakeMiimosa
    settings: LeadIntakeSettings
    sent: list[tuple[dict[str, Any], int]] = dataclasses.field(default_factory=list)
    published: list[tuple[str, str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    send_failures: int = 0
    publish_failures: int = 0

    def send_retry(self, body: Mapping[str, Any], delay_seconds: int) -> None:
        if self.send_failures:
            self.send_failures -= 1
            raise RuntimeError("SQS unreachable")
        self.sent.append((dict(body), delay_seconds))

    def publish(self, source: str, detail_type: str, detail: Mapping[str, Any]) -> None:
        if self.publish_failures:
            self.publish_failures -= 1
            raise RuntimeError("EventBridge unreachable")
        self.published.append((source, detail_type, dict(detail)))

    @property
    def services(self) -> LeadServices:
        return LeadServices(
            settings=self.settings,
            store=self.store,  # type: ignore[arg-type]
            miimosa=self.miimosa,  # type: ignore[arg-type]
            send_retry=self.send_retry,
            publish=self.publish,
            now=self.clock,
            sleep=self.clock.sleep,
        )

    def submit(self, submission: LeadSubmission) -> Any:
        return flow.submit(self.services, submission)

    def retry(self, lead_id: str) -> Any:
        return flow.retry(self.services, lead_id)

    def item(self, lead_id: str) -> dict[str, Any]:
        return self.store.items[lead_id]


SETTINGS = LeadIntakeSettings(
    leads_table_name="Leads",
    lead_retry_queue_url="http://127.0.0.1:9/queue/LeadRetryQueue",
    miimosa_base_url="http://127.0.0.1:9",
    lead_retry_delay_seconds=60,
    forward_lease_seconds=30,
    dedup_window_seconds=900,
    lead_retention_days=90,
)


@pytest.fixture
def rig() -> Rig:
    return Rig(clock=Clock(), store=FakeStore(), miimosa=FakeMiimosa(), settings=SETTINGS)


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
        "category": "apiculture",
        "campaign_id": "c-1",
    } | changes
    lead = LeadForm.model_validate(fields)
    fingerprint = lead.fingerprint()
    return LeadSubmission(dedup_key=f"key:{key}" if key else f"body:{fingerprint}", fingerprint=fingerprint, lead=lead)


def queued_lead(rig: Rig, campaign_id: str = "c-1", **item: Any) -> str:
    """A lead the first attempt left queued (MiiMOSA unavailable), as a retry delivery finds it."""
    rig.miimosa.answers.append(PartnerUnavailable("miimosa", "503", status=503))
    outcome = rig.submit(submission(campaign_id=campaign_id))
    assert outcome.status is LeadStatus.QUEUED
    rig.item(outcome.lead_id).update(item)
    rig.sent.clear()
    return str(outcome.lead_id)


# ---------------------------------------------------------------- the first attempt


def test_a_new_lead_is_stored_its_safety_net_queued_then_forwarded_recorded_and_announced(rig):
    first = submission()
    outcome = rig.submit(first)
    lead_id = lead_id_for(first.dedup_key)
    assert (outcome.lead_id, outcome.status, outcome.message) == (lead_id, LeadStatus.FORWARDED, flow.FORWARDED_MESSAGE)
    stored = rig.item(lead_id)
    now = int(rig.clock.now)
    assert stored["status"] == "forwarded"
    assert stored["partner_reference"] == "mm-1"
    assert stored["dedup_until"] == now + 900
    assert stored["expires_at"] == now + 90 * 86400
    assert stored["fingerprint"] == first.fingerprint
    assert not {"answer_by", "lease_until", "not_before"} & stored.keys()  # answered and released
    assert rig.sent == [({"lead_id": lead_id}, 60)]  # the safety net, before MiiMOSA was called
    assert rig.miimosa.leads == [first.lead.for_partner()]
    assert rig.clock.slept == []


def test_the_announcement_names_ids_and_categories_never_the_person(rig):
    lead = submission(apps_miles_user_id="member-42", lead_source="site")
    outcome = rig.submit(lead)
    ((source, kind, detail),) = rig.published
    assert (source, kind) == ("lead-intake", "LeadCaptured")
    assert detail == {
        "lead_id": outcome.lead_id,
        "collect_type": "donation",
        "category": "apiculture",
        "campaign_id": "c-1",
        "lead_source": "site",
        "apps_miles_member": True,
    }
    assert "member-42" not in json.dumps(detail)
    assert rig.item(outcome.lead_id)["apps_miles_user_id"] == "member-42"  # the relay reads it from the lead
    assert "apps_miles_user_id" not in rig.miimosa.leads[0]  # MiiMOSA never receives it


def test_a_lead_without_a_member_is_announced_without_the_member_flag(rig):
    rig.submit(submission())
    assert "apps_miles_member" not in rig.published[0][2]


def test_a_lead_miimosa_refuses_is_rejected_with_its_reason_and_not_announced(rig):
    rig.miimosa.answers.append(PartnerRejected("miimosa", "phone is not valid", status=400))
    outcome = rig.submit(submission())
    assert (outcome.status, outcome.message) == (LeadStatus.REJECTED, "phone is not valid")
    assert rig.item(outcome.lead_id)["status"] == "rejected"
    assert rig.item(outcome.lead_id)["message"] == "phone is not valid"
    assert rig.published == []


@pytest.mark.parametrize(
    "error",
    [
        PartnerUnavailable("miimosa", "503", status=503),
        PartnerUnavailable("miimosa", "read timeout", ambiguous=True),
        PartnerBadResponse("miimosa", "the partner linked to another origin; not followed"),
        OutOfTime("miimosa", "no time left in this invocation for the call"),
        PartnerAuthError("miimosa", "key refused", status=401),
        PartnerNotFound("miimosa", "no such route", status=404),
        ConfigError("MIIMOSA_API_KEY_PARAM missing"),
    ],
    ids=["5xx", "timeout", "bad-response", "out-of-time", "auth", "not-found", "config"],
)
def test_a_lead_miimosa_cannot_take_now_is_queued_for_the_safety_net(rig, error):
    rig.miimosa.answers.append(error)
    outcome = rig.submit(submission())
    assert (outcome.status, outcome.message) == (LeadStatus.QUEUED, flow.QUEUED_MESSAGE)
    stored = rig.item(outcome.lead_id)
    assert stored["status"] == "queued"
    assert stored["message"] == type(error).__name__  # the reason's kind, never its words
    assert "not_before" not in stored  # no Retry-After: the next delivery may try
    assert rig.sent == [({"lead_id": outcome.lead_id}, 60)]  # the safety net that will forward it
    assert rig.published == []


def test_a_429_s_retry_after_holds_off_the_next_attempt_from_the_moment_miimosa_answered(rig):
    def answer_late() -> None:
        rig.clock.advance(1.2)  # MiiMOSA took its time answering

    rig.miimosa.during = answer_late
    rig.miimosa.answers.append(PartnerUnavailable("miimosa", "429", status=429, retry_after=2.5))
    submitted_at = rig.clock.now
    outcome = rig.submit(submission())
    stored = rig.item(outcome.lead_id)
    assert stored["not_before"] == math.ceil(submitted_at + 1.2 + 2.5)
    assert stored["updated_at"] == int(submitted_at)  # the attempt's own time


def test_a_yes_with_an_unreadable_body_is_forwarded_without_a_reference(rig):
    rig.miimosa.answers.append(LeadReceipt(reference=None))
    outcome = rig.submit(submission())
    assert outcome.status is LeadStatus.FORWARDED
    assert "partner_reference" not in rig.item(outcome.lead_id)


def test_an_unexpected_failure_at_miimosa_leaves_the_lead_to_its_safety_net(rig):
    rig.miimosa.answers.append(RuntimeError("a bug"))
    first = submission()
    with pytest.raises(RuntimeError):
        rig.submit(first)
    lead_id = lead_id_for(first.dedup_key)
    assert rig.item(lead_id)["status"] == "forwarding"
    assert rig.sent == [({"lead_id": lead_id}, 60)]


def test_the_lead_waits_for_its_answer_no_longer_than_the_invocation_may_answer(rig, monkeypatch):
    monkeypatch.setenv("DEADLINE_MARGIN_SECONDS", "2")
    seen: list[int] = []
    leads = [submission(), submission(campaign_id="c-2")]
    rig.miimosa.during = lambda: seen.append(rig.item(lead_id_for(leads[len(seen)].dedup_key))["answer_by"])
    with bounded_by(Deadline.after(7.5, Clock())):
        rig.submit(leads[0])
    rig.submit(leads[1])  # no deadline: the lease
    now = int(rig.clock.now)
    assert seen == [now + math.ceil(7.5 + 2), now + 30]  # the deadline plus the margin, under the lease


# ---------------------------------------------------------------- no safety net, no lead


def test_a_lead_whose_safety_net_cannot_be_queued_is_discarded_and_never_offered(rig):
    rig.send_failures = 1
    first = submission()
    with pytest.raises(RuntimeError, match="SQS"):
        rig.submit(first)
    assert rig.store.items == {}
    assert rig.miimosa.leads == []
    assert rig.submit(first).status is LeadStatus.FORWARDED  # a resubmit starts afresh
    assert len(rig.miimosa.leads) == 1


def test_when_the_discard_fails_too_the_queue_s_error_is_the_one_raised(rig):
    rig.send_failures = 1
    rig.store.faults["discard"] = 1
    first = submission()
    with pytest.raises(RuntimeError, match="SQS"):
        rig.submit(first)
    assert rig.miimosa.leads == []
    # The lead stays behind: a resubmit is told it is on its way, once the first answer's time is over.
    rig.clock.advance(31)
    assert rig.submit(first).message == flow.PENDING_MESSAGE
    assert rig.miimosa.leads == []


# ---------------------------------------------------------------- repeats within the window


def test_a_repeat_of_a_forwarded_lead_is_answered_from_its_record(rig):
    first = submission()
    outcome = rig.submit(first)
    rig.clock.advance(899)
    assert rig.submit(first) == outcome
    assert len(rig.miimosa.leads) == 1
    assert len(rig.sent) == 1
    assert len(rig.published) == 1


def test_a_repeat_of_a_queued_lead_is_told_it_is_queued_not_the_reason(rig):
    rig.miimosa.answers.append(PartnerUnavailable("miimosa", "503", status=503))
    first = submission()
    outcome = rig.submit(first)
    again = rig.submit(first)
    assert again == outcome
    assert again.message == flow.QUEUED_MESSAGE
    assert len(rig.miimosa.leads) == 1


def test_a_repeat_of_a_rejected_lead_gets_miimosa_s_reason(rig):
    rig.miimosa.answers.append(PartnerRejected("miimosa", "siret unknown", status=422))
    first = submission()
    rig.submit(first)
    again = rig.submit(first)
    assert (again.status, again.message) == (LeadStatus.REJECTED, "siret unknown")
    assert len(rig.miimosa.leads) == 1


def test_a_repeat_while_the_first_is_still_being_answered_is_told_to_wait(rig):
    first = submission()
    refused: list[BaseException] = []

    def repeat_meanwhile() -> None:
        rig.clock.advance(29)  # still within the first answer's time (the lease: no deadline here)
        with pytest.raises(flow.SubmissionInProgress) as caught:
            rig.submit(first)
        refused.append(caught.value)

    rig.miimosa.during = repeat_meanwhile
    assert rig.submit(first).status is LeadStatus.FORWARDED
    assert len(refused) == 1
    assert len(rig.miimosa.leads) == 1


def test_a_repeat_after_the_first_invocation_died_is_told_the_lead_is_on_its_way(rig):
    first = submission()
    lead_id = lead_id_for(first.dedup_key)
    now = int(rig.clock.now)
    rig.store.create(
        lead_id, first.lead.for_partner(), now=now, lease_seconds=30, expires_at=now + 3600,
        fingerprint=first.fingerprint, dedup_until=now + 900, answer_by=now + 30,
    )  # fmt: skip
    with pytest.raises(flow.SubmissionInProgress):
        rig.submit(first)
    rig.clock.advance(30)  # answer_by is not in the future any more
    outcome = rig.submit(first)
    assert (outcome.lead_id, outcome.status, outcome.message) == (lead_id, LeadStatus.FORWARDING, flow.PENDING_MESSAGE)
    assert rig.miimosa.leads == []  # the safety net forwards it, never a repeat
    assert rig.sent == []


def test_an_idempotency_key_reused_for_another_lead_is_refused_and_nothing_more_stored(rig):
    rig.submit(submission("form-7c1e2b9a"))
    with pytest.raises(flow.IdempotencyKeyReused):
        rig.submit(submission("form-7c1e2b9a", firstname="Bob"))
    assert len(rig.store.items) == 1
    assert len(rig.miimosa.leads) == 1


def test_an_idempotency_key_replays_the_same_lead_however_its_e_mail_is_cased(rig):
    first = rig.submit(submission("form-7c1e2b9a"))
    assert rig.submit(submission("form-7c1e2b9a", email="ANN.BEE@Example.org")) == first


# ---------------------------------------------------------------- after the window


def test_after_the_window_the_same_lead_is_a_new_one_named_by_the_first(rig):
    first = submission()
    head = rig.submit(first)
    rig.clock.advance(901)
    second = rig.submit(first)
    assert second.lead_id != head.lead_id
    assert uuid.UUID(second.lead_id).version == 4  # random: the key's id is the first lead's
    assert second.status is LeadStatus.FORWARDED
    assert rig.item(head.lead_id)["successor"] == second.lead_id
    assert rig.item(head.lead_id)["successor_until"] == int(rig.clock.now) + 900
    assert rig.item(head.lead_id)["status"] == "forwarded"  # the first lead is kept as it was
    rig.clock.advance(899)
    assert rig.submit(first) == second  # within the new lead's window: its repeat
    assert len(rig.miimosa.leads) == 2


def test_after_the_successor_s_window_a_third_lead_takes_its_place(rig):
    first = submission()
    head = rig.submit(first)
    rig.clock.advance(901)
    second = rig.submit(first)
    rig.clock.advance(901)
    third = rig.submit(first)
    assert len({head.lead_id, second.lead_id, third.lead_id}) == 3
    assert rig.item(head.lead_id)["successor"] == third.lead_id
    assert second.lead_id in rig.store.items  # kept until its TTL
    assert len(rig.miimosa.leads) == 3


def test_after_the_window_a_key_may_carry_another_lead_which_then_owns_the_key(rig):
    head = rig.submit(submission("form-7c1e2b9a"))
    rig.clock.advance(901)
    other = rig.submit(submission("form-7c1e2b9a", firstname="Bob"))
    assert other.lead_id != head.lead_id
    assert rig.miimosa.leads[-1]["firstname"] == "Bob"
    with pytest.raises(flow.IdempotencyKeyReused):
        rig.submit(submission("form-7c1e2b9a", firstname="Carl"))


def test_a_successor_erased_within_its_window_makes_room_for_a_new_lead(rig):
    first = submission()
    head = rig.submit(first)
    rig.clock.advance(901)
    second = rig.submit(first)
    del rig.store.items[second.lead_id]  # an erasure
    third = rig.submit(first)
    assert third.lead_id not in (head.lead_id, second.lead_id)
    assert rig.item(head.lead_id)["successor"] == third.lead_id
    assert third.status is LeadStatus.FORWARDED


def test_losing_the_race_to_name_the_successor_discards_its_own_lead_and_answers_the_winner_s(rig):
    first = submission()
    head = rig.submit(first)
    rig.clock.advance(901)
    real = rig.store.link_successor
    won: list[str] = []

    def another_links_first(head_id: str, successor_id: str, **options: Any) -> LeadRecord | None:
        if not won:  # another container stores and names its lead between this one's store and link
            rig.store.link_successor = real  # type: ignore[method-assign]
            won.append(rig.submit(first).lead_id)
        return real(head_id, successor_id, **options)

    rig.store.link_successor = another_links_first  # type: ignore[method-assign]
    answer = rig.submit(first)
    assert answer.lead_id == won[0]
    assert set(rig.store.items) == {head.lead_id, won[0]}  # the loser's lead is gone
    assert len(rig.miimosa.leads) == 2


def test_a_winner_whose_lead_is_not_there_yet_makes_the_loser_wait(rig):
    first = submission()
    head = rig.submit(first)
    rig.clock.advance(901)
    real = rig.store.link_successor

    def another_names_a_lead_not_stored_yet(head_id: str, successor_id: str, **options: Any) -> LeadRecord | None:
        rig.item(head_id).update(successor=str(uuid.uuid4()), successor_until=int(rig.clock.now) + 900)
        return real(head_id, successor_id, **options)

    rig.store.link_successor = another_names_a_lead_not_stored_yet  # type: ignore[method-assign]
    with pytest.raises(flow.SubmissionInProgress):
        rig.submit(first)
    assert list(rig.store.items) == [head.lead_id]  # its own lead was discarded
    assert len(rig.miimosa.leads) == 1


# ---------------------------------------------------------------- MiiMOSA said yes, our record of it failed


def test_a_failed_record_of_a_yes_is_retried_with_pauses_and_then_announced(rig):
    rig.store.faults["settle:forwarded"] = 2
    outcome = rig.submit(submission())
    assert (outcome.status, outcome.message) == (LeadStatus.FORWARDED, flow.FORWARDED_MESSAGE)
    assert rig.clock.slept == list(flow.SETTLE_PAUSES[:2])
    assert rig.item(outcome.lead_id)["status"] == "forwarded"
    assert len(rig.published) == 1
    assert len(rig.sent) == 1  # no "accepted" message: the record took


def test_a_yes_never_recorded_is_answered_being_recorded_and_queued_as_accepted(rig):
    rig.store.faults["settle:forwarded"] = 99
    first = submission()
    outcome = rig.submit(first)
    assert (outcome.status, outcome.message) == (LeadStatus.FORWARDING, flow.RECORDING_MESSAGE)
    assert rig.clock.slept == list(flow.SETTLE_PAUSES)
    assert rig.sent[-1] == ({"lead_id": outcome.lead_id, "accepted": {"reference": "mm-1"}}, 0)
    stored = rig.item(outcome.lead_id)
    assert stored["message"] == UNRECORDED
    assert "answer_by" not in stored  # a repeat is not told to wait
    assert rig.published == []  # announced once the yes is recorded (record_acceptance)
    assert rig.submit(first) == outcome
    assert len(rig.miimosa.leads) == 1


def test_a_failed_record_is_not_retried_when_the_deadline_leaves_no_room(rig):
    rig.store.faults["settle:forwarded"] = 99
    monotonic = Clock()
    with bounded_by(Deadline.after(flow.SETTLE_PAUSES[0] + flow.SETTLE_WRITE_SECONDS - 0.01, monotonic)):
        outcome = rig.submit(submission())
    assert outcome.message == flow.RECORDING_MESSAGE
    assert rig.clock.slept == []
    assert rig.store.faults["settle:forwarded"] == 98  # one write only


def test_a_yes_whose_acceptance_cannot_be_queued_is_still_answered_being_recorded(rig):
    rig.store.faults["settle:forwarded"] = 99
    real_send = rig.send_retry
    calls: list[int] = []

    def second_send_fails(body: Mapping[str, Any], delay: int) -> None:
        calls.append(delay)
        if len(calls) == 2:
            raise RuntimeError("SQS unreachable")
        real_send(body, delay)

    rig.send_retry = second_send_fails  # type: ignore[method-assign]
    outcome = rig.submit(submission())
    assert outcome.message == flow.RECORDING_MESSAGE
    assert calls == [60, 0]
    assert rig.item(outcome.lead_id)["message"] == UNRECORDED


def test_a_yes_that_cannot_be_marked_unrecorded_is_answered_all_the_same_and_repeats_wait_then_pend(rig):
    rig.store.faults |= {"settle:forwarded": 99, "mark_unrecorded": 1}
    first = submission()
    outcome = rig.submit(first)
    assert outcome.message == flow.RECORDING_MESSAGE
    with pytest.raises(flow.SubmissionInProgress):  # its answer_by stands
        rig.submit(first)
    rig.clock.advance(30)
    assert rig.submit(first).message == flow.PENDING_MESSAGE


def test_a_lost_announcement_does_not_undo_the_forward(rig):
    rig.publish_failures = 1
    outcome = rig.submit(submission())
    assert outcome.status is LeadStatus.FORWARDED
    assert rig.published == []


# ---------------------------------------------------------------- the "accepted" message


def test_an_accepted_message_records_the_yes_once_and_announces_it(rig):
    rig.store.faults["settle:forwarded"] = 99
    outcome = rig.submit(submission(apps_miles_user_id="member-42"))
    rig.store.faults.clear()
    late = flow.record_acceptance(rig.services, outcome.lead_id, "mm-1")
    assert late is not None
    assert (late.status, late.message) == (LeadStatus.FORWARDED, flow.FORWARDED_MESSAGE)
    stored = rig.item(outcome.lead_id)
    assert (stored["status"], stored["partner_reference"], stored["message"]) == ("forwarded", "mm-1", "")
    assert rig.published[0][2]["apps_miles_member"] is True  # from the stored lead
    assert flow.record_acceptance(rig.services, outcome.lead_id, "mm-1") is None  # settled already
    assert len(rig.published) == 1
    assert len(rig.miimosa.leads) == 1  # never forwarded again


def test_an_accepted_message_for_a_gone_lead_is_nothing_to_do(rig):
    assert flow.record_acceptance(rig.services, str(uuid.uuid4()), None) is None
    assert rig.published == []


def test_an_accepted_message_whose_write_fails_raises_so_it_comes_back(rig):
    rig.store.faults["settle:forwarded"] = 99
    outcome = rig.submit(submission())
    rig.store.faults["settle_accepted"] = 1
    with pytest.raises(Throttled):
        flow.record_acceptance(rig.services, outcome.lead_id, "mm-1")
    assert rig.item(outcome.lead_id)["status"] == "forwarding"


# ---------------------------------------------------------------- retry deliveries


def test_a_queued_lead_is_claimed_and_forwarded_by_a_retry(rig):
    lead_id = queued_lead(rig)
    outcome = rig.retry(lead_id)
    assert (outcome.status, outcome.message) == (LeadStatus.FORWARDED, flow.FORWARDED_MESSAGE)
    assert rig.item(lead_id)["attempts"] == 2
    assert len(rig.miimosa.leads) == 2
    assert len(rig.published) == 1


def test_a_retry_before_miimosa_s_retry_after_waits_and_after_it_forwards(rig):
    lead_id = queued_lead(rig, not_before=int(rig.clock.now) + 5)
    with pytest.raises(flow.LeadNotForwardedYet):
        rig.retry(lead_id)
    assert len(rig.miimosa.leads) == 1
    rig.clock.advance(5)
    assert rig.retry(lead_id).status is LeadStatus.FORWARDED


def test_a_retry_miimosa_still_cannot_take_goes_back_to_the_queue(rig):
    lead_id = queued_lead(rig)
    rig.miimosa.answers.append(PartnerUnavailable("miimosa", "429", status=429, retry_after=10))
    with pytest.raises(flow.LeadNotForwardedYet):
        rig.retry(lead_id)
    assert rig.item(lead_id)["status"] == "queued"
    assert rig.item(lead_id)["not_before"] == math.ceil(rig.clock.now + 10)


def test_a_retry_miimosa_refuses_is_settled_rejected(rig):
    lead_id = queued_lead(rig)
    rig.miimosa.answers.append(PartnerRejected("miimosa", "duplicate lead", status=409))
    outcome = rig.retry(lead_id)
    assert (outcome.status, outcome.message) == (LeadStatus.REJECTED, "duplicate lead")
    assert rig.item(lead_id)["status"] == "rejected"


def test_a_retry_for_an_unknown_lead_is_dropped(rig):
    assert rig.retry(str(uuid.uuid4())) is None
    assert rig.miimosa.leads == []


@pytest.mark.parametrize(
    ("answer", "expected"),
    [(None, (LeadStatus.FORWARDED, "")), (PartnerRejected("miimosa", "no", status=400), (LeadStatus.REJECTED, "no"))],
)
def test_a_retry_for_a_settled_lead_answers_its_record_without_a_forward(rig, answer, expected):
    if answer is not None:
        rig.miimosa.answers.append(answer)
    lead_id = rig.submit(submission()).lead_id
    outcome = rig.retry(lead_id)
    assert (outcome.lead_id, outcome.status, outcome.message) == (lead_id, *expected)
    assert len(rig.miimosa.leads) == 1


def test_a_retry_while_another_attempt_holds_the_lead_waits(rig):
    first = submission()
    held: list[BaseException] = []

    def retry_meanwhile() -> None:
        with pytest.raises(flow.LeadNotForwardedYet) as caught:
            rig.retry(lead_id_for(first.dedup_key))
        held.append(caught.value)

    rig.miimosa.during = retry_meanwhile
    rig.submit(first)
    assert len(held) == 1
    assert len(rig.miimosa.leads) == 1


def test_a_lead_found_forwarding_after_its_lease_waits_one_more_lease_then_is_forwarded(rig):
    first = submission()
    lead_id = lead_id_for(first.dedup_key)
    now = int(rig.clock.now)
    rig.store.create(lead_id, first.lead.for_partner(), now=now, lease_seconds=30, expires_at=now + 3600)
    rig.clock.advance(31)  # the first invocation died: its lease is over, MiiMOSA may have the lead
    with pytest.raises(flow.LeadUncertain):
        rig.retry(lead_id)
    assert rig.sent == [({"lead_id": lead_id}, 31)]  # back after one full lease
    assert rig.item(lead_id)["uncertain_since"] == int(rig.clock.now)
    assert rig.miimosa.leads == []
    rig.clock.advance(29)
    with pytest.raises(flow.LeadNotForwardedYet):  # the extra lease is not over
        rig.retry(lead_id)
    rig.clock.advance(2)
    assert rig.retry(lead_id).status is LeadStatus.FORWARDED
    assert "uncertain_since" not in rig.item(lead_id)
    assert len(rig.miimosa.leads) == 1


def test_an_uncertain_lead_recorded_late_is_never_forwarded_again(rig):
    first = submission()
    lead_id = lead_id_for(first.dedup_key)
    now = int(rig.clock.now)
    rig.store.create(lead_id, first.lead.for_partner(), now=now, lease_seconds=30, expires_at=now + 3600)
    rig.clock.advance(31)
    with pytest.raises(flow.LeadUncertain):
        rig.retry(lead_id)
    assert flow.record_acceptance(rig.services, lead_id, "mm-9") is not None
    rig.clock.advance(31)
    assert rig.retry(lead_id).status is LeadStatus.FORWARDED  # answered from the record
    assert rig.miimosa.leads == []


# ---------------------------------------------------------------- the queue consumer on the same collaborators


def _sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"m{index}", "body": body, "eventSource": "aws:sqs", "attributes": {}}
            for index, body in enumerate(bodies)
        ]
    }


def test_the_retry_queue_forwards_records_acknowledges_junk_and_hands_back_waiting_leads(rig, monkeypatch):
    monkeypatch.setattr(retries, "services", lambda: rig.services)
    ready = queued_lead(rig)
    waiting = queued_lead(rig, "c-2", not_before=int(rig.clock.now) + 60)
    answer = retries.handle(
        _sqs_event(json.dumps({"lead_id": ready}), "not json", json.dumps({"lead_id": waiting})),
        None,  # type: ignore[arg-type]
    )
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m2"}]}
    assert rig.item(ready)["status"] == "forwarded"


def test_the_retry_queue_records_an_accepted_message_without_forwarding(rig, monkeypatch):
    monkeypatch.setattr(retries, "services", lambda: rig.services)
    rig.store.faults["settle:forwarded"] = 99
    outcome = rig.submit(submission())
    rig.store.faults.clear()
    body = json.dumps({"lead_id": outcome.lead_id, "accepted": {"reference": "mm-1"}})
    assert retries.handle(_sqs_event(body), None) == {"batchItemFailures": []}  # type: ignore[arg-type]
    assert rig.item(outcome.lead_id)["status"] == "forwarded"
    assert len(rig.miimosa.leads) == 1


# ---------------------------------------------------------------- the form's other decisions


def test_a_filled_honeypot_is_a_bot_and_nothing_is_validated(rig):
    assert flow.lead_from_fields(rig.services, {"website": "http://spam.example"}) == (None, True)
    lead, is_bot = flow.lead_from_fields(rig.services, dict(submission().lead.for_partner(), website=" "))
    assert not is_bot
    assert lead is not None


def test_a_lead_without_a_member_id_needs_no_signature_check(rig):
    lead = submission().lead.model_copy(update={"apps_miles_signature": "x"})
    kept, verdict = flow.with_verified_member(rig.services, lead)
    assert verdict is None
    assert kept.apps_miles_signature is None  # the signature is never kept


def test_project_listings_are_cached_per_filter_set(rig):
    first = flow.list_projects(rig.services, {"category": "apiculture", "region": None})
    assert flow.list_projects(rig.services, {"region": None, "category": "apiculture"}) == first
    flow.list_projects(rig.services, {"category": "viticulture"})
    assert rig.miimosa.project_reads == [{"category": "apiculture", "region": None}, {"category": "viticulture"}]
    assert flow.get_project(rig.services, 7) == {"id": 7}


# ---------------------------------------------------------------- the fake store keeps LeadStore's conditions


@pytest.fixture
def moto_store(monkeypatch) -> Iterator[LeadStore]:
    with in_process_aws(monkeypatch):
        create_hash_table("Leads", "lead_id")
        yield LeadStore("Leads")


@pytest.fixture(params=["fake", "moto"])
def any_store(request) -> Any:
    return FakeStore() if request.param == "fake" else request.getfixturevalue("moto_store")


LEAD = {"email": "ann.bee@example.org", "firstname": "Ann"}
T = 1_000


def _status(store: Any, lead_id: str) -> tuple[str, int, str] | None:
    record = store.get(lead_id)
    return None if record is None else (record.status.value, record.attempts, record.message)


def test_contract_create_stores_once_and_answers_with_the_stored_lead(any_store):
    assert (
        any_store.create("a", LEAD, now=T, lease_seconds=30, expires_at=T + 99, fingerprint="f", dedup_until=T + 9)
        is None
    )
    again = any_store.create("a", {"email": "other@example.org"}, now=T + 1, lease_seconds=30, expires_at=T + 99)
    assert again is not None
    assert (again.lead, again.fingerprint, again.dedup_until, again.status) == (LEAD, "f", T + 9, LeadStatus.FORWARDING)


def test_contract_a_fresh_forwarding_lead_is_neither_claimed_nor_uncertain(any_store):
    any_store.create("a", LEAD, now=T, lease_seconds=30, expires_at=T + 99)
    assert isinstance(any_store.claim("a", now=T + 10, lease_seconds=30), ClaimRefused)
    assert not any_store.mark_uncertain("a", now=T + 10, lease_seconds=30)
    assert any_store.mark_uncertain("a", now=T + 31, lease_seconds=30)
    assert not any_store.mark_uncertain("a", now=T + 32, lease_seconds=30)  # once only
    assert isinstance(any_store.claim("a", now=T + 60, lease_seconds=30), ClaimRefused)  # its extra lease runs
    claimed = any_store.claim("a", now=T + 62, lease_seconds=30)
    assert isinstance(claimed, LeadRecord)
    assert claimed.attempts == 2
    assert not any_store.mark_uncertain("a", now=T + 63, lease_seconds=30)  # claimed afresh: not uncertain


def test_contract_a_queued_lead_is_claimed_once_its_not_before_is_over(any_store):
    any_store.create("a", LEAD, now=T, lease_seconds=30, expires_at=T + 99)
    any_store.settle("a", LeadStatus.QUEUED, now=T, message="PartnerUnavailable", not_before=T + 5)
    refused = any_store.claim("a", now=T + 4, lease_seconds=30)
    assert isinstance(refused, ClaimRefused)
    assert refused.record is not None
    assert refused.record.status is LeadStatus.QUEUED
    assert isinstance(any_store.claim("a", now=T + 5, lease_seconds=30), LeadRecord)
    assert isinstance(any_store.claim("a", now=T + 6, lease_seconds=30), ClaimRefused)  # held now
    assert any_store.claim("gone", now=T, lease_seconds=30) == ClaimRefused(None)


def test_contract_settle_accepted_takes_forwarding_or_queued_leads_only(any_store):
    for lead_id in ("a", "b", "c"):
        any_store.create(lead_id, LEAD, now=T, lease_seconds=30, expires_at=T + 99, answer_by=T + 5)
    any_store.settle("b", LeadStatus.QUEUED, now=T)
    any_store.settle("c", LeadStatus.REJECTED, now=T, message="no")
    a, b = (
        any_store.settle_accepted("a", now=T + 1, reference="r"),
        any_store.settle_accepted("b", now=T + 1, reference=None),
    )
    assert a is not None
    assert b is not None
    assert (a.status, a.answer_by, b.status) == (LeadStatus.FORWARDED, None, LeadStatus.FORWARDED)
    assert any_store.settle_accepted("c", now=T + 1, reference="r") is None
    assert any_store.settle_accepted("a", now=T + 2, reference="r") is None
    assert any_store.settle_accepted("gone", now=T + 2, reference="r") is None
    assert _status(any_store, "c") == ("rejected", 1, "no")


def test_contract_mark_unrecorded_and_discard_touch_a_forwarding_first_attempt_only(any_store):
    any_store.create("a", LEAD, now=T, lease_seconds=30, expires_at=T + 99, answer_by=T + 5)
    any_store.mark_unrecorded("a")
    record = any_store.get("a")
    assert (record.message, record.answer_by) == (UNRECORDED, None)
    any_store.settle("a", LeadStatus.FORWARDED, now=T)
    any_store.mark_unrecorded("a")
    any_store.discard("a")
    assert _status(any_store, "a") == ("forwarded", 1, "")
    any_store.create("b", LEAD, now=T, lease_seconds=30, expires_at=T + 99)
    any_store.discard("b")
    assert any_store.get("b") is None
    any_store.discard("b")  # nothing there: no error


def test_contract_link_successor_waits_for_each_window_and_may_replace_a_gone_successor(any_store):
    any_store.create("h", LEAD, now=T, lease_seconds=30, expires_at=T + 99, fingerprint="f", dedup_until=T + 10)
    assert any_store.link_successor("h", "s1", now=T + 5, until=T + 20) is not None  # the head's window runs
    assert any_store.link_successor("h", "s1", now=T + 11, until=T + 20) is None
    taken = any_store.link_successor("h", "s2", now=T + 12, until=T + 30)
    assert taken is not None
    assert (taken.successor, taken.successor_until) == ("s1", T + 20)
    assert any_store.link_successor("h", "s2", now=T + 12, until=T + 30, replacing="s1") is None
    assert any_store.link_successor("h", "s3", now=T + 31, until=T + 40) is None  # s2's window is over
    assert any_store.get("h").successor == "s3"
