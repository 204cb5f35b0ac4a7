"""How every function calls a partner: its profile's wire options, the timeouts its settings name, one retry policy."""

from __future__ import annotations

from typing import Any, Protocol

from partners.http import RetryPolicy, Timeouts

# At most three attempts, and a Retry-After waited for only up to 3 s: a longer one defers the work instead.
RETRY = RetryPolicy(max_attempts=3, max_retry_after=3.0)


class Profile(Protocol):
    """A partner's wire profile (partners.profiles)."""

    def client_options(self) -> dict[str, Any]: ...


def client_options(profile: Profile, connect_timeout: float, read_timeout: float) -> dict[str, Any]:
    """The keyword arguments of a partner's client beside its address and its secret."""
    timeouts = Timeouts(connect=connect_timeout, read=read_timeout)
    return {"timeouts": timeouts, "retry": RETRY, **profile.client_options()}
