"""A licence request as the shop sends it, the rules it must meet, and the licence we issued for an order."""

from __future__ import annotations

import hashlib
import json
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, StringConstraints
from pydantic_core import PydanticCustomError

from hub_core.identifiers import USER_ID_PATTERN
from hub_core.text import NO_CONTROL

ORDER_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"


def _site_url(value: str) -> str:
    try:
        parts = urlsplit(value)
        port = parts.port  # a malformed port raises here
    except ValueError:
        raise PydanticCustomError("https_url", "must be an absolute https:// URL") from None
    if parts.scheme != "https" or not parts.hostname:
        raise PydanticCustomError("https_url", "must be an absolute https:// URL, e.g. https://moodle.example.org")
    if parts.username is not None or parts.password is not None:
        raise PydanticCustomError("url_credentials", "must not carry a user name or password")
    if parts.fragment or any(char.isspace() for char in value) or port == 0:
        raise PydanticCustomError("https_url", "must be a plain site address without spaces or a #fragment")
    return value


SiteUrl = Annotated[str, StringConstraints(max_length=2048), NO_CONTROL, AfterValidator(_site_url)]
PositiveId = Annotated[StrictInt, Field(gt=0, le=2**31 - 1)]


class SiteRequest(BaseModel):
    """POST /licences/{key}/sites."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: SiteUrl


class LicenceRequest(SiteRequest):
    """`LicenceRequested` from the shop, or POST /licences: one licence (with its first site) for one order."""

    order_id: Annotated[str, StringConstraints(pattern=ORDER_ID_PATTERN)]
    customer_reference: Annotated[str, StringConstraints(min_length=1, max_length=128), NO_CONTROL]
    product_id: PositiveId
    licence_type: PositiveId
    # The buyer's app's miles member id, when the shop knows it: the loyalty relay credits them for the purchase.
    apps_miles_user_id: Annotated[str, StringConstraints(pattern=USER_ID_PATTERN)] | None = None
    # The shop's signature over that id (hub_core.member_signature): without a valid one the id is dropped.
    apps_miles_signature: Annotated[str, StringConstraints(max_length=100)] | None = None

    def fingerprint(self) -> str:
        """Tells a repeat of this order from a different request reusing its id.

        The member id and its signature are not part of it: a repeat signed anew (or whose signature expired
        meanwhile) is still the same order.
        """
        canonical = json.dumps(
            self.model_dump(exclude={"apps_miles_user_id", "apps_miles_signature"}),
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


class LicenceState(StrEnum):
    CREATING = "creating"  # an attempt holds the order and talks to Pimenko
    UNCERTAIN = "uncertain"  # Pimenko may have created it: the next attempt looks before creating
    ISSUED = "issued"
    # Refused by Pimenko: a repeat of the same request gets the refusal again; a corrected request under the same
    # order id reopens it (flow.retry_refused), recorded in the order's history.
    REJECTED = "rejected"


class IssuedLicence(BaseModel):
    """What we issued for an order: what GET /licences/{orderId} answers, and what a repeat gets back."""

    order_id: str
    state: LicenceState
    licence_id: int | None = None
    key: str | None = None
    status: str | None = None
    expires_at: str | None = None
    product_id: int
    licence_type: int
    sites: list[str] = Field(default_factory=list)
    message: str = ""

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
