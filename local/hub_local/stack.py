"""LocalStack: moto, the template's resources, partner sandboxes, gateway and queue pumps in one process."""

from __future__ import annotations

import contextlib
import datetime
import decimal
import importlib
import json
import logging
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, ClassVar, Final, Self

import boto3
import botocore.session
from botocore.exceptions import ClientError

from hub_local.concurrency import DEFAULT_CONCURRENCY, ConcurrencySlots, host_environ, install, invocation_environ
from hub_local.eventbus import (
    PUT_EVENTS_LIMIT,
    TAP_INPUT_TEMPLATE,
    TAP_PATTERN,
    TAP_RULE_NAME,
    TAP_TARGET_ID,
    AsyncInvoker,
    BusRouter,
    ScheduleTimer,
    lambda_payload,
    normalise_entry,
    render_target_input,
    scheduled_event_text,
    send_to_queue,
    tap_queue_name,
)
from hub_local.gateway import LAMBDA_PATH, Gateway
from hub_local.limits import FunctionTimedOut
from hub_local.partners import PartnerSpec, Sandbox, default_partners, hub_secret_values, secret_parameter_name
from hub_local.redelivery import Redelivery
from hub_local.sqs_pump import SqsPump
from hub_local.template import (
    ACCOUNT_ID,
    DEFAULT_STACK_NAME,
    REGION,
    EventRuleSpec,
    FunctionSpec,
    LocalTemplate,
    QueueSpec,
    RuleTarget,
    ScheduleSpec,
    TableSpec,
    load_template,
    load_yaml,
)
from hub_local.web import WebServer, swagger_ui_dir

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

Handler = Callable[[Any, Any], Any]

DUMMY_CREDENTIAL: Final = "testing"
_HANDLERS: dict[str, Handler] = {}
# Threads that run asynchronous invocations (several functions' at once; each function is held to its own limit).
_ASYNC_WORKERS: Final = 8
# Variables of the host that must not leak into a function (they could point boto3 at a real account).
_HOST_PREFIXES_DROPPED: Final = ("AWS_", "_X_AMZN_", "_HANDLER", "LAMBDA_")


__all__ = ["FunctionTimedOut", "HandlerImportError", "LambdaContext", "LocalStack", "UnknownResourceError"]


class UnknownResourceError(KeyError):
    """A logical id the template does not declare (or not of the kind asked for)."""

    def __str__(self) -> str:
        return str(self.args[0])


class HandlerImportError(ImportError):
    """A function's Handler cannot be imported."""


class LambdaContext:
    """The context object the Python Lambda runtime passes to a handler."""

    def __init__(self, function: FunctionSpec, request_id: str | None = None, timeout: float | None = None) -> None:
        self.function_name = function.logical_id
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function.logical_id}"
        self.memory_limit_in_mb = function.memory_size
        self.aws_request_id = request_id or str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function.logical_id}"
        self.log_stream_name = f"{datetime.datetime.now(datetime.UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self.identity: Any = None
        self.client_context: Any = None
        self.tenant_id: str | None = None
        self._deadline = time.monotonic() + (function.timeout if timeout is None else timeout)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


# Set in the thread that runs a handler: a function that invokes another in-process runs it inline, as before.
_IN_HANDLER: Final = threading.local()


def _run_until(handler: Handler, payload: Any, context: LambdaContext, timeout: float, env: Mapping[str, str]) -> Any:
    """The handler's result, from a thread of its own; `FunctionTimedOut` when it is not back within `timeout`.

    Python cannot kill a thread: an abandoned one runs on, but whatever it returns is dropped, and its deadline
    (hub_core.deadline) has passed, so its partner calls give up at once. Unlike a killed Lambda, it may still write
    to DynamoDB after the deadline; the flows are written to survive that (leases, conditional writes). It then
    keeps its own environment (`env`, set in its thread), whatever runs next.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        _IN_HANDLER.active = True
        try:
            with invocation_environ(env):
                outcome["result"] = handler(payload, context)
        except BaseException as error:  # handed to the caller's thread, as the runtime reports it
            outcome["error"] = error

    worker = threading.Thread(target=run, name=f"lambda-{context.function_name}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise FunctionTimedOut(context.function_name, timeout)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("result")


def _json_default(value: Any) -> Any:
    # DynamoDB hands out Decimals; the Lambda runtime marshals them as JSON numbers too.
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _as_lambda_json(value: Any) -> Any:
    """What crosses the Lambda boundary is JSON: events and results go through it as in the real runtime."""
    return json.loads(json.dumps(value, default=_json_default))


def load_handler(handler: str) -> Handler:
    """Import `pkg.module.func` once per process (a Lambda container imports it once too)."""
    if handler not in _HANDLERS:
        module_name, _, attribute = handler.rpartition(".")
        try:
            function = getattr(importlib.import_module(module_name), attribute)
        except (ImportError, AttributeError, ValueError) as error:
            raise HandlerImportError(f"cannot import handler {handler!r}: {error}") from error
        _HANDLERS[handler] = function
    return _HANDLERS[handler]


def _queues_in_creation_order(queues: Mapping[str, QueueSpec]) -> list[QueueSpec]:
    """Dead-letter queues before the queues that redrive to them (RedrivePolicy needs the DLQ to exist)."""
    ordered: list[QueueSpec] = []

    def visit(spec: QueueSpec) -> None:
        if spec in ordered:
            return
        if spec.dead_letter_queue is not None:
            visit(queues[spec.dead_letter_queue])
        ordered.append(spec)

    for spec in queues.values():
        visit(spec)
    return ordered


def _port_if_free(port: int) -> int:
    """`port` when it can be bound on 127.0.0.1 right now, else 0 (any free port)."""
    if not port:
        return 0
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return 0
    return port


class LocalStack:
    """The whole template served on 127.0.0.1: `with LocalStack() as stack: stack.invoke(...)`."""

    # Functions cache their boto3 clients (endpoint included) for the life of the process, as in a warm Lambda
    # container; a later stack of the same process reuses moto's port so that those clients still reach it.
    _last_moto_port: ClassVar[int] = 0
    # Called with each stack as it stops, after its functions, pumps and gateway have stopped and while moto still
    # serves its tables and queues: the test suite's privacy check reads every item and DLQ message here.
    before_moto_stops: ClassVar[list[Callable[[LocalStack], None]]] = []

    def __init__(
        self,
        template_path: str | Path = "template.yaml",
        *,
        gateway_port: int | None = 0,
        parameter_overrides: Mapping[str, str] | None = None,
        environ: Mapping[str, str] | None = None,
        sqs_retry_seconds: float = 2.0,
        pump_queues: bool = True,
        partners: Sequence[PartnerSpec] | None = None,
        function_overrides: Mapping[str, str] | None = None,
        env_overrides: Mapping[str, Mapping[str, str]] | None = None,
        stack_name: str = DEFAULT_STACK_NAME,
        run_schedules: bool = False,
        schedule_time_scale: float = 1.0,
        async_retry_seconds: float = 1.0,
        web_root: str | Path | None = None,
        web_port: int = 0,
        bind_host: str = "127.0.0.1",
        timeout_overrides: Mapping[str, float] | None = None,
        concurrency: int | Mapping[str, int] | None = None,
        at_least_once: bool | None = None,
        duplicate_rate: float | None = None,
        late_rate: float | None = None,
        late_seconds: float | None = None,
        redelivery_seed: int | None = None,
    ) -> None:
        """`function_overrides` are set in every function's environment, last; `env_overrides` is shaped like
        `sam local --env-vars` ({"<FunctionId>" or "Parameters": {VAR: value}}) and applies after them.

        `pump_queues` runs the SQS event sources, the event buses' routers and asynchronous invocations in
        background threads; without it nothing runs unseen: `drain` and `drain_events` drive them.
        `run_schedules` starts the schedule timer (schedule time runs `schedule_time_scale` times faster than real
        time); schedules can always be run on demand with `run_schedule`. `async_retry_seconds` is the pause
        before Lambda retries a failed asynchronous invocation (minutes on AWS).

        `web_root` (with a gateway) serves that folder and Swagger UI on a second origin (`web_port`, 0 picks a free
        one), which is added to the template's `CorsAllowedOrigins`: the pages call the API cross-origin, as a
        website would.

        `bind_host` is the address moto, the gateway and the sandboxes listen on (`0.0.0.0` for a container to reach
        them); their URLs name 127.0.0.1 whatever it is.

        `timeout_overrides` replaces functions' `Timeout` (seconds, by logical id): tests make invocations time out
        in a second or two rather than the template's 15 s. An invocation past its Timeout is abandoned and fails
        with `FunctionTimedOut`, as Lambda stops it.

        `concurrency` is how many invocations of one function may run at once: a number for every function, or
        {logical id: number}; a function's ReservedConcurrentExecutions wins over it, and an SQS source's
        ScalingConfig.MaximumConcurrency caps that source's batches. Unset: `DEFAULT_CONCURRENCY` (4).

        `at_least_once` (else HUB_LOCAL_AT_LEAST_ONCE=1) delivers some SQS messages and EventBridge events twice,
        some of them late (`hub_local.redelivery`): `duplicate_rate`, `late_rate` and `late_seconds` shape it,
        `redelivery_seed` (else HUB_LOCAL_SEED) fixes the choices."""
        self.template_path = Path(template_path)
        self.gateway_port = gateway_port
        self.parameter_overrides = dict(parameter_overrides or {})
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.sqs_retry_seconds = sqs_retry_seconds
        self.pump_queues = pump_queues
        self.partner_specs = list(default_partners() if partners is None else partners)
        self.function_overrides = dict(function_overrides or {})
        self.env_overrides = {name: dict(values) for name, values in (env_overrides or {}).items()}
        self.stack_name = stack_name
        self.run_schedules = run_schedules
        self.schedule_time_scale = schedule_time_scale
        self.async_retry_seconds = async_retry_seconds
        self.web_root = None if web_root is None else Path(web_root)
        self.web_port = web_port
        self.bind_host = bind_host
        self.timeout_overrides = dict(timeout_overrides or {})
        self.concurrency = concurrency
        self.redelivery = Redelivery.from_environ(
            self.environ,
            enabled=at_least_once,
            duplicate_rate=duplicate_rate,
            late_rate=late_rate,
            late_seconds=late_seconds,
            seed=redelivery_seed,
        )
        self._slots: ConcurrencySlots | None = None
        self._web: WebServer | None = None
        self._moto: ThreadedMotoServer | None = None
        self._moto_url: str | None = None
        self._session: boto3.session.Session | None = None
        self._client_lock = threading.Lock()
        self._template: LocalTemplate | None = None
        self._gateway: Gateway | None = None
        self._sandboxes: dict[str, Sandbox] = {}
        self._partner_urls: dict[str, str] = {}
        self._function_envs: dict[str, dict[str, str]] = {}
        self._pumps: list[SqsPump] = []
        self._invoker: AsyncInvoker | None = None
        self._routers: list[BusRouter] = []
        self._taps: dict[str, str] = {}
        self._default_bus_rules: set[str] = set()
        self._timer: ScheduleTimer | None = None
        self._events_client: Any = None
        self._events_sqs: Any = None

    # ------------------------------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> Self:
        """Start moto, create the template's resources, start sandboxes, gateway and pumps."""
        if self._moto is not None:
            raise RuntimeError("LocalStack is already started")
        try:
            self._start_moto()
            overrides = dict(self.parameter_overrides)
            if self.web_root is not None and self.gateway_port is not None:
                overrides = self._bind_web(self.web_root, overrides)
            template = self._template = load_template(
                self.template_path,
                parameter_overrides=overrides,
                endpoint_url=self.moto_url,
                stack_name=self.stack_name,
            )
            install()  # os.environ per invocation, before any function can run
            self._slots = ConcurrencySlots(
                {logical_id: self.concurrency_of(logical_id) for logical_id in template.functions}
            )
            self._create_tables(template.tables.values())
            self._create_queues(template.queues)
            self._create_buses(template)
            self._start_partners(template.stage, template.functions.values())
            if self.gateway_port is not None:
                # Bound now, serving later: functions learn the gateway's URL before the first request.
                self._gateway = Gateway(
                    template.http_routes,
                    self.invoke,
                    cors={api.logical_id: api.cors for api in template.http_apis.values()},
                    port=self.gateway_port,
                    put_events=self.put_events,
                    describe=self.describe,
                    invoke_async=self.invoke_async,
                    functions=template.functions,
                    host=self.bind_host,
                )
            self._function_envs = {
                logical_id: self._build_function_env(function) for logical_id, function in template.functions.items()
            }
            self._extend_import_path(template)
            self._start_events(template)
            if self._gateway is not None:
                self._gateway.start()
                if self._web is not None:
                    self._web.start(self._gateway.url)
            self._pumps = self._build_pumps(template)
            if self.pump_queues:
                for pump in self._pumps:
                    pump.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the schedule timer, bus routers, asynchronous invocations, pumps, gateway, sandboxes and moto; safe
        to call twice or after a failed start."""
        self._stop_events()
        for pump in self._pumps:
            pump.stop()
        for pump in self._pumps:
            pump.join(timeout=5)
        self._pumps = []
        if self._web is not None:
            self._web.stop()
            self._web = None
        if self._gateway is not None:
            self._gateway.stop()
            self._gateway = None
        for name, sandbox in self._sandboxes.items():
            try:
                sandbox.stop()
            except Exception as error:  # one sandbox must not keep the others running
                print(f"hub_local: stopping sandbox {name} failed: {error}", file=sys.stderr)
        self._sandboxes = {}
        if self._moto is not None:
            if self._template is not None:
                for hook in LocalStack.before_moto_stops:
                    try:
                        hook(self)
                    except Exception as error:  # a hook must not keep moto running; the hook reports its own way
                        print(f"hub_local: a stop hook failed: {type(error).__name__}: {error}", file=sys.stderr)
            self._remove_event_resources()
            self._moto.stop()
            self._moto = None

    def _bind_web(self, root: Path, overrides: dict[str, str]) -> dict[str, str]:
        """Bind the pages' server; the overrides, with its origins added to CorsAllowedOrigins as on AWS."""
        self._web = WebServer(root, port=self.web_port, docs_dir=swagger_ui_dir())
        declared = load_yaml(self.template_path).get("Parameters", {}).get("CorsAllowedOrigins")
        if declared is None:
            return overrides
        current = overrides.get("CorsAllowedOrigins", str(declared.get("Default", "")))
        origins = [origin for origin in current.split(",") if origin.strip()]
        return overrides | {"CorsAllowedOrigins": ",".join([*origins, *self._web.origins])}

    def _start_moto(self) -> None:
        # moto is slow to import, only start() needs it.
        from hub_local.moto_server import AtomicMotoServer  # noqa: PLC0415

        # Werkzeug logs every moto request at INFO on its own handler unless its level is already set.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        port = _port_if_free(LocalStack._last_moto_port)
        self._moto = AtomicMotoServer(ip_address=self.bind_host, port=port, verbose=False)
        self._moto.start()
        LocalStack._last_moto_port = self._moto.get_host_and_port()[1]
        self._moto_url = f"http://127.0.0.1:{LocalStack._last_moto_port}"
        # The host's AWS profile and config files play no part (a missing AWS_PROFILE would even fail here):
        # these settings are read from nowhere but the defaults given (config name, env vars, default, cast).
        core = botocore.session.Session(
            session_vars={
                "profile": (None, None, None, None),
                "config_file": (None, None, os.devnull, None),
                "credentials_file": (None, None, os.devnull, None),
            }
        )
        self._session = boto3.session.Session(
            aws_access_key_id=DUMMY_CREDENTIAL,
            aws_secret_access_key=DUMMY_CREDENTIAL,
            aws_session_token=DUMMY_CREDENTIAL,
            region_name=REGION,
            botocore_session=core,
        )

    # moto keeps its state per process, not per server: each resource is recreated empty so that a stack never
    # inherits the items or messages of a previous stack of the same process (tests start many).

    def _create_tables(self, tables: Iterable[TableSpec]) -> None:
        dynamodb = self.boto3_client("dynamodb")
        for table in tables:
            with contextlib.suppress(dynamodb.exceptions.ResourceNotFoundException):
                dynamodb.delete_table(TableName=table.name)
            dynamodb.create_table(**self._create_table_arguments(table))
            if table.ttl_attribute:
                dynamodb.update_time_to_live(
                    TableName=table.name,
                    TimeToLiveSpecification={"AttributeName": table.ttl_attribute, "Enabled": True},
                )

    @staticmethod
    def _create_table_arguments(table: TableSpec) -> dict[str, Any]:
        provisioned = table.billing_mode == "PROVISIONED"
        throughput = table.provisioned_throughput or {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        arguments: dict[str, Any] = {
            "TableName": table.name,
            "KeySchema": table.key_schema,
            "AttributeDefinitions": table.attribute_definitions,
            "BillingMode": table.billing_mode,
        }
        if provisioned:
            arguments["ProvisionedThroughput"] = throughput
        if table.global_secondary_indexes:
            arguments["GlobalSecondaryIndexes"] = [
                {key: index[key] for key in ("IndexName", "KeySchema", "Projection") if key in index}
                | ({"ProvisionedThroughput": index.get("ProvisionedThroughput", throughput)} if provisioned else {})
                for index in table.global_secondary_indexes
            ]
        if table.local_secondary_indexes:
            arguments["LocalSecondaryIndexes"] = [
                {key: index[key] for key in ("IndexName", "KeySchema", "Projection") if key in index}
                for index in table.local_secondary_indexes
            ]
        if table.stream_specification and table.stream_specification.get("StreamViewType"):
            arguments["StreamSpecification"] = {
                "StreamEnabled": True,
                "StreamViewType": table.stream_specification["StreamViewType"],
            }
        return arguments

    def _create_queues(self, queues: Mapping[str, QueueSpec]) -> None:
        sqs = self.boto3_client("sqs")
        for queue in _queues_in_creation_order(queues):
            with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
                sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=queue.name)["QueueUrl"])
            created = sqs.create_queue(QueueName=queue.name, Attributes=queue.attributes)
            if created["QueueUrl"] != queue.url:  # pragma: no cover - would be a moto URL scheme change
                raise RuntimeError(f"moto created {queue.logical_id} at {created['QueueUrl']}, not {queue.url}")

    def _create_buses(self, template: LocalTemplate) -> None:
        events = self.boto3_client("events")
        for bus in template.buses.values():
            if bus.name == "default":
                continue
            # moto deletes a missing bus silently; a real error here would be reported by create_event_bus.
            with contextlib.suppress(ClientError):
                events.delete_event_bus(Name=bus.name)
            events.create_event_bus(Name=bus.name)

    def _start_partners(self, stage: str, functions: Iterable[FunctionSpec]) -> None:
        ssm = self.boto3_client("ssm")
        # A partner no function points at is left alone: no sandbox to start, no secret to seed (seeding it
        # could overwrite the value another stack of the same process gave it, moto's state being shared).
        wanted = {name for function in functions for name in function.environment}
        for suffix, value in hub_secret_values(self.environ).items():
            ssm.put_parameter(
                Name=secret_parameter_name(stage, suffix), Value=value, Type="SecureString", Overwrite=True
            )
        for spec in self.partner_specs:
            if spec.base_url_env not in wanted:
                continue
            values = spec.secret_values(self.environ)
            settings = spec.setting_values(self.environ, (function.environment for function in functions))
            for suffix, value in values.items():
                ssm.put_parameter(
                    Name=secret_parameter_name(stage, suffix), Value=value, Type="SecureString", Overwrite=True
                )
            override = self.environ.get(spec.base_url_env)
            if override:
                self._partner_urls[spec.name] = override
                continue
            sandbox = spec.sandbox_factory(values | settings)
            sandbox.bind_host = self.bind_host
            sandbox.start()
            self._sandboxes[spec.name] = sandbox
            self._partner_urls[spec.name] = sandbox.url

    def _build_function_env(self, function: FunctionSpec) -> dict[str, str]:
        env = dict(function.environment)
        for spec in self.partner_specs:
            if spec.base_url_env in env:
                env[spec.base_url_env] = self._partner_urls[spec.name]
            # A setting given to the stack (APPSMILES_APP_ID=... make run) reaches the functions and the sandbox.
            env |= {name: self.environ[name] for name in spec.settings if name in env and self.environ.get(name)}
        env |= {
            "AWS_ENDPOINT_URL": self.moto_url,
            "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIAL,
            "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIAL,
            "AWS_SESSION_TOKEN": DUMMY_CREDENTIAL,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            # No profile, no instance metadata: nothing can lead boto3 to a real account.
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_LAMBDA_FUNCTION_NAME": function.logical_id,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function.logical_id}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"local/[$LATEST]{function.logical_id}",
            "_HANDLER": function.handler or "",
            "TZ": ":UTC",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "LOCAL_STACK": "true",
            "LOCAL_MOTO_URL": self.moto_url,
        }
        if self._gateway is not None:
            env["LOCAL_STACK_URL"] = self._gateway.url
        env |= self.function_overrides
        env |= self.env_overrides.get("Parameters", {}) | self.env_overrides.get(function.logical_id, {})
        return env

    @staticmethod
    def _extend_import_path(template: LocalTemplate) -> None:
        # Appended, not prepended: an explicit PYTHONPATH (the Makefile's) keeps precedence.
        for function in template.functions.values():
            for directory in function.code_dirs:
                if directory.is_dir() and str(directory) not in sys.path:
                    sys.path.append(str(directory))

    def _build_pumps(self, template: LocalTemplate) -> list[SqsPump]:
        sqs = self.boto3_client("sqs")
        return [
            SqsPump(
                function=function.logical_id,
                source=source,
                queue=template.queues[source.queue],
                client=sqs,
                invoke=self.invoke,
                retry_seconds=self.sqs_retry_seconds,
                pollers=min(source.maximum_concurrency or limit, limit),
                redelivery=self.redelivery,
            )
            for function in template.functions.values()
            for limit in [self.concurrency_of(function.logical_id)]
            for source in function.sqs_sources
            if source.enabled
        ]

    # ------------------------------------------------------------------------------------------ events

    def _start_events(self, template: LocalTemplate) -> None:
        """Register the template's rules in moto, tap every bus that has rules, prepare (and, when
        `pump_queues`, start) the routers and asynchronous invocations; start the schedule timer if asked."""
        for warning in template.warnings:
            print(f"hub_local: {warning}", file=sys.stderr)
        events = self._events_client = self.boto3_client("events")
        sqs = self._events_sqs = self.boto3_client("sqs")
        self._invoker = AsyncInvoker(
            invoke=self.invoke,
            functions=template.functions,
            queues=template.queues,
            sqs=sqs,
            events=events,
            retry_seconds=self.async_retry_seconds,
            workers=_ASYNC_WORKERS,
        )
        for bus in dict.fromkeys(rule.bus for rule in template.event_rules):
            rules = [rule for rule in template.event_rules if rule.bus == bus]
            for rule in rules:
                self._register_rule(
                    rule.name, bus, rule.enabled, rule.description, EventPattern=json.dumps(rule.pattern)
                )
            self._taps[bus] = self._create_tap(bus)
            self._routers.append(
                BusRouter(bus=bus, queue_url=self._taps[bus], rules=rules, sqs=sqs, deliver=self._deliver_rule_target)
            )
        for schedule in template.schedules:
            if schedule.kind == "Schedule":  # an EventBridge scheduled rule (ScheduleV2 is EventBridge Scheduler)
                self._register_rule(
                    schedule.name, "default", schedule.enabled, None, ScheduleExpression=schedule.expression.text
                )
        if self.pump_queues:
            self._invoker.start()
            for router in self._routers:
                router.start()
        if self.run_schedules:
            self._timer = ScheduleTimer(template.schedules, self._fire_schedule, time_scale=self.schedule_time_scale)
            self._timer.start()

    def _register_rule(self, name: str, bus: str, enabled: bool, description: str | None, **rule: str) -> None:
        """The rule as moto lists it (pattern or schedule, state), without targets: delivery is the router's."""
        if description:
            rule["Description"] = description
        self._events_client.put_rule(Name=name, EventBusName=bus, State="ENABLED" if enabled else "DISABLED", **rule)
        if bus == "default":  # the default bus outlives the stack: what it holds is removed at stop
            self._default_bus_rules.add(name)

    def _create_tap(self, bus: str) -> str:
        """The catch-all rule of `bus` and its queue, which receives every event put on the bus, complete."""
        events, sqs = self._events_client, self._events_sqs
        self._remove_tap(bus)  # a stack of this process that did not stop may have left it
        name = tap_queue_name(bus)
        url: str = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
        events.put_rule(
            Name=TAP_RULE_NAME,
            EventBusName=bus,
            EventPattern=json.dumps(TAP_PATTERN),
            State="ENABLED",
            Description="hub_local: every event of the bus, for the local router",
        )
        events.put_targets(
            Rule=TAP_RULE_NAME,
            EventBusName=bus,
            Targets=[
                {
                    "Id": TAP_TARGET_ID,
                    "Arn": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}",
                    "InputTransformer": {"InputTemplate": TAP_INPUT_TEMPLATE},
                }
            ],
        )
        return url

    def _remove_tap(self, bus: str) -> None:
        events, sqs = self._events_client, self._events_sqs
        with contextlib.suppress(ClientError):
            events.remove_targets(Rule=TAP_RULE_NAME, EventBusName=bus, Ids=[TAP_TARGET_ID])
        with contextlib.suppress(ClientError):
            events.delete_rule(Name=TAP_RULE_NAME, EventBusName=bus)
        with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=tap_queue_name(bus))["QueueUrl"])

    def _remove_event_resources(self) -> None:
        """Taps and default-bus rules leave moto with the stack (its state outlives the server in this process)."""
        if self._events_client is None:
            return
        try:
            for bus in self._taps:
                self._remove_tap(bus)
            for name in self._default_bus_rules:
                with contextlib.suppress(ClientError):
                    self._events_client.delete_rule(Name=name, EventBusName="default")
        except Exception as error:  # moto may already be unusable after a failed start
            print(f"hub_local: removing the event taps failed: {error}", file=sys.stderr)
        self._taps = {}
        self._default_bus_rules = set()
        self._events_client = self._events_sqs = None

    def _stop_events(self) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer.join(timeout=5)
            self._timer = None
        for router in self._routers:
            router.stop()
        for router in self._routers:
            router.join(timeout=5)
        self._routers = []
        if self._invoker is not None:
            self._invoker.stop()
            self._invoker.join(timeout=30)
            self._invoker = None

    def _deliver(self, target: RuleTarget, text: str, event_id: str | None, origin: str, delay: float = 0.0) -> None:
        """Hand what a rule or schedule sends to its target: an asynchronous invocation, or SendMessage (`delay`
        seconds later, for a late duplicate)."""
        if target.function is not None:
            self._require_invoker().submit(target.function, lambda_payload(text), delay=delay)
            return
        assert target.queue is not None
        queues = self.template.queues
        try:
            send_to_queue(
                self._events_sqs,
                queues[target.queue],
                text,
                group_id=target.message_group_id,
                event_id=event_id,
                delay_seconds=max(0, int(-(-delay // 1))),
            )
        except Exception as error:
            if target.dead_letter_queue is None:
                raise
            # EventBridge's own dead-letter queue: the event, and why it could not be delivered.
            self._events_sqs.send_message(
                QueueUrl=queues[target.dead_letter_queue].url,
                MessageBody=text,
                MessageAttributes={
                    "ERROR_CODE": {"DataType": "String", "StringValue": type(error).__name__},
                    "ERROR_MESSAGE": {"DataType": "String", "StringValue": str(error)[:1024] or origin},
                    "RULE_ARN": {"DataType": "String", "StringValue": origin},
                    "TARGET_ARN": {"DataType": "String", "StringValue": target.arn},
                },
            )

    def _deliver_rule_target(self, rule: EventRuleSpec, target: RuleTarget, event: dict[str, Any]) -> None:
        text = render_target_input(target, event, rule.name, rule.arn)
        self._deliver(target, text, event.get("id"), rule.arn)
        # At-least-once: EventBridge may deliver the same event (same id) to a target again, now or later.
        again = self.redelivery.repeat(f"events:{rule.name}:{target.describe}")
        if again is not None:
            self._deliver(target, text, event.get("id"), rule.arn, delay=again)

    def _fire_schedule(self, schedule: ScheduleSpec, when: datetime.datetime) -> None:
        self._deliver(schedule.target, scheduled_event_text(schedule, when), None, schedule.arn)

    def _require_invoker(self) -> AsyncInvoker:
        if self._invoker is None:
            raise RuntimeError("LocalStack is not started")
        return self._invoker

    def put_events(self, entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """PutEvents through moto, as a function's boto3 does it; returns moto's answer (FailedEntryCount, Entries).

        Detail may be a mapping (sent as JSON), Time an ISO string or epoch seconds, EventBusName a bus name or
        a bus's logical id; without it, the template's only bus (or "default" when it declares none). More than
        10 entries are sent 10 at a time.
        """
        template = self.template
        names = {bus.logical_id: bus.name for bus in template.buses.values()}
        buses = list(dict.fromkeys(names.values()))
        default_bus = buses[0] if len(buses) == 1 else "default" if not buses else None
        normal = [normalise_entry(entry, default_bus, names) for entry in entries]
        if not normal:
            raise ValueError("put_events takes at least one entry")
        events = self._events_client or self.boto3_client("events")
        answer: dict[str, Any] = {"FailedEntryCount": 0, "Entries": []}
        for start in range(0, len(normal), PUT_EVENTS_LIMIT):
            response = events.put_events(Entries=normal[start : start + PUT_EVENTS_LIMIT])
            answer["FailedEntryCount"] += response.get("FailedEntryCount", 0)
            answer["Entries"].extend(response.get("Entries", []))
        return answer

    def drain_events(self, timeout: float = 10.0) -> bool:
        """Wait until every event put so far (by anyone: tests, the gateway, functions) has been routed and every
        asynchronous invocation it caused, retries and destinations included, has finished; False on timeout.
        Without `pump_queues`, this is what routes and invokes (in the calling thread)."""
        invoker = self._require_invoker()
        deadline = time.monotonic() + timeout
        while True:
            worked = 0
            if not self.pump_queues:
                worked = sum(router.cycle() for router in self._routers) + invoker.run_due()
            if not worked and self._events_quiet(invoker):
                return True
            if time.monotonic() >= deadline:
                return False
            if not worked:
                time.sleep(0.02)

    def _events_quiet(self, invoker: AsyncInvoker) -> bool:
        """No event in a tap or being routed, no invocation queued or running, and nothing came and went between
        the checks (the activity counters)."""

        def activity() -> int:
            return invoker.activity + sum(router.activity for router in self._routers)

        def taps_quiet() -> bool:
            return not any(router.busy for router in self._routers) and all(
                self._queue_is_empty(self._events_sqs, url) for url in self._taps.values()
            )

        before = activity()
        return taps_quiet() and invoker.pending == 0 and taps_quiet() and activity() == before

    def run_schedule(self, function_logical_id: str, event_name: str | None = None) -> Any:
        """Invoke a function now, synchronously, with what its schedule sends (the Scheduled Event, or the
        schedule's Input); returns the function's result. `event_name` picks one of several schedules."""
        self.function(function_logical_id)
        found = [
            schedule
            for schedule in self.template.schedules
            if schedule.function == function_logical_id
            and (event_name is None or event_name in (schedule.event_name, schedule.logical_id, schedule.name))
        ]
        if not found:
            which = f" {event_name!r}" if event_name else ""
            raise UnknownResourceError(f"{function_logical_id} has no schedule{which}")
        if len(found) > 1:
            names = ", ".join(str(schedule.event_name) for schedule in found)
            raise ValueError(f"{function_logical_id} has several schedules ({names}): name one with event_name")
        text = scheduled_event_text(found[0], datetime.datetime.now(datetime.UTC))
        return self.invoke(function_logical_id, lambda_payload(text))

    # ------------------------------------------------------------------------------------------ accessors

    @property
    def template(self) -> LocalTemplate:
        if self._template is None:
            raise RuntimeError("LocalStack is not started")
        return self._template

    @property
    def functions(self) -> Mapping[str, FunctionSpec]:
        return self.template.functions

    @property
    def moto_url(self) -> str:
        if self._moto_url is None or self._moto is None:
            raise RuntimeError("LocalStack is not started")
        return self._moto_url

    @property
    def gateway_url(self) -> str | None:
        """Base URL of the HTTP gateway; None when started with gateway_port=None."""
        return None if self._gateway is None else self._gateway.url

    @property
    def web_url(self) -> str | None:
        """Base URL of the pages' server; None when not serving `web_root`."""
        return None if self._web is None else self._web.url

    @property
    def web_pages(self) -> dict[str, str]:
        """The pages served, by name (for the run banner)."""
        return {} if self._web is None else self._web.pages()

    @property
    def routes(self) -> list[dict[str, str]]:
        """The routes the gateway serves (as GET /_local/routes lists them)."""
        return [] if self._gateway is None else self._gateway.route_list()

    @property
    def event_rules(self) -> list[EventRuleSpec]:
        """The template's EventBridge rules (AWS::Events::Rule and functions' EventBridgeRule events)."""
        return list(self.template.event_rules)

    @property
    def schedules(self) -> list[ScheduleSpec]:
        """The template's schedules (Schedule, ScheduleV2 events, AWS::Events::Rule with a ScheduleExpression)."""
        return list(self.template.schedules)

    @property
    def schedule_timer(self) -> ScheduleTimer | None:
        """The running timer (run_schedules=True), else None."""
        return self._timer

    @property
    def pumps(self) -> list[SqsPump]:
        """Every SQS event source of every function (running threads only when pump_queues)."""
        return list(self._pumps)

    @property
    def sandboxes(self) -> dict[str, Sandbox]:
        return dict(self._sandboxes)

    @property
    def partner_urls(self) -> dict[str, str]:
        return dict(self._partner_urls)

    def physical(self, logical_id: str) -> str:
        """Local physical value of a resource: table name, queue URL, bus name..."""
        try:
            return str(self.template.physical(logical_id))
        except KeyError:
            raise UnknownResourceError(f"{logical_id} is not a resource of {self.template_path}") from None

    def function(self, logical_id: str) -> FunctionSpec:
        try:
            return self.template.functions[logical_id]
        except KeyError:
            known = ", ".join(sorted(self.template.functions)) or "none"
            raise UnknownResourceError(f"no function {logical_id!r} in {self.template_path} (known: {known})") from None

    def function_env(self, logical_id: str) -> dict[str, str]:
        """The variables a function sees on top of the (AWS-free) host environment."""
        self.function(logical_id)
        return dict(self._function_envs[logical_id])

    def set_function_env(self, logical_id: str, values: Mapping[str, str]) -> None:
        """Change a running function's variables, as a configuration update would (its next invocation sees them).

        On AWS such an update starts new containers; callers here must forget what the old "container" cached
        (`hub_core.caches.reset_all`), which this runner, knowing nothing of the functions' code, cannot do.
        """
        self.function(logical_id)
        self._function_envs[logical_id] |= dict(values)

    def boto3_client(self, service: str) -> Any:
        """A boto3 client bound to the stack's moto server."""
        if self._session is None:
            raise RuntimeError("LocalStack is not started")
        with self._client_lock:  # boto3 sessions are not thread-safe
            return self._session.client(service, endpoint_url=self.moto_url)  # type: ignore[call-overload]

    # ------------------------------------------------------------------------------------------ invocation

    def concurrency_of(self, logical_id: str) -> int:
        """How many invocations of the function may run at once (ReservedConcurrentExecutions, else the
        `concurrency` given, else DEFAULT_CONCURRENCY)."""
        function = self.function(logical_id)
        if function.reserved_concurrency is not None:
            return max(1, function.reserved_concurrency)
        if isinstance(self.concurrency, Mapping):
            return max(1, int(self.concurrency.get(logical_id, DEFAULT_CONCURRENCY)))
        return max(1, DEFAULT_CONCURRENCY if self.concurrency is None else int(self.concurrency))

    def _require_slots(self) -> ConcurrencySlots:
        if self._slots is None:
            raise RuntimeError("LocalStack is not started")
        return self._slots

    @property
    def slots(self) -> ConcurrencySlots:
        """Each function's concurrency: its limit, what runs now, the peak so far."""
        return self._require_slots()

    def timeout_of(self, logical_id: str) -> float:
        """The function's Timeout in seconds (the template's, unless `timeout_overrides` names it)."""
        return float(self.timeout_overrides.get(logical_id, self.function(logical_id).timeout))

    def invoke(self, logical_id: str, event: Any, *, request_id: str | None = None) -> Any:
        """Call a function's handler in this process, in its own environment, as Lambda would (`request_id` is the
        context's aws_request_id: Lambda keeps it across the retries of an asynchronous invocation).

        Past the function's Timeout the invocation is abandoned and `FunctionTimedOut` raised: the gateway answers
        HTTP API's 503, an SQS batch comes back whole, an asynchronous event is retried, then sent to OnFailure."""
        function = self.function(logical_id)
        timeout = self.timeout_of(logical_id)
        if not function.handler:
            raise HandlerImportError(f"{logical_id} has no Handler (only zip Python functions run locally)")
        payload = _as_lambda_json(event)
        declared = {name for function_env in self._function_envs.values() for name in function_env}
        host = {
            name: value
            for name, value in host_environ().items()
            if name not in declared and not name.startswith(_HOST_PREFIXES_DROPPED)
        }
        env = host | self._function_envs[logical_id]
        # A handler that invokes another function in-process runs it inline, in its own thread and under its
        # caller's timer; it takes no slot (its caller holds one, and a slot of the same function would deadlock).
        nested = getattr(_IN_HANDLER, "active", False)
        with contextlib.nullcontext() if nested else self._require_slots().slot(logical_id):
            try:
                handler = load_handler(function.handler)
                context = LambdaContext(function, request_id, timeout)
                if nested:
                    with invocation_environ(env):
                        result = handler(payload, context)
                else:
                    result = _run_until(handler, payload, context, timeout, env)
            except FunctionTimedOut:
                print(f"hub_local: {logical_id} timed out after {timeout:g} s; its result is ignored", file=sys.stderr)
                raise
        return _as_lambda_json(result)

    def invoke_async(self, logical_id: str, event: Any) -> str:
        """Lambda's InvocationType=Event: queued with its retries and destinations; returns the request id."""
        self.function(logical_id)
        return self._require_invoker().submit(logical_id, _as_lambda_json(event))

    def describe(self) -> dict[str, Any]:
        """What a tool needs to act on this stack from another process (GET /_local/stack): endpoints, stage, and
        each resource as CloudFormation's ListStackResources names it, so one code path serves AWS and local."""
        template = self.template
        resources = [
            {
                "LogicalResourceId": logical_id,
                "PhysicalResourceId": str(template.physical(logical_id)),
                "ResourceType": resource.get("Type", ""),
            }
            for logical_id, resource in template.resources.items()
            if logical_id in template.resolver.physical
        ]
        gateway = self.gateway_url
        return {
            "stackName": self.stack_name,
            "stage": template.stage,
            "region": REGION,
            "accountId": ACCOUNT_ID,
            "template": str(self.template_path.resolve()),
            "motoUrl": self.moto_url,
            "gatewayUrl": gateway,
            "lambdaUrl": None if gateway is None else gateway + LAMBDA_PATH,
            # Each partner's base URL, and whether it is a sandbox of this stack (`hub sandbox` drives those).
            "partners": {
                name: {"url": url, "sandbox": name in self._sandboxes}
                for name, url in sorted(self._partner_urls.items())
            },
            "resources": resources,
            # What `hub partners check` reads on AWS with GetFunctionConfiguration: each function's variables
            # (no secret values: those live in SSM), without the local AWS plumbing.
            "functionEnvironments": {
                logical_id: {name: value for name, value in env.items() if not name.startswith("AWS_")}
                for logical_id, env in self._function_envs.items()
            },
        }

    def drain(self, queue_logical_id: str | None = None, timeout: float = 10.0) -> bool:
        """Run pump cycles until the queue(s) hold no visible, delayed or in-flight message; False on timeout."""
        pumps = self._pumps
        if queue_logical_id is not None:
            if queue_logical_id not in self.template.queues:
                raise UnknownResourceError(f"{queue_logical_id} is not a queue of {self.template_path}")
            pumps = [pump for pump in pumps if pump.queue.logical_id == queue_logical_id]
            if not pumps:
                raise ValueError(f"no function consumes {queue_logical_id}: nothing would drain it")
        deadline = time.monotonic() + timeout
        sqs = self.boto3_client("sqs")
        while True:
            if all(self._queue_is_empty(sqs, pump.queue.url) for pump in pumps):
                return True
            if time.monotonic() >= deadline:
                return False
            if not sum(pump.cycle(wait_seconds=0) for pump in pumps):
                time.sleep(0.05)

    @staticmethod
    def _queue_is_empty(sqs: Any, url: str) -> bool:
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return all(int(count) == 0 for count in attributes.values())
