"""The base of each flow's own refusals: an exception whose `message` is fit for the caller as it is."""

from __future__ import annotations


class DomainError(Exception):
    """A request the flow refuses or could not finish. `message` names the field and the rule, never a value (values
    may be personal data); a subclass sets its default, and an instance may carry a more precise one."""

    message = "the request was refused"

    def __init__(self, message: str | None = None) -> None:
        if message is not None:
            self.message = message
        super().__init__(self.message)
