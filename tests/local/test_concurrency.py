"""The local runner runs invocations at once, as Lambda does, and delivers twice or late on demand (at-least-once)."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hub_local.concurrency import DEFAULT_CONCURRENCY, InvocationEnviron
from hub_local.redelivery import Redelivery
from hub_local.stack import LocalStack

HANDLERS = "tests.local.test_concurrency"
TEMPLATE = f"""
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Globals:
  Function:
    CodeUri: .
    Timeout: 10
    Handler: {HANDLERS}.meet
Resources:
  Bus:
    Type: AWS::Events::EventBus
    Properties:
      Name: !Sub "${{AWS::StackName}}-bus"
  MeetFunction:
    Type: AWS::Serverless::Function
    Properties:
      Environment: {{Variables: {{WHO: meet}}}}
  OtherFunction:
    Type: AWS::Serverless::Function
    Properties:
      Environment: {{Variables: {{WHO: other}}}}
  SoloFunction:
    Type: AWS::Serverless::Function
    Properties:
      ReservedConcurrentExecutions: 1
      Handler: {HANDLERS}.overlap
  WorkQueue:
    Type: AWS::SQS::Queue
    Properties:
      RedrivePolicy: {{deadLetterTargetArn: !GetAtt WorkDLQ.Arn, maxReceiveCount: 3}}
  WorkDLQ:
    Type: AWS::SQS::Queue
  WorkerFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: {HANDLERS}.work
      Events:
        Work:
          Type: SQS
          Properties:
            Queue: !GetAtt WorkQueue.Arn
            BatchSize: 1
            ScalingConfig: {{MaximumConcurrency: 2}}
  ListenerFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: {HANDLERS}.listen
      Events:
        Heard:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref Bus
            Pattern: {{source: [test.concurrency]}}
"""

# What the handlers share with the tests: a barrier two invocations must meet at, and what each one saw.
MEETING: dict[str, threading.Barrier] = {}
SEEN: list[dict[str, Any]] = []
OVERLAP = {"now": 0, "peak": 0}
OVERLAP_LOCK = threading.Lock()
RELEASE = threading.Event()
ENTERED = threading.Semaphore(0)


def meet(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Waits at the barrier (both parties must be in at once), then answers what its environment says."""
    os.environ["WRITTEN_BY"] = context.function_name  # stays in this invocation's environment
    MEETING["barrier"].wait()
    return {"who": os.environ.get("WHO"), "written_by": os.environ.get("WRITTEN_BY"), "tag": event.get("tag")}


def overlap(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Counts how many of its invocations run at once; held until RELEASE."""
    with OVERLAP_LOCK:
        OVERLAP["now"] += 1
        OVERLAP["peak"] = max(OVERLAP["peak"], OVERLAP["now"])
    ENTERED.release()
    RELEASE.wait(10)
    with OVERLAP_LOCK:
        OVERLAP["now"] -= 1
    return {"peak": OVERLAP["peak"]}


def work(event: dict[str, Any], context: Any) -> None:
    """An SQS consumer that records each delivery; with a barrier set, two batches must run at once."""
    for record in event["Records"]:
        SEEN.append({"messageId": record["messageId"], "body": record["body"]})
    if "barrier" in MEETING:
        MEETING["barrier"].wait()


def listen(event: dict[str, Any], context: Any) -> None:
    SEEN.append({"id": event["id"], "detail": event["detail"]})


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    MEETING.clear()
    SEEN.clear()
    OVERLAP.update(now=0, peak=0)
    RELEASE.clear()
    yield
    RELEASE.set()
    MEETING.clear()


def _stack(tmp_path: Path, **options: Any) -> LocalStack:
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE, encoding="utf-8")
    options = {"gateway_port": None, "pump_queues": False, "partners": [], "stack_name": "hub-concurrency"} | options
    return LocalStack(path, **options)


def _wait_until(check: Any, limit: float = 10.0) -> bool:
    deadline = time.monotonic() + limit
    while not check():
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.02)
    return True


def _in_threads(*calls: Any) -> list[Any]:
    """Run each call in a thread of its own; their results (or errors) in order."""
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        try:
            results[index] = calls[index]()
        except Exception as error:  # handed to the test
            results[index] = error

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return results


def test_two_invocations_of_one_function_run_at_once(tmp_path: Path) -> None:
    # One at a time, the first would wait at the barrier alone until it broke: both answering proves the overlap.
    MEETING["barrier"] = threading.Barrier(2, timeout=10)
    with _stack(tmp_path) as stack:
        results = _in_threads(
            lambda: stack.invoke("MeetFunction", {"tag": 1}), lambda: stack.invoke("MeetFunction", {"tag": 2})
        )
        assert sorted(result["tag"] for result in results) == [1, 2], results
        assert stack.slots.peak["MeetFunction"] == 2
        assert stack.concurrency_of("MeetFunction") == DEFAULT_CONCURRENCY


def test_concurrent_invocations_each_see_their_own_environment(tmp_path: Path) -> None:
    MEETING["barrier"] = threading.Barrier(2, timeout=10)
    host_before = dict(os.environ)
    with _stack(tmp_path) as stack:
        # Both are inside their handler at once, each after writing to os.environ.
        meet_result, other_result = _in_threads(
            lambda: stack.invoke("MeetFunction", {}), lambda: stack.invoke("OtherFunction", {})
        )
        assert isinstance(os.environ, InvocationEnviron)
    assert meet_result == {"who": "meet", "written_by": "MeetFunction", "tag": None}
    assert other_result == {"who": "other", "written_by": "OtherFunction", "tag": None}
    assert dict(os.environ) == host_before  # no invocation's variable, nor its write, reached the host's


def test_reserved_concurrency_holds_a_function_to_its_limit(tmp_path: Path) -> None:
    with _stack(tmp_path, concurrency=3) as stack:
        assert stack.concurrency_of("SoloFunction") == 1  # ReservedConcurrentExecutions wins
        assert stack.concurrency_of("MeetFunction") == 3
        results: list[Any] = []
        threads = [threading.Thread(target=lambda: results.append(stack.invoke("SoloFunction", {}))) for _ in range(3)]
        for thread in threads:
            thread.start()
        assert ENTERED.acquire(timeout=10)  # the first one is in, and holds its slot until released
        assert _wait_until(lambda: stack.slots.waiting("SoloFunction") == 2)  # the others wait for it
        assert OVERLAP["now"] == 1
        assert stack.slots.running("SoloFunction") == 1
        RELEASE.set()
        for thread in threads:
            thread.join(30)
        assert len(results) == 3
        assert OVERLAP["peak"] == 1
        assert stack.slots.peak["SoloFunction"] == 1


def test_an_sqs_source_runs_up_to_its_maximum_concurrency_batches_at_once(tmp_path: Path) -> None:
    MEETING["barrier"] = threading.Barrier(2, timeout=10)
    with _stack(tmp_path, pump_queues=True) as stack:
        pump = next(pump for pump in stack.pumps if pump.function == "WorkerFunction")
        assert pump.pollers == 2  # ScalingConfig.MaximumConcurrency, under the function's 4
        sqs = stack.boto3_client("sqs")
        for body in ("a", "b"):
            sqs.send_message(QueueUrl=stack.physical("WorkQueue"), MessageBody=body)
        # BatchSize 1: each message is a batch of its own, and each waits at the barrier for the other.
        assert stack.drain("WorkQueue", timeout=20)
        assert sorted(seen["body"] for seen in SEEN) == ["a", "b"]
        assert stack.slots.peak["WorkerFunction"] == 2
        assert int(_attributes(stack, "WorkDLQ")["ApproximateNumberOfMessages"]) == 0


def _attributes(stack: LocalStack, queue: str) -> dict[str, str]:
    sqs = stack.boto3_client("sqs")
    attributes: dict[str, str] = sqs.get_queue_attributes(QueueUrl=stack.physical(queue), AttributeNames=["All"])[
        "Attributes"
    ]
    return attributes


def _send(stack: LocalStack, count: int) -> None:
    sqs = stack.boto3_client("sqs")
    for index in range(count):
        sqs.send_message(QueueUrl=stack.physical("WorkQueue"), MessageBody=f"m{index}")


def test_at_least_once_delivers_every_settled_message_again_with_its_id(tmp_path: Path) -> None:
    with _stack(tmp_path, at_least_once=True, duplicate_rate=1.0, late_rate=0.0) as stack:
        _send(stack, 4)
        assert stack.drain("WorkQueue", timeout=20)
        deliveries = Counter(seen["messageId"] for seen in SEEN)
        # Same messageId twice (an SQS duplicate), once only, and never pushed into the DLQ by it.
        assert len(deliveries) == 4
        assert set(deliveries.values()) == {2}
        assert stack.redelivery.duplicates == {"sqs:WorkQueue": 4}
        assert int(_attributes(stack, "WorkDLQ")["ApproximateNumberOfMessages"]) == 0


def test_at_least_once_with_a_fixed_seed_duplicates_some_and_makes_some_late(tmp_path: Path) -> None:
    # The same seed's draws, in the order the runner makes them (one pump cycle at a time here).
    expected = Redelivery(enabled=True, duplicate_rate=0.5, late_rate=0.5, late_seconds=1, seed=7)
    for index in range(10):
        expected.repeat("sqs:WorkQueue", f"m{index}")
    with _stack(
        tmp_path, at_least_once=True, duplicate_rate=0.5, late_rate=0.5, late_seconds=1, redelivery_seed=7
    ) as stack:
        _send(stack, 10)
        assert stack.drain("WorkQueue", timeout=30)
        duplicates = stack.redelivery.duplicates["sqs:WorkQueue"]
        assert duplicates == expected.duplicates["sqs:WorkQueue"]
        assert 0 < duplicates < 10
        assert 0 < stack.redelivery.late["sqs:WorkQueue"] == expected.late["sqs:WorkQueue"] <= duplicates
        assert len(SEEN) == 10 + duplicates
        assert len({seen["body"] for seen in SEEN}) == 10


def test_at_least_once_is_off_unless_asked(tmp_path: Path) -> None:
    with _stack(tmp_path, environ={}) as stack:
        assert not stack.redelivery.enabled
        _send(stack, 3)
        assert stack.drain("WorkQueue", timeout=20)
        assert len(SEEN) == 3
        assert stack.redelivery.total == 0


def test_the_environment_switch_turns_it_on(tmp_path: Path) -> None:
    environ = {"HUB_LOCAL_AT_LEAST_ONCE": "1", "HUB_LOCAL_DUPLICATE_RATE": "1", "HUB_LOCAL_LATE_RATE": "0"}
    with _stack(tmp_path, environ=environ) as stack:
        assert stack.redelivery.enabled
        _send(stack, 2)
        assert stack.drain("WorkQueue", timeout=20)
        assert len(SEEN) == 4


def test_at_least_once_delivers_eventbridge_events_twice_now_or_late(tmp_path: Path) -> None:
    with _stack(tmp_path, at_least_once=True, duplicate_rate=1.0, late_rate=0.5, late_seconds=0.3) as stack:
        for number in range(4):
            stack.put_events([{"Source": "test.concurrency", "DetailType": "Heard", "Detail": {"n": number}}])
        assert stack.drain_events(timeout=20)
        heard = Counter(seen["id"] for seen in SEEN)
        # The same event, with its id, twice at the target; the late ones too before drain_events is done.
        assert len(heard) == 4
        assert set(heard.values()) == {2}
        channel = next(iter(stack.redelivery.duplicates))
        assert channel.startswith("events:")
        assert stack.redelivery.duplicates[channel] == 4
        assert sorted(json.dumps(seen["detail"]) for seen in SEEN)[::2] == [json.dumps({"n": n}) for n in range(4)]


def test_redelivery_rejects_rates_that_are_not_probabilities() -> None:
    with pytest.raises(ValueError, match="probabilities"):
        Redelivery(duplicate_rate=1.5)
