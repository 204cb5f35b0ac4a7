"""The template's resources: moto and an AWS-free session, tables, queues, buses, partners, physical names."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import botocore.loaders
import botocore.session
from botocore.exceptions import ClientError

from hub_local.cfn import ACCOUNT_ID, REGION
from hub_local.gateway import LAMBDA_PATH
from hub_local.partners import PartnerSpec, Sandbox, hub_secret_values, secret_parameter_name
from hub_local.runtime import DUMMY_CREDENTIAL
from hub_local.specs import FunctionSpec, QueueSpec, TableSpec
from hub_local.template import LocalTemplate

if TYPE_CHECKING:
    from moto.server import ThreadedMotoServer

Client = Callable[[str], Any]


class UnknownResourceError(KeyError):
    """A logical id the template does not declare (or not of the kind asked for)."""

    def __str__(self) -> str:
        return str(self.args[0])


def port_if_free(port: int) -> int:
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


def start_moto(bind_host: str, port: int) -> ThreadedMotoServer:
    """moto's server on `bind_host`:`port` (0 picks a free port), started."""
    # moto is slow to import, only start() needs it.
    from hub_local.moto_server import AtomicMotoServer  # noqa: PLC0415

    # Werkzeug logs every moto request at INFO on its own handler unless its level is already set.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = AtomicMotoServer(ip_address=bind_host, port=port, verbose=False)
    server.start()
    return server


@functools.cache
def _shared_loader() -> botocore.loaders.Loader:
    # A process starts many stacks (tests, the CLI's invoke): each new botocore session would parse the SDK's
    # service models afresh, about 0.1 s a client. The loader caches what it parsed; the models never change.
    return botocore.loaders.create_loader()


def aws_session(region: str = REGION, *, session_token: str | None = DUMMY_CREDENTIAL) -> boto3.session.Session:
    """A boto3 session with dummy credentials, for clients pointed at moto (the stack's, and the hub CLI's)."""
    # The host's AWS profile and config files play no part (a missing AWS_PROFILE would even fail here):
    # these settings are read from nowhere but the defaults given (config name, env vars, default, cast).
    core = botocore.session.Session(
        session_vars={
            "profile": (None, None, None, None),
            "config_file": (None, None, os.devnull, None),
            "credentials_file": (None, None, os.devnull, None),
        }
    )
    core.register_component("data_loader", _shared_loader())
    return boto3.session.Session(
        aws_access_key_id=DUMMY_CREDENTIAL,
        aws_secret_access_key=DUMMY_CREDENTIAL,
        aws_session_token=session_token,
        region_name=region,
        botocore_session=core,
    )


# moto keeps its state per process, not per server: each resource is recreated empty so that a stack never
# inherits the items or messages of a previous stack of the same process (tests start many).


def create_resources(client: Client, template: LocalTemplate) -> None:
    """The template's tables, queues and buses, recreated empty."""
    create_tables(client, template.tables.values())
    create_queues(client, template.queues)
    create_buses(client, template)


def create_tables(client: Client, tables: Iterable[TableSpec]) -> None:
    dynamodb = client("dynamodb")
    for table in tables:
        with contextlib.suppress(dynamodb.exceptions.ResourceNotFoundException):
            dynamodb.delete_table(TableName=table.name)
        dynamodb.create_table(**create_table_arguments(table))
        if table.ttl_attribute:
            dynamodb.update_time_to_live(
                TableName=table.name,
                TimeToLiveSpecification={"AttributeName": table.ttl_attribute, "Enabled": True},
            )


def create_table_arguments(table: TableSpec) -> dict[str, Any]:
    """CreateTable's arguments for a table of the template."""
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


def create_queues(client: Client, queues: Mapping[str, QueueSpec]) -> None:
    sqs = client("sqs")
    for queue in _queues_in_creation_order(queues):
        with contextlib.suppress(sqs.exceptions.QueueDoesNotExist):
            sqs.delete_queue(QueueUrl=sqs.get_queue_url(QueueName=queue.name)["QueueUrl"])
        created = sqs.create_queue(QueueName=queue.name, Attributes=queue.attributes)
        if created["QueueUrl"] != queue.url:  # pragma: no cover - would be a moto URL scheme change
            raise RuntimeError(f"moto created {queue.logical_id} at {created['QueueUrl']}, not {queue.url}")


def create_buses(client: Client, template: LocalTemplate) -> None:
    events = client("events")
    for bus in template.buses.values():
        if bus.name == "default":
            continue
        # moto deletes a missing bus silently; a real error here would be reported by create_event_bus.
        with contextlib.suppress(ClientError):
            events.delete_event_bus(Name=bus.name)
        events.create_event_bus(Name=bus.name)


def start_partners(
    client: Client,
    *,
    stage: str,
    functions: Iterable[FunctionSpec],
    partner_specs: Sequence[PartnerSpec],
    environ: Mapping[str, str],
    bind_host: str,
    sandboxes: dict[str, Sandbox],
    urls: dict[str, str],
) -> None:
    """Seed the partners' secrets in SSM and start a sandbox for each partner a function points at (unless the
    environment names its URL); fills `sandboxes` and `urls` by partner name as it goes."""
    ssm = client("ssm")
    # A partner no function points at is left alone: no sandbox to start, no secret to seed (seeding it
    # could overwrite the value another stack of the same process gave it, moto's state being shared).
    wanted = {name for function in functions for name in function.environment}
    for suffix, value in hub_secret_values(environ).items():
        ssm.put_parameter(Name=secret_parameter_name(stage, suffix), Value=value, Type="SecureString", Overwrite=True)
    for spec in partner_specs:
        if spec.base_url_env not in wanted:
            continue
        values = spec.secret_values(environ)
        settings = spec.setting_values(environ, (function.environment for function in functions))
        for suffix, value in values.items():
            ssm.put_parameter(
                Name=secret_parameter_name(stage, suffix), Value=value, Type="SecureString", Overwrite=True
            )
        override = environ.get(spec.base_url_env)
        if override:
            urls[spec.name] = override
            continue
        sandbox = spec.sandbox_factory(values | settings)
        sandbox.bind_host = bind_host
        sandbox.start()
        sandboxes[spec.name] = sandbox
        urls[spec.name] = sandbox.url


def stop_sandboxes(sandboxes: Mapping[str, Sandbox]) -> None:
    """Stop every sandbox, whichever fails to."""
    for name, sandbox in sandboxes.items():
        try:
            sandbox.stop()
        except Exception as error:  # one sandbox must not keep the others running
            print(f"hub_local: stopping sandbox {name} failed: {error}", file=sys.stderr)


def describe_stack(
    template: LocalTemplate,
    *,
    stack_name: str,
    template_path: Path,
    moto_url: str,
    gateway_url: str | None,
    partner_urls: Mapping[str, str],
    sandboxes: Mapping[str, Sandbox],
    function_envs: Mapping[str, Mapping[str, str]],
) -> dict[str, Any]:
    """The stack as GET /_local/stack describes it (LocalStack.describe)."""
    resources = [
        {
            "LogicalResourceId": logical_id,
            "PhysicalResourceId": str(template.physical(logical_id)),
            "ResourceType": resource.get("Type", ""),
        }
        for logical_id, resource in template.resources.items()
        if logical_id in template.resolver.physical
    ]
    gateway = gateway_url
    return {
        "stackName": stack_name,
        "stage": template.stage,
        "region": REGION,
        "accountId": ACCOUNT_ID,
        "template": str(template_path.resolve()),
        "motoUrl": moto_url,
        "gatewayUrl": gateway,
        "lambdaUrl": None if gateway is None else gateway + LAMBDA_PATH,
        # Each partner's base URL, and whether it is a sandbox of this stack (`hub sandbox` drives those).
        "partners": {name: {"url": url, "sandbox": name in sandboxes} for name, url in sorted(partner_urls.items())},
        "resources": resources,
        # What `hub partners check` reads on AWS with GetFunctionConfiguration: each function's variables
        # (no secret values: those live in SSM), without the local AWS plumbing.
        "functionEnvironments": {
            logical_id: {name: value for name, value in env.items() if not name.startswith("AWS_")}
            for logical_id, env in function_envs.items()
        },
    }
