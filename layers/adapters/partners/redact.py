"""Scrubs secrets and personal data out of anything an adapter could log or put in an error message."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"

# Query parameters that carry a key or personal data at one partner or another.
SENSITIVE_QUERY_PARAMS = frozenset(
    {
        "apikey",
        "api_key",
        "key",
        "token",
        "access_token",
        "user_email",
        "user_birthdate",
        "email",
        "msisdn",
        "phone",
        "birthdate",
        "password",
        "secret",
    }
)

_EMAIL = re.compile(r"[^\s@<>\"',;:()\[\]]+@[^\s@<>\"',;:()\[\]]+\.[^\s@<>\"',;:()\[\]]+")
# Six or more digits, optionally separated: phone numbers, msisdn, siret, card-like numbers.
_DIGIT_RUN = re.compile(r"\+?\d(?:[\s.\-/]?\d){5,}")
_BEARER = re.compile(r"(?i)\b(bearer|token|apikey|api_key|authorization)([\s:=\"']+)([A-Za-z0-9._~+/=\-]{6,})")
_MAX_MESSAGE = 300


def redact_url(url: str, sensitive: Iterable[str] = SENSITIVE_QUERY_PARAMS) -> str:
    """Return the URL with the values of sensitive query parameters and any user-info masked."""
    names = {name.lower() for name in sensitive}
    parts = urlsplit(url)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    query = urlencode(
        [(k, MASK if k.lower() in names else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)],
        safe="*",
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask known secret values, e-mail addresses, bearer tokens and long digit runs; cap the length."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
    text = _EMAIL.sub(MASK, text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _DIGIT_RUN.sub(MASK, text)
    text = " ".join(text.split())
    if len(text) > _MAX_MESSAGE:
        text = text[: _MAX_MESSAGE - 1] + "…"
    return text


def mask_msisdn(msisdn: str) -> str:
    """A phone number as a log may show it: its last two digits, enough to tell two donors apart in one incident."""
    digits = [char for char in msisdn if char.isdigit()]
    return MASK + "".join(digits[-2:]) if len(digits) > 4 else MASK
