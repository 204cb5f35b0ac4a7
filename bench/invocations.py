"""Warm invocations on the local stack: handler CPU against a minimal handler doing the same AWS I/O, and real counts.

AWS requests are counted where botocore makes them (every client's `_make_api_call`, on the calling thread only);
partner calls come from the sandboxes' own request logs. Adding a measurement is adding one scenario below: a
`WarmScenario` (an event to repeat after a setup) or a `CountScenario` (a function that drives the stack and returns
the value to print). Scenarios of functions the template does not declare yet, or whose package is not written yet,
print "n/a (function not built yet)".
"""

from __future__ import annotations

import contextlib
import copy
import json
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import botocore.client
from botocore.exceptions import ClientError

from bench.common import NOT_BUILT, InvalidReading, Row, built_handlers, check_answers
from bench.stack import (
    NEW_EVENTS,
    bench_stack,
    callback_event,
    function_environment,
    listed_callback_event,
    load_event,
    new_campaign,
    new_campaign_event,
    new_lead_event,
    new_licence_event,
    new_relay_batch,
)
from hub_core.caches import reset_all
from hub_local.runtime import LambdaContext, load_handler
from hub_local.stack import LocalStack

Call = tuple[str, str, dict[str, Any]]  # (service, operation, parameters)


# ------------------------------------------------------------------------------------------------ recording


class AwsCalls:
    """Every botocore API call made on the recording thread, or by a handler LocalStack.invoke runs, while
    `recording()` is open."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self._thread: int | None = None
        self._installed = False

    def _install(self) -> None:
        # Patched on first use only, so that importing this module changes nothing.
        original = botocore.client.BaseClient._make_api_call
        recorder = self

        def recorded(client: Any, operation: str, params: dict[str, Any]) -> Any:
            # LocalStack.invoke runs the handler in a thread of its own, named after the function ("lambda-...").
            current = threading.current_thread()
            if recorder._thread is not None and (
                recorder._thread == current.ident or current.name.startswith("lambda-")
            ):
                recorder.calls.append((client.meta.service_model.service_name, operation, copy.deepcopy(params)))
            return original(client, operation, params)

        botocore.client.BaseClient._make_api_call = recorded  # type: ignore[method-assign]
        self._installed = True

    @contextlib.contextmanager
    def recording(self) -> Iterator[list[Call]]:
        if not self._installed:
            self._install()
        self.calls = []
        self._thread = threading.get_ident()
        try:
            yield self.calls
        finally:
            self._thread = None

    @staticmethod
    def count(calls: list[Call], service: str, operations: set[str] | None = None) -> int:
        return sum(1 for name, operation, _ in calls if name == service and (not operations or operation in operations))


AWS = AwsCalls()
SSM_READS = {"GetParameter", "GetParameters", "GetParametersByPath"}


# ------------------------------------------------------------------------------------------------ helpers


def response_body(response: dict[str, Any]) -> dict[str, Any]:
    return json.loads(response["body"])


# ------------------------------------------------------------------------------------------------ warm CPU


@dataclass(frozen=True)
class WarmScenario:
    logical_id: str
    description: str
    # Drives the stack into shape, returns the event to repeat, or (a write path) a factory of new events.
    setup: Callable[[LocalStack], dict[str, Any] | Callable[[], dict[str, Any]]]
    target: str = "<= 1.4"


def _settled_lead_retry(stack: LocalStack) -> dict[str, Any]:
    lead_id = response_body(stack.invoke("LeadIntakeFunction", new_lead_event()))["lead_id"]
    event = load_event("lead_intake/retry_batch.json")
    event["Records"] = [{**event["Records"][0], "body": json.dumps({"lead_id": lead_id})}]
    return event


def _campaign_read(stack: LocalStack) -> dict[str, Any]:
    post, fields = new_campaign_event()
    assert stack.invoke("CampaignLifecycleFunction", post)["statusCode"] == 201
    event = load_event("campaign_lifecycle/get_campaign.json")
    code = fields["donationCode"]
    event["pathParameters"] = {"serviceId": str(fields["serviceId"]), "route": fields["route"], "donationCode": code}
    event["rawPath"] = f"/campaigns/{fields['serviceId']}/{fields['route']}/{code}"
    return event


def _licence_read(stack: LocalStack) -> dict[str, Any]:
    post, order_id = new_licence_event()
    assert stack.invoke("LicenceIssuanceFunction", post)["statusCode"] == 201
    event = load_event("licence_issuance/get_licence.json")
    event["pathParameters"] = {"orderId": order_id}
    event["rawPath"] = f"/licences/{order_id}"
    return event


def _repeated_callback(stack: LocalStack) -> dict[str, Any]:
    fields = new_campaign(stack)
    event = listed_callback_event(stack, fields)
    assert stack.invoke("DonationIngesterFunction", event)["statusCode"] == 200
    # Umbrella lists it, so the drain verifies and folds it (an unlisted one would wait out the drain's timeout):
    # folded, so each repeat is the duplicate path alone: one conditional put, nothing to announce again.
    stack.drain_events(timeout=20)
    stack.drain("DonationTotalsQueue", timeout=20)
    return event


def _repeated_relay(stack: LocalStack) -> dict[str, Any]:
    event = new_relay_batch(stack)
    assert stack.invoke("LoyaltyRelayFunction", event)["batchItemFailures"] == []
    # Relayed and recorded, so each repeat is the duplicate path alone: one BatchGetItem, no partner call.
    return event


WRITE_TARGET = "<= 1.3"
WARM: list[WarmScenario] = [
    WarmScenario("LeadIntakeFunction", "safety-net retry of a forwarded lead (SQS)", _settled_lead_retry),
    WarmScenario("CampaignLifecycleFunction", "GET /campaigns/{...} (campaign and ledger total)", _campaign_read),
    WarmScenario("LicenceIssuanceFunction", "GET /licences/{orderId}", _licence_read),
    WarmScenario("DonationIngesterFunction", "a repeated donation callback (already folded)", _repeated_callback),
    WarmScenario("LoyaltyRelayFunction", "a repeated bus event (already relayed, SQS)", _repeated_relay),
    # Write paths last: the repeated-callback setup drains the totals queue, which they would fill.
    WarmScenario(
        "LeadIntakeFunction", "write: POST /leads, forwarded to MiiMOSA", NEW_EVENTS["LeadIntakeFunction"], WRITE_TARGET
    ),
    WarmScenario(
        "CampaignLifecycleFunction",
        "write: POST /campaigns, created at Umbrella",
        NEW_EVENTS["CampaignLifecycleFunction"],
        WRITE_TARGET,
    ),
    WarmScenario(
        "DonationIngesterFunction",
        "write: a new donation callback",
        NEW_EVENTS["DonationIngesterFunction"],
        WRITE_TARGET,
    ),
    WarmScenario(
        "LicenceIssuanceFunction",
        "write: POST /licences, issued at Pimenko",
        NEW_EVENTS["LicenceIssuanceFunction"],
        WRITE_TARGET,
    ),
    WarmScenario(
        "LoyaltyRelayFunction",
        "write: a new loyalty action relayed (SQS)",
        NEW_EVENTS["LoyaltyRelayFunction"],
        WRITE_TARGET,
    ),
]


Partner = tuple[str, str, dict[str, Any], dict[str, str], Any]  # (method, url, query, headers, JSON body)


def partner_requests(stack: LocalStack) -> list[Partner]:
    """What the sandboxes received since they were last cleared, as requests to replay."""
    replay = []
    for sandbox in stack.sandboxes.values():
        for request in sandbox.requests:
            headers = {name: value for name, value in request.headers.items() if name not in {"host", "content-length"}}
            replay.append((request.method, sandbox.url + request.path, dict(request.query), headers, request.body_json))
    return replay


def minimal_handler(
    stack: LocalStack,
    calls: list[Call],
    partner: list[Partner] = (),  # type: ignore[assignment]
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """A hand-written handler making exactly `calls` with plain boto3 clients to the same moto, and the same partner
    requests with one requests.Session, warm."""
    import requests  # noqa: PLC0415 - only the benchmark's baseline needs it

    http = requests.Session()
    clients = {service: stack.boto3_client(service) for service, _, _ in calls}
    methods = [
        (getattr(clients[service], botocore.xform_name(operation)), params) for service, operation, params in calls
    ]

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        for method, params in methods:
            # A condition that fails for the real handler fails here too: handled, not raised.
            with contextlib.suppress(ClientError):
                method(**params)
        for verb, url, query, headers, body in partner:
            http.request(verb, url, params=query, headers=headers, json=body, timeout=10)
        return {"statusCode": 200, "body": "{}"}

    return handler


def warm_cpu(
    stack: LocalStack, scenario: WarmScenario, blocks: int, per_block: int
) -> tuple[float, float, list[Call], list[Partner]]:
    """Median per-invocation CPU of this thread (the moto server's threads excluded) for handler and minimal.

    A write path gets a new event per invocation (a new lead, campaign, donation, order, action); the minimal handler
    replays the calls and partner requests recorded from one of them (a conditional write that then fails is
    handled, as the real handler would). Every invocation gets a context of its own, as on Lambda: one shared
    context's deadline runs out within a long run, and the handler then answers a fast 503 instead of doing the
    work. Every answer of the handler is checked (InvalidReading) so that a row never times a refusal."""
    spec = stack.function(scenario.logical_id)
    made = scenario.setup(stack)
    new_event: Callable[[], dict[str, Any]] = made if callable(made) else (lambda: copy.deepcopy(made))
    answers: list[Any] = []
    with function_environment(stack, scenario.logical_id):
        handler = load_handler(spec.handler)  # type: ignore[arg-type]
        answers += [handler(new_event(), LambdaContext(spec)) for _ in range(5)]
        for sandbox in stack.sandboxes.values():
            sandbox.clear_requests()
        with AWS.recording() as calls:
            answers.append(handler(new_event(), LambdaContext(spec)))
        check_answers(answers)
        partner = partner_requests(stack)
        minimal = minimal_handler(stack, calls, partner)
        for _ in range(5):
            minimal(new_event(), LambdaContext(spec))
        samples: dict[str, list[float]] = {"handler": [], "minimal": []}
        for _ in range(blocks):
            for name, function in (("handler", handler), ("minimal", minimal)):
                invocations = [(new_event(), LambdaContext(spec)) for _ in range(per_block)]
                block_answers = []
                started = time.thread_time()
                for event, context in invocations:
                    block_answers.append(function(event, context))
                samples[name].append((time.thread_time() - started) / per_block)
                if function is handler:
                    answers += block_answers
    check_answers(answers)
    return statistics.median(samples["handler"]), statistics.median(samples["minimal"]), list(calls), partner


# ------------------------------------------------------------------------------------------------ counts


@dataclass(frozen=True)
class CountScenario:
    metric: str
    target: str
    needs: tuple[str, ...]  # logical ids of the functions it drives
    run: Callable[[LocalStack, int], str] | None = field(default=None)  # None: its function is still being written


def _forwarded_leads(stack: LocalStack, invocations: int) -> str:
    miimosa = stack.sandboxes["miimosa"]
    miimosa.clear_requests()
    forwarded = 0
    for _ in range(invocations):
        forwarded += response_body(stack.invoke("LeadIntakeFunction", new_lead_event())).get("status") == "forwarded"
    posts = sum(1 for request in miimosa.requests if request.method == "POST" and request.path == "/leads")
    return f"{posts / forwarded:.2f} ({posts} POST /leads for {forwarded} leads)"


def _donation_callbacks(stack: LocalStack, invocations: int) -> str:
    fields = new_campaign(stack)
    events = [callback_event(stack, fields, f"bench-{uuid.uuid4().hex}") for _ in range(invocations)]
    reset_all()  # a fresh container: the campaign is read once, then cached
    with AWS.recording() as calls:
        for event in events:
            assert stack.invoke("DonationIngesterFunction", event)["statusCode"] == 200
    dynamodb = AwsCalls.count(calls, "dynamodb")
    by_operation = Counter(operation for service, operation, _ in calls if service == "dynamodb")
    detail = ", ".join(f"{operation} {count}" for operation, count in sorted(by_operation.items()))
    events_put = AwsCalls.count(calls, "events", {"PutEvents"})
    return (
        f"{dynamodb / invocations:.3f} ({dynamodb} for {invocations} callbacks: {detail}; "
        f"{events_put / invocations:.2f} PutEvents each)"
    )


def _ssm_reads(stack: LocalStack, invocations: int) -> str:
    drivers: dict[str, Callable[[], Any]] = {
        "LeadIntakeFunction": lambda: stack.invoke("LeadIntakeFunction", new_lead_event()),
        "CampaignLifecycleFunction": lambda: stack.invoke("CampaignLifecycleFunction", new_campaign_event()[0]),
        "LicenceIssuanceFunction": lambda: stack.invoke("LicenceIssuanceFunction", new_licence_event()[0]),
    }
    parts = []
    for logical_id, drive in drivers.items():
        reset_all()  # a fresh container: its first invocation reads the secret, the cache serves the rest
        with AWS.recording() as calls:
            for _ in range(invocations):
                drive()
        reads = AwsCalls.count(calls, "ssm", SSM_READS)
        parts.append(f"{logical_id.removesuffix('Function')} {reads * 1000 / invocations:.0f}")
    return ", ".join(parts)


def _token_fetches(stack: LocalStack, invocations: int) -> str:
    appsmiles = stack.sandboxes["appsmiles"]
    events = [new_relay_batch(stack) for _ in range(invocations)]
    reset_all()  # a fresh container: its first action fetches the token, the cache serves the rest
    before = appsmiles.auth_calls
    for event in events:
        assert stack.invoke("LoyaltyRelayFunction", event)["batchItemFailures"] == []
    fetches = appsmiles.auth_calls - before
    return f"{fetches * 1000 / invocations:.1f} ({fetches} auth/token for {invocations} actions, one per invocation)"


COUNTS: list[CountScenario] = [
    CountScenario("DynamoDB requests per donation callback", "1", ("DonationIngesterFunction",), _donation_callbacks),
    CountScenario("partner calls per forwarded lead (MiiMOSA)", "1", ("LeadIntakeFunction",), _forwarded_leads),
    CountScenario(
        "SSM reads per 1,000 invocations (each function's partner-calling route)",
        "1 per container per 300 s",
        ("LeadIntakeFunction", "CampaignLifecycleFunction", "LicenceIssuanceFunction"),
        _ssm_reads,
    ),
    CountScenario(
        "app's miles token fetches per 1,000 relayed actions",
        "1 per container per token lifetime",
        ("LoyaltyRelayFunction",),
        _token_fetches,
    ),
]


# ------------------------------------------------------------------------------------------------ run


def measure(blocks: int = 15, per_block: int = 20, invocations: int = 1000) -> list[Row]:
    built = {handler.logical_id for handler in built_handlers()}
    rows: list[Row] = []
    with bench_stack() as stack:
        for scenario in WARM:
            if scenario.logical_id not in built:
                rows.append(Row(f"warm CPU {scenario.logical_id} / minimal handler", NOT_BUILT, scenario.target))
                continue
            try:
                handler_cpu, minimal_cpu, calls, partner = warm_cpu(stack, scenario, blocks, per_block)
            except AssertionError:
                # A setup whose stack state went wrong is a row that says so, not a lost run.
                metric = f"warm CPU {scenario.logical_id}: {scenario.description}"
                rows.append(Row(metric, "failed (setup refused)", scenario.target))
                continue
            except InvalidReading as invalid:
                metric = f"warm CPU {scenario.logical_id}: {scenario.description}"
                rows.append(Row(metric, f"not a valid reading ({invalid})", scenario.target))
                continue
            operations = Counter(f"{service}.{operation}" for service, operation, _ in calls)
            rows.append(
                Row(
                    f"warm CPU {scenario.logical_id} / minimal handler, same I/O: {scenario.description}",
                    f"{handler_cpu / minimal_cpu:.2f}",
                    scenario.target,
                )
            )
            rows.append(
                Row(
                    f"  {handler_cpu * 1000:.2f} ms vs {minimal_cpu * 1000:.2f} ms per invocation; I/O: "
                    + ", ".join(f"{name} x{count}" for name, count in sorted(operations.items()))
                    + f", partner x{len(partner)}",
                    "",
                )
            )
        for count in COUNTS:
            if count.run is None or not set(count.needs) <= built:
                rows.append(Row(count.metric, NOT_BUILT, count.target))
                continue
            rows.append(Row(count.metric, count.run(stack, invocations), count.target))
        from bench import cost  # noqa: PLC0415 - cost builds on this module's helpers

        rows += cost.measure(stack)
    return rows
