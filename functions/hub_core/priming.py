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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools.utilities import parameters
from aws_lambda_powertools.utilities.parameters.constants import DEFAULT_PROVIDERS
from botocore.stub import Stubber

from hub_core import aws, secrets
from hub_core.caches import reset_all

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
    "ssm": (("get_parameter", {"Name": "priming"}),),
}


def rehearse(service: str) -> int:
    """Run each of the service's operations once against a Stubber (no request is sent); how many ran."""
    client = aws._client(service)
    operations = REHEARSALS.get(service, ())
    with Stubber(client) as stub:
        for name, params in operations:
            stub.add_response(name, {}, None)
            getattr(client, name)(**params)
    return len(operations)


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
            # hub_core.secrets reads through Powertools' default provider, built on the shared session.
            secrets.ssm_provider()
        rehearse(service)  # no request: the service model is loaded and its operations built, no connection opened
    if registration.dry_event is None:
        return None
    response = registration.handler(json.loads(json.dumps(registration.dry_event)), _DryContext())
    status = response.get("statusCode") if isinstance(response, dict) else None
    return status if isinstance(status, int) else None


def after_restore() -> None:
    """Forget what must not be shared between restored environments; the AWS clients stay."""
    reset_all(keep=(aws._client, aws._session, parameters.clear_caches))
    # The secrets read before the snapshot (none today) are forgotten; the SSM client that reads them stays.
    for provider in DEFAULT_PROVIDERS.values():
        provider.clear_cache()
    # Every environment restored from one snapshot would otherwise draw the same "random" numbers.
    random.seed()
