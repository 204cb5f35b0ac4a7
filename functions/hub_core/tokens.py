"""Bearer secrets the hub hands out (callback and manage tokens, random, stored as hashes) and keyed donor hashes.

Callback tokens are random per campaign and only their hash is stored on the campaign: a `PUT` issues a new one
(the old one is refused from then on), and the ingester refuses any once a stop's grace period is over. A leaked
callback URL can no longer move money anyway (a callback is a hint that Umbrella must confirm), but it can be
revoked. The key ring in SSM (`key_id:secret` lines, the first one current; a value without any `:` is a single key
whose id is "0") keys the donors' number hashes; its old keys stay as long as donations hashed under them are kept.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass

from hub_core.config import ConfigError
from hub_core.secrets import secret

# Bound into every hash so that one kind of secret can never pass for another.
_CALLBACK_PURPOSE = b"partner-hub/umbrella-callback/v2\n"
_DONOR_PURPOSE = b"partner-hub/donor-msisdn/v1\n"
_MIN_KEY_BYTES = 32
MANAGE_TOKEN_BYTES = 32
CALLBACK_TOKEN_BYTES = 32
# token_urlsafe(32) is 43 characters of the URL-safe alphabet; anything else is not a token we issued.
_CALLBACK_TOKEN_SHAPE = re.compile(r"[A-Za-z0-9_-]{43}")


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


class DonorHasher:
    """Keyed hashes of donors' numbers: matched (erasure finds a donor's donations), never read back.

    The key is the hub's key ring in SSM (the parameter CALLBACK_SIGNING_KEY_PARAM names, `key_id:secret` lines),
    under its own purpose label so that a donor hash is never any other kind of MAC. The first key hashes new
    donations; `candidates` gives a number's hash under every key of the ring, so erasure still finds donations hashed
    before a rotation as long as their key stays in the ring.
    """

    def __init__(self, key_ring: Callable[[], str]) -> None:
        # Read through the callable on every use: SSM's cache decides when a rotated ring is seen.
        self._key_ring = key_ring
        self._parsed: tuple[str, KeyRing] | None = None

    def _ring(self) -> KeyRing:
        """The ring, parsed once per value (a telethon hashes a number per donation)."""
        value = self._key_ring()
        parsed = self._parsed
        if parsed is None or parsed[0] != value:
            parsed = (value, KeyRing.parse(value))
            self._parsed = parsed
        return parsed[1]

    def hash(self, msisdn: str) -> str:
        ring = self._ring()
        return f"{ring.active}:{_donor_mac(ring.keys[ring.active], msisdn)}"

    def candidates(self, msisdn: str) -> list[str]:
        """The number's hash under each key of the ring: what a stored donation of this donor may hold."""
        return [f"{key_id}:{_donor_mac(key, msisdn)}" for key_id, key in self._ring().keys.items()]


def hashing_key() -> bytes:
    """The active key of the hub's key ring, for keyed hashes that are only ever compared within its lifetime (rate
    limit counters: a rotation starts them afresh)."""
    ring = KeyRing.parse(secret("CALLBACK_SIGNING_KEY_PARAM"))
    return ring.keys[ring.active]


def donor_hasher() -> DonorHasher:
    """Keyed with the hub's key ring in SSM (CALLBACK_SIGNING_KEY_PARAM names it), read through Powertools."""
    return DonorHasher(lambda: secret("CALLBACK_SIGNING_KEY_PARAM"))


def _donor_mac(key: bytes, msisdn: str) -> str:
    return hmac.new(key, _DONOR_PURPOSE + msisdn.encode(), hashlib.sha256).hexdigest()


def new_callback_token() -> str:
    """A campaign's callback token: random (256 bits), revoked by issuing another; only its hash is stored."""
    return secrets.token_urlsafe(CALLBACK_TOKEN_BYTES)


def callback_token_hash(token: str) -> str:
    """What a campaign stores of its callback token (labelled, so it can never pass for a manage token's hash)."""
    return hashlib.sha256(_CALLBACK_PURPOSE + token.encode()).hexdigest()


def is_callback_token_shaped(token: str | None) -> bool:
    return bool(token) and _CALLBACK_TOKEN_SHAPE.fullmatch(token or "") is not None


def callback_token_matches(token: str, stored_hash: str | None) -> bool:
    """Compared in constant time; a campaign without a stored hash (made before tokens were stored) matches none."""
    matches = hmac.compare_digest(callback_token_hash(token), stored_hash or "0" * 64)
    return matches and stored_hash is not None


def new_manage_token() -> str:
    """A fresh random bearer token (256 bits), sent to its owner once (in the confirm SMS)."""
    return secrets.token_urlsafe(MANAGE_TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What we store of a manage token: a SHA-256 (the token is random, so no salt or stretching is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, stored_hash: str) -> bool:
    return hmac.compare_digest(token_hash(token), stored_hash)
