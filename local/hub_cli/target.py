"""Where a command acts: the local stack of `make run` (the default) or a deployed stack (`--stage`, `--region`).

Both are a set of CloudFormation-shaped resources (logical id, physical id, type) and boto3 clients: on AWS from
ListStackResources and the caller's credentials, locally from the running stack's GET /_local/stack and its moto
server. Commands then take one code path for both.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from hub_cli.errors import CliError
from hub_local.gateway import STACK_PATH
from hub_local.resources import aws_session

STACK_NAME_PREFIX: Final = "partner-hub-"
QUEUE_TYPES: Final = ("AWS::SQS::Queue",)
# SAM's type in the template (what the local stack reports), Lambda's once deployed.
FUNCTION_TYPES: Final = ("AWS::Serverless::Function", "AWS::Lambda::Function")
BUS_TYPES: Final = ("AWS::Events::EventBus",)
TABLE_TYPES: Final = ("AWS::DynamoDB::Table",)
_LOOPBACK: Final = ("127.0.0.1", "localhost", "::1")


@dataclass(frozen=True)
class StackResource:
    """One resource as CloudFormation lists it."""

    logical_id: str
    physical_id: str
    resource_type: str

    @property
    def name(self) -> str:
        """The resource's own name: a queue URL's last segment, else the physical id."""
        return self.physical_id.rstrip("/").rsplit("/", 1)[-1]


@dataclass
class Target:
    """A stack the commands act on."""

    stage: str
    region: str
    stack_name: str
    local: bool
    session: boto3.session.Session
    resources: dict[str, StackResource] = field(default_factory=dict)
    # Locally every AWS call goes to moto, Lambda's Invoke to the gateway; on AWS both are None (the real endpoints).
    endpoint_url: str | None = None
    lambda_endpoint_url: str | None = None
    template_path: Path | None = None
    # Locally: each partner's base URL, and whether it is a sandbox of the stack (which `hub sandbox` drives).
    partners: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.local:
            return f"the local stack (stage {self.stage})"
        return f"stack {self.stack_name} in {self.region}"

    def client(self, service: str, config: Config | None = None) -> Any:
        endpoint = self.lambda_endpoint_url if service == "lambda" else self.endpoint_url
        return self.session.client(service, endpoint_url=endpoint, config=config)  # type: ignore[call-overload]

    def of_type(self, *types: str) -> list[StackResource]:
        return sorted((r for r in self.resources.values() if r.resource_type in types), key=lambda r: r.logical_id)

    def find(self, name: str, types: tuple[str, ...], what: str) -> StackResource:
        """A resource named by its logical id, physical id or own name (a queue's name, not only its URL)."""
        candidates = self.of_type(*types)
        for resource in candidates:
            if name in (resource.logical_id, resource.physical_id, resource.name):
                return resource
        known = ", ".join(resource.logical_id for resource in candidates) or "none"
        raise CliError(f"no {what} {name!r} in {self.label} (known: {known})")


def _resources(rows: Sequence[Mapping[str, Any]]) -> dict[str, StackResource]:
    return {
        row["LogicalResourceId"]: StackResource(
            row["LogicalResourceId"], str(row.get("PhysicalResourceId") or ""), row["ResourceType"]
        )
        for row in rows
    }


def local_session(region: str) -> boto3.session.Session:
    """A session for moto: dummy credentials, and nothing read from the host's AWS profile or config files."""
    return aws_session(region, session_token=None)


def connect_local(url: str) -> Target:
    """The stack `make run` serves at `url` (its gateway)."""
    split = urlsplit(url)
    if split.scheme != "http" or split.hostname not in _LOOPBACK:
        raise CliError(f"--url {url} is not an http URL on this machine (127.0.0.1)")
    try:
        with urllib.request.urlopen(url.rstrip("/") + STACK_PATH, timeout=10) as response:  # noqa: S310 - loopback
            document = json.loads(response.read())
    except urllib.error.HTTPError as error:
        raise CliError(f"{url} is not a hub_local stack (GET {STACK_PATH} answered {error.code})") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise CliError(
            f"no local stack answers at {url} ({reason}): start one with `make run`, or pass --stage for AWS"
        ) from None
    except ValueError:
        raise CliError(f"{url}{STACK_PATH} did not answer JSON: is it a hub_local stack?") from None
    return Target(
        stage=document["stage"],
        region=document["region"],
        stack_name=document["stackName"],
        local=True,
        session=local_session(document["region"]),
        resources=_resources(document["resources"]),
        endpoint_url=document["motoUrl"],
        lambda_endpoint_url=document.get("lambdaUrl"),
        template_path=Path(document["template"]),
        partners=dict(document.get("partners") or {}),
    )


def connect_aws(
    stage: str,
    *,
    region: str | None,
    stack_name: str | None = None,
    profile: str | None = None,
    with_resources: bool = True,
) -> Target:
    """The deployed stack of `stage` (`partner-hub-<stage>` unless named), with the caller's AWS credentials;
    without `with_resources` the stack need not exist yet (secrets are set before the first deploy)."""
    session = boto3.session.Session(profile_name=profile, region_name=region)
    if not session.region_name:
        raise CliError("no AWS region: pass --region or set AWS_REGION")
    name = stack_name or STACK_NAME_PREFIX + stage
    if not with_resources:
        return Target(stage=stage, region=session.region_name, stack_name=name, local=False, session=session)
    cloudformation = session.client("cloudformation")
    try:
        rows = [
            row
            for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=name)
            for row in page["StackResourceSummaries"]
        ]
    except ClientError as error:
        if "does not exist" in error.response.get("Error", {}).get("Message", ""):
            raise CliError(
                f"stack {name} does not exist in {session.region_name} (deploy it: sam deploy --config-env {stage})"
            ) from None
        raise
    return Target(
        stage=stage,
        region=session.region_name,
        stack_name=name,
        local=False,
        session=session,
        resources=_resources(rows),
    )
