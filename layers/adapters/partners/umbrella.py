"""Adapter for LinkMobility's Umbrella Indsamlings API: personal SMS donation campaigns, their totals and donations.

Where the documentation is silent, these are our assumptions (each one a setting of `UmbrellaClient` where it can
be one):

- Authentication: the key travels as the query parameter `apikey`, as the introduction says
  (`key_placement="query"`, `key_parameter="apikey"`); the parameter tables spell it `apiKey`
  (`key_parameter="apiKey"`), and `key_placement="bearer"` sends `Authorization: Bearer <key>` instead. The HTTP core
  never logs a URL or its query; error messages are scrubbed of the key and of digit runs (msisdn).
- `base_url` is the API root (`https://indsamling.m2go.dk/api`); `route` and `donationCode` are sent as single
  percent-encoded path segments.
- Amounts are integers in øre. The donations example shows `"amount": "5000"` (a string) where the model says
  integer: a string of digits is read as that integer (in totals too); a fraction, a float, a bool or a negative
  amount is a `PartnerBadResponse`. A `donatedAt` without a UTC offset is read as UTC.
- `since` (epoch seconds, or an aware datetime floored to the second, so a reconciliation overlaps rather than
  leaves a gap) becomes `timestampSince`, which selects donations at or after it.
- Errors: every 4xx other than 401/403/404 carries the documented `{"errors": [...]}`; the documentation has no error
  codes, so an error whose wording contains "already in use" is `CodeInUse`, anything else `PartnerRejected` with
  the partner's errors joined by "; ". 401/403 are `PartnerAuthError`, 404 `PartnerNotFound`.
- Update, stop and create answers are read as `{"resultText": ...}`; an absent `resultText` is "".
- A 404 to DELETE means there is no active campaign to stop (stopped before, or never there; an unknown service
  looks the same): `StopOutcome(already_stopped=True)`, so stopping is idempotent for the caller.
- `POST /campaign/{serviceId}` is not idempotent and the HTTP core never retries it blindly. After an ambiguous
  failure (read timeout, 5xx, or a 2xx whose body is not the documented one) we wait a backoff of the retry policy
  (so that a request still in flight at the partner can land), then look the campaign up with the collected-amount
  call: found → `CreateOutcome(recovered=True)`; 404 → POST again, up to `create_attempts` POSTs in all; the
  look-up itself failing → the original ambiguous `PartnerUnavailable` is raised. A retried POST that answers
  "already in use" met our own first attempt → `recovered=True`. Residual assumption: a campaign found on
  (service, route, donation code) is taken to be ours, because the donation code is ours to choose per route and
  the caller chooses a fresh one per campaign; the look-up cannot tell whose campaign it is.

The readings the document leaves open are settings of `UmbrellaClient`, set on a deployed stack through the
`UMBRELLA_PROFILE` JSON (partners.profiles.UmbrellaProfile). An error they could explain names them:

- `key_placement` / `key_parameter`: a 401/403 says "(check UMBRELLA_PROFILE.key_placement, ...key_parameter)".
- `amounts`: "integer_or_string" (default) reads `5000` and `"5000"` alike; "integer" refuses a string amount with
  a `PartnerBadResponse` naming `UMBRELLA_PROFILE.amounts`.
- `donation_codes`: "sensitive" (default) means a donation listed for `anna50` must say `anna50`; one that says
  `ANNA50` is a `PartnerBadResponse` naming `UMBRELLA_PROFILE.donation_codes` (the partner folds case, and the
  donations may belong to another campaign of ours), never silently counted. "insensitive" accepts it. A partner
  that folds case refuses `ANNA50` beside `anna50` with `CodeInUse`: loud either way.
- `stopped_campaign`: "not_found" (default): a stopped campaign answers 404, so a 404 to a read means stopped or
  never there; "readable": a stopped campaign still answers 200 with its data, so a 404 means it never existed,
  and its `PartnerNotFound` names `UMBRELLA_PROFILE.stopped_campaign`. Either way a 404 to DELETE is
  `already_stopped`. Residual: under "readable", the look-up after an ambiguous create also finds a stopped
  campaign of the same code; the hub never reuses a code on a route, so it is ours.
- `code_in_use_wording`: the wording that marks `CodeInUse`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

import requests
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    TypeAdapter,
    ValidationError,
)

from partners.errors import (
    PartnerAuthError,
    PartnerBadResponse,
    PartnerError,
    PartnerNotFound,
    PartnerRejected,
    PartnerUnavailable,
)
from partners.http import Credentials, PartnerHttp, RetryPolicy, Timeouts, default_message
from partners.redact import scrub_text

PARTNER = "umbrella"
PROFILE_VARIABLE = "UMBRELLA_PROFILE"
CAMPAIGNS_PATH = "/public/v1/campaign"
CAMPAIGN_TEMPLATE = "/public/v1/campaign/{serviceId}/{route}/{donationCode}"
CODE_IN_USE_WORDING = "already in use"
CREATED_TEXT = "Campaign created"

logger = logging.getLogger("partners.umbrella")

KeyPlacement = Literal["query", "bearer"]
AmountReading = Literal["integer_or_string", "integer"]
CodeCase = Literal["sensitive", "insensitive"]
StoppedReading = Literal["not_found", "readable"]


def hint(*settings: str) -> str:
    """` (check UMBRELLA_PROFILE.x, ...)`: appended to an error these profile settings could explain."""
    return f" (check {', '.join(f'{PROFILE_VARIABLE}.{name}' for name in settings)})"


class CodeInUse(PartnerRejected):
    """400 'donation code already in use on route' — final."""


# --- models -------------------------------------------------------------------------------------------------


def _amount(value: object) -> object:
    """An amount in øre: an int, or a string of digits (the documentation's example); nothing else."""
    if isinstance(value, bool | float):
        raise ValueError("amount must be an integer number of øre")
    if isinstance(value, str):
        text = value.strip()
        if not text.isascii() or not text.isdigit():
            raise ValueError("amount must be an integer number of øre")
        return int(text)
    return value


def _utc_if_naive(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.utcoffset() is None else value


Amount = Annotated[StrictInt, BeforeValidator(_amount), Field(ge=0)]


class _Answer(BaseModel):
    """What the partner answers: unknown fields are ignored."""

    # Built on first use, not at import (every function imports the adapters, few use each model on a cold start);
    # hub_core.priming builds them before a SnapStart snapshot.
    model_config = ConfigDict(extra="ignore", defer_build=True)


class _Request(BaseModel):
    """What we send: a misspelt field is our bug, so it is refused."""

    # Built on first use, not at import (every function imports the adapters, few use each model on a cold start);
    # hub_core.priming builds them before a SnapStart snapshot.
    model_config = ConfigDict(extra="forbid", defer_build=True)


class CampaignService(_Answer):
    id: int
    name: str
    routes: list[str]


class CampaignCreationRequest(_Request):
    donationCode: str
    route: str
    amount: StrictInt
    callbackUrl: str
    answerMessage: str
    confirmMsisdn: str
    confirmText: str


class CampaignUpdateRequest(_Request):
    amount: StrictInt | None = None
    callbackUrl: str | None = None
    answerMessage: str | None = None
    confirmMsisdn: str | None = None
    confirmText: str | None = None


class CampaignResult(_Answer):
    """CampaignCreationResult, CampaignUpdateResult and CampaignStopResult: one shape."""

    resultText: str = ""


CampaignCreationResult = CampaignUpdateResult = CampaignStopResult = CampaignResult


class CampaignTotalResult(_Answer):
    amount: Amount
    timestampSince: int | None = None


class CampaignDonation(_Answer):
    amount: Amount
    donatedAt: Annotated[datetime, AfterValidator(_utc_if_naive)]
    donationCode: str
    messageKey: str
    msisdn: str
    routeName: str
    text: str = ""


class CampaignApiError(_Answer):
    errors: list[str]


_SERVICES = TypeAdapter(list[CampaignService])
_DONATIONS = TypeAdapter(list[CampaignDonation])
_RESULT = TypeAdapter(CampaignResult)
_TOTAL = TypeAdapter(CampaignTotalResult)


@dataclass(frozen=True)
class CreateOutcome:
    """The campaign exists; `recovered` when an ambiguous failure was resolved by finding it."""

    result: CampaignResult
    recovered: bool


@dataclass(frozen=True)
class StopOutcome:
    """The campaign is stopped; `already_stopped` when there was no active campaign to stop (404)."""

    result: CampaignResult
    already_stopped: bool


# --- client -------------------------------------------------------------------------------------------------


class UmbrellaClient:
    """Calls the Umbrella Indsamlings API through the shared HTTP core."""

    def __init__(
        self,
        base_url: str,
        api_key: Callable[[], str],
        *,
        key_placement: KeyPlacement = "query",
        key_parameter: str = "apikey",
        timeouts: Timeouts | None = None,
        retry: RetryPolicy | None = None,
        create_attempts: int = 2,
        sleep: Callable[[float], None] | None = None,
        amounts: AmountReading = "integer_or_string",
        donation_codes: CodeCase = "sensitive",
        stopped_campaign: StoppedReading = "not_found",
        code_in_use_wording: str = CODE_IN_USE_WORDING,
    ) -> None:
        if key_placement not in ("query", "bearer"):
            raise ValueError("key_placement must be 'query' or 'bearer'")
        if amounts not in ("integer_or_string", "integer"):
            raise ValueError("amounts must be 'integer_or_string' or 'integer'")
        if donation_codes not in ("sensitive", "insensitive"):
            raise ValueError("donation_codes must be 'sensitive' or 'insensitive'")
        if stopped_campaign not in ("not_found", "readable"):
            raise ValueError("stopped_campaign must be 'not_found' or 'readable'")
        if not code_in_use_wording.strip():
            raise ValueError("code_in_use_wording must not be blank")
        self.amounts = amounts
        self.donation_codes = donation_codes
        self.stopped_campaign = stopped_campaign
        self._code_in_use_wording = code_in_use_wording.lower()
        if create_attempts < 1:
            raise ValueError("create_attempts must be at least 1")
        self._api_key = api_key
        self._key_placement = key_placement
        self._key_parameter = key_parameter
        self._key_in_use = ""
        self.create_attempts = create_attempts
        self._sleep = sleep or time.sleep
        self.http = PartnerHttp(
            PARTNER,
            base_url,
            self._credentials,
            message_of=self._error_message,
            timeouts=timeouts,
            retry=retry,
            sleep=self._sleep,
        )

    # --- endpoints ------------------------------------------------------------------------------------------

    def list_services(self) -> list[CampaignService]:
        """GET /public/v1/campaign: the services and the route names of each."""
        response = self._request("GET", CAMPAIGNS_PATH, template=f"GET {CAMPAIGNS_PATH}")
        return _parse(_SERVICES, "a list of CampaignService", self.http.json(response), response)

    def create_campaign(self, service_id: int, request: CampaignCreationRequest) -> CreateOutcome:
        """POST /public/v1/campaign/{serviceId}, resolving an ambiguous failure by looking the campaign up."""
        path = f"{CAMPAIGNS_PATH}/{_service_segment(service_id)}"
        body = request.model_dump(mode="json")
        retried_after_ambiguity = False
        for attempt in range(1, self.create_attempts + 1):
            try:
                response = self._request(
                    "POST", path, template=f"POST {CAMPAIGNS_PATH}/{{serviceId}}", json=body, idempotent=False
                )
                return CreateOutcome(result=self._result(response, ambiguous=True), recovered=False)
            except CodeInUse:
                if not retried_after_ambiguity:
                    raise
                # Our earlier POST landed after all: the code is in use by the campaign we asked for.
                self._log_resolution("in_use_on_retry", attempt)
                return CreateOutcome(result=CampaignResult(resultText=CREATED_TEXT), recovered=True)
            except PartnerUnavailable as failure:
                if not failure.ambiguous:
                    raise
                if self._campaign_exists(service_id, request, failure, attempt):
                    return CreateOutcome(result=CampaignResult(resultText=CREATED_TEXT), recovered=True)
                if attempt >= self.create_attempts:
                    raise
                retried_after_ambiguity = True
        raise AssertionError("unreachable: every attempt returns or raises")  # pragma: no cover

    def update_campaign(
        self, service_id: int, route: str, donation_code: str, request: CampaignUpdateRequest
    ) -> CampaignResult:
        """PUT /public/v1/campaign/{serviceId}/{route}/{donationCode} with the fields given (none → not sent)."""
        response = self._request(
            "PUT",
            _campaign_path(service_id, route, donation_code),
            template=f"PUT {CAMPAIGN_TEMPLATE}",
            json=request.model_dump(mode="json", exclude_none=True),
        )
        return self._result(response)

    def stop_campaign(self, service_id: int, route: str, donation_code: str) -> StopOutcome:
        """DELETE /public/v1/campaign/{serviceId}/{route}/{donationCode}; 404 → already_stopped=True."""
        try:
            response = self._request(
                "DELETE", _campaign_path(service_id, route, donation_code), template=f"DELETE {CAMPAIGN_TEMPLATE}"
            )
        except PartnerNotFound as gone:
            return StopOutcome(result=CampaignResult(resultText=gone.message), already_stopped=True)
        return StopOutcome(result=self._result(response), already_stopped=False)

    def collected_amount(
        self, service_id: int, route: str, donation_code: str, since: int | datetime | None = None
    ) -> CampaignTotalResult:
        """GET /public/v1/campaign/{serviceId}/{route}/{donationCode}[?timestampSince=]: the amount collected."""
        response = self._read(
            _campaign_path(service_id, route, donation_code),
            template=f"GET {CAMPAIGN_TEMPLATE}",
            params=_since_params(since),
        )
        body = self.http.json(response)
        self._check_amounts([body] if isinstance(body, dict) else [], response)
        return _parse(_TOTAL, "CampaignTotalResult", body, response)

    def donations(
        self, service_id: int, route: str, donation_code: str, since: int | datetime | None = None
    ) -> list[CampaignDonation]:
        """GET .../{donationCode}/donations[?timestampSince=]: the campaign's donations."""
        response = self._read(
            f"{_campaign_path(service_id, route, donation_code)}/donations",
            template=f"GET {CAMPAIGN_TEMPLATE}/donations",
            params=_since_params(since),
        )
        body = self.http.json(response)
        self._check_amounts(body if isinstance(body, list) else [], response)
        donations = _parse(_DONATIONS, "a list of CampaignDonation", body, response)
        self._check_codes(donation_code, donations, response)
        return donations

    def same_code(self, one: str, other: str) -> bool:
        """Whether Umbrella takes these two donation codes for the same one (`donation_codes`)."""
        if self.donation_codes == "insensitive":
            return one.casefold() == other.casefold()
        return one == other

    # --- plumbing -------------------------------------------------------------------------------------------

    def _credentials(self) -> Credentials:
        key = self._api_key()
        self._key_in_use = key  # so that an error message echoing the bare key is scrubbed of it too
        if self._key_placement == "bearer":
            return Credentials(headers={"Authorization": f"Bearer {key}"})
        return Credentials(params={self._key_parameter: key})

    def _error_message(self, response: requests.Response) -> str:
        """The partner's `errors` joined by "; " (the core scrubs it further), else the core's default."""
        try:
            body = response.json()
            errors = CampaignApiError.model_validate(body).errors
        except (ValueError, ValidationError):
            errors = []
        text = "; ".join(error for error in errors if error.strip()) or default_message(response)
        return scrub_text(text, [self._key_in_use])

    def _request(self, method: str, path: str, **options: Any) -> requests.Response:
        try:
            return self.http.request(method, path, **options)
        except PartnerAuthError as refused:
            message = refused.message + hint("key_placement", "key_parameter")
            raise PartnerAuthError(PARTNER, message, status=refused.status) from None
        except PartnerRejected as refused:
            if self._code_in_use_wording in refused.message.lower():
                raise CodeInUse(PARTNER, refused.message, status=refused.status) from None
            raise

    def _read(self, path: str, **options: Any) -> requests.Response:
        """A GET of one campaign; under `stopped_campaign="readable"` a 404 says the campaign never existed."""
        try:
            return self._request("GET", path, **options)
        except PartnerNotFound as gone:
            if self.stopped_campaign != "readable":
                raise
            message = f"{gone.message}: no such campaign, stopped or not" + hint("stopped_campaign")
            raise PartnerNotFound(PARTNER, message, status=gone.status) from None

    def _check_amounts(self, items: list[Any], response: requests.Response) -> None:
        """Under `amounts="integer"`, a string amount is refused, naming the setting, rather than read."""
        if self.amounts != "integer":
            return
        if any(isinstance(item, dict) and isinstance(item.get("amount"), str) for item in items):
            message = "the answer's amount is a string where an integer was configured" + hint("amounts")
            raise PartnerBadResponse(PARTNER, message, status=response.status_code)

    def _check_codes(self, asked: str, donations: list[CampaignDonation], response: requests.Response) -> None:
        """A donation listed under another code than the one asked for is never counted silently."""
        for donation in donations:
            if donation.donationCode == asked:
                continue
            if self.donation_codes == "insensitive" and donation.donationCode.casefold() == asked.casefold():
                continue
            differs_in_case = donation.donationCode.casefold() == asked.casefold()
            message = "a donation listed for the campaign carries another donation code" + (
                hint("donation_codes") if differs_in_case else ""
            )
            raise PartnerBadResponse(PARTNER, message, status=response.status_code)

    def _result(self, response: requests.Response, *, ambiguous: bool = False) -> CampaignResult:
        try:
            return _parse(_RESULT, "CampaignResult", self.http.json(response), response)
        except PartnerBadResponse as unreadable:
            if not ambiguous:
                raise
            # A 2xx we cannot read: the campaign may or may not exist, so it goes through the look-up.
            raise PartnerBadResponse(PARTNER, unreadable.message, status=unreadable.status, ambiguous=True) from None

    def _campaign_exists(
        self, service_id: int, request: CampaignCreationRequest, failure: PartnerUnavailable, attempt: int
    ) -> bool:
        """After an ambiguous create: True when the campaign is there, False when it provably is not."""
        self._sleep(self.http.retry.backoff(attempt))
        try:
            self.collected_amount(service_id, request.route, request.donationCode)
        except PartnerNotFound:
            self._log_resolution("absent", attempt)
            return False
        except PartnerError:
            self._log_resolution("unknown", attempt)
            raise failure from None
        self._log_resolution("found", attempt)
        return True

    @staticmethod
    def _log_resolution(outcome: str, attempt: int) -> None:
        logger.info(
            "ambiguous campaign creation checked", extra={"partner": PARTNER, "outcome": outcome, "attempt": attempt}
        )


def _service_segment(service_id: int) -> str:
    if isinstance(service_id, bool) or not isinstance(service_id, int):
        raise TypeError("service_id must be an int")
    return str(service_id)


def _campaign_path(service_id: int, route: str, donation_code: str) -> str:
    if not route or not donation_code:
        raise ValueError("route and donation_code must not be empty")
    return f"{CAMPAIGNS_PATH}/{_service_segment(service_id)}/{quote(route, safe='')}/{quote(donation_code, safe='')}"


def _since_params(since: int | datetime | None) -> dict[str, int]:
    """`timestampSince` in epoch seconds; an aware datetime is floored to the second."""
    if since is None:
        return {}
    if isinstance(since, datetime):
        if since.utcoffset() is None:
            raise ValueError("since must be a timezone-aware datetime")
        return {"timestampSince": math.floor(since.timestamp())}
    if isinstance(since, bool) or not isinstance(since, int):
        raise TypeError("since must be epoch seconds (int) or an aware datetime")
    if since < 0:
        raise ValueError("since must not be negative")
    return {"timestampSince": since}


def _parse[T](adapter: TypeAdapter[T], what: str, body: Any, response: requests.Response) -> T:
    """The body read as `what`; a `PartnerBadResponse` naming the fields at fault, never their values."""
    try:
        return adapter.validate_python(body)
    except ValidationError as exc:
        problems = sorted(
            {
                f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['type']}"
                for error in exc.errors(include_input=False, include_url=False)
            }
        )
        shown = "; ".join(problems[:5]) + ("; …" if len(problems) > 5 else "")
        raise PartnerBadResponse(PARTNER, f"the answer is not {what} ({shown})", status=response.status_code) from None
