"""Bearer secrets the hub hands out: per-campaign callback tokens (signed, stateless) and manage tokens (hashed).

Callback tokens are an HMAC of the campaign's reference under a signing key kept in SSM, so the donation-callback
route can verify one without a table look-up. The parameter holds a key ring, one `key_id:secret` per line, the
first line being the key that signs; the others still verify, which is how a key is rotated: put the new key first,
keep the old one below it until every live campaign's callbackUrl has been re-issued. A value without any `:` is a
single key whose id is "0". Key ids are the token's prefix, so a token names the key that can check it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from hub_core.config import ConfigError

# Bound into every MAC so that a callback token can never be replayed as any other kind of signature.
_CALLBACK_PURPOSE = b"partner-hub/umbrella-callback/v1\n"
_MIN_KEY_BYTES = 32
MANAGE_TOKEN_BYTES = 32


@dataclass(frozen=True)
class KeyRing:
    """Signing keys by id; `active` signs, every key verifies."""

    active: str
    keys: dict[str, bytes]

    @classmethod
    def parse(cls, value: str) -> KeyRing:
        keys: dict[str, bytes] = {}
        lines = [line.strip() for line in value.splitlines() if line.strip()]
        for line in lines:
            key_id, separator, secret = line.partition(":")
            if not separator:
                key_id, secret = "0", line
            if not key_id.isalnum() or key_id in keys:
                raise ConfigError("the callback signing key ring has a bad or repeated key id")
            if len(secret.encode()) < _MIN_KEY_BYTES:
                raise ConfigError(f"each callback signing key must be at least {_MIN_KEY_BYTES} bytes long")
            keys[key_id] = secret.encode()
        if not keys:
            raise ConfigError("the callback signing key ring is empty")
        return cls(active=next(iter(keys)), keys=keys)


class CallbackSigner:
    """Issues and checks the token that ends a campaign's callbackUrl."""

    def __init__(self, key_ring: Callable[[], str]) -> None:
        # Read through the callable on every use: SSM's cache decides when a rotated ring is seen.
        self._key_ring = key_ring
        self._parsed: tuple[str, KeyRing] | None = None

    def _ring(self) -> KeyRing:
        """The ring, parsed once per value (a telethon verifies a token per donation)."""
        value = self._key_ring()
        parsed = self._parsed
        if parsed is None or parsed[0] != value:
            parsed = (value, KeyRing.parse(value))
            self._parsed = parsed
        return parsed[1]

    def token_for(self, campaign_ref: str) -> str:
        ring = self._ring()
        return f"{ring.active}.{_mac(ring.keys[ring.active], campaign_ref)}"

    def verify(self, campaign_ref: str, token: str) -> bool:
        """True only for a token this ring issued for this very campaign; compared in constant time."""
        key_id, separator, mac = token.partition(".")
        key = self._ring().keys.get(key_id) if separator else None
        if key is None:
            # Still spend a MAC's time, so the answer's timing does not tell a bad key id from a bad MAC.
            hmac.compare_digest(_mac(b"\0" * _MIN_KEY_BYTES, campaign_ref), mac)
            return False
        return hmac.compare_digest(_mac(key, campaign_ref), mac)


def _mac(key: bytes, campaign_ref: str) -> str:
    digest = hmac.new(key, _CALLBACK_PURPOSE + campaign_ref.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def new_manage_token() -> str:
    """A fresh random bearer token (256 bits), sent to its owner once (in the confirm SMS)."""
    return secrets.token_urlsafe(MANAGE_TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What we store of a manage token: a SHA-256 (the token is random, so no salt or stretching is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(token_hash(token), stored_hash)
