"""Erasure's settings, read from its environment on first use."""

from __future__ import annotations

from pydantic import Field

from hub_core.caches import container_cached
from hub_core.config import Settings
from hub_core.identifiers import ANY_MSISDN_PATTERN


class ErasureSettings(Settings):
    leads_table_name: str
    campaigns_table_name: str
    donations_table_name: str
    loyalty_table_name: str
    # A person's number as the hub stores it (donors and creators alike): country code and digits.
    msisdn_pattern: str = ANY_MSISDN_PATTERN
    max_body_bytes: int = Field(default=2 * 1024, ge=512)
    # On AWS, POST /erasure is IAM-authorised by API Gateway; the handler refuses a request that did not pass it.
    require_iam_caller: bool = True
    # The callers (role or user ARNs, comma separated) the AWS_IAM routes serve: hub_core.iam_callers.
    iam_caller_arns: str = ""


@container_cached
def settings() -> ErasureSettings:
    return ErasureSettings.from_env()  # type: ignore[return-value]
