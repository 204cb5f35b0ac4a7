"""The lead form as MiiMOSA defines it, with the limits a careful integrator adds, and the outcomes we answer."""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from hub_core.identifiers import USER_ID_PATTERN, email_key
from hub_core.identifiers import check_email as _email
from hub_core.text import LAYOUT_ONLY, NO_CONTROL, ascii_digits
from partners.miimosa import Category, CollectType, PublicationTimeframe

# Digits are ASCII everywhere ([0-9], never `\d`, which takes '٠٦١٢…'); separators are spaces, not any whitespace
# (`\s` also takes CR, LF and the ASCII separators \x1c-\x1f).
_PHONE_SEPARATORS = re.compile(r"[ .\-()/\u00a0]")
_PHONE = re.compile(r"^\+?[0-9]{6,15}$")  # E.164 allows at most 15 digits
_AMOUNT = re.compile(r"^[0-9][0-9 .,\u00a0\u202f]*(?: ?(?:€|EUR|eur))?$")
_DEPARTMENT = re.compile(r"^(?:[0-9]{2,3}|2[ABab])$")
_POST_CODE = re.compile(r"^[A-Za-z0-9 -]{2,10}$")
_URL = re.compile(r"^https?://[^\s/$.?#][^\s]*$", re.IGNORECASE)


def _phone(value: str) -> str:
    if not _PHONE.match(_PHONE_SEPARATORS.sub("", value)):
        raise PydanticCustomError("phone_format", "must be a phone number of 6 to 15 digits, optionally with +")
    return value


def _amount(value: str) -> str:
    if not _AMOUNT.match(value):
        raise PydanticCustomError("amount_format", "must be an amount in euros, digits only, e.g. 15000")
    return value


def _siret(value: str) -> str:
    digits = value.replace(" ", "")
    if not (ascii_digits(digits) and len(digits) == 14):
        raise PydanticCustomError("siret_format", "must be a SIRET number of 14 digits")
    return digits


def _pattern(pattern: re.Pattern[str], rule: str, message: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.match(value):
            raise PydanticCustomError(rule, message)
        return value

    return AfterValidator(check)


def _text(max_length: int) -> Any:
    return StringConstraints(min_length=1, max_length=max_length)


# Internationalised addresses (zoë@example.org) are accepted: MiiMOSA's field is a plain string.
# (check_email also refuses control characters.)
Email = Annotated[str, _text(254), Field(json_schema_extra={"format": "email"}), AfterValidator(_email)]
Name = Annotated[str, _text(100), NO_CONTROL]
Phone = Annotated[str, _text(30), NO_CONTROL, AfterValidator(_phone)]
Amount = Annotated[str, _text(30), NO_CONTROL, AfterValidator(_amount)]
ShortText = Annotated[str, _text(200), NO_CONTROL]


class LeadForm(BaseModel):
    """A lead as a website submits it: MiiMOSA's fields, rules and enumerations; nothing else."""

    model_config = ConfigDict(
        extra="forbid", str_strip_whitespace=True, coerce_numbers_to_str=True, frozen=True, strict=False
    )

    email: Email
    firstname: Name
    lastname: Name
    phone: Phone
    collect_type: CollectType
    project_description: Annotated[str, _text(5000), LAYOUT_ONLY]
    project_total_budget: Amount
    publication_timeframe: PublicationTimeframe
    birthdate: Annotated[str, _text(32), NO_CONTROL] | None = None
    siret: Annotated[str, _text(20), NO_CONTROL, AfterValidator(_siret)] | None = None
    post_code: (
        Annotated[
            str,
            _text(10),
            _pattern(_POST_CODE, "post_code_format", "must be a postal code of 2 to 10 characters"),
        ]
        | None
    ) = None
    city: Name | None = None
    project_name: ShortText | None = None
    social_link: (
        Annotated[
            str,
            _text(500),
            NO_CONTROL,
            _pattern(_URL, "url_format", "must be a link starting with https:// or http://"),
        ]
        | None
    ) = None
    project_crowdfunding_budget: Amount | None = None
    project_loan_budget: Amount | None = None
    project_input_budget: Amount | None = None
    department: (
        Annotated[
            str,
            _text(3),
            _pattern(_DEPARTMENT, "department_format", "must be a French department code, e.g. 33 or 2A"),
        ]
        | None
    ) = None
    category: Category | None = None
    turnover: Amount | None = None
    lead_source: ShortText | None = None
    campaign_id: Annotated[str, _text(100), NO_CONTROL] | None = None
    # Not MiiMOSA's: the visitor's app's miles member id, when the website knows it, so the loyalty relay can credit
    # them. MiiMOSA never receives it.
    apps_miles_user_id: Annotated[str, StringConstraints(pattern=USER_ID_PATTERN)] | None = None
    # The site's signature over that id (hub_core.member_signature): without a valid one the id is dropped.
    apps_miles_signature: Annotated[str, StringConstraints(max_length=100)] | None = None

    @model_validator(mode="before")
    @classmethod
    def _blank_is_absent(cls, data: Any) -> Any:
        # An empty form field means "not given": optional ones stay unset, required ones are reported missing.
        if isinstance(data, dict):
            return {k: v for k, v in data.items() if not (isinstance(v, str) and not v.strip())}
        return data

    def for_partner(self) -> dict[str, str]:
        """The body MiiMOSA receives: every given field of MiiMOSA's, as strings."""
        return self.model_dump(exclude_none=True, exclude={"apps_miles_user_id", "apps_miles_signature"})

    def fingerprint(self) -> str:
        """A stable hash of the normalised lead, for spotting a double submit without a key: the e-mail counts as
        its lookup key (case-folded, NFKC), so `DUP@example.org` and `dup@example.org` are one lead."""
        fields = self.for_partner() | {"email": email_key(self.email)}
        canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode()).hexdigest()


def lead_id_for(dedup_key: str) -> str:
    """The id of the lead first submitted under this dedup key, so that a repeat finds it by id (flow.submit).

    A SHA-256 of the dedup key (`key:<Idempotency-Key>` or `body:<fingerprint>`) in UUID form (version 8, RFC
    9562), as the key Powertools Idempotency stored was a hash of it: nothing of the person is in the id in clear,
    and the fingerprint it hashes is itself a SHA-256 of the whole normalised lead.
    """
    digest = int.from_bytes(hashlib.sha256(b"lead-intake/lead-id\0" + dedup_key.encode()).digest()[:16])
    digest = (digest & ~(0xF << 76)) | (0x8 << 76)  # version 8: custom, here "a hash of the dedup key"
    digest = (digest & ~(0x3 << 62)) | (0x2 << 62)  # the RFC 9562 variant
    return str(uuid.UUID(int=digest))


class LeadSubmission(BaseModel):
    """What submit sees: the key that spots a double submit (it names the lead's record), and the lead."""

    dedup_key: str
    fingerprint: str
    lead: LeadForm


class LeadStatus(StrEnum):
    FORWARDING = "forwarding"
    FORWARDED = "forwarded"
    QUEUED = "queued"
    REJECTED = "rejected"


class LeadOutcome(BaseModel):
    """What a submitter learns, and what a double submit gets again."""

    lead_id: str
    status: LeadStatus
    message: str = Field(default="")

    def body(self) -> dict[str, Any]:
        if self.status is LeadStatus.REJECTED:
            return {
                "error": "rejected_by_partner",
                "message": self.message or "MiiMOSA refused the lead",
                "lead_id": self.lead_id,
                "status": self.status.value,
            }
        return {"lead_id": self.lead_id, "status": self.status.value, "message": self.message}
