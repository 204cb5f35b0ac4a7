"""Adapter for the Pimenko MLM licence API: licences and their sites, licence types and products.

Where the documentation is silent, these are our assumptions (each names the `MlmClient` setting that changes it,
where one can):

- Refusals are 422 `{"message": ...}` (Laravel may add `"errors": {field: [...]}`, kept in the message). The one
  that says a licence has all its sites is told apart by its text: a message containing one of
  `max_sites_markers` (case-insensitive; "nombre maximal de sites", "maximum number of sites") is
  `MaxSitesReached`, any other 422 is `InvalidLicenceData`. Both are final and never retried. Laravel's
  `{"message", "errors": {...}}` and a bare `{"message"}` are read alike. On a deployed stack the markers are
  `MLM_PROFILE`'s `max_sites_markers` (partners.profiles.MlmProfile); an `InvalidLicenceData` from adding a site
  names that setting, since a full licence in other words would land there.
- A 500 `{"error": ...}` is a passing fault (`PartnerUnavailable` with the partner's message), ambiguous after a
  POST: the licence or site may have been created all the same. 401/403 are `PartnerAuthError`, 404 (unknown
  licence key) `PartnerNotFound`, 429/5xx/timeouts `PartnerUnavailable`; the HTTP core retries only the GETs
  (`retry`, `timeouts`; `Retry-After` honoured up to the policy's cap).
- `POST /licence/create` and `POST /licences/{key}/sites` are not idempotent and take no idempotency key, so they
  are sent once (the core repeats them only when the request provably never left). Nothing here loops: after an
  ambiguous failure the caller looks for the licence before creating it again.
- That look-up has little to go on: `GET /licences` lists every licence of our account with no site URL and no
  order reference. "Ours" is therefore the lowest-id licence that is new since `newest_licence_id()` (taken just
  before the create), of the same product and licence type, and not already claimed by another order
  (`find_new_licence(..., exclude_keys=...)`). Ids are assumed to grow with creation. This is unambiguous only if
  the caller serialises creates per (product, licence type) until each one is settled, and nobody else creates
  licences of that product and type on the account meanwhile (by hand in Pimenko's dashboard, say). A site added
  after an ambiguous failure cannot be looked up at all (lists carry no sites): repeating it may add it twice.
- Lists are answered whole, as documented (no pagination). A Laravel `{"data": [...]}` envelope is accepted; one
  that announces a next page is refused (`PartnerBadResponse`) rather than read in part, since a partial list
  would make the look-up miss our licence and issue a second one.
- A 2xx to a POST whose body we cannot read is a `PartnerBadResponse` marked ambiguous: the licence or site
  exists, so the caller looks before creating again.
- The site in the create answer has no `licence_id`; it is filled with the new licence's id. `expires_at` may be
  null (a licence that does not expire).
- A licence key is a customer's secret: it travels percent-encoded in the add-site path, logs name the path
  template only, and any key in a partner message is masked (`mask_key`) before it reaches an exception.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import quote

import requests
from pydantic import BaseModel, ConfigDict, ValidationError

from partners.errors import PartnerBadResponse, PartnerRejected
from partners.http import Credentials, PartnerHttp, RetryPolicy, Timeouts, default_message
from partners.profiles import DEFAULT_MAX_SITES_MARKERS
from partners.redact import MASK

PARTNER = "mlm"
PROFILE_VARIABLE = "MLM_PROFILE"

# The documented key form: an UUID, then "-" and a long random suffix. Masked wherever a partner message holds one.
_KEY_LIKE = re.compile(r"\b[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}(?:-[A-Za-z0-9_\-]{8,})?")
_MIN_SHOWN_KEY = 12
# Laravel answers errors in JSON (not a redirect or an HTML page) only when the client asks for JSON.
_ACCEPT_JSON = {"Accept": "application/json"}
_MAX_REPORTED_PROBLEMS = 3


@dataclass(frozen=True)
class _InFlight:
    """What the call in flight must keep out of its error message: the key in its path and our bare token."""

    keys: tuple[str, ...] = ()
    token: str = ""


_IN_FLIGHT: ContextVar[_InFlight] = ContextVar("mlm_in_flight", default=_InFlight())  # noqa: B039 - immutable


def mask_key(key: str) -> str:
    """A licence key as it may be shown: first 4 + "…" + last 4 characters; all masked when shorter than 12."""
    if len(key) < _MIN_SHOWN_KEY:
        return MASK
    return f"{key[:4]}…{key[-4:]}"


def mask_keys(text: str, known: Collection[str] = ()) -> str:
    """`text` with the `known` secrets and anything shaped like a licence key masked."""
    for secret in sorted((s for s in known if s), key=len, reverse=True):
        text = text.replace(secret, mask_key(secret))
    return _KEY_LIKE.sub(lambda match: mask_key(match[0]), text)


class MaxSitesReached(PartnerRejected):
    """422 'Nombre maximal de sites atteint…' — final, never retried."""


class InvalidLicenceData(PartnerRejected):
    """any other 422 ('The given data was invalid.')."""


class _Model(BaseModel):
    # Built on first use, not at import (every function imports the adapters, few use each model on a cold start);
    # hub_core.priming builds them before a SnapStart snapshot.
    model_config = ConfigDict(extra="ignore", defer_build=True)


class Licence(_Model):
    id: int
    product_id: int
    key: str
    status: str
    expires_at: datetime | None = None
    licence_type_id: int


class Site(_Model):
    id: int
    url: str
    licence_id: int | None = None


class IssuedLicence(_Model):
    licence: Licence
    site: Site


class LicenceType(_Model):
    id: int
    name: str
    max_sites: int


class Product(_Model):
    id: int
    name: str
    slug: str = ""
    description: str = ""
    created_at: datetime | None = None
    updated_at: datetime | None = None


class _SiteAnswer(_Model):
    site: Site


class MlmClient:
    """Calls the Pimenko MLM API through the shared HTTP core; `base_url` is the API root (…/api)."""

    def __init__(
        self,
        base_url: str,
        api_token: Callable[[], str],
        *,
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        max_sites_markers: Sequence[str] = DEFAULT_MAX_SITES_MARKERS,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        self._api_token = api_token
        self.max_sites_markers = tuple(marker.casefold() for marker in max_sites_markers if marker)
        self.http = PartnerHttp(
            PARTNER, base_url, self._credentials, message_of=_message_of, timeouts=timeouts, retry=retry, sleep=sleep
        )

    def _credentials(self) -> Credentials:
        token = self._api_token()
        # The core scrubs "Bearer <token>" from messages; this lets `_message_of` scrub the bare token too.
        _IN_FLIGHT.set(replace(_IN_FLIGHT.get(), token=token))
        return Credentials(headers={"Authorization": f"Bearer {token}"})

    # --- licences -----------------------------------------------------------------------------------------

    def list_licences(self) -> list[Licence]:
        """GET /licences: every licence of the account."""
        response = self._request("GET", "/licences", template="GET /licences")
        return self._parse_list(Licence, response)

    def create_licence(self, licence_type: int, product_id: int, url: str) -> IssuedLicence:
        """POST /licence/create (201): a licence and its first site. Sent once; see the module's notes."""
        body = {"licence_type": licence_type, "product_id": product_id, "url": url}
        response = self._request(
            "POST", "/licence/create", template="POST /licence/create", json=body, idempotent=False
        )
        issued = self._parse_committed(IssuedLicence, response)
        if issued.site.licence_id is None:
            issued.site.licence_id = issued.licence.id
        return issued

    def add_site(self, key: str, url: str) -> Site:
        """POST /licences/{key}/sites (201); 404 → PartnerNotFound, a full licence → MaxSitesReached."""
        try:
            response = self._request(
                "POST",
                f"/licences/{quote(key, safe='')}/sites",
                template="POST /licences/{key}/sites",
                json={"url": url},
                idempotent=False,
                secrets=(key,),
            )
        except InvalidLicenceData as refused:
            message = f"{refused.message} (if the licence is full, check {PROFILE_VARIABLE}.max_sites_markers)"
            raise InvalidLicenceData(PARTNER, message, status=refused.status) from None
        return self._parse_committed(_SiteAnswer, response).site

    # --- catalogue ----------------------------------------------------------------------------------------

    def licence_types(self) -> list[LicenceType]:
        """GET /licencestypes."""
        response = self._request("GET", "/licencestypes", template="GET /licencestypes")
        return self._parse_list(LicenceType, response)

    def products(self) -> list[Product]:
        """GET /products."""
        response = self._request("GET", "/products", template="GET /products")
        return self._parse_list(Product, response)

    # --- the look-up before retrying an ambiguous create ---------------------------------------------------

    def newest_licence_id(self) -> int:
        """The highest licence id now (0 when there is none): take it just before a create."""
        return max((licence.id for licence in self.list_licences()), default=0)

    def find_new_licence(
        self,
        *,
        after_id: int,
        product_id: int,
        licence_type: int,
        exclude_keys: Collection[str] = (),
    ) -> Licence | None:
        """The lowest-id licence with id > `after_id` of this product and type whose key is not excluded, or None.

        Exact only when creates of this (product, type) are serialised by the caller; see the module's notes.
        """
        excluded = set(exclude_keys)
        candidates = [
            licence
            for licence in self.list_licences()
            if licence.id > after_id
            and licence.product_id == product_id
            and licence.licence_type_id == licence_type
            and licence.key not in excluded
        ]
        return min(candidates, key=lambda licence: licence.id, default=None)

    # --- plumbing -----------------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        template: str,
        json: Any = None,
        idempotent: bool | None = None,
        secrets: tuple[str, ...] = (),
    ) -> requests.Response:
        """One call through the core; a 422 becomes `MaxSitesReached` or `InvalidLicenceData`."""
        reset = _IN_FLIGHT.set(_InFlight(keys=secrets))
        try:
            return self.http.request(
                method,
                path,
                template=template,
                json=json,
                headers=_ACCEPT_JSON,
                idempotent=idempotent,
                status_errors={422: InvalidLicenceData},
            )
        except InvalidLicenceData as refused:
            if any(marker in refused.message.casefold() for marker in self.max_sites_markers):
                raise MaxSitesReached(PARTNER, refused.message, status=refused.status) from None
            raise
        finally:
            _IN_FLIGHT.reset(reset)

    def _parse_committed[M: BaseModel](self, model: type[M], response: requests.Response) -> M:
        """A POST's 2xx body as a `model`. The change is made even when the body is unreadable, so that
        `PartnerBadResponse` is ambiguous: the caller looks for the licence before creating it again."""
        try:
            return _validate(model, self.http.json(response), status=response.status_code)
        except PartnerBadResponse as bad:
            message = f"{bad.message} (the request was processed)"
            raise PartnerBadResponse(PARTNER, message, status=bad.status, ambiguous=True) from None

    def _parse_list[M: BaseModel](self, model: type[M], response: requests.Response) -> list[M]:
        status = response.status_code
        body = self.http.json(response)
        if isinstance(body, dict) and isinstance(body.get("data"), list):
            links = body.get("links")
            next_link = links.get("next") if isinstance(links, dict) else None
            if body.get("next_page_url") or next_link:
                raise PartnerBadResponse(PARTNER, "the list is paginated; a partial list is not used", status=status)
            body = body["data"]
        if not isinstance(body, list):
            raise PartnerBadResponse(PARTNER, f"expected a JSON list of {model.__name__}", status=status)
        return [_validate(model, item, status=status, index=index) for index, item in enumerate(body)]


def _message_of(response: requests.Response) -> str:
    """The partner's own words (the core's default extraction) with our token and any licence key masked."""
    in_flight = _IN_FLIGHT.get()
    text = default_message(response)
    if in_flight.token:
        text = text.replace(in_flight.token, MASK)
    return mask_keys(text, in_flight.keys)


def _validate[M: BaseModel](model: type[M], value: Any, *, status: int, index: int | None = None) -> M:
    """`value` as a `model`, or PartnerBadResponse naming the model and the fields at fault (never the values)."""
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        problems = [
            f"{'.'.join(str(part) for part in error['loc']) or '(root)'} {error['type']}"
            for error in exc.errors(include_url=False, include_input=False)[:_MAX_REPORTED_PROBLEMS]
        ]
        where = "" if index is None else f" (item {index})"
        detail = "; ".join(problems)
        name = model.__name__.lstrip("_")
        raise PartnerBadResponse(PARTNER, f"unexpected {name}{where}: {detail}", status=status) from None
