"""What Umbrella's callback says about a donation, the hint the fold verifies, and the DonationReceived event.

DonationCallbackReceived (the hint) is internal: it takes a callback to the totals fold, which asks Umbrella. Only
a donation Umbrella lists becomes a DonationReceived, which loyalty and anyone else may act on.
"""

from __future__ import annotations

import functools
import re
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from hub_core.text import ascii_digits, has_control

# Stable across republishing: consumers de-duplicate on it (EventBridge gives each put a new envelope id).
EVENT_ID_NAMESPACE = uuid.UUID("6f1c2d0e-3b51-4c7a-9a55-0c4e1b7d2f10")
_INT32_MAX = 2**31 - 1

EVENT_SOURCE = "donation-ingester"
DONATION_RECEIVED = "DonationReceived"
DONATION_HINT = "DonationCallbackReceived"


@functools.lru_cache(maxsize=1024)
def event_id_for(message_key: str) -> str:
    # Pure, and asked twice per callback (the stored item, then its hint): remembered for the latest keys.
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"donation:{message_key}"))


def _whole_number(value: object) -> object:
    """Form and query fields arrive as text: a string of digits is that number; anything else fails validation."""
    if isinstance(value, str) and ascii_digits(value.strip()):  # str.isdigit also takes Arabic-Indic digits
        return int(value.strip())
    if isinstance(value, bool | float):
        raise ValueError("must be a whole number of øre")
    return value


def _blank_is_absent(value: object) -> object:
    return None if isinstance(value, str) and not value.strip() else value


OptionalText = Annotated[str | None, BeforeValidator(_blank_is_absent)]
# The length applies to the text, not to the union: on `str | None` pydantic raised a TypeError for None (a 500).
Code = Annotated[Annotated[str, Field(max_length=40)] | None, BeforeValidator(_blank_is_absent)]
LongText = Annotated[Annotated[str, Field(max_length=1000)] | None, BeforeValidator(_blank_is_absent)]


class CallbackDonation(BaseModel):
    """Umbrella's CampaignDonation as its webhook sends it; only messageKey and amount are indispensable.

    Umbrella's webhook fields are set up per integration, so fields we do not know are ignored, and donationCode,
    routeName, donatedAt, msisdn and text may be missing (the campaign comes from the signed URL, the time from
    our clock).
    """

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    messageKey: Annotated[str, Field(min_length=1, max_length=128)]
    amount: Annotated[int, BeforeValidator(_whole_number), Field(gt=0, le=_INT32_MAX, strict=True)]
    donatedAt: Annotated[datetime | None, BeforeValidator(_blank_is_absent)] = None
    donationCode: Code = None
    routeName: Code = None
    msisdn: OptionalText = None
    text: LongText = None

    @field_validator("messageKey", "donationCode", "routeName", "text")
    @classmethod
    def _printable(cls, value: str | None) -> str | None:
        if value is not None and has_control(value):
            raise ValueError("must not contain control characters")
        return value

    @field_validator("amount")
    @classmethod
    def _bounded(cls, value: int, info: ValidationInfo) -> int:
        limit = (info.context or {}).get("max_amount_ore")
        if limit is not None and value > limit:
            raise PydanticCustomError("max_amount", "must be at most {limit} øre", {"limit": limit})
        return value

    @field_validator("donatedAt")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # Umbrella's examples carry an offset; one without is read as UTC, as the adapter does.
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @field_validator("msisdn")
    @classmethod
    def _msisdn(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        digits = value.removeprefix("+").replace(" ", "")
        pattern = (info.context or {}).get("msisdn_pattern", r"^[0-9]{8,15}$")
        if not re.fullmatch(pattern, digits, flags=re.ASCII) or not ascii_digits(digits):
            raise ValueError("must be a phone number in msisdn form, e.g. 4512345678")
        return digits


class DonationReceived(BaseModel):
    """The detail of a DonationReceived event: ids and money, never the donor's number nor the creator's member id.

    `appsMilesMember` says the campaign's creator is an app's miles member; the loyalty relay reads the id from the
    campaign, so that an event waiting in a queue or a DLQ names no one.
    """

    model_config = ConfigDict(frozen=True)

    eventId: str
    campaign: str
    serviceId: int
    route: str
    donationCode: str
    messageKey: str
    amount: int
    donatedAt: datetime
    appsMilesMember: bool | None = None
    flags: list[str] = Field(default_factory=list)

    def as_detail(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


class DonationHint(BaseModel):
    """The detail of a DonationCallbackReceived: a callback, not yet confirmed, on its way to the fold.

    A DonationReceived detail parses as one too, so events already queued before verification existed are verified
    like any other hint rather than counted as they are.
    """

    model_config = ConfigDict(frozen=True, extra="ignore")

    eventId: str
    campaign: str
    messageKey: str
    amount: int
    receivedAt: int | None = None
    flags: list[str] = Field(default_factory=list)

    def as_detail(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)
