"""Who is to be erased (an erasure request's identifiers and their rules) and what an erasure answers."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from hub_core.identifiers import (
    ANY_MSISDN_PATTERN,
    DEFAULT_PHONE_COUNTRY_CODE,
    USER_ID_PATTERN,
    check_email,
    check_msisdn,
    phone_key,
)
from hub_core.text import NO_CONTROL

# Internationalised addresses too: a lead may have been stored with one (check_email refuses control characters).
Email = Annotated[
    str,
    StringConstraints(min_length=1, max_length=254),
    Field(json_schema_extra={"format": "email"}),
    AfterValidator(check_email),
]
# As typed: +45 12 34 56 78, 0045…, or a national 06 12 34 56 78 (PHONE_COUNTRY_CODE's country) all name one number.
Msisdn = Annotated[
    str,
    StringConstraints(min_length=1, max_length=20),
    NO_CONTROL,
    Field(json_schema_extra={"pattern": r"^[0-9+ ().-]{1,20}$"}),
]
UserId = Annotated[str, StringConstraints(pattern=USER_ID_PATTERN)]

# Where a MiiMOSA lead's copy lives: its API (v1, /work/shared/seeds) has no call to delete or anonymise a lead.
MIIMOSA_NOTE = (
    "MiiMOSA keeps its own copy of each lead forwarded to it and its API offers no erasure: "
    "ask MiiMOSA (its data protection contact) to erase this person's leads"
)


class ErasureRequest(BaseModel):
    """POST /erasure, the ErasureRequested event's detail, or the CLI's {"erase": ...}: at least one identifier."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    email: Email | None = None
    msisdn: Msisdn | None = None
    appsMilesUserId: UserId | None = None

    @field_validator("msisdn")
    @classmethod
    def _msisdn(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        # As the hub stores a number (a donor's, a creator's, a lead's phone key): international digits, no +.
        context = info.context or {}
        digits = phone_key(value, str(context.get("phone_country_code", DEFAULT_PHONE_COUNTRY_CODE)))
        return check_msisdn(digits or value, str(context.get("msisdn_pattern", ANY_MSISDN_PATTERN)))

    @model_validator(mode="after")
    def _someone(self) -> ErasureRequest:
        if self.email is None and self.msisdn is None and self.appsMilesUserId is None:
            raise PydanticCustomError("identifier_required", "give at least one of email, msisdn, appsMilesUserId")
        return self


class AppsMilesOutcome(StrEnum):
    DELETED = "deleted"  # app's miles had the user and deleted it
    UNKNOWN = "unknown"  # app's miles does not know the user (never had it, or erased before)
    NOT_ASKED = "not_asked"  # no app's miles user id in the request


class Erased(BaseModel):
    """How many items of each table lost the person's data."""

    leads: int = 0
    campaigns: int = 0
    donations: int = 0
    loyalty_records: int = 0
    licences: int = 0


class ErasureReport(BaseModel):
    erased: Erased
    appsmiles: AppsMilesOutcome | None
    notes: list[str]

    def body(self) -> dict[str, Any]:
        return self.model_dump(mode="json")
