"""Site signatures over app's miles member ids: what passes, and each way a forged or stale one fails."""

from __future__ import annotations

import pytest

from hub_core.config import ConfigError
from hub_core.member_signature import Verdict, sign, verify

KEY = "k" * 32
OLD_KEY = "o" * 32
NOW = 1_800_000_000


def ring(value: str = KEY):
    return lambda: value


def test_a_signature_vouches_for_its_member_until_it_expires():
    signature = sign("member-1", NOW + 600, KEY)
    assert verify("member-1", signature, ring(), now=NOW) is Verdict.VALID
    assert verify("member-1", signature, ring(), now=NOW + 599) is Verdict.VALID
    assert verify("member-1", signature, ring(), now=NOW + 600) is Verdict.EXPIRED


@pytest.mark.parametrize(
    ("member", "signature", "verdict"),
    [
        ("member-1", None, Verdict.UNSIGNED),
        ("member-1", "", Verdict.UNSIGNED),
        ("member-2", sign("member-1", NOW + 600, KEY), Verdict.BAD_SIGNATURE),
        ("member-1", sign("member-1", NOW + 600, "x" * 32), Verdict.BAD_SIGNATURE),
        ("member-1", "1800000600", Verdict.BAD_SIGNATURE),
        ("member-1", "soon." + "A" * 43, Verdict.BAD_SIGNATURE),
        ("member-1", "١٨٠٠٠٠٠٦٠٠." + "A" * 43, Verdict.BAD_SIGNATURE),  # non-ASCII digits
        ("member-1", sign("member-1", NOW + 2 * 86_400, KEY), Verdict.TOO_LONG_LIVED),
    ],
)
def test_forged_and_stale_signatures_fail(member, signature, verdict):
    assert verify(member, signature, ring(), now=NOW) is verdict


def test_moving_the_expiry_breaks_the_mac():
    expiry, _, mac = sign("member-1", NOW + 60, KEY).partition(".")
    assert verify("member-1", f"{int(expiry) + 3600}.{mac}", ring(), now=NOW) is Verdict.BAD_SIGNATURE


def test_the_first_key_signs_and_every_key_verifies():
    rotated = f"{KEY}\n{OLD_KEY}\n"
    assert sign("m", NOW + 60, rotated) == sign("m", NOW + 60, KEY)
    assert verify("m", sign("m", NOW + 60, OLD_KEY), ring(rotated), now=NOW) is Verdict.VALID
    assert verify("m", sign("m", NOW + 60, OLD_KEY), ring(), now=NOW) is Verdict.BAD_SIGNATURE


def test_the_key_ring_is_not_read_for_an_unsigned_id():
    def unreadable() -> str:
        raise AssertionError("read")

    assert verify("m", None, unreadable, now=NOW) is Verdict.UNSIGNED


@pytest.mark.parametrize("value", ["", "\n \n", "short"])
def test_an_empty_or_weak_key_is_a_configuration_error(value):
    with pytest.raises(ConfigError):
        sign("m", NOW, value)
