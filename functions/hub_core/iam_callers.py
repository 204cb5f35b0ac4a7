"""Which SigV4 callers an AWS_IAM route serves: the caller's ARN against the allow-list the stack is given.

API Gateway's AWS_IAM auth lets through any identity whose policy allows `execute-api:Invoke`, so the handler checks
who it is. A role's caller arrives as its session, `arn:aws:sts::<account>:assumed-role/<role name>/<session>`; the
allow-list names roles as `arn:aws:iam::<account>:role[/path]/<role name>`, so they match by account and role name
(the session ARN carries no path). Any other ARN (an IAM user's) must match exactly. An empty list serves no one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from hub_core.http_api import RequestRejected

_ASSUMED_ROLE = re.compile(
    r"^arn:(?P<partition>aws[\w-]*):sts::(?P<account>\d{12}):assumed-role/(?P<role>[^/]+)/[^/]+$"
)
_ROLE = re.compile(r"^arn:(?P<partition>aws[\w-]*):iam::(?P<account>\d{12}):role/(?:[^/]+/)*(?P<role>[^/]+)$")


def parse_allow_list(value: str) -> tuple[str, ...]:
    """The comma-separated list of the IAM_CALLER_ARNS setting, blanks dropped."""
    return tuple(part.strip() for part in value.split(",") if part.strip())


def caller_allowed(caller_arn: str, allowed: Iterable[str]) -> bool:
    session = _ASSUMED_ROLE.match(caller_arn)
    for entry in allowed:
        if entry == caller_arn:
            return True
        role = _ROLE.match(entry)
        if (
            session
            and role
            and session.group("partition", "account", "role") == role.group("partition", "account", "role")
        ):
            return True
    return False


def require_allowed_caller(request_context: Mapping[str, Any], allowed: Iterable[str], *, required: bool) -> None:
    """403 unless API Gateway's IAM authorizer named a caller on the allow-list (when `required`, as on AWS)."""
    if not required:
        return
    authorizer = request_context.get("authorizer") or {}
    iam = authorizer.get("iam") if isinstance(authorizer, Mapping) else None
    if not iam:
        raise RequestRejected(403, "forbidden", "this route is for signed (AWS IAM) server-to-server calls only")
    caller = iam.get("userArn") if isinstance(iam, Mapping) else None
    if not isinstance(caller, str) or not caller_allowed(caller, allowed):
        # The caller's ARN is not echoed: the answer says what to do, the operator knows the list.
        raise RequestRejected(403, "forbidden", "this caller is not on the stack's IamCallerArns allow-list")


class CallerPolicy(Protocol):
    """The settings of a function with AWS_IAM routes: whether a signed caller is required (on AWS) and whom they
    serve (IAM_CALLER_ARNS, comma separated)."""

    @property
    def require_iam_caller(self) -> bool: ...

    @property
    def iam_caller_arns(self) -> str: ...


def require_configured_caller(request_context: Mapping[str, Any], policy: CallerPolicy) -> None:
    """API Gateway lets only SigV4-signed callers through; this refuses one not on the stack's allow-list (and any
    request that lost its AWS_IAM auth)."""
    allowed = parse_allow_list(policy.iam_caller_arns)
    require_allowed_caller(request_context, allowed, required=policy.require_iam_caller)
