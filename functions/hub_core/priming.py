"""SnapStart priming: before the snapshot, build what is safe and serve a dry request; after restore, renew the rest.

Each function's app.py registers itself in one line. On Lambda's python3.13 runtime with SnapStart
(template.yaml's EnableSnapStart) the runtime calls the hooks: before the snapshot, the AWS clients are built
(botocore loads and parses its service models, the largest part of a first request) and a dry request that the
function rejects at validation runs through the whole handler (Powertools' resolver, pydantic, the error
responses), touching no AWS service and no partner. After restore, whatever must be unique or fresh per execution
environment is forgotten and built again on first use: partner HTTP sessions and tokens, cached secrets and
settings, and Python's random state. The AWS clients are kept: they opened no connection before the snapshot, and
their credentials come from Lambda's refreshable container provider.

Elsewhere (`snapshot_restore_py` exists only in Lambda's python3.13 runtime) registering does nothing but record
the function, so that the benchmark can run the same two steps locally.
"""

from __future__ import annotations

import json
import random
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hub_core.caches import reset_all

# The SDK (boto3, botocore's Stubber, Powertools' parameters) is imported where it is used, not here: every app.py
# imports this module, and API docs, which uses no AWS service, would otherwise load boto3 on its cold start for
# nothing (about 230 ms of its import here). The functions that use AWS have imported it already.

try:  # Lambda's python3.13 runtime only
    from snapshot_restore_py import (  # type: ignore[import-not-found]
        register_after_restore,
        register_before_snapshot,
    )
except ImportError:
    register_after_restore = register_before_snapshot = None

Handler = Callable[[Any, Any], Any]
DEFAULT_SERVICES: tuple[str, ...] = ("dynamodb", "sqs", "events", "ssm")


_KEY = {"pk": {"S": "priming"}}
# One call of each operation the hub makes, with parameters botocore's validation accepts. A Stubber answers them,
# so nothing leaves the process, but botocore has by then built what it builds on an operation's first use: its
# model, request serializer, endpoint rules and response parser (the rest of a first request's own time).
REHEARSALS: dict[str, tuple[tuple[str, dict[str, Any]], ...]] = {
    "dynamodb": (
        ("get_item", {"TableName": "priming", "Key": _KEY}),
        ("put_item", {"TableName": "priming", "Item": _KEY}),
        ("update_item", {"TableName": "priming", "Key": _KEY}),
        ("delete_item", {"TableName": "priming", "Key": _KEY}),
        ("query", {"TableName": "priming"}),
        ("batch_get_item", {"RequestItems": {"priming": {"Keys": [_KEY]}}}),
        ("transact_write_items", {"TransactItems": [{"Put": {"TableName": "priming", "Item": _KEY}}]}),
    ),
    "sqs": (("send_message", {"QueueUrl": "https://sqs.eu-west-1.amazonaws.com/0/priming", "MessageBody": "-"}),),
    "events": (("put_events", {"Entries": [{"Source": "priming", "DetailType": "priming", "Detail": "{}"}]}),),
    "ssm": (("get_parameters", {"Names": ["priming"], "WithDecryption": True}),),
}


def rehearse(service: str) -> int:
    """Run each of the service's operations once against a Stubber (no request is sent); how many ran."""
    from botocore.stub import Stubber  # noqa: PLC0415 - see the imports above

    from hub_core import aws  # noqa: PLC0415

    client = aws._client(service)
    operations = REHEARSALS.get(service, ())
    with Stubber(client) as stub:
        for name, params in operations:
            stub.add_response(name, {}, None)
            getattr(client, name)(**params)
    return len(operations)


def build_deferred_models() -> int:
    """Build now every loaded pydantic model declared `defer_build` (the partners' answers and profiles, which most
    functions import and few use on a first request); how many were built. Deferred, they cost an import nothing,
    but the first request after restore would build the ones it uses."""
    from pydantic import BaseModel  # noqa: PLC0415 - see the imports above

    built = 0
    pending: list[type[BaseModel]] = list(BaseModel.__subclasses__())
    while pending:
        model = pending.pop()
        pending.extend(model.__subclasses__())
        if model.model_config.get("defer_build") and not model.__pydantic_complete__:
            built += bool(model.model_rebuild(raise_errors=False))
    return built


@dataclass(frozen=True)
class Registration:
    handler: Handler
    dry_event: dict[str, Any] | None
    services: tuple[str, ...]


_REGISTERED: list[Registration] = []


class _DryContext:
    """The context of the dry request: a far deadline, a name that says what it is in any log line."""

    function_name = "priming"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-west-1:000000000000:function:priming"
    aws_request_id = "priming"
    log_group_name = log_stream_name = "priming"
    identity = client_context = tenant_id = None

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def dry_http_request(
    method: str, path: str, body: str = "{}", route: str | None = None, path_parameters: dict[str, str] | None = None
) -> dict[str, Any]:
    """An HTTP API (v2) request the function rejects at validation: an empty JSON body from a documentation address."""
    return {
        "version": "2.0",
        "routeKey": f"{method} {route or path}",
        "pathParameters": path_parameters or {},
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "x-forwarded-for": "192.0.2.1"},
        "requestContext": {
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "192.0.2.1"},
            "requestId": "priming",
            "routeKey": f"{method} {route or path}",
            "stage": "$default",
            "timeEpoch": 0,
        },
        "isBase64Encoded": False,
        "body": body,
    }


def dry_callback() -> dict[str, Any]:
    """A donation callback with a token no campaign was given: refused before any read."""
    route = "/donations/callback/{serviceId}/{route}/{donationCode}/{token}"
    names = {"serviceId": "0", "route": "priming", "donationCode": "priming", "token": "priming"}
    path = "/donations/callback/0/priming/priming/priming"
    return dry_http_request("POST", path, route=route, path_parameters=names)


def register(
    handler: Handler, dry_event: dict[str, Any] | None = None, services: Sequence[str] = DEFAULT_SERVICES
) -> None:
    """Prime `handler` before a SnapStart snapshot and renew its per-environment state after restore."""
    registration = Registration(handler, dry_event, tuple(services))
    _REGISTERED.append(registration)
    if register_before_snapshot is not None and register_after_restore is not None:
        register_before_snapshot(lambda: before_snapshot(registration))
        register_after_restore(after_restore)


def registered() -> list[Registration]:
    return list(_REGISTERED)


def before_snapshot(registration: Registration) -> int | None:
    """Build the clients and serve the dry request; its status code (a 4xx when it was rejected as it should be)."""
    for service in registration.services:
        if service == "ssm":
            from hub_core import secrets  # noqa: PLC0415 - see the imports above

            # hub_core.secrets reads through Powertools' default provider, built on the shared session.
            secrets.ssm_provider()
        rehearse(service)  # no request: the service model is loaded and its operations built, no connection opened
    build_deferred_models()
    if registration.dry_event is None:
        return None
    response = registration.handler(json.loads(json.dumps(registration.dry_event)), _DryContext())
    status = response.get("statusCode") if isinstance(response, dict) else None
    return status if isinstance(status, int) else None


def after_restore() -> None:
    """Forget what must not be shared between restored environments; the AWS clients stay."""
    # What this function never imported holds nothing to forget (API docs loads neither the SDK nor Parameters), and
    # importing it here would put the SDK's import on the first request after restore.
    keep: list[Callable[..., Any]] = []
    aws = sys.modules.get("hub_core.aws")
    if aws is not None:
        keep += [aws._client, aws._session]
    parameters = sys.modules.get("aws_lambda_powertools.utilities.parameters")
    if parameters is not None:
        keep.append(parameters.clear_caches)
    reset_all(keep=keep)
    if parameters is not None:
        from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS  # noqa: PLC0415

        # The secrets read before the snapshot (none today) are forgotten; the SSM client that reads them stays.
        for provider in DEFAULT_PROVIDERS.values():
            provider.clear_cache()
    # Every environment restored from one snapshot would otherwise draw the same "random" numbers.
    random.seed()
