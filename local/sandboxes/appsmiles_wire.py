"""The app's miles sandbox's terms: its defaults, errorCodes and answers, HS256 JWTs, form values and its modes."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final, Literal

from sandboxes.messages import SandboxResponse, json_response
from sandboxes.modes import SandboxModes

DEFAULT_APP_ID: Final = "local-app"  # the local run's AppsMilesAppId (hub_local.template)
DEFAULT_PARTNER_ID: Final = "local-partner"
DEFAULT_PARTNER_SECRET: Final = "local-appsmiles-secret"
DEFAULT_TAGS: Final[Mapping[str, int]] = {"DONATION": 50, "LEAD": 20, "LICENCE": 100}
DEFAULT_GIFTS: Final[tuple[Mapping[str, Any], ...]] = (
    {"giftId": "TOTE", "name": "Tote bag", "cost": 100},
    {"giftId": "MUG", "name": "Mug", "cost": 60},
    {"giftId": "TREE", "name": "A tree planted", "cost": 300},
)
PAGE_SIZE: Final = 100

# errorCode values of the contract.
OK: Final = 0
INVALID_CREDENTIALS: Final = 1
TOKEN_INVALID: Final = 2
BAD_REQUEST: Final = 3
NOT_CONNECTED: Final = 4
UNKNOWN_APPLICATION: Final = 10
UNKNOWN_USER: Final = 103
UNKNOWN_ACTION: Final = 104
ALREADY_RECORDED: Final = 105
NOT_ENOUGH_POINTS: Final = 201
UNKNOWN_GIFT: Final = 202
MESSAGES: Final[Mapping[int, str]] = {
    OK: "",
    INVALID_CREDENTIALS: "Invalid credentials",
    TOKEN_INVALID: "Token expired or invalid",
    BAD_REQUEST: "Bad request",
    NOT_CONNECTED: "User not connected",
    UNKNOWN_APPLICATION: "Unknown application",
    UNKNOWN_USER: "Unknown user",
    UNKNOWN_ACTION: "Unknown action",
    ALREADY_RECORDED: "Action already recorded",
    NOT_ENOUGH_POINTS: "Not enough points",
    UNKNOWN_GIFT: "Unknown gift",
}
TOKEN_PATH: Final = "/auth/token"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign_jwt(claims: Mapping[str, Any], key: bytes) -> str:
    """A compact HS256 JWT (RFC 7519) of `claims`."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(dict(claims), separators=(",", ":")).encode())
    signature = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def verify_jwt(token: str, key: bytes) -> dict[str, Any] | None:
    """The claims of an HS256 JWT signed with `key`, or None when it is malformed or the signature is wrong."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    header, payload, signature = parts
    expected = hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(_b64url_decode(signature), expected):
            return None
        claims = json.loads(_b64url_decode(payload))
    except ValueError:
        return None
    return claims if isinstance(claims, dict) else None


def iso_utc(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def answer(code: int, data: Mapping[str, Any] | None = None, *, status: int = 200) -> SandboxResponse:
    body: dict[str, Any] = {"errorCode": code, "errorMsg": MESSAGES.get(code, "")}
    if data is not None:
        body["data"] = data
    return json_response(status, body)


def form_value(name: str, value: str) -> Any:
    """A form field as the JSON body would have carried it: lists and objects from JSON text, numbers by name."""
    if value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    if name in _NUMERIC_FORM_FIELDS and value.isdigit():
        return int(value)
    return value


def is_text(value: object) -> bool:
    return isinstance(value, str) and bool(value)


class AppsMilesModes(SandboxModes):
    """The readings of app's miles' wire format this sandbox can play; the defaults are the hub's default profile."""

    body_encoding: Literal["json", "form"] = "json"
    jwt_placement: Literal["header", "body"] = "header"
    jwt_field: str = "token"
    # The errorCode of a second identical (partnerClientId, tagId, param1): the older API's 105, or another.
    already_recorded_code: int = ALREADY_RECORDED


# Form fields that carry numbers (a form has only text).
_NUMERIC_FORM_FIELDS: Final = frozenset({"page", "n"})
