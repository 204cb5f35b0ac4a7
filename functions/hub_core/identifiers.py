"""The rules for a person's identifiers (e-mail, phone, msisdn, app's miles user id), shared by every form that takes
one and by erasure: what intake stores as a lookup key is computed here, and erasure computes the same key."""

from __future__ import annotations

import re
import unicodedata

from pydantic_core import PydanticCustomError

from hub_core.text import ascii_digits, has_control

# The WHATWG HTML "valid e-mail address" (what <input type=email> accepts), plus a dot in the domain: an address
# a browser lets through is not refused here, and a bare host is refused as undeliverable.
EMAIL = re.compile(
    r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
# The same shape with internationalised local parts and domains (RFC 6531/SMTPUTF8, IDNA): any letter or digit of
# any script where the ASCII rule has one. MiiMOSA's field is a plain string, so `zoë@example.org` is not ours to
# refuse; what we refuse is whatever cannot be an address at all (spaces, control characters, no dot in the domain).
_LABEL = r"[^\W_](?:[\w-]{0,61}[^\W_])?"
INTERNATIONAL_EMAIL = re.compile(rf"^[\w.!#$%&'*+/=?^`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+$")
# app's miles' partnerClientId as we send it: our own id for the person, never free text.
USER_ID_PATTERN = r"^[A-Za-z0-9._:@-]{1,64}$"
# Any country's mobile number in msisdn form (Umbrella's donors are not all Danish). ASCII digits: `\d` is not.
ANY_MSISDN_PATTERN = r"^[0-9]{8,15}$"
# MiiMOSA's leads are French: a phone typed in the national form (06 12 34 56 78) is +33 6 12 34 56 78.
DEFAULT_PHONE_COUNTRY_CODE = "33"
# What people put between the digits of a phone number.
_PHONE_SEPARATORS = re.compile(r"[ .\-()/\u00a0]")


def check_email(value: str) -> str:
    """The address with its domain lower-cased (the local part is the mail server's to interpret).

    Letters of any script are accepted (`zoë@example.org`), after Unicode NFC normalisation, so the same address
    typed on two keyboards is stored alike.
    """
    value = unicodedata.normalize("NFC", value)
    rule = EMAIL if value.isascii() else INTERNATIONAL_EMAIL
    if has_control(value) or not rule.match(value):
        raise PydanticCustomError("email_syntax", "must be an e-mail address such as name@example.org")
    local, _, domain = value.rpartition("@")
    return f"{local}@{domain.lower()}"


def email_key(address: str) -> str:
    """What a person's leads are found by and duplicates are told by: the whole address, NFKC-normalised and
    case-folded, as people type it either way (`DUP@example.org` is `dup@example.org`)."""
    return unicodedata.normalize("NFKC", address.strip()).casefold()


def phone_key(value: str, country_code: str = DEFAULT_PHONE_COUNTRY_CODE) -> str | None:
    """A phone number in international digits (no +), however it was typed; None when it is not a phone number.

    `+33 6 12…`, `0033 6 12…`, `33612…` and (with country code 33) `06 12 34 56 78` all give `33612345678`. This is
    what intake stores beside a lead and what erasure looks leads up by, and an msisdn is already in this form.
    """
    compact = _PHONE_SEPARATORS.sub("", value.strip())
    if compact.startswith("+"):
        digits = compact[1:]
    elif compact.startswith("00"):
        digits = compact[2:]
    elif compact.startswith("0") and country_code:
        digits = country_code + compact[1:]  # the national trunk prefix
    else:
        digits = compact
    if not ascii_digits(digits) or not 6 <= len(digits) <= 15:
        return None
    return digits


def check_msisdn(value: str, pattern: str) -> str:
    # re.ASCII: a configured pattern's `\d` must not let Arabic-Indic or other non-ASCII digits through.
    if not re.fullmatch(pattern, value, flags=re.ASCII) or not ascii_digits(value):
        raise PydanticCustomError(
            "msisdn_format", "must be a mobile number in msisdn form: country code and digits, e.g. 4512345678"
        )
    return value
