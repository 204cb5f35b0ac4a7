"""What a fundraiser may send to create or change a campaign, the rules it must meet, and what we answer."""

from __future__ import annotations

import hashlib
import json
import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.json_schema import SkipJsonSchema
from pydantic_core import PydanticCustomError

from campaign_lifecycle.texts import DisplayTextError, check_display_text
from hub_core.campaigns import CampaignKey as CampaignKey  # noqa: PLC0414 - re-exported: the lifecycle imports it from here
from hub_core.identifiers import USER_ID_PATTERN, check_msisdn

DONATION_CODE = re.compile(r"^[A-Za-z0-9]{2,20}$")
ROUTE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f]")


def _display_text(value: str, info: ValidationInfo) -> str:
    if _CONTROL.search(value):
        raise PydanticCustomError("control_character", "must not contain control characters")
    try:
        return check_display_text(value, max_length=int((info.context or {}).get("campaign_name_max", 30)))
    except DisplayTextError as exc:
        raise PydanticCustomError(exc.rule, exc.message) from None


# A campaign's name as a visitor gives it; it goes into the organisation's SMS templates as {name}.
DisplayText = Annotated[str, StringConstraints(max_length=200), AfterValidator(_display_text)]
# The SMS texts Umbrella sends are the organisation's (campaign_lifecycle.texts): a visitor who sends one is told so
# by name instead of the text being quietly dropped, so a site built for the old API learns to stop sending it.
ORGANISATION_TEXTS = ("answerMessage", "confirmText")
Amount = Annotated[StrictInt, Field(gt=0, description="øre: 5000 is 50 kr")]


class _CampaignFields(BaseModel):
    """Rules shared by creation and change; the context carries the configured limits."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @field_validator("amount", check_fields=False)
    @classmethod
    def _amount_bound(cls, value: int | None, info: ValidationInfo) -> int | None:
        limit = int((info.context or {}).get("max_amount_ore", 0))
        if value is not None and limit and value > limit:
            raise PydanticCustomError("maximum", "must be at most {limit} øre", {"limit": limit})
        return value

    @field_validator(*ORGANISATION_TEXTS, mode="before", check_fields=False)
    @classmethod
    def _organisation_text(cls, value: object, info: ValidationInfo) -> None:
        raise PydanticCustomError(
            "organisation_text",
            "is written by the organisation from its templates and may not be sent; give campaignName instead",
        )

    @field_validator("confirmMsisdn", check_fields=False)
    @classmethod
    def _msisdn(cls, value: str | None, info: ValidationInfo) -> str | None:
        pattern = str((info.context or {}).get("msisdn_pattern", r"^45[0-9]{8}$"))
        return None if value is None else check_msisdn(value, pattern)


class CampaignForm(_CampaignFields):
    """POST /campaigns: the documented CampaignCreationRequest without callbackUrl, answerMessage and confirmText.

    The callback URL is ours to set, and the two SMS texts are the organisation's, rendered from its templates with
    the campaign's name, code and amount (and, in the confirm SMS, the manage token).
    """

    serviceId: Annotated[StrictInt, Field(gt=0, le=2**31 - 1)]
    route: Annotated[str, StringConstraints(pattern=ROUTE_NAME.pattern)]
    donationCode: Annotated[str, StringConstraints(pattern=DONATION_CODE.pattern)]
    amount: Amount
    confirmMsisdn: str
    campaignName: DisplayText | None = None
    answerMessage: SkipJsonSchema[None] = None
    confirmText: SkipJsonSchema[None] = None
    appsMilesUserId: Annotated[str, StringConstraints(pattern=USER_ID_PATTERN)] | None = None
    # The site's signature over that id (hub_core.member_signature): without a valid one the id is dropped, so a
    # campaign's donations credit only a member the site vouched for.
    appsMilesSignature: Annotated[str, StringConstraints(max_length=100)] | None = None

    @property
    def key(self) -> CampaignKey:
        return CampaignKey(service_id=self.serviceId, route=self.route, donation_code=self.donationCode)

    def fingerprint(self) -> str:
        """Identifies this very request: a retry of it may resume an interrupted create, another may not."""
        # Not the member id or its signature: a retry signed anew (or whose signature expired) is the same request.
        fields = self.model_dump(exclude={"appsMilesUserId", "appsMilesSignature"})
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class CampaignChanges(_CampaignFields):
    """PUT /campaigns/...: the documented CampaignUpdateRequest's fields a fundraiser may change, at least one.

    The SMS texts are the organisation's here too: answerMessage and confirmText are refused by name.
    """

    amount: Amount | None = None
    confirmMsisdn: str | None = None
    answerMessage: SkipJsonSchema[None] = None
    confirmText: SkipJsonSchema[None] = None

    @model_validator(mode="after")
    def _something(self) -> CampaignChanges:
        if not self.model_dump(exclude_none=True):
            raise PydanticCustomError("empty_change", "give at least one of amount, confirmMsisdn")
        return self

    def changed(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class CampaignState(StrEnum):
    CREATING = "creating"  # an attempt holds the code and is talking to Umbrella
    PENDING = "pending"  # Umbrella could not answer; the same request may resume
    ACTIVE = "active"  # Umbrella said it exists
    STOPPED = "stopped"
