"""The Umbrella sandbox's terms: its services, campaigns and answers, and how campaign and donation fields are read."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final, Literal, get_args
from urllib.parse import urlsplit

from sandboxes.modes import SandboxModes

DEFAULT_API_KEY: Final = "local-umbrella-key"
API_PREFIX: Final = "/public/v1/campaign"
CAMPAIGN_PATH: Final = f"{API_PREFIX}/{{serviceId}}/{{route}}/{{donationCode}}"
DEFAULT_DONOR_MSISDN: Final = "4512345678"
MAX_REPEAT: Final = 100
INT32_MAX: Final = 2**31 - 1

PayloadForm = Literal["json", "form", "query"]
PAYLOAD_FORMS: Final[frozenset[str]] = frozenset(get_args(PayloadForm))

# Answers name the field and the rule, never the value: they end up in logs, and values are personal data.
ACCESS_DENIED: Final = "access denied"
CODE_IN_USE: Final = "donation code already in use on route"
NO_CAMPAIGN: Final = "campaign does not exist"
NO_SERVICE: Final = "service does not exist"
CREATION_FIELDS: Final = (
    "donationCode",
    "route",
    "amount",
    "callbackUrl",
    "answerMessage",
    "confirmMsisdn",
    "confirmText",
)
UPDATE_FIELDS: Final = ("amount", "callbackUrl", "answerMessage", "confirmMsisdn", "confirmText")
MSISDN: Final = re.compile(r"[0-9]{8,15}")
SERVICE_ID: Final = re.compile(r"[0-9]{1,9}")
DONATE_FIELDS: Final = frozenset(
    (
        "serviceId",
        "route",
        "donationCode",
        "amount",
        "msisdn",
        "text",
        "deliver",
        "payload_form",
        "repeat",
        "donated_at",
    )
)


class UmbrellaModes(SandboxModes):
    """The readings of the Umbrella document this sandbox can play; the defaults are the hub's default profile."""

    key_parameter: Literal["apikey", "apiKey"] = "apikey"
    accept_bearer: bool = True
    amounts: Literal["integer", "string"] = "integer"
    donation_codes: Literal["sensitive", "insensitive"] = "sensitive"
    stopped_campaign: Literal["not_found", "readable"] = "not_found"


@dataclass(frozen=True)
class Service:
    """A service of the platform and the route names (keywords) campaigns can be attached to."""

    id: int
    name: str
    routes: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "routes": list(self.routes)}


SEED_SERVICES: Final[tuple[Service, ...]] = (
    Service(id=1, name="donation service", routes=("abc123", "hjerte")),
    Service(id=2, name="nødhjælp", routes=("stoet",)),
)


@dataclass
class Campaign:
    serviceId: int
    route: str
    donationCode: str
    amount: int
    callbackUrl: str
    answerMessage: str
    confirmMsisdn: str
    confirmText: str
    active: bool = True
    donations: list[dict[str, Any]] = field(default_factory=list)

    def snapshot(self) -> dict[str, Any]:
        return {
            "serviceId": self.serviceId,
            "route": self.route,
            "donationCode": self.donationCode,
            "amount": self.amount,
            "answerMessage": self.answerMessage,
            "confirmMsisdn": self.confirmMsisdn,
            "confirmText": self.confirmText,
            "callbackUrl": self.callbackUrl,
            "active": self.active,
            "donations": [dict(donation) for donation in self.donations],
        }


class DonationRefused(ValueError):
    """`donate()` was asked for something the sandbox will not do (bad option, callback off loopback)."""


class CampaignNotFound(LookupError):
    """`donate()` named no active campaign."""


def errors(*messages: str) -> dict[str, list[str]]:
    return {"errors": list(messages)}


def validate_campaign_fields(
    payload: object, names: Sequence[str], *, required: bool, routes: Sequence[str] | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The fields `names` of a create (required) or update (optional) body, and the errors, as the API judges them."""
    if not isinstance(payload, dict):
        return {}, ["body must be a JSON object"]
    values: dict[str, Any] = {}
    problems: list[str] = []
    for name in names:
        value = payload.get(name)
        if value is None:
            if required:
                problems.append(f"{name} is required")
            continue
        problem = _field_problem(name, value, routes)
        if problem:
            problems.append(problem)
        else:
            values[name] = value
    return values, problems


def _field_problem(name: str, value: object, routes: Sequence[str] | None) -> str | None:
    if name == "amount":
        return _amount_problem(value)
    if not isinstance(value, str):
        return f"{name} must be a string"
    rules: dict[str, tuple[bool, str]] = {
        "confirmMsisdn": (
            MSISDN.fullmatch(value) is not None,
            "confirmMsisdn must be an msisdn: 8 to 15 digits",
        ),
        "route": (routes is None or value in routes, "route is not a route of the service"),
        "callbackUrl": (
            urlsplit(value).scheme in ("http", "https"),
            "callbackUrl must be an http or https URL",
        ),
    }
    if not value.strip():
        return f"{name} must not be blank"
    ok, problem = rules.get(name, (True, ""))
    return None if ok else problem


def _amount_problem(value: object) -> str | None:
    if not is_int(value):
        return "amount must be an integer (øre)"
    if not int_in(value, 1, INT32_MAX):
        return f"amount must be from 1 to {INT32_MAX}"
    return None


def as_service(service: Service | Mapping[str, Any]) -> Service:
    if isinstance(service, Service):
        return service
    return Service(id=int(service["id"]), name=str(service["name"]), routes=tuple(service["routes"]))


def donation_problems(
    *,
    amount: object,
    msisdn: object,
    text: object,
    deliver: object,
    payload_form: object,
    repeat: object,
    donated_at: object,
) -> list[str]:
    checks = (
        (amount is None or int_in(amount, 1, INT32_MAX), "amount must be a positive integer"),
        (isinstance(msisdn, str) and MSISDN.fullmatch(msisdn) is not None, "msisdn must be 8 to 15 digits"),
        (text is None or isinstance(text, str), "text must be a string"),
        (isinstance(deliver, bool), "deliver must be true or false"),
        (payload_form in PAYLOAD_FORMS, f"payload_form must be one of: {', '.join(sorted(PAYLOAD_FORMS))}"),
        (int_in(repeat, 1, MAX_REPEAT), f"repeat must be an integer from 1 to {MAX_REPEAT}"),
        (
            donated_at is None or (isinstance(donated_at, datetime) and donated_at.utcoffset() is not None),
            "donated_at must be a timezone-aware datetime",
        ),
    )
    return [message for ok, message in checks if not ok]


def is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def int_in(value: object, low: int, high: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def parse_instant(raw: object, problems: list[str]) -> datetime | None:
    if raw is None:
        return None
    try:
        instant = datetime.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        instant = None
    if instant is None or instant.utcoffset() is None:
        problems.append("donated_at must be an ISO-8601 date-time with an offset")
        return None
    return instant
