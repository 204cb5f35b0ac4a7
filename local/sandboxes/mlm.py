"""Loopback stand-in for the Pimenko MLM licence API: licences and their sites, licence types and products.

Routes are served under the root, so the sandbox's URL is the API root (`https://mlm.pimenko.com/api` in
production). Errors follow Laravel, which the documentation shows: 401 `{"message": "Unauthenticated."}`,
422 `{"message", "errors": {field: [...]}}`, 404 `{"message"}`.

Besides the base's faults (which strike *before* a request is handled), `fail_after_commit` makes a create or an
add-site succeed and then answer 500 or hang past the client's timeout: the ambiguous case, where the client
cannot tell that the licence exists.
"""

from __future__ import annotations

import argparse
import copy
import re
import secrets
import string
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, get_args
from urllib.parse import urlsplit

from sandboxes.base import CONTROL_PREFIX, SandboxServer, route, serve_until_interrupted
from sandboxes.messages import SandboxRequest, SandboxResponse, json_response
from sandboxes.modes import SandboxModes

DEFAULT_API_TOKEN: Final = "local-mlm-token"
DEFAULT_VALIDITY_DAYS: Final = 365

UNAUTHENTICATED: Final = "Unauthenticated."
INVALID_DATA: Final = "The given data was invalid."
MAX_SITES_REACHED: Final = "Nombre maximal de sites atteint pour cette licence."
LICENCE_NOT_FOUND: Final = "Licence not found."
INTERNAL_ERROR: Final = "Internal error message"
MAX_URL_LENGTH: Final = 255

# "550E8400-E29B-41D4-A716-446655440000-2Q7x9VxvR3m9y5m1n8W4k1qQ9aXhY2Z0mJfP8cT1eUo": an uppercase UUID and 43
# random alphanumerics.
KEY_SUFFIX_LENGTH: Final = 43
KEY_ALPHABET: Final = string.ascii_letters + string.digits
KEY_PATTERN: Final = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}-[A-Za-z0-9]{43}")
# Laravel's JSON dates: "2027-06-02T00:00:00.000000Z".
TIMESTAMP_FORMAT: Final = "%Y-%m-%dT%H:%M:%S.%fZ"

CommitFaultMode = Literal["status", "slow"]
COMMIT_FAULT_MODES: Final[frozenset[str]] = frozenset(get_args(CommitFaultMode))
_COMMIT_FAULT_FIELDS: Final = frozenset(("count", "mode", "status", "delay", "path_prefix"))


@dataclass(frozen=True)
class LicenceType:
    id: int
    name: str
    max_sites: int

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Product:
    id: int
    name: str
    slug: str
    description: str
    created_at: str
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


SEED_LICENCE_TYPES: Final[tuple[LicenceType, ...]] = (
    LicenceType(id=1, name="Standard", max_sites=5),
    LicenceType(id=2, name="Solo", max_sites=1),
    LicenceType(id=3, name="Campus", max_sites=20),
)

SEED_PRODUCTS: Final[tuple[Product, ...]] = (
    Product(
        id=1,
        name="Catalogue de cours",
        slug="catalogue-de-cours",
        description="Un catalogue public et filtrable des cours Moodle",
        created_at="2024-01-01T00:00:00.000000Z",
        updated_at="2024-01-01T00:00:00.000000Z",
    ),
    Product(
        id=2,
        name="Format de cours Cartes",
        slug="format-de-cours-cartes",
        description="Un format de cours Moodle qui présente les sections en cartes",
        created_at="2024-02-12T09:30:00.000000Z",
        updated_at="2024-09-03T14:05:00.000000Z",
    ),
    Product(
        id=3,
        name="Bloc Tableau de bord",
        slug="bloc-tableau-de-bord",
        description="Un bloc Moodle de suivi de la progression des apprenants",
        created_at="2024-05-20T08:00:00.000000Z",
        updated_at="2024-05-20T08:00:00.000000Z",
    ),
)


def new_licence_key() -> str:
    """A key in the documented form: an uppercase UUID, "-", and 43 random alphanumerics."""
    suffix = "".join(secrets.choice(KEY_ALPHABET) for _ in range(KEY_SUFFIX_LENGTH))
    return f"{str(uuid.uuid4()).upper()}-{suffix}"


def expiry_after(days: int, now: datetime | None = None) -> str:
    """Midnight UTC `days` days from today, as the documentation writes dates."""
    today = (now or datetime.now(UTC)).astimezone(UTC).date()
    midnight = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=days)
    return midnight.strftime(TIMESTAMP_FORMAT)


@dataclass
class CommitFault:
    """After the next `remaining` creates (or site additions) are stored: answer `status`, or hang `delay` s."""

    mode: CommitFaultMode
    status: int = 500
    delay: float | None = None
    path_prefix: str | None = None
    remaining: int = 1

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _field_label(name: str) -> str:
    # Laravel names a field in its messages with underscores as spaces ("licence type").
    return name.replace("_", " ")


def _existing_id(
    payload: Mapping[str, Any], name: str, known: Mapping[int, object], errors: dict[str, list[str]]
) -> int:
    value = payload.get(name)
    label = _field_label(name)
    if value is None or value == "":
        errors[name] = [f"The {label} field is required."]
    elif not _is_int(value):
        errors[name] = [f"The {label} field must be an integer."]
    elif value not in known:
        errors[name] = [f"The selected {label} is invalid."]
    else:
        return int(value)
    return 0


def _site_url(payload: Mapping[str, Any], errors: dict[str, list[str]], limit: int | None = MAX_URL_LENGTH) -> str:
    value = payload.get("url")
    if value is None or (isinstance(value, str) and not value.strip()):
        errors["url"] = ["The url field is required."]
        return ""
    if not isinstance(value, str) or not _is_http_url(value):
        errors["url"] = ["The url field must be a valid URL."]
        return ""
    if limit is not None and len(value) > limit:
        errors["url"] = [f"The url field must not be greater than {limit} characters."]
        return ""
    return value


def _is_http_url(value: str) -> bool:
    if any(char.isspace() for char in value):
        return False
    try:
        parts = urlsplit(value)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and port_ok


def _invalid(errors: Mapping[str, list[str]]) -> SandboxResponse:
    return json_response(422, {"message": INVALID_DATA, "errors": dict(errors)})


def _public(licence: Mapping[str, Any]) -> dict[str, Any]:
    """A licence as the API shows it: the documented fields, not its sites."""
    return {name: licence[name] for name in ("id", "product_id", "key", "status", "expires_at", "licence_type_id")}


class MlmModes(SandboxModes):
    """The readings of Pimenko's document this sandbox can play: 422 bodies as Laravel's `{"message", "errors"}`
    or the bare `{"message"}` of the document's examples; a URL length limit (255, Laravel's usual string column;
    the document states none) or none."""

    errors: Literal["laravel", "bare"] = "laravel"
    url_limit: int | None = MAX_URL_LENGTH


class MlmSandbox(SandboxServer):
    """Pimenko MLM on loopback: `Authorization: Bearer <token>` on every route, licences kept in memory."""

    MODES = MlmModes
    modes: MlmModes

    def __init__(
        self,
        api_token: str = DEFAULT_API_TOKEN,
        port: int = 0,
        licence_types: Sequence[LicenceType] | None = None,
        products: Sequence[Product] | None = None,
        validity_days: int = DEFAULT_VALIDITY_DAYS,
        *,
        modes: MlmModes | Mapping[str, Any] | str | None = None,
    ) -> None:
        types = tuple(SEED_LICENCE_TYPES if licence_types is None else licence_types)
        catalogue = tuple(SEED_PRODUCTS if products is None else products)
        if len({t.id for t in types}) != len(types) or len({p.id for p in catalogue}) != len(catalogue):
            raise ValueError("licence type and product ids must be unique")
        if validity_days < 0:
            raise ValueError("validity_days must be >= 0")
        super().__init__(port, modes=modes)
        self.api_token = api_token
        self.validity_days = validity_days
        self.licence_types: Mapping[int, LicenceType] = {t.id: t for t in types}
        self.products: Mapping[int, Product] = {p.id: p for p in catalogue}
        self._state_lock = threading.Lock()
        self._licences: list[dict[str, Any]] = []
        self._last_licence_id = 0
        self._last_site_id = 0
        self._commit_faults: list[CommitFault] = []

    # --- inspection ---------------------------------------------------------------------------------------

    @property
    def licences(self) -> list[dict[str, Any]]:
        """Licences created so far with their `sites`, oldest first (deep copies)."""
        with self._state_lock:
            return copy.deepcopy(self._licences)

    def reset(self) -> None:
        super().reset()
        with self._state_lock:
            self._licences.clear()
            self._last_licence_id = 0
            self._last_site_id = 0
            self._commit_faults.clear()

    # --- the ambiguous case on demand ---------------------------------------------------------------------

    def fail_after_commit(
        self,
        count: int = 1,
        mode: CommitFaultMode = "status",
        status: int = 500,
        delay: float | None = None,
        path_prefix: str | None = None,
    ) -> CommitFault:
        """Store the next `count` creates / site additions, then answer `status` (500 `{"error"}`) or, with
        mode "slow", wait `delay` seconds before the success nobody is still waiting for."""
        checks = (
            (isinstance(mode, str) and mode in COMMIT_FAULT_MODES, "mode must be one of slow, status"),
            (_is_int(count) and count >= 1, "count must be a positive integer"),
            (_is_int(status) and 400 <= status <= 599, "status must be an integer from 400 to 599"),
            (delay is None or (isinstance(delay, int | float) and not isinstance(delay, bool) and delay >= 0),
             "delay must be a number >= 0"),
            (mode != "slow" or delay is not None, "a slow fault needs a delay"),
            (path_prefix is None or (isinstance(path_prefix, str) and path_prefix.startswith("/")),
             "path_prefix must be a string starting with /"),
        )  # fmt: skip
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise ValueError("; ".join(problems))
        fault = CommitFault(mode=mode, status=status, delay=delay, path_prefix=path_prefix, remaining=count)
        with self._state_lock:
            self._commit_faults.append(fault)
        return replace(fault)

    def _take_commit_fault(self, path: str) -> CommitFault | None:
        with self._state_lock:
            for fault in self._commit_faults:
                if fault.path_prefix is None or path.startswith(fault.path_prefix):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._commit_faults.remove(fault)
                    return replace(fault)
        return None

    def _answer_committed(self, request: SandboxRequest, success: SandboxResponse) -> SandboxResponse:
        fault = self._take_commit_fault(request.path)
        if fault is None:
            return success
        if fault.mode == "slow":
            # Hangs without holding a lock; stop() wakes it. Whatever is answered then, the client has gone.
            self._stopping.wait(fault.delay or 0.0)
            return success
        return json_response(fault.status, {"error": INTERNAL_ERROR})

    @route("POST", f"{CONTROL_PREFIX}/fail-after-commit")
    def _add_commit_fault(self, request: SandboxRequest) -> SandboxResponse:
        spec = request.json
        if not isinstance(spec, dict):
            return json_response(400, {"error": "invalid fault", "message": "body must be a JSON object"})
        unknown = sorted(set(spec) - _COMMIT_FAULT_FIELDS)
        if unknown:
            return json_response(400, {"error": "invalid fault", "message": f"unknown fields: {unknown}"})
        try:
            fault = self.fail_after_commit(**spec)
        except ValueError as exc:
            return json_response(400, {"error": "invalid fault", "message": str(exc)})
        return json_response(201, fault.describe())

    # --- partner routes -----------------------------------------------------------------------------------

    def _invalid(self, errors: Mapping[str, list[str]]) -> SandboxResponse:
        """422 as the `errors` mode says: Laravel's message with the field errors, or the bare message."""
        if self.modes.errors == "bare":
            first = next((messages[0] for messages in errors.values() if messages), INVALID_DATA)
            return json_response(422, {"message": first})
        return _invalid(errors)

    def authorize(self, request: SandboxRequest) -> SandboxResponse | None:
        if request.headers.get("authorization") != f"Bearer {self.api_token}":
            return json_response(401, {"message": UNAUTHENTICATED})
        return None

    @route("GET", "/licences")
    def list_licences(self, request: SandboxRequest) -> SandboxResponse:
        with self._state_lock:
            listing = [_public(licence) for licence in self._licences]
        return json_response(200, listing)

    @route("POST", "/licence/create")
    def create_licence(self, request: SandboxRequest) -> SandboxResponse:
        payload = request.json if isinstance(request.json, dict) else {}
        errors: dict[str, list[str]] = {}
        licence_type = _existing_id(payload, "licence_type", self.licence_types, errors)
        product_id = _existing_id(payload, "product_id", self.products, errors)
        url = _site_url(payload, errors, self.modes.url_limit)
        if errors:
            return self._invalid(errors)
        key = new_licence_key()
        expires_at = expiry_after(self.validity_days)
        with self._state_lock:
            self._last_licence_id += 1
            self._last_site_id += 1
            licence = {
                "id": self._last_licence_id,
                "product_id": product_id,
                "key": key,
                "status": "active",
                "expires_at": expires_at,
                "licence_type_id": licence_type,
            }
            site = {"id": self._last_site_id, "licence_id": licence["id"], "url": url}
            self._licences.append({**licence, "sites": [site]})
        answer = {"licence": licence, "site": {"id": site["id"], "url": url}}
        return self._answer_committed(request, json_response(201, answer))

    @route("POST", "/licences/{key}/sites")
    def add_site(self, request: SandboxRequest) -> SandboxResponse:
        payload = request.json if isinstance(request.json, dict) else {}
        key = request.path_params["key"]
        with self._state_lock:
            licence = next((item for item in self._licences if item["key"] == key), None)
            if licence is None:
                return json_response(404, {"message": LICENCE_NOT_FOUND})
            errors: dict[str, list[str]] = {}
            url = _site_url(payload, errors, self.modes.url_limit)
            if errors:
                return self._invalid(errors)
            if len(licence["sites"]) >= self.licence_types[licence["licence_type_id"]].max_sites:
                return json_response(422, {"message": MAX_SITES_REACHED})
            self._last_site_id += 1
            site = {"id": self._last_site_id, "licence_id": licence["id"], "url": url}
            licence["sites"].append(site)
        return self._answer_committed(request, json_response(201, {"site": dict(site)}))

    @route("GET", "/licencestypes")
    def list_licence_types(self, request: SandboxRequest) -> SandboxResponse:
        return json_response(200, [licence_type.to_json() for licence_type in self.licence_types.values()])

    @route("GET", "/products")
    def list_products(self, request: SandboxRequest) -> SandboxResponse:
        return json_response(200, [product.to_json() for product in self.products.values()])


def main(argv: Sequence[str] | None = None, stop: threading.Event | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandboxes.mlm", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    parser.add_argument("--api-token", default=DEFAULT_API_TOKEN, help="the bearer token to accept")
    parser.add_argument("--validity-days", type=int, default=DEFAULT_VALIDITY_DAYS, help="lifetime of a new licence")
    parser.add_argument("--modes", default="", help='the reading played, as JSON, e.g. {"errors": "bare"}')
    args = parser.parse_args(argv)
    sandbox = MlmSandbox(api_token=args.api_token, port=args.port, validity_days=args.validity_days, modes=args.modes)
    serve_until_interrupted(sandbox, stop)
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess by the tests
    raise SystemExit(main())
