"""Loopback stand-in for the MiiMOSA API v1: leads, projects, and a user's pledges and wallet."""

from __future__ import annotations

import argparse
import math
import re
import threading
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from typing import Any, Final, Literal

from sandboxes.base import SandboxServer, route, serve_until_interrupted
from sandboxes.messages import SandboxRequest, SandboxResponse, json_response
from sandboxes.modes import SandboxModes

DEFAULT_API_KEY: Final = "local-miimosa-key"
MAX_PER_PAGE: Final = 100

COLLECT_TYPES: Final = ("donation", "lending")
PUBLICATION_TIMEFRAMES: Final = ("within_month", "next_months", "another_quarter")
CATEGORIES: Final = (
    "apiculture",
    "aquaculture",
    "alcool",
    "soft",
    "elevage",
    "sale",
    "sucre",
    "horticulture",
    "innovation",
    "nature",
    "lait",
    "viticulture",
)
PROJECT_ORDERS: Final = ("populars", "in_progress", "recent")

LEAD_REQUIRED_FIELDS: Final = (
    "email",
    "firstname",
    "lastname",
    "phone",
    "collect_type",
    "project_description",
    "project_total_budget",
    "publication_timeframe",
)
LEAD_OPTIONAL_FIELDS: Final = (
    "birthdate",
    "siret",
    "post_code",
    "city",
    "project_name",
    "social_link",
    "project_crowdfunding_budget",
    "project_loan_budget",
    "project_input_budget",
    "department",
    "category",
    "turnover",
    "lead_source",
    "campaign_id",
)
LEAD_ENUMS: Final[Mapping[str, tuple[str, ...]]] = {
    "collect_type": COLLECT_TYPES,
    "publication_timeframe": PUBLICATION_TIMEFRAMES,
    "category": CATEGORIES,
}
PROJECT_ENUMS: Final[Mapping[str, tuple[str, ...]]] = {
    "order": PROJECT_ORDERS,
    "category": CATEGORIES,
    "type": COLLECT_TYPES,
}
PROJECT_FILTERS: Final = ("order", "category", "type", "region", "keyword")

# Error messages name the rule, never the submitted value: answers end up in logs; values are personal data.
BLANK: Final = "can't be blank"
NOT_A_STRING: Final = "must be a string"


def _one_of(allowed: Sequence[str]) -> str:
    return f"must be one of: {', '.join(allowed)}"


@dataclass(frozen=True)
class Project:
    id: int
    title: str
    description: str
    category: str
    type: str
    region: str
    collected_amount: int
    goal_amount: int
    backers_count: int
    state: str
    published_at: str
    url: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# (what the project builds, what the description says) per category; the words are what keyword searches find.
_CATEGORY_THEMES: Final[Mapping[str, tuple[str, str]]] = {
    "apiculture": ("Ruchers", "Installation de nouvelles ruches et récolte d'un miel de fleurs sauvages"),
    "aquaculture": ("Pisciculture", "Bassins en eau vive pour un élevage de truites sans antibiotiques"),
    "alcool": ("Distillerie", "Alambic pour distiller un whisky et des eaux-de-vie de la ferme"),
    "soft": ("Limonaderie", "Ligne d'embouteillage pour des jus de pomme et des limonades artisanales"),
    "elevage": ("Bergerie", "Nouvelle bergerie pour un troupeau de brebis élevées en plein air"),
    "sale": ("Conserverie", "Atelier de transformation de légumes en conserves et bocaux"),
    "sucre": ("Confiturerie", "Chaudron en cuivre pour des confitures et des pâtes de fruits"),
    "horticulture": ("Pépinière", "Serre froide pour des plants et des fleurs cultivés sans pesticides"),
    "innovation": ("Agritech", "Capteurs connectés pour piloter l'irrigation au plus juste"),
    "nature": ("Haies vives", "Plantation de haies bocagères et agroforesterie pour la biodiversité"),
    "lait": ("Fromagerie", "Cave d'affinage pour des fromages au lait cru de la ferme"),
    "viticulture": ("Domaine", "Conversion du vignoble en agriculture biologique et nouveau chai"),
}
# (place, INSEE region code): the region filter takes these codes.
_PLACES: Final = (
    ("du Vercors", "84"),
    ("de la Beauce", "24"),
    ("des Cévennes", "76"),
    ("du Morvan", "27"),
    ("de l'Aubrac", "76"),
    ("du Perche", "28"),
    ("des Landes", "75"),
    ("du Jura", "27"),
    ("de Camargue", "93"),
    ("du Quercy", "76"),
    ("de Cornouaille", "53"),
    ("des Vosges", "44"),
    ("de la Brie", "11"),
    ("du Pays nantais", "52"),
    ("de Flandre", "32"),
    ("de Balagne", "94"),
)


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


def _seed_project(index: int) -> Project:
    # Plain arithmetic rather than random: every run and every test sees the same catalogue.
    category = CATEGORIES[index % len(CATEGORIES)]
    noun, pitch = _CATEGORY_THEMES[category]
    place, region = _PLACES[index % len(_PLACES)]
    title = f"{noun} {place}"
    goal = 3000 + (index * 1375) % 27000
    finished = index % 4 == 2
    collected = goal + (index * 211) % 2500 if finished else goal * ((index * 13) % 90 + 5) // 100
    project_id = index + 1
    return Project(
        id=project_id,
        title=title,
        description=f"{pitch}. Un projet {place}.",
        category=category,
        type="lending" if index % 5 in (1, 3) else "donation",
        region=region,
        collected_amount=collected,
        goal_amount=goal,
        backers_count=5 + (index * 37) % 211,  # 37 and 211 are coprime: no ties below 211 projects
        state="finished" if finished else "in_progress",
        published_at=(date(2024, 1, 8) + timedelta(days=(index * 23) % 397)).isoformat(),
        url=f"https://www.miimosa.com/fr/projects/{project_id}-{_slug(title)}",
    )


SEED_PROJECTS: Final[tuple[Project, ...]] = tuple(_seed_project(index) for index in range(35))


@dataclass(frozen=True)
class Pledge:
    project_id: int
    amount: int
    date: str
    state: str


@dataclass(frozen=True)
class WalletTransaction:
    date: str
    kind: str
    amount: float
    project_id: int | None = None


@dataclass(frozen=True)
class Wallet:
    balance: float
    currency: str
    transactions: tuple[WalletTransaction, ...]


@dataclass(frozen=True)
class SeedUser:
    email: str
    birthdate: str  # YYYY-MM-DD, compared as a string
    pledges: tuple[Pledge, ...]
    wallet: Wallet | None  # a known user who never lent has no wallet


# Fictitious people (example.org addresses); pledges point at lending projects of SEED_PROJECTS.
SEED_USERS: Final[tuple[SeedUser, ...]] = (
    SeedUser(
        email="camille.durand@example.org",
        birthdate="1985-04-12",
        pledges=(
            Pledge(project_id=2, amount=250, date="2024-03-02", state="valid"),
            Pledge(project_id=7, amount=100, date="2024-06-18", state="valid"),
            Pledge(project_id=12, amount=500, date="2024-11-05", state="valid"),
        ),
        wallet=Wallet(
            balance=42.35,
            currency="EUR",
            transactions=(
                WalletTransaction(date="2024-09-02", kind="repayment", amount=21.1, project_id=2),
                WalletTransaction(date="2024-12-02", kind="repayment", amount=21.25, project_id=2),
            ),
        ),
    ),
    SeedUser(
        email="louis.bernard@example.org",
        birthdate="1972-11-03",
        pledges=(Pledge(project_id=9, amount=1000, date="2024-05-21", state="valid"),),
        wallet=Wallet(
            balance=0.0,
            currency="EUR",
            transactions=(
                WalletTransaction(date="2024-10-21", kind="repayment", amount=84.6, project_id=9),
                WalletTransaction(date="2024-10-28", kind="withdrawal", amount=-84.6),
            ),
        ),
    ),
    SeedUser(email="ines.petit@example.org", birthdate="1990-06-30", pledges=(), wallet=None),
)


def validate_lead(payload: object) -> tuple[dict[str, str], dict[str, list[str]]]:
    """The lead to store and the errors per field, as POST /leads judges a body."""
    if not isinstance(payload, dict):
        return {}, {"base": ["body must be a JSON object"]}
    lead: dict[str, str] = {}
    errors: dict[str, list[str]] = {}
    for name in (*LEAD_REQUIRED_FIELDS, *LEAD_OPTIONAL_FIELDS):
        value = payload.get(name)
        required = name in LEAD_REQUIRED_FIELDS
        if value is not None and not isinstance(value, str):
            errors[name] = [NOT_A_STRING]
        elif value is None or not value.strip():
            if required:
                errors[name] = [BLANK]
        elif name in LEAD_ENUMS and value not in LEAD_ENUMS[name]:
            errors[name] = [_one_of(LEAD_ENUMS[name])]
        else:
            lead[name] = value
    return lead, errors


class MiimosaModes(SandboxModes):
    """The readings of MiiMOSA's document this sandbox can play: the samples' bare `authorization: <key>` or
    `Bearer <key>`; Link headers with a `rel="last"` (and first/prev) or with `rel="next"` alone."""

    auth_scheme: Literal["", "Bearer ", "Token "] = ""
    link_last: bool = True


class MiimosaSandbox(SandboxServer):
    """MiiMOSA API v1 on loopback: `authorization: <key>` on every route, pagination in Link headers."""

    MODES = MiimosaModes
    modes: MiimosaModes

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        port: int = 0,
        per_page: int = 10,
        *,
        modes: MiimosaModes | Mapping[str, Any] | str | None = None,
    ) -> None:
        if per_page < 1:
            raise ValueError("per_page must be at least 1")
        super().__init__(port, modes=modes)
        self.api_key = api_key
        self.per_page = min(per_page, MAX_PER_PAGE)
        self.projects: tuple[Project, ...] = SEED_PROJECTS
        self.users: Mapping[str, SeedUser] = {user.email: user for user in SEED_USERS}
        self._leads: list[dict[str, Any]] = []
        self._leads_lock = threading.Lock()
        # Ids keep growing across clear_leads(), as a real partner's would.
        self._last_lead_id = 0

    @property
    def leads(self) -> list[dict[str, Any]]:
        """Leads created so far, oldest first (copies)."""
        with self._leads_lock:
            return [dict(lead) for lead in self._leads]

    def clear_leads(self) -> None:
        with self._leads_lock:
            self._leads.clear()

    def reset(self) -> None:
        super().reset()
        with self._leads_lock:
            self._leads.clear()
            self._last_lead_id = 0

    def authorize(self, request: SandboxRequest) -> SandboxResponse | None:
        if request.headers.get("authorization") != f"{self.modes.auth_scheme}{self.api_key}":
            return json_response(401, {"error": "unauthorized"})
        return None

    @route("POST", "/leads")
    def create_lead(self, request: SandboxRequest) -> SandboxResponse:
        lead, errors = validate_lead(request.json)
        if errors:
            return json_response(400, {"error": "invalid record", "errors": errors})
        with self._leads_lock:
            self._last_lead_id += 1
            lead_id = self._last_lead_id
            self._leads.append({"id": lead_id, **lead})
        return json_response(200, {"id": lead_id, "message": "lead created"})

    @route("GET", "/projects")
    def list_projects(self, request: SandboxRequest) -> SandboxResponse:
        given = {name: request.query_value(name, "").strip() for name in PROJECT_FILTERS}
        filters = {name: value for name, value in given.items() if value}
        errors = {
            name: [_one_of(allowed)]
            for name, allowed in PROJECT_ENUMS.items()
            if name in filters and filters[name] not in allowed
        }
        page = _positive_int(request.query_value("page"), 1, "page", errors)
        per_page = _positive_int(request.query_value("per_page"), self.per_page, "per_page", errors)
        if errors:
            return json_response(400, {"error": "invalid parameter", "errors": errors})
        per_page = min(per_page, MAX_PER_PAGE)
        selected = _select_projects(self.projects, filters)
        last = max(1, math.ceil(len(selected) / per_page))
        window = selected[(page - 1) * per_page : page * per_page]

        def link(target: int, rel: str) -> str:
            query = [*filters.items(), ("page", str(target)), ("per_page", str(per_page))]
            return f'<{request.url_for("/projects", query)}>; rel="{rel}"'

        links = [link(page + 1, "next")] if page < last else []
        links += [link(min(page - 1, last), "prev")] if page > 1 else []
        if self.modes.link_last:
            links += [link(1, "first"), link(last, "last")]
        headers = {"Link": ", ".join(links), "X-Total-Count": str(len(selected))}
        return json_response(200, [project.to_json() for project in window], headers)

    @route("GET", "/projects/{id}")
    def get_project(self, request: SandboxRequest) -> SandboxResponse:
        raw_id = request.path_params["id"]
        wanted = int(raw_id) if re.fullmatch(r"[0-9]{1,18}", raw_id) else None
        for project in self.projects:
            if project.id == wanted:
                return json_response(200, project.to_json())
        return json_response(404, {"error": "project not found"})

    @route("GET", "/user/pledges")
    def user_pledges(self, request: SandboxRequest) -> SandboxResponse:
        user = self._identify(request, not_found="email not found")
        if isinstance(user, SandboxResponse):
            return user
        return json_response(200, [asdict(pledge) for pledge in user.pledges])

    @route("GET", "/user/wallet")
    def user_wallet(self, request: SandboxRequest) -> SandboxResponse:
        user = self._identify(request, not_found="no wallet found")
        if isinstance(user, SandboxResponse):
            return user
        if user.wallet is None:
            return json_response(404, {"error": "no wallet found"})
        return json_response(200, asdict(user.wallet))

    def _identify(self, request: SandboxRequest, *, not_found: str) -> SeedUser | SandboxResponse:
        email = request.query_value("user_email", "").strip()
        birthdate = request.query_value("user_birthdate", "").strip()
        given = {"user_email": email, "user_birthdate": birthdate}
        errors = {name: ["is missing"] for name, value in given.items() if not value}
        if errors:
            return json_response(400, {"error": "invalid parameter", "errors": errors})
        user = self.users.get(email.lower())
        if user is None:
            return json_response(404, {"error": not_found})
        if user.birthdate != birthdate:
            return json_response(403, {"error": "birthdate does not match"})
        return user


def _positive_int(raw: str | None, default: int, name: str, errors: dict[str, list[str]]) -> int:
    if raw is None or not raw.strip():
        return default
    if not re.fullmatch(r"\s*[0-9]{1,9}\s*", raw) or int(raw) < 1:
        errors[name] = ["must be a positive integer"]
        return default
    return int(raw)


def _select_projects(projects: Sequence[Project], filters: Mapping[str, str]) -> list[Project]:
    keyword = filters.get("keyword", "").casefold()
    selected = [
        project
        for project in projects
        if filters.get("category", project.category) == project.category
        and filters.get("type", project.type) == project.type
        and filters.get("region", project.region) == project.region
        and (keyword in project.title.casefold() or keyword in project.description.casefold())
    ]
    match filters.get("order"):
        case "populars":
            selected.sort(key=lambda project: (-project.backers_count, project.id))
        case "recent":
            selected.sort(key=lambda project: (project.published_at, -project.id), reverse=True)
        case "in_progress":
            selected = [project for project in selected if project.state == "in_progress"]
    return selected


def main(argv: Sequence[str] | None = None, stop: threading.Event | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandboxes.miimosa", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the authorization header value to accept")
    parser.add_argument("--per-page", type=int, default=10, help="default page size of GET /projects")
    parser.add_argument("--modes", default="", help='the reading played, as JSON, e.g. {"auth_scheme": "Bearer "}')
    args = parser.parse_args(argv)
    sandbox = MiimosaSandbox(api_key=args.api_key, port=args.port, per_page=args.per_page, modes=args.modes)
    serve_until_interrupted(sandbox, stop)
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess by the tests
    raise SystemExit(main())
