"""AWS requests and cost per operation: real counts on the local stack, priced at on-demand list prices.

Counts are botocore calls on the calling thread (bench.invocations.AwsCalls) plus the partner sandboxes' request
logs, per operation, warm (a fresh container's SSM reads and partner token fetches are the SSM row of
bench.invocations: once per container). Lambda GB-seconds come from the measured wall duration of the in-process
invocation at the template's MemorySize, so they are indicative of this machine, not of Graviton.
"""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.common import NOT_BUILT, InvalidReading, Row, built_handlers, check_answers
from bench.invocations import AWS, Call
from bench.stack import NEW_EVENTS, EventFactory, bench_stack, function_environment, listed_callback_event, new_campaign
from hub_local.runtime import LambdaContext, load_handler
from hub_local.stack import LocalStack

# On-demand list prices, US East (N. Virginia), USD, first tier. Written from memory (2024-11), then checked on
# 2026-12-02 against stored copies of these pages (every figure was unchanged, so none was corrected):
# - DynamoDB on-demand: https://aws.amazon.com/dynamodb/pricing/on-demand/ (AWS's page: a standard write request
#   unit writes up to 1 KB, a strongly consistent read up to 4 KB is one read request unit, transactional ones
#   count double); the rates $0.625 per million WRU and $0.125 per million RRU, after the 50 % on-demand cut of
#   2024-11-01, from https://airbyte.com/data-engineering-resources/dynamodb-pricing (2025-07-21), which matches
#   https://www.jusdb.com/blog/dynamodb-cost-optimization-a-comprehensive-guide-by-jusdb (2025-08-19).
# - Lambda: https://aws.amazon.com/lambda/pricing/ renders its rate table client-side, so the stored copy shows
#   no figures; $0.20 per million requests and $0.0000133334 per GB-second on Arm from third-party copies of it:
#   https://git.mcrn.ar/mariano/lambda_local_runner/src/branch/main/docs/lambdas-md/lambda-13-cost.md
#   (2026-05-11) and artillery's https://app.unpkg.com/artillery@2.0.28/files/lib/platform/aws-lambda/prices.js.
# - SQS standard, $0.40 per million requests (64 KB chunks): no AWS page found in the store; third-party
#   https://cloudburn.io/blog/amazon-sqs-pricing (2026-03-14) and
#   https://www.factualminds.com/blog/amazon-sqs-pricing-64kb-rule-fifo-vs-standard/ (2026-06-13).
# - EventBridge custom events, $1.00 per million (64 KB chunks): https://aws.amazon.com/eventbridge/pricing/
#   (chunking; its rate table did not survive in the stored copy) and
#   https://cloudburn.io/blog/amazon-eventbridge-pricing (2026-03-13).
# - HTTP API, $1.00 per million (first 300 million a month): https://aws.amazon.com/api-gateway/pricing/ and
#   https://awsforengineers.com/blog/aws-api-gateway-pricing-explained (2025-05-19).
# - SSM Parameter Store standard parameters at standard throughput: no additional charge,
#   https://docs.aws.amazon.com/systems-manager/latest/userguide/parameter-store-advanced-parameters.html and
#   .../parameter-store-throughput.html (higher throughput's price was not found: from memory, not verified).
PRICES_AS_OF = "2024-11, checked 2026-12-02 (DynamoDB after its 2024-11-01 on-demand cut)"
PRICE_PER_MILLION = {
    "dynamodb.write": 0.625,  # per million write request units (1 KB items assumed: 1 WRU a write)
    "dynamodb.read": 0.125,  # per million read request units (one RRU a request assumed: small items, strong reads)
    "sqs": 0.40,  # standard queue, per million requests (64 KB chunks)
    "events": 1.00,  # EventBridge custom events, per million
    "ssm": 0.0,  # Parameter Store standard throughput: no charge (higher throughput is not priced here)
    "lambda.request": 0.20,
    "apigw.http": 1.00,  # HTTP API, per million requests (first 300 million a month)
}
LAMBDA_ARM_PER_GB_SECOND = 0.0000133334
# Where each price was checked (printed under the prices row): AWS's own page, or a third-party copy of it.
PRICE_CHECKS = {
    "dynamodb": "AWS page (units) + third-party (rates)",
    "lambda": "third-party copies of AWS's page",
    "sqs": "third-party only",
    "events": "AWS page (chunks) + third-party (rate)",
    "apigw.http": "AWS page + third-party (rate)",
    "ssm": "AWS docs (no charge)",
}
DYNAMO_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}
AWS_TARGETS = {"accepted lead": "<= 5 AWS requests"}


@dataclass(frozen=True)
class Operation:
    name: str
    logical_id: str
    http: bool

    @property
    def setup(self) -> EventFactory:
        return NEW_EVENTS[self.logical_id]


OPERATIONS = [
    Operation("accepted lead", "LeadIntakeFunction", True),
    Operation("created campaign", "CampaignLifecycleFunction", True),
    Operation("donation callback (alone: whole path below)", "DonationIngesterFunction", True),
    Operation("licence issued", "LicenceIssuanceFunction", True),
    Operation("relayed loyalty action", "LoyaltyRelayFunction", False),
    Operation("erasure", "ErasureFunction", True),
]


DONATION_FUNCTION = "DonationIngesterFunction"
DONATION_QUEUE = "DonationTotalsQueue"


def fold_batch_size(stack: LocalStack) -> int:
    """The FoldTotals event source's BatchSize in template.yaml: how many hints one fold invocation gets at most."""
    sizes = [s.batch_size for s in stack.function(DONATION_FUNCTION).sqs_sources if s.queue == DONATION_QUEUE]
    return sizes[0] if sizes else 1


def _hint_records(calls: list[Call]) -> list[dict[str, Any]]:
    """The SQS records EventBridge would deliver to the totals queue for the hints these calls published."""
    records = []
    for service, operation, params in calls:
        if service != "events" or operation != "PutEvents":
            continue
        for entry in params.get("Entries", []):
            envelope = {
                "version": "0",
                "id": str(uuid.uuid4()),
                "detail-type": entry["DetailType"],
                "source": entry["Source"],
                "detail": json.loads(entry["Detail"]),
            }
            records.append({"messageId": str(uuid.uuid4()), "body": json.dumps(envelope), "eventSource": "aws:sqs"})
    return records


@dataclass
class _PathRun:
    callback_calls: list[Call]
    fold_calls: list[Call]
    callback_seconds: list[float]
    fold_seconds: float
    umbrella_gets: int


def _run_donation_path(stack: LocalStack, handler: Callable[..., Any], fields: dict[str, Any], n: int) -> _PathRun:
    spec = stack.function(DONATION_FUNCTION)
    umbrella = stack.sandboxes["umbrella"]
    events = [listed_callback_event(stack, fields) for _ in range(n)]
    umbrella.clear_requests()
    callback_calls: list[Call] = []
    seconds = []
    for event in events:
        with AWS.recording() as calls:
            started = time.perf_counter()
            response = handler(event, LambdaContext(spec))
            seconds.append(time.perf_counter() - started)
        assert response["statusCode"] == 200, response
        callback_calls += calls
    records = _hint_records(callback_calls)
    assert len(records) == n, f"{len(records)} hints for {n} callbacks"
    with AWS.recording() as fold_calls:
        started = time.perf_counter()
        report = handler({"Records": records}, LambdaContext(spec))
        fold_seconds = time.perf_counter() - started
    assert report["batchItemFailures"] == [], report
    gets = sum(1 for request in umbrella.requests if request.method == "GET" and request.path.endswith("/donations"))
    return _PathRun(callback_calls, list(fold_calls), seconds, fold_seconds, gets)


def _by_service(calls: list[Call], per: float) -> str:
    counts = Counter(service for service, _, _ in calls)
    return ", ".join(f"{service} {count / per:.3g}" for service, count in sorted(counts.items()))


def donation_path(stack: LocalStack) -> list[Row]:
    """A donation all told: its callback, plus its share of one fold batch (the hints of `batch` callbacks on one
    campaign, verified with one `GET …/donations?timestampSince` and folded), at the template's BatchSize."""
    metric = "AWS requests per donation, whole path (callback + fold + verification)"
    if DONATION_FUNCTION not in {handler.logical_id for handler in built_handlers()}:
        return [Row(metric, NOT_BUILT)]
    batch = fold_batch_size(stack)
    spec = stack.function(DONATION_FUNCTION)
    fields = new_campaign(stack)
    with function_environment(stack, DONATION_FUNCTION):
        handler = load_handler(spec.handler)  # type: ignore[arg-type]
        _run_donation_path(stack, handler, fields, 1)  # warm: SSM, the campaign's cache entry, each operation once
        run = _run_donation_path(stack, handler, fields, batch)
    calls = run.callback_calls + run.fold_calls
    per_donation = len(calls) / batch
    fold_ops = Counter(f"{service}.{operation}" for service, operation, _ in run.fold_calls)
    units = _units(calls)
    aws_cost = sum(PRICE_PER_MILLION[unit] * count / batch for unit, count in units.items())
    callback_seconds = statistics.median(run.callback_seconds)
    gb = spec.memory_size / 1024
    lambda_cost = (
        max(callback_seconds, 0.001) + run.fold_seconds / batch
    ) * gb * LAMBDA_ARM_PER_GB_SECOND * 1e6 + PRICE_PER_MILLION["lambda.request"] * (1 + 1 / batch)
    api = PRICE_PER_MILLION["apigw.http"]
    return [
        Row(
            f"{metric}, fold batch {batch} on one campaign (template BatchSize; Umbrella GETs "
            f"{run.umbrella_gets / batch:.3g} per donation)",
            f"{per_donation:.3g} ({_by_service(calls, batch)})",
        ),
        Row(
            f"  callback {len(run.callback_calls) / batch:g} ({_by_service(run.callback_calls, batch)}); "
            f"one fold of {batch}: {len(run.fold_calls)} ("
            + ", ".join(f"{name} {count}" for name, count in sorted(fold_ops.items()))
            + f"), Umbrella GET …/donations {run.umbrella_gets}",
            "",
        ),
        Row(
            f"  USD per million donations: AWS services {aws_cost:.2f} + Lambda {lambda_cost:.2f} (callback "
            f"{callback_seconds * 1000:.0f} ms + fold {run.fold_seconds * 1000:.0f} ms / {batch}, at "
            f"{spec.memory_size} MB) + HTTP API {api:.2f}",
            f"{aws_cost + lambda_cost + api:.2f}",
        ),
    ]


def _units(calls: list[Call]) -> Counter[str]:
    units: Counter[str] = Counter()
    for service, operation, params in calls:
        if service == "dynamodb":
            if operation == "TransactWriteItems":
                units["dynamodb.write"] += 2 * len(params.get("TransactItems", []))  # transactions cost double
            elif operation in DYNAMO_WRITES:
                units["dynamodb.write"] += 1
            elif operation == "BatchGetItem":
                units["dynamodb.read"] += sum(len(t.get("Keys", [])) for t in params.get("RequestItems", {}).values())
            else:
                units["dynamodb.read"] += 1
        elif service in PRICE_PER_MILLION:
            units[service] += 1
    return units


def measure(stack: LocalStack, repeats: int = 5) -> list[Row]:
    built = {handler.logical_id for handler in built_handlers()}
    rows = [
        Row(f"cost prices: on-demand list, us-east-1, USD, as of {PRICES_AS_OF}", ""),
        Row("  prices checked against: " + "; ".join(f"{k} {v}" for k, v in PRICE_CHECKS.items()), ""),
    ]
    for operation in OPERATIONS:
        metric = f"AWS requests per {operation.name}"
        if operation.logical_id not in built:
            rows.append(Row(metric, NOT_BUILT, AWS_TARGETS.get(operation.name, "")))
            continue
        spec = stack.function(operation.logical_id)
        new_event = operation.setup(stack)
        durations, per_call = [], Counter[str]()
        with function_environment(stack, operation.logical_id):
            handler = load_handler(spec.handler)  # type: ignore[arg-type]
            handler(new_event(), LambdaContext(spec))  # warm: SSM and tokens are per container, counted elsewhere
            for sandbox in stack.sandboxes.values():
                sandbox.clear_requests()
            units: Counter[str] = Counter()
            answers: list[Any] = []
            for _ in range(repeats):
                event = new_event()
                with AWS.recording() as calls:
                    started = time.perf_counter()
                    answers.append(handler(event, LambdaContext(spec)))
                    durations.append(time.perf_counter() - started)
                per_call.update(f"{service}.{name}" for service, name, _ in calls)
                units.update(_units(calls))
        try:
            check_answers(answers)  # a refused operation costs less than the operation the row prices
        except InvalidReading as invalid:
            rows.append(Row(metric, f"not a valid reading ({invalid})", AWS_TARGETS.get(operation.name, "")))
            continue
        partner = sum(len(sandbox.requests) for sandbox in stack.sandboxes.values()) / repeats
        aws_total = sum(per_call.values()) / repeats
        by_service = Counter[str]()
        for key, count in per_call.items():
            by_service[key.split(".")[0]] += count
        detail = ", ".join(f"{service} {count / repeats:g}" for service, count in sorted(by_service.items()))
        rows.append(
            Row(
                f"{metric} (partner requests {partner:g})",
                f"{aws_total:g} ({detail})",
                AWS_TARGETS.get(operation.name, ""),
            )
        )
        seconds = statistics.median(durations)
        gb_seconds = max(seconds, 0.001) * spec.memory_size / 1024
        cost = sum(PRICE_PER_MILLION[unit] * count / repeats for unit, count in units.items())
        lambda_cost = gb_seconds * LAMBDA_ARM_PER_GB_SECOND * 1e6 + PRICE_PER_MILLION["lambda.request"]
        api = PRICE_PER_MILLION["apigw.http"] if operation.http else 0.0
        rows.append(
            Row(
                f"  USD per million {operation.name}: AWS services {cost:.2f} + Lambda {lambda_cost:.2f} "
                f"({seconds * 1000:.0f} ms at {spec.memory_size} MB) + HTTP API {api:.2f}",
                f"{cost + lambda_cost + api:.2f}",
            )
        )
        if operation.logical_id == DONATION_FUNCTION:
            rows += donation_path(stack)
    return rows


def main() -> int:
    """`python -m bench.cost`: this table alone, on a local stack of its own."""
    with bench_stack() as stack:
        rows = measure(stack)
    for row in rows:
        print(f"{row.metric:<130} {row.value:<28} {row.target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
