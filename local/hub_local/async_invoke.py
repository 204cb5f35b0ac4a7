"""Lambda's asynchronous invocation locally: an internal queue, retries, OnSuccess/OnFailure destinations, DLQ."""

from __future__ import annotations

import datetime
import heapq
import itertools
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from hub_local.cfn import ACCOUNT_ID, REGION
from hub_local.event_targets import compact_json
from hub_local.specs import AsyncDestination, FunctionSpec, QueueSpec

Invoke = Callable[..., Any]


def _utc_timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def function_arn(function: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function}"


def error_payload(error: BaseException, request_id: str) -> dict[str, Any]:
    """The Python runtime's report of an unhandled error."""
    error_type = type(error).__name__
    if error_type == "HandlerImportError":
        error_type = "Runtime.ImportModuleError"
    elif error_type == "FunctionTimedOut":
        error_type = "Sandbox.Timedout"
    return {
        "errorMessage": str(error),
        "errorType": error_type,
        "requestId": request_id,
        "stackTrace": traceback.format_list(traceback.extract_tb(error.__traceback__)),
    }


def invocation_record(
    *,
    function: str,
    request_id: str,
    event: Any,
    condition: str,
    invoke_count: int,
    response: Any,
    error: bool,
) -> dict[str, Any]:
    """The record Lambda sends to an asynchronous invocation's destination."""
    response_context: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if error:
        response_context["functionError"] = "Unhandled"
    return {
        "version": "1.0",
        "timestamp": _utc_timestamp(),
        "requestContext": {
            "requestId": request_id,
            "functionArn": f"{function_arn(function)}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": invoke_count,
        },
        "requestPayload": event,
        "responseContext": response_context,
        "responsePayload": response,
    }


@dataclass
class _Job:
    function: str
    event: Any
    request_id: str
    created: float
    attempts: int = 0


@dataclass(order=True)
class _Scheduled:
    due: float
    sequence: int
    job: _Job = field(compare=False)


class AsyncInvoker:
    """Lambda's asynchronous invocation: an internal queue, retries after `retry_seconds` (Lambda waits minutes),
    then OnFailure destination or dead-letter queue; OnSuccess destination. A worker thread when started,
    else `run_due` drives it."""

    def __init__(
        self,
        *,
        invoke: Invoke,
        functions: Mapping[str, FunctionSpec],
        queues: Mapping[str, QueueSpec],
        sqs: Any,
        events: Any,
        retry_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        workers: int = 1,
    ) -> None:
        """`workers` threads run invocations at once when started (each function's own limit is the runner's)."""
        self.invoke = invoke
        self.functions = functions
        self.queues = queues
        self.sqs = sqs
        self.events = events
        self.retry_seconds = retry_seconds
        self.clock = clock
        self._heap: list[_Scheduled] = []
        self._sequence = itertools.count()
        self._running = 0
        self._condition = threading.Condition()
        self._stopping = False
        self.workers = max(1, workers)
        self._threads: list[threading.Thread] = []
        self.activity = 0  # grows with every submission: lets `drain_events` notice work that came and went

    def submit(self, function: str, event: Any, *, delay: float = 0.0) -> str:
        """Queue one asynchronous invocation (Lambda's 202): the caller never waits for it; `delay` seconds
        later (a late duplicate)."""
        job = _Job(function, event, str(uuid.uuid4()), self.clock())
        self._push(job, job.created + delay)
        return job.request_id

    def _push(self, job: _Job, due: float) -> None:
        with self._condition:
            heapq.heappush(self._heap, _Scheduled(due, next(self._sequence), job))
            self.activity += 1
            self._condition.notify_all()

    @property
    def pending(self) -> int:
        """Invocations queued, waiting for a retry or running."""
        with self._condition:
            return len(self._heap) + self._running

    def _pop_due(self) -> _Job | None:
        with self._condition:
            if not self._heap or self._heap[0].due > self.clock():
                return None
            self._running += 1
            return heapq.heappop(self._heap).job

    def run_due(self) -> int:
        """Run, in the calling thread, every invocation that is due; returns how many ran."""
        ran = 0
        while (job := self._pop_due()) is not None:
            self._attempt(job)
            ran += 1
        return ran

    def _attempt(self, job: _Job) -> None:
        try:
            spec = self.functions[job.function]
            job.attempts += 1
            try:
                result = self.invoke(job.function, job.event, request_id=job.request_id)
            except Exception as error:  # the function's error: Lambda retries, then gives up
                self._failed(job, spec, error)
            else:
                if spec.on_success is not None:
                    record = invocation_record(
                        function=job.function,
                        request_id=job.request_id,
                        event=job.event,
                        condition="Success",
                        invoke_count=job.attempts,
                        response=result,
                        error=False,
                    )
                    self._send(spec.on_success, record, job.function, success=True)
        except Exception:  # a destination that cannot be reached must not stop the worker
            print(f"async invoke {job.function}: delivery of the outcome failed", file=sys.stderr)
            traceback.print_exc(file=sys.stderr)
        finally:
            with self._condition:
                self._running -= 1
                self._condition.notify_all()

    def _failed(self, job: _Job, spec: FunctionSpec, error: Exception) -> None:
        payload = error_payload(error, job.request_id)
        tries = f"attempt {job.attempts} of {spec.maximum_retry_attempts + 1}"
        too_old = self.clock() - job.created >= spec.maximum_event_age
        if job.attempts <= spec.maximum_retry_attempts and not too_old:
            print(
                f"async invoke {job.function} ({tries}) failed: {payload['errorType']}: {error}; "
                f"retried in {self.retry_seconds:g} s",
                file=sys.stderr,
            )
            self._push(job, self.clock() + self.retry_seconds)
            return
        print(f"async invoke {job.function} ({tries}) failed: {payload['errorType']}: {error}", file=sys.stderr)
        traceback.print_exception(error, file=sys.stderr)
        condition = "EventAgeExceeded" if too_old else "RetriesExhausted"
        if spec.on_failure is not None:
            record = invocation_record(
                function=job.function,
                request_id=job.request_id,
                event=job.event,
                condition=condition,
                invoke_count=job.attempts,
                response=payload,
                error=True,
            )
            self._send(spec.on_failure, record, job.function, success=False)
        elif spec.dead_letter_queue is not None:
            message = str(error) or payload["errorType"]
            self.sqs.send_message(
                QueueUrl=self.queues[spec.dead_letter_queue].url,
                MessageBody=compact_json(job.event),
                MessageAttributes={
                    "RequestID": {"DataType": "String", "StringValue": job.request_id},
                    "ErrorCode": {"DataType": "Number", "StringValue": "200"},
                    "ErrorMessage": {"DataType": "String", "StringValue": message[:1024]},
                },
            )
        else:
            print(f"async invoke {job.function}: event discarded (no OnFailure, no DeadLetterQueue)", file=sys.stderr)

    def _send(self, destination: AsyncDestination, record: dict[str, Any], function: str, *, success: bool) -> None:
        if destination.kind == "SQS":
            self.sqs.send_message(QueueUrl=self.queues[destination.target].url, MessageBody=compact_json(record))
        elif destination.kind == "Lambda":
            self.submit(destination.target, record)
        else:
            self.events.put_events(
                Entries=[
                    {
                        "Source": "lambda",
                        "DetailType": f"Lambda Function Invocation Result - {'Success' if success else 'Failure'}",
                        "Detail": compact_json(record),
                        "EventBusName": destination.target,
                        "Resources": [destination.arn, f"{function_arn(function)}:$LATEST"],
                    }
                ]
            )

    # -------------------------------------------------------------------------------------------- thread

    def start(self) -> AsyncInvoker:
        self._threads = [
            threading.Thread(target=self._run, name=f"hub-local-async-invoke-{index}", daemon=True)
            for index in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        with self._condition:
            self._stopping = True
            self._condition.notify_all()

    def join(self, timeout: float | None = None) -> None:
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        if self._heap:
            print(f"async invoke: {len(self._heap)} invocation(s) dropped at stop", file=sys.stderr)

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._stopping and (not self._heap or self._heap[0].due > self.clock()):
                    wait = None if not self._heap else max(0.0, self._heap[0].due - self.clock())
                    self._condition.wait(wait)
                if self._stopping:
                    return
            self.run_due()
