"""Licence issuance's settings, read from its environment on first use."""

from __future__ import annotations

from pydantic import Field

from hub_core.caches import container_cached
from hub_core.config import Settings
from partners.profiles import MlmProfile, MlmProfileSetting


class LicenceSettings(Settings):
    licences_table_name: str
    mlm_base_url: str
    # The API token's SSM parameter name is read by hub_core.secrets from MLM_API_TOKEN_PARAM; the wording of its
    # refusals is MLM_PROFILE (a JSON object, partners.profiles.MlmProfile).
    mlm_profile: MlmProfileSetting = Field(default_factory=MlmProfile)
    mlm_connect_timeout: float = Field(default=3.05, gt=0)
    mlm_read_timeout: float = Field(default=8.0, gt=0)
    catalogue_cache_seconds: int = Field(default=300, ge=0)
    # Creates of one product and licence type go one at a time (see flow): how long one may hold the turn (and the
    # order). It is the function's Timeout (template.yaml), so an attempt Lambda kills frees both within that long.
    create_lease_seconds: int = Field(default=15, ge=1)
    # A burst of one product and type: an attempt waits for the turn (jittered pauses) only while the deadline still
    # leaves this long for the look-up, the create and their records after it, and never longer than
    # turn_wait_seconds in all (the cap for a context with no deadline).
    turn_create_seconds: float = Field(default=6.0, gt=0)
    turn_wait_seconds: float = Field(default=10.0, ge=0)
    # An event whose turn never came within its invocation is put back on this queue (docs/exactly-once.md) with a
    # random delay between the two bounds, at most licence_max_requeues times; then it fails as before.
    licence_retry_queue_url: str = ""
    requeue_delay_min_seconds: int = Field(default=2, ge=0, le=900)
    requeue_delay_max_seconds: int = Field(default=20, ge=0, le=900)
    licence_max_requeues: int = Field(default=30, ge=0)
    # The retry queue's per-record budget (BatchSize 1): one order, its wait for the turn included.
    record_seconds: float = Field(default=12.0, gt=0)
    # A create Pimenko did not answer (read timeout, 5xx) may still land later: the order's next attempts only look
    # for it during this long, and create again only after it.
    recreate_grace_seconds: int = Field(default=60, ge=0)
    max_body_bytes: int = Field(default=4 * 1024, ge=512)
    # On AWS, POST /licences is IAM-authorised by API Gateway; the handler refuses a request that did not pass it.
    require_iam_caller: bool = True
    # The callers (role or user ARNs, comma separated) the AWS_IAM routes serve: hub_core.iam_callers.
    iam_caller_arns: str = ""
    # The longest a shop's member-id signature may be valid for (hub_core.member_signature).
    member_signature_max_seconds: int = Field(default=86_400, ge=60)


@container_cached
def settings() -> LicenceSettings:
    return LicenceSettings.from_env()  # type: ignore[return-value]
