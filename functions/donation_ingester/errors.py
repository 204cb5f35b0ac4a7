"""What the donation ingester refuses or cannot finish, in its own terms; app.py alone turns each into an HTTP answer.

Messages are shown to the caller (Umbrella's webhook) as they are: never a donor's number or a token.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from hub_core.domain_errors import DomainError


class IngesterError(DomainError):
    """A callback the flow refuses or could not finish; `message` is fit for the caller."""

    message = "the donation callback was refused"


class CallbackTokenMissing(IngesterError):
    """The callback URL lacks a token (or what is there cannot be one of ours)."""

    message = "this callback URL needs the token the campaign was created with"


class CallbackTokenRefused(IngesterError):
    """A token this campaign does not hold (any more)."""

    message = "this token does not belong to this campaign"


class CallbackRevoked(IngesterError):
    """The campaign was stopped longer ago than the grace period: its callback URL no longer works."""

    message = "this campaign was stopped; its callback URL no longer works"


class InvalidDonation(IngesterError):
    """The payload is not a donation; `errors` are pydantic's, without the submitted values."""

    message = "the donation is not valid"

    def __init__(self, errors: Sequence[Mapping[str, Any]]) -> None:
        super().__init__()
        self.errors = list(errors)


class PublishFailed(IngesterError):
    """The donation is recorded but its hint did not reach the bus: a repeat of the callback publishes it."""

    message = "the donation is recorded; send it again so it is verified"
