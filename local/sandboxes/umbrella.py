"""Loopback stand-in for LinkMobility's Umbrella Indsamlings API: campaigns, totals, donations, and donors on demand.

The routes follow the documentation under the API root (`/public/v1/campaign...`), so a client given the sandbox's
URL as its base URL calls it as it would call `https://indsamling.m2go.dk/api`.

The document can be read several ways; `UmbrellaModes` picks the reading played (constructor `modes=`,
`set_modes()`, `PUT /_sandbox/modes`, or `UMBRELLA_SANDBOX_MODES` for `make run`): the key's query parameter
spelled `apikey` (the introduction) or `apiKey` (the parameter tables), and whether `Authorization: Bearer` is
taken too; donation amounts as integers (the models) or strings (the example's `"5000"`); donation codes matched
case-sensitively or not (a donor texting `ANNA50` to a campaign `anna50` is recorded with the donor's spelling);
a stopped campaign answering 404 or still 200 with its data.

The sandbox also plays the donor, as the real platform does: `donate()` (or `POST /_sandbox/donate`) records a
donation and calls the campaign's `callbackUrl` with it — only ever on loopback.

And it plays the phone network: every SMS the platform would send — `confirmText` to `confirmMsisdn` when a campaign
is created (the documented "message sent to the creator of the campaign - when it is created"), `answerMessage` to a
donor — is kept in `sent_sms` (`GET /_sandbox/sms?to=<msisdn>`), so that tests read a creator's manage code there as
the creator reads it on their phone.
"""

from __future__ import annotations

import argparse
import hmac
import re
import threading
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sandboxes.base import CONTROL_PREFIX, SandboxServer, route, serve_until_interrupted
from sandboxes.messages import SandboxRequest, SandboxResponse, json_response
from sandboxes.umbrella_callbacks import deliver_callback, is_loopback_url
from sandboxes.umbrella_rules import (
    ACCESS_DENIED,
    API_PREFIX,
    CAMPAIGN_PATH,
    CODE_IN_USE,
    CREATION_FIELDS,
    DEFAULT_API_KEY,
    DEFAULT_DONOR_MSISDN,
    DONATE_FIELDS,
    NO_CAMPAIGN,
    NO_SERVICE,
    SEED_SERVICES,
    SERVICE_ID,
    UPDATE_FIELDS,
    Campaign,
    CampaignNotFound,
    DonationRefused,
    PayloadForm,
    Service,
    UmbrellaModes,
    as_service,
    donation_problems,
    errors,
    is_int,
    parse_instant,
    validate_campaign_fields,
)


class UmbrellaSandbox(SandboxServer):
    """The Umbrella Indsamlings API on loopback; `amounts_as_strings` is `modes={"amounts": "string"}`."""

    MODES = UmbrellaModes
    modes: UmbrellaModes

    def __init__(
        self,
        api_key: str = DEFAULT_API_KEY,
        port: int = 0,
        services: Sequence[Service | Mapping[str, Any]] | None = None,
        *,
        amounts_as_strings: bool = False,
        clock: Callable[[], datetime] | None = None,
        modes: UmbrellaModes | Mapping[str, Any] | str | None = None,
    ) -> None:
        super().__init__(port, modes=modes)
        self.api_key = api_key
        if amounts_as_strings:
            self.set_modes(amounts="string")
        self._clock = clock or (lambda: datetime.now(UTC))
        chosen = SEED_SERVICES if services is None else services
        self.services: tuple[Service, ...] = tuple(as_service(service) for service in chosen)
        self._campaigns: list[Campaign] = []
        self._sms: list[dict[str, str]] = []
        self._campaigns_lock = threading.Lock()

    # --- inspection -----------------------------------------------------------------------------------------

    @property
    def campaigns(self) -> list[dict[str, Any]]:
        """Every campaign created so far, stopped ones included, oldest first (copies)."""
        with self._campaigns_lock:
            return [campaign.snapshot() for campaign in self._campaigns]

    def sent_sms(self, to: str | None = None) -> list[dict[str, str]]:
        """The SMS sent so far (`to`, `kind` "confirm" or "answer", `text`), oldest first; those `to` when given."""
        with self._campaigns_lock:
            return [dict(sms) for sms in self._sms if to is None or sms["to"] == to]

    def reset(self) -> None:
        super().reset()
        with self._campaigns_lock:
            self._campaigns.clear()
            self._sms.clear()

    # --- the documented API ---------------------------------------------------------------------------------

    def authorize(self, request: SandboxRequest) -> SandboxResponse | None:
        given = request.query_value(self.modes.key_parameter)
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if given is None and scheme.lower() == "bearer" and self.modes.accept_bearer:
            given = token.strip()
        if given is None or not hmac.compare_digest(given.encode(), self.api_key.encode()):
            return json_response(403, errors(ACCESS_DENIED))
        return None

    @route("GET", API_PREFIX)
    def list_services(self, request: SandboxRequest) -> SandboxResponse:
        return json_response(200, [service.to_json() for service in self.services])

    @route("POST", f"{API_PREFIX}/{{serviceId}}")
    def create_campaign(self, request: SandboxRequest) -> SandboxResponse:
        service = self._service(request)
        if isinstance(service, SandboxResponse):
            return service
        if request.json_error:
            return json_response(400, errors(request.json_error))
        values, problems = validate_campaign_fields(request.json, CREATION_FIELDS, required=True, routes=service.routes)
        if problems:
            return json_response(400, errors(*problems))
        with self._campaigns_lock:
            if self._find(service.id, values["route"], values["donationCode"]) is not None:
                return json_response(400, errors(CODE_IN_USE))
            self._campaigns.append(Campaign(serviceId=service.id, **values))
            self._sms.append({"to": values["confirmMsisdn"], "kind": "confirm", "text": values["confirmText"]})
        return json_response(200, {"resultText": "Campaign created"})

    @route("PUT", CAMPAIGN_PATH)
    def update_campaign(self, request: SandboxRequest) -> SandboxResponse:
        found = self._campaign_of(request)
        if isinstance(found, SandboxResponse):
            return found
        if request.json_error:
            return json_response(400, errors(request.json_error))
        values, problems = validate_campaign_fields(request.json, UPDATE_FIELDS, required=False)
        if problems:
            return json_response(400, errors(*problems))
        with self._campaigns_lock:
            if not found.active:  # pragma: no cover - stopped while this request was being judged
                return json_response(404, errors(NO_CAMPAIGN))
            for name, value in values.items():
                setattr(found, name, value)
        return json_response(200, {"resultText": "Campaign updated"})

    @route("DELETE", CAMPAIGN_PATH)
    def stop_campaign(self, request: SandboxRequest) -> SandboxResponse:
        # Under "readable", a stopped campaign is still there: stopping it again answers as the first time did.
        found = self._campaign_of(request, stopped_too=self.modes.stopped_campaign == "readable")
        if isinstance(found, SandboxResponse):
            return found
        with self._campaigns_lock:
            if not found.active and self.modes.stopped_campaign == "not_found":  # pragma: no cover - a race
                return json_response(404, errors(NO_CAMPAIGN))
            found.active = False
        return json_response(200, {"resultText": "Campaign stopped"})

    @route("GET", CAMPAIGN_PATH)
    def collected_amount(self, request: SandboxRequest) -> SandboxResponse:
        selected = self._donations_since(request)
        if isinstance(selected, SandboxResponse):
            return selected
        since, donations = selected
        return json_response(200, {"amount": sum(d["amount"] for d in donations), "timestampSince": since})

    @route("GET", f"{CAMPAIGN_PATH}/donations")
    def list_donations(self, request: SandboxRequest) -> SandboxResponse:
        selected = self._donations_since(request)
        if isinstance(selected, SandboxResponse):
            return selected
        return json_response(200, [self._donation_json(donation) for donation in selected[1]])

    # --- the donor ------------------------------------------------------------------------------------------

    def donate(
        self,
        service_id: int,
        route: str,
        donation_code: str,
        *,
        amount: int | None = None,
        msisdn: str = DEFAULT_DONOR_MSISDN,
        text: str | None = None,
        deliver: bool = True,
        payload_form: PayloadForm = "json",
        repeat: int = 1,
        donated_at: datetime | None = None,
    ) -> dict[str, Any]:
        """Donate to an active campaign and, when `deliver`, call its callbackUrl `repeat` times with the donation.

        Returns `{"donation": ..., "deliveries": [{"status": ...}, ...]}`. Raises `CampaignNotFound` when no active
        campaign matches and `DonationRefused` for a bad option or a callback URL off loopback (nothing recorded).
        """
        problems = donation_problems(
            amount=amount,
            msisdn=msisdn,
            text=text,
            deliver=deliver,
            payload_form=payload_form,
            repeat=repeat,
            donated_at=donated_at,
        )
        if problems:
            raise DonationRefused("; ".join(problems))
        with self._campaigns_lock:
            campaign = self._find(service_id, route, donation_code)
            if campaign is None:
                raise CampaignNotFound(NO_CAMPAIGN)
            # Case-insensitive codes: the donor's spelling is what the platform records.
            spelled = donation_code if self.modes.donation_codes == "insensitive" else campaign.donationCode
            if deliver and not is_loopback_url(campaign.callbackUrl):
                raise DonationRefused("callbackUrl is not on loopback (127.0.0.1, localhost or ::1)")
            when = (donated_at or self._clock()).astimezone(UTC).replace(microsecond=0)
            donation = {
                "amount": campaign.amount if amount is None else amount,
                "donatedAt": when.isoformat(),
                "donationCode": spelled,
                "messageKey": str(uuid.uuid4()),
                "msisdn": msisdn,
                "routeName": campaign.route,
                "text": campaign.answerMessage if text is None else text,
            }
            campaign.donations.append(donation)
            self._sms.append({"to": msisdn, "kind": "answer", "text": campaign.answerMessage})
            callback_url = campaign.callbackUrl
        # Outside the lock: the callback target may well call this sandbox back.
        payload = self._donation_json(donation)
        deliveries = [deliver_callback(callback_url, payload, payload_form) for _ in range(repeat if deliver else 0)]
        return {"donation": payload, "deliveries": deliveries}

    @route("GET", f"{CONTROL_PREFIX}/campaigns")
    def _list_campaigns(self, request: SandboxRequest) -> SandboxResponse:
        """Every campaign as `campaigns` shows it (callbackUrl included): what tools of this machine read, such
        as the callback token `hub invoke --running` fills into an events file."""
        return json_response(200, self.campaigns)

    @route("POST", f"{CONTROL_PREFIX}/donate")
    def _donate(self, request: SandboxRequest) -> SandboxResponse:
        spec = request.json
        if not isinstance(spec, dict):
            return json_response(400, errors("body must be a JSON object"))
        unknown = sorted(set(spec) - DONATE_FIELDS)
        if unknown:
            return json_response(400, errors(f"unknown fields: {', '.join(unknown)}"))
        service_id, route_name, code = spec.get("serviceId"), spec.get("route"), spec.get("donationCode")
        problems = [] if is_int(service_id) else ["serviceId must be an integer"]
        problems += [
            f"{name} must be a string" for name in ("route", "donationCode") if not isinstance(spec.get(name), str)
        ]
        donated_at = parse_instant(spec.get("donated_at"), problems)
        if problems or not isinstance(service_id, int) or not isinstance(route_name, str) or not isinstance(code, str):
            return json_response(400, errors(*problems))
        options = {
            name: spec[name]
            for name in ("amount", "msisdn", "text", "deliver", "payload_form", "repeat")
            if name in spec
        }
        try:
            outcome = self.donate(service_id, route_name, code, donated_at=donated_at, **options)
        except CampaignNotFound:
            return json_response(404, errors(NO_CAMPAIGN))
        except DonationRefused as refused:
            return json_response(400, errors(str(refused)))
        return json_response(200, outcome)

    @route("GET", f"{CONTROL_PREFIX}/sms")
    def _sent_sms(self, request: SandboxRequest) -> SandboxResponse:
        return json_response(200, self.sent_sms(request.query_value("to")))

    # --- helpers --------------------------------------------------------------------------------------------

    def _service(self, request: SandboxRequest) -> Service | SandboxResponse:
        raw = request.path_params["serviceId"]
        if not SERVICE_ID.fullmatch(raw):
            return json_response(400, errors("serviceId must be an integer"))
        for service in self.services:
            if service.id == int(raw):
                return service
        return json_response(404, errors(NO_SERVICE))

    def _find(self, service_id: int, route_name: str, code: str, *, stopped_too: bool = False) -> Campaign | None:
        """The active campaign on (service, route, code), else with `stopped_too` the latest stopped one; call
        with the lock held. Codes compare as the `donation_codes` mode says."""
        fold = self.modes.donation_codes == "insensitive"
        wanted = code.casefold() if fold else code
        matching = [
            campaign
            for campaign in self._campaigns
            if (campaign.serviceId, campaign.route) == (service_id, route_name)
            and (campaign.donationCode.casefold() if fold else campaign.donationCode) == wanted
        ]
        active = next((campaign for campaign in matching if campaign.active), None)
        if active is not None or not stopped_too:
            return active
        return matching[-1] if matching else None

    def _campaign_of(self, request: SandboxRequest, *, stopped_too: bool = False) -> Campaign | SandboxResponse:
        service = self._service(request)
        if isinstance(service, SandboxResponse):
            return service
        with self._campaigns_lock:
            found = self._find(
                service.id, request.path_params["route"], request.path_params["donationCode"], stopped_too=stopped_too
            )
        return json_response(404, errors(NO_CAMPAIGN)) if found is None else found

    def _donations_since(self, request: SandboxRequest) -> tuple[int | None, list[dict[str, Any]]] | SandboxResponse:
        found = self._campaign_of(request, stopped_too=self.modes.stopped_campaign == "readable")
        if isinstance(found, SandboxResponse):
            return found
        raw = request.query_value("timestampSince")
        if raw is not None and not re.fullmatch(r"[0-9]{1,10}", raw):
            return json_response(400, errors("timestampSince must be an integer (seconds since 1970)"))
        since = None if raw is None else int(raw)
        with self._campaigns_lock:
            donations = [dict(donation) for donation in found.donations]
        if since is not None:
            donations = [d for d in donations if datetime.fromisoformat(d["donatedAt"]).timestamp() >= since]
        return since, donations

    def _donation_json(self, donation: Mapping[str, Any]) -> dict[str, Any]:
        shown = dict(donation)
        if self.modes.amounts == "string":
            shown["amount"] = str(shown["amount"])
        return shown


def main(argv: Sequence[str] | None = None, stop: threading.Event | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandboxes.umbrella", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the apikey to accept")
    parser.add_argument(
        "--amounts-as-strings", action="store_true", help='donation amounts as strings, like the documented "5000"'
    )
    parser.add_argument("--modes", default="", help='the reading played, as JSON, e.g. {"key_parameter": "apiKey"}')
    args = parser.parse_args(argv)
    sandbox = UmbrellaSandbox(
        api_key=args.api_key, port=args.port, amounts_as_strings=args.amounts_as_strings, modes=args.modes
    )
    serve_until_interrupted(sandbox, stop)
    return 0


if __name__ == "__main__":  # pragma: no cover - exercised through a subprocess by the tests
    raise SystemExit(main())
