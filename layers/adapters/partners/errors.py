"""The few typed errors every adapter raises, so no `requests` exception ever leaves the layer."""

from __future__ import annotations


class PartnerError(Exception):
    """Base of every partner failure.

    `message` is safe to log and to show: adapters scrub it of keys and personal data before raising.
    """

    def __init__(self, partner: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{partner}: {message}")
        self.partner = partner
        self.message = message
        self.status = status

    def log_fields(self) -> dict[str, object]:
        """What a log line may say of this failure: all of it is free of secrets and personal data."""
        return {"partner": self.partner, "kind": type(self).__name__, "status": self.status, "detail": self.message}


class PartnerRejected(PartnerError):
    """The partner refused the request for a reason that repeating it will not change (final)."""


class PartnerUnavailable(PartnerError):
    """The partner could not answer now (timeout, connection error, 5xx, 429): try again later.

    `ambiguous` is True when the request may have been processed all the same (a read timeout or a 5xx after the
    body was sent), so a retry of a non-idempotent call must first look for its effect.
    """

    def __init__(
        self,
        partner: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        ambiguous: bool = False,
    ) -> None:
        super().__init__(partner, message, status=status)
        self.retry_after = retry_after
        self.ambiguous = ambiguous


class OutOfTime(PartnerUnavailable):
    """No call (or no further attempt) was made: what is left of the invocation's time could not hold it.

    Never ambiguous by itself: nothing was sent. When an earlier attempt was cut short, the error of that attempt is
    raised instead, with its own ambiguity.
    """


class PartnerBadResponse(PartnerUnavailable):
    """The partner answered with a body we cannot read; treated as a passing fault."""


class PartnerAuthError(PartnerError):
    """Our credentials were refused (401/403): an operator must fix the key, retrying alone will not help."""


class PartnerNotFound(PartnerError):
    """The resource asked for does not exist at the partner (404)."""
