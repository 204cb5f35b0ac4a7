"""One erasure: the hub's tables first (every step repeatable), then app's miles' user/multidelete; the report says
what was erased where. Nothing here logs, raises or answers an identifier of the person.

Every entry point takes the function's collaborators (services.ErasureServices: the tables, the donor hasher, app's
miles, the clock), built once at the handler's edge; nothing here reaches a module-level factory."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from erasure import SERVICE
from erasure.models import MIIMOSA_NOTE, AppsMilesOutcome, Erased, ErasureReport, ErasureRequest
from erasure.services import ErasureServices
from hub_core.http_api import FieldProblem, problems_from
from hub_core.identifiers import email_key
from hub_core.observability import logger_for, metrics_for
from partners.errors import PartnerError

logger = logger_for(SERVICE)
metrics = metrics_for(SERVICE)


class Invalid(Exception):
    """The request names nobody, or names someone in a form we do not accept: nothing was erased."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        super().__init__("the erasure request is not valid")
        self.problems = problems


class PartnerStepFailed(Exception):
    """The hub's tables are erased, app's miles' step is not: `report` says what was done, `cause` why not."""

    def __init__(self, report: ErasureReport, cause: PartnerError) -> None:
        super().__init__(f"erased locally; app's miles' user/multidelete failed ({type(cause).__name__})")
        self.report = report
        self.cause = cause


def parse(services: ErasureServices, fields: Any) -> ErasureRequest:
    if not isinstance(fields, dict):
        raise Invalid([FieldProblem("body", "object", "must be a JSON object of email, msisdn, appsMilesUserId")])
    try:
        config = services.settings
        context = {"msisdn_pattern": config.msisdn_pattern, "phone_country_code": config.phone_country_code}
        return ErasureRequest.model_validate(fields, context=context)
    except ValidationError as exc:
        raise Invalid(problems_from(exc.errors(include_input=False, include_url=False))) from None


def erase(services: ErasureServices, request: ErasureRequest) -> ErasureReport:
    """Erase the person everywhere; raises PartnerStepFailed (with the local report) when app's miles failed."""
    now = int(services.now())
    tables = services.store
    erased = Erased()
    if request.email or request.msisdn or request.appsMilesUserId:
        # A lead's phone is found by the same key intake stored (hub_core.identifiers.phone_key).
        erased.leads = tables.erase_leads(
            email_key=email_key(request.email) if request.email else None,
            phone_key=request.msisdn,
            user_id=request.appsMilesUserId,
        )
    if request.msisdn or request.appsMilesUserId:
        erased.campaigns = tables.erase_campaign_creator(
            msisdn=request.msisdn, user_id=request.appsMilesUserId, now=now
        )
    if request.msisdn:
        # Donations hold the number's keyed hash (under any key of the ring), or the number itself if stored earlier.
        erased.donations = tables.erase_donor([*services.hasher.candidates(request.msisdn), request.msisdn])
    if request.appsMilesUserId:
        erased.loyalty_records = tables.erase_loyalty_user(request.appsMilesUserId)
        erased.licences = tables.erase_licence_member(request.appsMilesUserId)
    report = ErasureReport(erased=erased, appsmiles=AppsMilesOutcome.NOT_ASKED, notes=_notes(request))
    # Counts only: which identifiers were given is itself said by the kinds, never their values.
    logger.info("erased locally", extra={"erased": erased.model_dump(), "kinds": _kinds(request)})
    if request.appsMilesUserId:
        try:
            answer = services.appsmiles().multidelete([request.appsMilesUserId])
        except PartnerError as exc:
            report.appsmiles = None
            metrics.add_metric(name="ErasurePartnerFailed", unit="Count", value=1)
            raise PartnerStepFailed(report, exc) from None
        report.appsmiles = (
            AppsMilesOutcome.DELETED if request.appsMilesUserId in answer.deleted else AppsMilesOutcome.UNKNOWN
        )
    metrics.add_metric(name="ErasureCompleted", unit="Count", value=1)
    logger.info("erasure completed", extra={"appsmiles": report.appsmiles})
    return report


def _notes(request: ErasureRequest) -> list[str]:
    return [MIIMOSA_NOTE] if request.email else []


def _kinds(request: ErasureRequest) -> list[str]:
    return [name for name, value in request.model_dump().items() if value is not None]
