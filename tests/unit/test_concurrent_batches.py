"""Two SQS batches of one function at once (the local runner's concurrency) each get their own failures reported."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from erasure import deferred
from hub_core import batches
from lead_intake import retries


def _event(message_id: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": message_id,
                "receiptHandle": "handle",
                "body": "{}",
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:queue",
                "awsRegion": "eu-west-1",
            }
        ]
    }


@pytest.mark.parametrize(
    ("module", "record_handler"), [(retries, "_retry_record"), (deferred, "_record")], ids=["lead-retries", "erasure"]
)
def test_two_batches_at_once_report_only_their_own_failures(
    module: Any, record_handler: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both batches inside their record handler at once: each answer names its own failures only. (A shared
    processor fails this only in some interleavings; the next test pins the fix itself.)"""
    meeting = threading.Barrier(2, timeout=10)
    failing, passing = str(uuid.uuid4()), str(uuid.uuid4())

    def handle_record(record: Any) -> None:  # Powertools passes it as `record=`
        meeting.wait()  # both batches are being processed at once
        if record.message_id == failing:
            raise RuntimeError("this record fails")

    monkeypatch.setattr(module, record_handler, handle_record)
    answers: dict[str, Any] = {}

    def run(message_id: str) -> None:
        answers[message_id] = module.handle(_event(message_id), None)

    threads = [threading.Thread(target=run, args=(message_id,)) for message_id in (failing, passing)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    assert answers[failing] == {"batchItemFailures": [{"itemIdentifier": failing}]}
    assert answers[passing] == {"batchItemFailures": []}


def _processors_used(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    used: list[Any] = []
    monkeypatch.setattr(batches, "process_partial_response", lambda **arguments: used.append(arguments["processor"]))
    return used


@pytest.mark.parametrize("module", [retries, deferred], ids=["lead-retries", "erasure"])
def test_each_invocation_gets_a_batch_processor_of_its_own(module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # A BatchProcessor keeps the records, failures and response of the batch it runs: a shared one lets a batch
    # clear, or answer with, another batch's failures when the two run at once.
    used = _processors_used(monkeypatch)
    module.handle(_event("one"), None)
    module.handle(_event("two"), None)
    assert len(used) == 2
    assert used[0] is not used[1]


def test_the_licence_retry_queue_gets_a_batch_processor_per_invocation(monkeypatch: pytest.MonkeyPatch) -> None:
    from licence_issuance import requeue  # noqa: PLC0415

    used = _processors_used(monkeypatch)
    # No record is run (the processor is patched), so the function's collaborators are never reached.
    requeue.handle_batch(None, _event("one"), None, handle=lambda event, requeues: None)  # type: ignore[arg-type]
    requeue.handle_batch(None, _event("two"), None, handle=lambda event, requeues: None)  # type: ignore[arg-type]
    assert len(used) == 2
    assert used[0] is not used[1]


def test_a_planned_batch_reports_the_records_its_plan_failed_and_only_those() -> None:
    event = {"Records": _event("done")["Records"] + _event("again")["Records"]}
    answer = batches.planned(event, None, lambda message_id: "not folded" if message_id == "again" else None)  # type: ignore[arg-type]
    assert answer == {"batchItemFailures": [{"itemIdentifier": "again"}]}
