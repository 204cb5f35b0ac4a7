"""Adapter for MiiMOSA API v1: leads, published projects, and a user's lending pledges and wallet.

Where the documentation is silent, these are our assumptions (each one a setting of `MiimosaClient`):

- Authentication: the `authorization` header carries the client API key as is (`auth_scheme=""`), as the
  document's samples do (`--header 'authorization: string'`); `auth_scheme="Bearer "` sends `Bearer <key>`. On a
  deployed stack it is `MIIMOSA_PROFILE`'s `auth_scheme` (partners.profiles.MiimosaProfile); a 401/403 names it.
- `POST /leads` answers 200 ("lead created") with a body of no documented shape; a JSON object's `id` is kept as
  the partner's reference when present. A 400 ("invalid record") is final; its body, whatever its shape, is
  scrubbed of personal data and returned as the partner's message.
- `POST /leads` is not idempotent and MiiMOSA offers no way to look a lead up, so it is never retried here except
  when the request provably never left (connection refused, connect timeout). After an ambiguous failure
  (read timeout, 5xx) the caller decides; lead intake queues the lead again, accepting a rare duplicate lead at
  MiiMOSA over a lost one.
- Pagination follows RFC 5988 `Link` headers (`rel="next"`; a `rel="last"` may come or not, it is not needed),
  only on MiiMOSA's own origin (a link elsewhere
  would receive our key), up to `max_pages`. No page-size parameter is documented, so none is sent.
- `/user/pledges` and `/user/wallet` carry an e-mail and a birthdate in the query: the HTTP core never logs query
  strings, and their 403 (birthdate does not match) and 404 (unknown e-mail) become `IdentityMismatch` and
  `PartnerNotFound`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import requests

from partners.errors import PartnerBadResponse, PartnerRejected
from partners.http import Credentials, PartnerHttp, RetryPolicy, Timeouts, default_message

PARTNER = "miimosa"
PROFILE_VARIABLE = "MIIMOSA_PROFILE"


def _message_of(response: requests.Response) -> str:
    """The partner's words; a refused key also names the setting that says how it travels."""
    text = default_message(response)
    if response.status_code in (401, 403) and "/user/" not in (response.request.path_url or ""):
        text += f" (check {PROFILE_VARIABLE}.auth_scheme)"
    return text


CollectType = Literal["donation", "lending"]
PublicationTimeframe = Literal["within_month", "next_months", "another_quarter"]
Category = Literal[
    "apiculture", "aquaculture", "alcool", "soft", "elevage", "sale", "sucre", "horticulture", "innovation",
    "nature", "lait", "viticulture",
]  # fmt: skip
ProjectOrder = Literal["populars", "in_progress", "recent"]


class IdentityMismatch(PartnerRejected):
    """MiiMOSA knows the e-mail but the birthdate given does not match (403 on the user routes)."""


@dataclass(frozen=True)
class LeadReceipt:
    """MiiMOSA took the lead; `reference` is its id when its answer carried one."""

    reference: str | None


@dataclass(frozen=True)
class ProjectPage:
    """Projects gathered across pages; `truncated` when more pages existed beyond the cap."""

    projects: list[dict[str, Any]]
    truncated: bool


class MiimosaClient:
    """Calls MiiMOSA API v1 through the shared HTTP core."""

    def __init__(
        self,
        base_url: str,
        api_key: Callable[[], str],
        *,
        auth_scheme: str = "",
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        max_pages: int = 5,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._api_key = api_key
        self._auth_scheme = auth_scheme
        self.max_pages = max_pages
        self.http = PartnerHttp(
            PARTNER, base_url, self._credentials, message_of=_message_of, timeouts=timeouts, retry=retry, sleep=sleep
        )

    def _credentials(self) -> Credentials:
        return Credentials(headers={"authorization": f"{self._auth_scheme}{self._api_key()}"})

    def create_lead(self, lead: Mapping[str, str]) -> LeadReceipt:
        """POST /leads with the documented fields (strings, absent when empty)."""
        body = {key: value for key, value in lead.items() if value is not None and value != ""}
        response = self.http.request("POST", "/leads", template="POST /leads", json=body, idempotent=False)
        try:
            answer = response.json()
        except ValueError:
            # Success is the status; the body is undocumented, so an unreadable one does not undo it.
            return LeadReceipt(reference=None)
        reference = answer.get("id") if isinstance(answer, dict) else None
        return LeadReceipt(reference=None if reference is None else str(reference))

    def list_projects(
        self,
        *,
        order: ProjectOrder | None = None,
        category: Category | None = None,
        type: CollectType | None = None,
        region: str | None = None,
        keyword: str | None = None,
        max_pages: int | None = None,
    ) -> ProjectPage:
        """GET /projects with its filters, following `Link: rel="next"` up to `max_pages` pages."""
        filters = {"order": order, "category": category, "type": type, "region": region, "keyword": keyword}
        params: dict[str, Any] | None = {k: v for k, v in filters.items() if v is not None}
        pages = max_pages or self.max_pages
        projects: list[dict[str, Any]] = []
        target: str | None = "/projects"
        for _ in range(pages):
            assert target is not None
            response = self.http.request("GET", target, template="GET /projects", params=params)
            projects.extend(self._project_list(response))
            target = _next_link(response)
            params = None  # the next link carries the filters itself
            if target is None:
                return ProjectPage(projects, truncated=False)
        return ProjectPage(projects, truncated=True)

    def get_project(self, project_id: int) -> dict[str, Any]:
        """GET /projects/{id}; 404 → PartnerNotFound."""
        response = self.http.request("GET", f"/projects/{int(project_id)}", template="GET /projects/{id}")
        return self._object(response)

    def user_pledges(self, email: str, birthdate: str) -> list[dict[str, Any]]:
        """GET /user/pledges: the user's valid lending pledges (not on the public API)."""
        response = self._user_call("/user/pledges", email, birthdate)
        return self._project_list(response)

    def user_wallet(self, email: str, birthdate: str) -> dict[str, Any]:
        """GET /user/wallet: the user's wallet (not on the public API)."""
        return self._object(self._user_call("/user/wallet", email, birthdate))

    def _user_call(self, path: str, email: str, birthdate: str) -> requests.Response:
        return self.http.request(
            "GET",
            path,
            template=f"GET {path}",
            params={"user_email": email, "user_birthdate": birthdate},
            status_errors={403: IdentityMismatch},
        )

    def _project_list(self, response: requests.Response) -> list[dict[str, Any]]:
        body = self.http.json(response)
        if isinstance(body, dict):
            # Tolerate an envelope should MiiMOSA wrap lists one day.
            body = next((v for v in body.values() if isinstance(v, list)), None)
        if not isinstance(body, list) or not all(isinstance(item, dict) for item in body):
            raise PartnerBadResponse(PARTNER, "expected a JSON list of objects", status=response.status_code)
        return body

    def _object(self, response: requests.Response) -> dict[str, Any]:
        body = self.http.json(response)
        if not isinstance(body, dict):
            raise PartnerBadResponse(PARTNER, "expected a JSON object", status=response.status_code)
        return body


def _next_link(response: requests.Response) -> str | None:
    next_link = response.links.get("next")
    return next_link.get("url") if next_link else None
