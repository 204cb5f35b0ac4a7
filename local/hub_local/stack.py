"""LocalStack: moto, the template's resources, partner sandboxes, gateway and queue pumps in one process."""

from __future__ import annotations

import datetime
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import boto3

from hub_local.cfn import DEFAULT_STACK_NAME
from hub_local.concurrency import ConcurrencySlots, concurrency_limit, install
from hub_local.event_routing import EventRouting, put_events, schedule_for
from hub_local.event_targets import lambda_payload
from hub_local.gateway import Gateway
from hub_local.partners import PartnerSpec, Sandbox, default_partners
from hub_local.redelivery import Redelivery
from hub_local.resources import (
    UnknownResourceError,
    aws_session,
    create_resources,
    describe_stack,
    port_if_free,
    start_moto,
    start_partners,
    stop_sandboxes,
)
from hub_local.runtime import (
    as_lambda_json,
    extend_import_path,
    function_environment,
    invoke_function,
)
from hub_local.schedules import ScheduleTimer, scheduled_event_text
from hub_local.specs import EventRuleSpec, FunctionSpec, ScheduleSpec
from hub_local.sqs_pump import SqsPump, build_pumps, drain_pumps, pumps_of, stop_pumps
from hub_local.template import LocalTemplate, load_template
from hub_local.web import WebServer, swagger_ui_dir, with_page_origins

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer


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
        self._events: EventRouting | None = None

    # ------------------------------------------------------------------------------------------ lifecycle

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> Self:
        """Start moto, create the template's resources, start sandboxes, gateway and pumps."""
        if self._moto is not None:
            raise RuntimeError("LocalStack is already started")
        try:
            self._start_moto()
            overrides = dict(self.parameter_overrides)
            if self.web_root is not None and self.gateway_port is not None:
                # Bound now, serving once the gateway is: its origins join CorsAllowedOrigins, as on AWS.
                self._web = WebServer(self.web_root, port=self.web_port, docs_dir=swagger_ui_dir())
                overrides = with_page_origins(self.template_path, overrides, self._web.origins)
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
            create_resources(self.boto3_client, template)
            start_partners(
                self.boto3_client,
                stage=template.stage,
                functions=template.functions.values(),
                partner_specs=self.partner_specs,
                environ=self.environ,
                bind_host=self.bind_host,
                sandboxes=self._sandboxes,
                urls=self._partner_urls,
            )
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
            extend_import_path(template)
            self._events = EventRouting(
                template,
                self.boto3_client,
                self.invoke,
                redelivery=self.redelivery,
                pump_queues=self.pump_queues,
                run_schedules=self.run_schedules,
                schedule_time_scale=self.schedule_time_scale,
                async_retry_seconds=self.async_retry_seconds,
            )
            self._events.start()
            if self._gateway is not None:
                self._gateway.start()
                if self._web is not None:
                    self._web.start(self._gateway.url)
            self._pumps = build_pumps(
                template,
                self.boto3_client("sqs"),
                self.invoke,
                concurrency_of=self.concurrency_of,
                retry_seconds=self.sqs_retry_seconds,
                redelivery=self.redelivery,
            )
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
        if self._events is not None:
            self._events.stop()
        stop_pumps(self._pumps)
        self._pumps = []
        if self._web is not None:
            self._web.stop()
            self._web = None
        if self._gateway is not None:
            self._gateway.stop()
            self._gateway = None
        stop_sandboxes(self._sandboxes)
        self._sandboxes = {}
        if self._moto is not None:
            if self._template is not None:
                for hook in LocalStack.before_moto_stops:
                    try:
                        hook(self)
                    except Exception as error:  # a hook must not keep moto running; the hook reports its own way
                        print(f"hub_local: a stop hook failed: {type(error).__name__}: {error}", file=sys.stderr)
            if self._events is not None:
                self._events.remove_resources()
                self._events = None
            self._moto.stop()
            self._moto = None

    def _start_moto(self) -> None:
        self._moto = start_moto(self.bind_host, port_if_free(LocalStack._last_moto_port))
        LocalStack._last_moto_port = self._moto.get_host_and_port()[1]
        self._moto_url = f"http://127.0.0.1:{LocalStack._last_moto_port}"
        self._session = aws_session()

    def _build_function_env(self, function: FunctionSpec) -> dict[str, str]:
        return function_environment(
            function,
            moto_url=self.moto_url,
            gateway_url=None if self._gateway is None else self._gateway.url,
            partner_specs=self.partner_specs,
            partner_urls=self._partner_urls,
            environ=self.environ,
            function_overrides=self.function_overrides,
            env_overrides=self.env_overrides,
        )

    # ------------------------------------------------------------------------------------------ events

    def _require_events(self) -> EventRouting:
        if self._events is None:
            raise RuntimeError("LocalStack is not started")
        return self._events

    def put_events(self, entries: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """PutEvents through moto, as a function's boto3 does it; returns moto's answer (FailedEntryCount, Entries).

        Detail may be a mapping (sent as JSON), Time an ISO string or epoch seconds, EventBusName a bus name or
        a bus's logical id; without it, the template's only bus (or "default" when it declares none). More than
        10 entries are sent 10 at a time.
        """
        template = self.template
        client = None if self._events is None else self._events.client
        return put_events(template, lambda: client or self.boto3_client("events"), entries)

    def drain_events(self, timeout: float = 10.0) -> bool:
        """Wait until every event put so far (by anyone: tests, the gateway, functions) has been routed and every
        asynchronous invocation it caused, retries and destinations included, has finished; False on timeout.
        Without `pump_queues`, this is what routes and invokes (in the calling thread)."""
        return self._require_events().drain_events(timeout)

    def run_schedule(self, function_logical_id: str, event_name: str | None = None) -> Any:
        """Invoke a function now, synchronously, with what its schedule sends (the Scheduled Event, or the
        schedule's Input); returns the function's result. `event_name` picks one of several schedules."""
        self.function(function_logical_id)
        schedule = schedule_for(self.template, function_logical_id, event_name)
        text = scheduled_event_text(schedule, datetime.datetime.now(datetime.UTC))
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
        return None if self._events is None else self._events.timer

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
        return concurrency_limit(self.function(logical_id), self.concurrency)

    @property
    def slots(self) -> ConcurrencySlots:
        """Each function's concurrency: its limit, what runs now, the peak so far."""
        if self._slots is None:
            raise RuntimeError("LocalStack is not started")
        return self._slots

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
        return invoke_function(
            function,
            event,
            envs=self._function_envs,
            timeout=timeout,
            slots=self.slots,
            request_id=request_id,
        )

    def invoke_async(self, logical_id: str, event: Any) -> str:
        """Lambda's InvocationType=Event: queued with its retries and destinations; returns the request id."""
        self.function(logical_id)
        return self._require_events().require_invoker().submit(logical_id, as_lambda_json(event))

    def describe(self) -> dict[str, Any]:
        """What a tool needs to act on this stack from another process (GET /_local/stack): endpoints, stage, and
        each resource as CloudFormation's ListStackResources names it, so one code path serves AWS and local."""
        return describe_stack(
            self.template,
            stack_name=self.stack_name,
            template_path=self.template_path,
            moto_url=self.moto_url,
            gateway_url=self.gateway_url,
            partner_urls=self._partner_urls,
            sandboxes=self._sandboxes,
            function_envs=self._function_envs,
        )

    def drain(self, queue_logical_id: str | None = None, timeout: float = 10.0) -> bool:
        """Run pump cycles until the queue(s) hold no visible, delayed or in-flight message; False on timeout."""
        pumps = pumps_of(self._pumps, queue_logical_id, self.template, self.template_path)
        return drain_pumps(pumps, self.boto3_client("sqs"), timeout)
