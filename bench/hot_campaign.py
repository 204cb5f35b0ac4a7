"""A telethon in simulation: 1,000 donations a second to one campaign, counting DynamoDB writes per item per second
and the Umbrella calls that verifying them costs.

The real code paths run against moto on the template's tables and the Umbrella sandbox: each donation is made at the
sandbox (which lists it), each callback is `callback.receive` (one conditional put of its own donation item, pending),
each fold batch is `fold.fold_batch` (one `donations?timestampSince` call per campaign, then the folds) with the
batches the SQS event source would form from the template's BatchSize, MaximumBatchingWindowInSeconds and
MaximumConcurrency. Time is simulated (a callback at
i / rate seconds, a batch when it fills or its window closes), so the counts do not depend on how fast this machine
is: only on the design. The baseline is the design this one replaces, one ADD on the campaign's total per donation,
run the same way. It prints the largest number of writes any single item took in any one simulated second.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
for path in ("layers/adapters", "functions", "local", ""):
    if str(ROOT / path) not in sys.path:
        sys.path.insert(0, str(ROOT / path))

# The hub's own modules, once the paths above make them importable (as `make bench` runs this file).
from bench.stack import function_environment  # noqa: E402
from donation_ingester import callback, fold  # noqa: E402
from donation_ingester.models import DONATION_HINT, CallbackDonation  # noqa: E402
from donation_ingester.services import services  # noqa: E402
from hub_core import aws, events  # noqa: E402
from hub_core.caches import reset_all  # noqa: E402
from hub_core.campaigns import CampaignKey  # noqa: E402
from hub_core.ledger import read_totals  # noqa: E402
from hub_local.cfn import load_yaml  # noqa: E402
from hub_local.stack import LocalStack  # noqa: E402

EVENTS = ROOT / "events"


def load_event(name: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / name).read_text()))


FUNCTION = "DonationIngesterFunction"
ITEM_LIMIT_PER_SECOND = 1000  # DynamoDB's write ceiling for one item (one partition key), in writes a second
TARGET_PER_SECOND = 100
PATH_TARGET = 1.10  # issue 20: the donation path within 10 % of one write per donation, verification included


@dataclass(frozen=True)
class FoldSource:
    batch_size: int
    window_seconds: float
    concurrency: int


@dataclass(frozen=True)
class SimResult:
    donations: int
    seconds: float
    hottest_item: str
    hottest_writes_per_second: int
    total_item_writes_per_second: int
    folded_amount: int
    folded_count: int
    baseline_writes_per_second: int
    umbrella_calls: int = 0
    dynamodb_requests: int = 0  # every DynamoDB request of the path: callbacks' puts, the fold's reads and writes
    item_writes: int = 0  # items written, a transaction's actions each counted
    baseline_requests: int = 0

    @property
    def umbrella_calls_per_donation(self) -> float:
        return self.umbrella_calls / max(1, self.donations)

    @property
    def path_requests_per_donation(self) -> float:
        """DynamoDB requests plus Umbrella verification calls, per donation."""
        return (self.dynamodb_requests + self.umbrella_calls) / max(1, self.donations)

    @property
    def baseline_requests_per_donation(self) -> float:
        return self.baseline_requests / max(1, self.donations)


def fold_source() -> FoldSource:
    """The FoldTotals event source as template.yaml declares it."""
    events = load_yaml(ROOT / "template.yaml")["Resources"][FUNCTION]["Properties"]["Events"]
    properties = events["FoldTotals"]["Properties"]
    return FoldSource(
        batch_size=int(properties["BatchSize"]),
        window_seconds=float(properties.get("MaximumBatchingWindowInSeconds", 0)),
        concurrency=int(properties.get("ScalingConfig", {}).get("MaximumConcurrency", 1000)),
    )


class WriteCounter:
    """Counts writes per (simulated second, item) from the DynamoDB client's own requests."""

    def __init__(self) -> None:
        self.now = 0.0
        self.writes: Counter[tuple[int, str]] = Counter()
        self.requests: Counter[str] = Counter()  # per operation, reads included

    def __call__(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        second = int(self.now)
        operation = model.name
        self.requests[operation] += 1
        if operation == "PutItem":
            self.writes[(second, params["Item"]["pk"]["S"])] += 1
        elif operation == "UpdateItem":
            self.writes[(second, params["Key"]["pk"]["S"])] += 1
        elif operation == "TransactWriteItems":
            for action in params["TransactItems"]:
                (body,) = action.values()
                key = body.get("Key") or body.get("Item")
                self.writes[(second, key["pk"]["S"])] += 1

    def hottest(self, prefix: str = "") -> tuple[str, int]:
        per_item = Counter()
        for (_, item), count in self.writes.items():
            if item.startswith(prefix):
                per_item[item] = max(per_item[item], count)
        if not per_item:
            return "", 0
        item, count = per_item.most_common(1)[0]
        return item, count


def batches(published: list[tuple[float, dict[str, Any]]], source: FoldSource) -> Iterator[tuple[float, list[Any]]]:
    """(close time, records) as an SQS event source forms them: full at batch_size, or when the window closes."""
    current: list[Any] = []
    opened = 0.0
    for index, (at, detail) in enumerate(published):
        if current and at >= opened + source.window_seconds:
            yield opened + source.window_seconds, current
            current = []
        if not current:
            opened = at
        event = {"detail-type": "DonationCallbackReceived", "source": "partner-hub.donation-ingester", "detail": detail}
        current.append({"messageId": f"m{index}", "body": json.dumps(event), "eventSource": "aws:sqs"})
        if len(current) == source.batch_size:
            yield at, current
            current = []
    if current:
        yield opened + source.window_seconds, current


# The simulated fold's per-campaign budget: far above any fold's time here (it runs with no Lambda deadline).
SIMULATED_FOLD_SECONDS = 60


def simulate(rate: int = 1000, seconds: float = 1.0) -> SimResult:
    with LocalStack(ROOT / "template.yaml", gateway_port=None, pump_queues=False) as stack:
        # The committed create event: a real campaign at the Umbrella sandbox, so that it lists the donations.
        created = stack.invoke("CampaignLifecycleFunction", load_event("campaign_lifecycle/post_campaign.json"))
        assert created["statusCode"] == 201, created["body"]
        ref = "1/hjerte/anna50"
        umbrella = stack.sandboxes["umbrella"]
        count = int(rate * seconds)
        made = [umbrella.donate(1, "hjerte", "anna50", amount=100, deliver=False)["donation"] for _ in range(count)]
        umbrella.clear_requests()
        with function_environment(stack, FUNCTION):
            # What is counted is writes, not time: on a loaded machine moto may take longer than the template's
            # per-campaign fold budget (2 s for a batch), which would turn slowness into failed folds.
            os.environ["FOLD_CAMPAIGN_SECONDS"] = str(SIMULATED_FOLD_SECONDS)
            reset_all()
            counter = WriteCounter()
            client = aws.dynamodb()
            client.meta.events.register("before-parameter-build.dynamodb.*", counter)
            published: list[tuple[float, dict[str, Any]]] = []
            real_publish, real_many, add_metric = events.publish, events.publish_many, callback.metrics.add_metric
            # The hints go to the simulated queue; the DonationReceived events the fold emits go nowhere.
            events.publish = lambda _source, kind, detail: (
                published.append((counter.now, dict(detail))) if kind == DONATION_HINT else None
            )
            events.publish_many = lambda _source, _kind, details: [True] * len(details)
            # Thousands of "donation recorded" lines and metrics would only slow the simulation down.
            callback.logger.setLevel(logging.WARNING)
            callback.metrics.add_metric = lambda **_: None  # type: ignore[method-assign]
            try:
                campaign = CampaignKey.from_ref(ref)
                for index, donation in enumerate(made):
                    counter.now = index / rate
                    callback.receive(
                        services(), campaign, CallbackDonation(messageKey=donation["messageKey"], amount=100)
                    )
                source = fold_source()
                # The pollers take turns; a batch is folded when it closes (each poller folds one batch at a time).
                for closed_at, records in batches(published, source):
                    counter.now = closed_at
                    report = fold.fold_batch(services(), records)
                    assert not report.failed_message_ids, report
            finally:
                events.publish, events.publish_many = real_publish, real_many
                callback.logger.setLevel(logging.INFO)
                callback.metrics.add_metric = add_metric  # type: ignore[method-assign]
            totals = read_totals(stack.physical("DonationsTable"), ref)
            umbrella_calls = sum(1 for request in umbrella.requests if request.path.endswith("/donations"))
            hottest_item, hottest = counter.hottest()
            _, total_item = counter.hottest("total#")

            # The baseline: the same donations, each adding itself to the total as it arrives.
            baseline = WriteCounter()
            client.meta.events.register("before-parameter-build.dynamodb.*", baseline)
            client.meta.events.unregister("before-parameter-build.dynamodb.*", counter)
            for index in range(count):
                baseline.now = index / rate
                client.update_item(
                    TableName=stack.physical("DonationsTable"),
                    Key={"pk": {"S": f"baseline-total#{ref}"}},
                    UpdateExpression="ADD amount :a",
                    ExpressionAttributeValues={":a": {"N": "100"}},
                )
            _, baseline_hottest = baseline.hottest()
            reset_all()
    return SimResult(
        donations=count,
        seconds=seconds,
        hottest_item=hottest_item,
        hottest_writes_per_second=hottest,
        total_item_writes_per_second=total_item,
        folded_amount=totals.amount,
        folded_count=totals.count,
        baseline_writes_per_second=baseline_hottest,
        umbrella_calls=umbrella_calls,
        dynamodb_requests=sum(counter.requests.values()),
        item_writes=sum(counter.writes.values()),
        baseline_requests=sum(baseline.requests.values()),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=1000, help="donations per second to one campaign")
    parser.add_argument("--seconds", type=float, default=1.0, help="simulated seconds")
    arguments = parser.parse_args()
    source = fold_source()
    result = simulate(arguments.rate, arguments.seconds)
    print(
        f"hot campaign: {result.donations} donations at {arguments.rate}/s for {arguments.seconds:g} s "
        f"(fold: batch {source.batch_size}, window {source.window_seconds:g} s, concurrency {source.concurrency})"
    )
    print(f"  folded into the total: {result.folded_count} donations, {result.folded_amount} øre")
    print(
        f"  largest writes/s on any single item: {result.hottest_writes_per_second}"
        f"  (the campaign's total: {result.total_item_writes_per_second}/s; target ≤ {TARGET_PER_SECOND},"
        f" DynamoDB's ceiling ≈ {ITEM_LIMIT_PER_SECOND})"
    )
    print(
        f"  Umbrella calls to verify them: {result.umbrella_calls} GET …/donations, "
        f"{result.umbrella_calls_per_donation:.4f} per donation (one per campaign per fold batch)"
    )
    print(
        f"  baseline, one ADD per donation: {result.baseline_writes_per_second}/s on the total"
        f"  → x{result.total_item_writes_per_second / max(1, result.baseline_writes_per_second):.3f} of baseline"
    )
    # The target: the whole donation path, verification included, within 10 % of the one write (one request)
    # per donation of that baseline. The bus events (a hint per callback, a DonationReceived per verified donation)
    # are patched out of this simulation; bench/cost.py counts them.
    ratio = result.path_requests_per_donation / max(1e-9, result.baseline_requests_per_donation)
    print(
        f"  donation path, verification included: {result.path_requests_per_donation:.3f} requests per donation "
        f"(DynamoDB {result.dynamodb_requests}, Umbrella {result.umbrella_calls}) vs baseline "
        f"{result.baseline_requests_per_donation:.3f} → x{ratio:.3f} (target ≤ {PATH_TARGET:.2f}); "
        f"items written: {result.item_writes / max(1, result.donations):.3f} per donation; "
        "bus events not counted here (2 per donation, see bench.cost)"
    )


if __name__ == "__main__":
    main()
