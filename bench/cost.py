"""AWS requests and cost per operation: real counts on the local stack, priced at on-demand list prices.

Counts are botocore calls on the calling thread (bench.invocations.AwsCalls) plus the partner sandboxes' request
logs, per operation, warm (a fresh container's SSM reads and partner token fetches are the SSM row of
bench.invocations: once per container). Lambda GB-seconds come from the measured wall duration of the in-process
invocation at the template's MemorySize, so they are indicative of this machine, not of Graviton.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bench.common import NOT_BUILT, Row, built_handlers
from bench.invocations import (
    AWS,
    Call,
    _callback_event,
    _new_campaign,
    function_environment,
    load_event,
    new_campaign_event,
    new_lead_event,
    new_licence_event,
    new_relay_batch,
)
from hub_local.stack import LambdaContext, LocalStack, load_handler

# On-demand list prices, US East (N. Virginia), USD. PRICES_AS_OF is when they were taken from AWS's public
# pricing pages (aws.amazon.com/lambda|dynamodb|sqs|eventbridge|systems-manager|api-gateway/pricing); they were
# not re-read for this run: check them before quoting a figure.
PRICES_AS_OF = "2024-11 (DynamoDB after its 2024-11-01 on-demand reduction)"
PRICE_PER_MILLION = {
    "dynamodb.write": 0.625,  # per million write request units (1 KB items assumed: 1 WRU a write)
    "dynamodb.read": 0.125,  # per million read request units (one RRU a request assumed: small items, strong reads)
    "sqs": 0.40,  # standard queue, per million requests (64 KB chunks)
    "events": 1.00,  # EventBridge custom events, per million
    "ssm": 0.0,  # Parameter Store standard throughput: no charge (higher throughput: 0.05 per 10,000)
    "lambda.request": 0.20,
    "apigw.http": 1.00,  # HTTP API, per million requests (first 300 million a month)
}
LAMBDA_ARM_PER_GB_SECOND = 0.0000133334
DYNAMO_WRITES = {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"}
AWS_TARGETS = {"accepted lead": "<= 5 AWS requests"}


@dataclass(frozen=True)
class Operation:
    name: str
    logical_id: str
    http: bool
    setup: Callable[[LocalStack], Callable[[], dict[str, Any]]]


def _callbacks(stack: LocalStack) -> Callable[[], dict[str, Any]]:
    fields = _new_campaign(stack)
    return lambda: _callback_event(stack, fields, f"bench-{uuid.uuid4().hex[:12]}")


OPERATIONS = [
    Operation("accepted lead", "LeadIntakeFunction", True, lambda stack: new_lead_event),
    Operation("created campaign", "CampaignLifecycleFunction", True, lambda stack: lambda: new_campaign_event()[0]),
    Operation("donation callback (fold + verification not counted)", "DonationIngesterFunction", True, _callbacks),
    Operation("licence issued", "LicenceIssuanceFunction", True, lambda stack: lambda: new_licence_event()[0]),
    Operation("relayed loyalty action", "LoyaltyRelayFunction", False, lambda stack: new_relay_batch),
    Operation("erasure", "ErasureFunction", True, lambda stack: lambda: load_event("erasure/post_erasure.json")),
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
    rows = [Row(f"cost prices: on-demand list, us-east-1, USD, as of {PRICES_AS_OF}", "")]
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
            for _ in range(repeats):
                event = new_event()
                with AWS.recording() as calls:
                    started = time.perf_counter()
                    handler(event, LambdaContext(spec))
                    durations.append(time.perf_counter() - started)
                per_call.update(f"{service}.{name}" for service, name, _ in calls)
                units.update(_units(calls))
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
    return rows
