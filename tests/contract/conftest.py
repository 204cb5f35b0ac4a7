"""Helpers of the contract suite: every mismatch must fail loudly, with an error naming the profile setting."""

from __future__ import annotations

import pytest

from partners.errors import PartnerError


def assert_names_setting(caught: pytest.ExceptionInfo[PartnerError], *settings: str) -> None:
    """The failure names at least one of `settings` (e.g. "UMBRELLA_PROFILE.key_parameter")."""
    message = caught.value.message
    assert any(setting in message for setting in settings), f"{message!r} names none of {settings}"
