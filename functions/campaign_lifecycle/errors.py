"""What the campaign flow refuses, in its own terms; app.py alone turns each refusal into an HTTP answer.

Every message here is shown to the caller as it is: it names the field and the rule, never a value (values may be a
phone number). The status codes, error codes and headers live in app.py's exception handlers, not here.
"""

from __future__ import annotations

from hub_core.domain_errors import DomainError


class CampaignError(DomainError):
    """A campaign request the flow refuses; `message` is fit for the caller."""

    message = "the campaign request was refused"


class InvalidCampaign(CampaignError):
    """The campaign breaks a rule only the flow can check (the services Umbrella lists, the SMS length)."""

    def __init__(self, field: str, rule: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.rule = rule


class RefusedByUmbrella(CampaignError):
    """Umbrella refused the create or the change outright; sending it again unchanged cannot help."""


class CreationRateLimited(CampaignError):
    """Too many creates from one client address, or too many confirm SMSs to one number, in the window.

    `field` is the form field the limit is about (None for the client address); `retry_after` is whole seconds.
    """

    def __init__(self, message: str, *, retry_after: int, field: str | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.field = field


class CampaignNotFound(CampaignError):
    """No campaign the hub created has this key (one never completed counts as none)."""

    message = "no campaign with this service, route and donation code"


class ManageTokenMissing(CampaignError):
    """A manage route called without `Authorization: Bearer <manageToken>`."""

    message = "send the campaign's manage token as Authorization: Bearer <token>"


class ManageTokenRefused(CampaignError):
    """A manage token that is not this campaign's."""

    message = "this manage token does not belong to this campaign"


class CampaignConflict(CampaignError):
    """The campaign's state does not allow the request just now: the four kinds below."""


class DonationCodeInUse(CampaignConflict):
    """Another campaign (ours or not) holds this donation code on the route."""

    message = "is already in use on this route; choose another code"
    field = "donationCode"


class CreateInProgress(CampaignConflict):
    """Another request is creating a campaign with this code right now; it may be retried shortly."""

    message = "a campaign with this code is being created right now; try again shortly"


class CampaignStopped(CampaignConflict):
    """The campaign is stopped (here, or found gone at Umbrella): it cannot be changed."""

    message = "a stopped campaign cannot be changed"


class CampaignChanged(CampaignConflict):
    """Our record changed between the read and the write: the caller should read it again."""

    message = "the campaign changed meanwhile; read it and try again"
