"""Erasure's settings, read from its environment on first use."""

from __future__ import annotations

from pydantic import Field

from hub_core.caches import container_cached
from hub_core.config import Settings
from hub_core.identifiers import ANY_MSISDN_PATTERN, DEFAULT_PHONE_COUNTRY_CODE


class ErasureSettings(Settings):
    leads_table_name: str
    campaigns_table_name: str
    donations_table_name: str
    loyalty_table_name: str
    # Licence orders keep a verified member id for the loyalty relay; "" where erasure is not given the table.
    licences_table_name: str = ""
    # Erasure requests by event that could not finish at once, and the queue that retries them by id.
    erasure_requests_table_name: str
    erasure_retry_queue_url: str
    erasure_retry_delay_seconds: int = Field(default=60, ge=0, le=900)
    # The most one retry-queue record may take; a record is only started when this still fits before the deadline.
    retry_record_seconds: float = Field(default=6.0, gt=0)
    # As long as ErasureDLQ keeps a message: a request never done is then forgotten with its last retry message.
    deferred_retention_days: int = Field(default=14, ge=1, le=14)
    # A person's number as the hub stores it (donors and creators alike): country code and digits.
    msisdn_pattern: str = ANY_MSISDN_PATTERN
    # The country of a phone number typed in national form (0 then digits): lead intake and erasure must agree,
    # so that a lead's phone key (hub_core.identifiers.phone_key) is found again; the template sets both.
    phone_country_code: str = Field(default=DEFAULT_PHONE_COUNTRY_CODE, pattern=r"^[1-9][0-9]{0,2}$")
    max_body_bytes: int = Field(default=2 * 1024, ge=512)
    # On AWS, POST /erasure is IAM-authorised by API Gateway; the handler refuses a request that did not pass it.
    require_iam_caller: bool = True
    # The callers (role or user ARNs, comma separated) the AWS_IAM routes serve: hub_core.iam_callers.
    iam_caller_arns: str = ""


@container_cached
def settings() -> ErasureSettings:
    return ErasureSettings.from_env()  # type: ignore[return-value]
