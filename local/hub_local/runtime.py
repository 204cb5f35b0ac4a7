"""The Lambda runtime of the local stack: handlers imported once, each invocation in its own environment and thread."""

from __future__ import annotations

import contextlib
import datetime
import decimal
import importlib
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from hub_local.cfn import ACCOUNT_ID, REGION
from hub_local.concurrency import ConcurrencySlots, host_environ, invocation_environ
from hub_local.limits import FunctionTimedOut
from hub_local.specs import FunctionSpec
from hub_local.template import LocalTemplate

if TYPE_CHECKING:
    from hub_local.partners import PartnerSpec

Handler = Callable[[Any, Any], Any]

DUMMY_CREDENTIAL: Final = "testing"
_HANDLERS: dict[str, Handler] = {}
# Variables of the host that must not leak into a function (they could point boto3 at a real account).
_HOST_PREFIXES_DROPPED: Final = ("AWS_", "_X_AMZN_", "_HANDLER", "LAMBDA_")


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


def as_lambda_json(value: Any) -> Any:
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


def invoke_function(
    function: FunctionSpec,
    event: Any,
    *,
    envs: Mapping[str, Mapping[str, str]],
    timeout: float,
    slots: ConcurrencySlots,
    request_id: str | None = None,
) -> Any:
    """Run `function`'s handler on `event` as Lambda would: in its variables (`envs` holds every function's, to
    hide the others' from it), held to `timeout` and to one of its concurrency `slots`."""
    logical_id = function.logical_id
    if not function.handler:
        raise HandlerImportError(f"{logical_id} has no Handler (only zip Python functions run locally)")
    payload = as_lambda_json(event)
    declared = {name for function_env in envs.values() for name in function_env}
    host = {
        name: value
        for name, value in host_environ().items()
        if name not in declared and not name.startswith(_HOST_PREFIXES_DROPPED)
    }
    env = host | dict(envs[logical_id])
    # A handler that invokes another function in-process runs it inline, in its own thread and under its
    # caller's timer; it takes no slot (its caller holds one, and a slot of the same function would deadlock).
    nested = getattr(_IN_HANDLER, "active", False)
    with contextlib.nullcontext() if nested else slots.slot(logical_id):
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
    return as_lambda_json(result)


def function_environment(
    function: FunctionSpec,
    *,
    moto_url: str,
    gateway_url: str | None,
    partner_specs: Iterable[PartnerSpec],
    partner_urls: Mapping[str, str],
    environ: Mapping[str, str],
    function_overrides: Mapping[str, str],
    env_overrides: Mapping[str, Mapping[str, str]],
) -> dict[str, str]:
    """The variables a function sees on top of the (AWS-free) host environment."""
    env = dict(function.environment)
    for spec in partner_specs:
        if spec.base_url_env in env:
            env[spec.base_url_env] = partner_urls[spec.name]
        # A setting given to the stack (APPSMILES_APP_ID=... make run) reaches the functions and the sandbox.
        env |= {name: environ[name] for name in spec.settings if name in env and environ.get(name)}
    env |= {
        "AWS_ENDPOINT_URL": moto_url,
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
        "LOCAL_MOTO_URL": moto_url,
    }
    if gateway_url is not None:
        env["LOCAL_STACK_URL"] = gateway_url
    env |= function_overrides
    env |= {**env_overrides.get("Parameters", {}), **env_overrides.get(function.logical_id, {})}
    return env


def extend_import_path(template: LocalTemplate) -> None:
    """Put the functions' code directories on sys.path, where their handlers are imported from."""
    # Appended, not prepended: an explicit PYTHONPATH (the Makefile's) keeps precedence.
    for function in template.functions.values():
        for directory in function.code_dirs:
            if directory.is_dir() and str(directory) not in sys.path:
                sys.path.append(str(directory))
