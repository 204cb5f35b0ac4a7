"""The AWS failure the hub raises itself, in a module of its own so that catching it loads no boto3."""

from __future__ import annotations

from botocore.exceptions import BotoCoreError


class AwsOutOfTime(BotoCoreError):
    """No AWS attempt could start before the invocation's deadline: the caller answers as for an unavailable AWS."""

    fmt = "no time is left before the invocation's deadline for an AWS request"
