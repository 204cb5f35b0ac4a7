"""The rules for a person's identifiers (e-mail, msisdn, app's miles user id), shared by every form that takes one."""

from __future__ import annotations

import re

from pydantic_core import PydanticCustomError

# The WHATWG HTML "valid e-mail address" (what <input type=email> accepts), plus a dot in the domain: an address
# a browser lets through is not refused here, and a bare host is refused as undeliverable.
EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
# app's miles' partnerClientId as we send it: our own id for the person, never free text.
USER_ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,64}$"
# Any country's mobile number in msisdn form (Umbrella's donors are not all Danish).
ANY_MSISDN_PATTERN = r"^\d{8,15}$"


def check_email(value: str) -> str:
    """The address with its domain lower-cased (the local part is the mail server's to interpret)."""
    if not EMAIL.match(value):
        raise PydanticCustomError("email_syntax", "must be an e-mail address such as name@example.org")
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"


def email_key(address: str) -> str:
    """What a person's leads are found by: the whole address lower-cased, as people type it either way."""
    return address.strip().lower()


def check_msisdn(value: str, pattern: str) -> str:
    if not re.fullmatch(pattern, value):
        raise PydanticCustomError(
            "msisdn_format", "must be a mobile number in msisdn form: country code and digits, e.g. 4512345678"
        )
    return value
