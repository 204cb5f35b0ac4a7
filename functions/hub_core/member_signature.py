"""Site signatures over app's miles member ids: only a member id the site vouches for reaches the loyalty relay.

Anyone can type a member id into a form, and every lead or order that carries one earns that member points. So the
site (the organisation's web server, or the shop, which know who is logged in) signs `(member id, expiry)` with
HMAC-SHA256 under a key kept in SSM (SecureString, named by MEMBER_SIGNING_KEY_PARAM), and the form carries the
signature `<expiry epoch seconds>.<base64url MAC>` next to the id. The parameter holds one key per line: the first
signs, all verify, so a key is rotated by putting the new one first and dropping the old one once every page signed
with it has expired. A member id without a valid, unexpired signature is dropped, never relayed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel

from hub_core.config import ConfigError
from hub_core.secrets import secret

# Bound into every MAC so that this signature can never pass for any other of the hub's.
_PURPOSE = b"partner-hub/apps-miles-member/v1\n"
_MIN_KEY_BYTES = 32
# A signature good for longer than this is refused too: a leaked one must not earn points for long.
DEFAULT_MAX_LIFETIME_SECONDS = 86_400
KEY_PARAMETER_VARIABLE = "MEMBER_SIGNING_KEY_PARAM"


class Verdict(StrEnum):
    VALID = "valid"
    UNSIGNED = "unsigned"
    BAD_SIGNATURE = "bad_signature"
    EXPIRED = "expired"
    TOO_LONG_LIVED = "too_long_lived"


def _keys(value: str) -> list[bytes]:
    keys = [line.strip().encode() for line in value.splitlines() if line.strip()]
    if not keys:
        raise ConfigError("the member signing key parameter is empty")
    if any(len(key) < _MIN_KEY_BYTES for key in keys):
        raise ConfigError(f"each member signing key must be at least {_MIN_KEY_BYTES} bytes long")
    return keys


def _mac(key: bytes, member_id: str, expires_at: int) -> str:
    message = _PURPOSE + member_id.encode() + b"\n" + str(expires_at).encode()
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).rstrip(b"=").decode()


def sign(member_id: str, expires_at: int, key_ring: str) -> str:
    """The signature a site puts next to `member_id`, good until `expires_at` (epoch seconds), under the first key."""
    return f"{expires_at}.{_mac(_keys(key_ring)[0], member_id, expires_at)}"


def verify(
    member_id: str,
    signature: str | None,
    key_ring: Callable[[], str],
    *,
    now: float | None = None,
    max_lifetime_seconds: int = DEFAULT_MAX_LIFETIME_SECONDS,
) -> Verdict:
    """Whether `signature` vouches for `member_id` now; the key ring is read only when there is one to check."""
    if not signature:
        return Verdict.UNSIGNED
    expiry, separator, mac = signature.partition(".")
    if not separator or not expiry.isascii() or not expiry.isdigit() or len(expiry) > 12:
        return Verdict.BAD_SIGNATURE
    expires_at = int(expiry)
    # Every key is tried, in constant time each, before the expiry is looked at: the answer does not tell a
    # forger whether their MAC was right.
    matched = False
    for key in _keys(key_ring()):
        matched |= hmac.compare_digest(_mac(key, member_id, expires_at), mac)
    if not matched:
        return Verdict.BAD_SIGNATURE
    current = time.time() if now is None else now
    if expires_at <= current:
        return Verdict.EXPIRED
    if expires_at > current + max_lifetime_seconds:
        return Verdict.TOO_LONG_LIVED
    return Verdict.VALID


def site_key_ring() -> str:
    """The signing keys from SSM (Powertools Parameters, cached like every other secret)."""
    return secret(KEY_PARAMETER_VARIABLE)


# The fields every form that may name a member carries (the lead form, the licence request).
MEMBER_FIELD = "apps_miles_user_id"
SIGNATURE_FIELD = "apps_miles_signature"


def keep_if_signed[M: BaseModel](
    model: M, *, max_lifetime_seconds: int, now: float | None = None
) -> tuple[M, Verdict | None]:
    """`model` with its member id only when the site's signature vouches for it; the signature is never kept.

    The verdict is None when no member id was given (nothing to check, and no SSM read).
    """
    member_id: Any = getattr(model, MEMBER_FIELD)
    if member_id is None:
        return model.model_copy(update={SIGNATURE_FIELD: None}), None
    verdict = verify(
        member_id, getattr(model, SIGNATURE_FIELD), site_key_ring, now=now, max_lifetime_seconds=max_lifetime_seconds
    )
    kept = member_id if verdict is Verdict.VALID else None
    return model.model_copy(update={MEMBER_FIELD: kept, SIGNATURE_FIELD: None}), verdict
