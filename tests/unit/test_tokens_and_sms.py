"""Callback and manage tokens, donor hashes and SMS sizes: pure functions, no I/O."""

from __future__ import annotations

import pytest

from campaign_lifecycle.sms import sms_size
from hub_core.config import ConfigError
from hub_core.tokens import (
    DonorHasher,
    KeyRing,
    callback_token_hash,
    callback_token_matches,
    is_callback_token_shaped,
    new_callback_token,
    new_manage_token,
    token_hash,
    token_matches,
)

OLD = "old:" + "o" * 40
NEW = "new:" + "n" * 40


def test_callback_tokens_are_random_and_only_their_hash_matches():
    first, second = new_callback_token(), new_callback_token()
    assert first != second
    assert is_callback_token_shaped(first)
    stored = callback_token_hash(first)
    assert first not in stored
    assert callback_token_matches(first, stored)
    assert not callback_token_matches(second, stored)
    # A campaign made before tokens were stored holds no hash: no token matches it.
    assert not callback_token_matches(first, None)
    # Labelled: a callback token's hash is never what a manage token hashes to.
    assert stored != token_hash(first)


@pytest.mark.parametrize("token", [None, "", "no-dot", "new.abc", "A" * 42, "A" * 44, "A" * 42 + "."])
def test_anything_not_shaped_like_an_issued_callback_token_is_refused(token):
    assert not is_callback_token_shaped(token)


def test_donor_hashes_are_keyed_stable_and_found_under_every_key_of_the_ring():
    before = DonorHasher(lambda: OLD).hash("4512345678")
    assert before.startswith("old:")
    assert "4512345678" not in before
    assert before == DonorHasher(lambda: OLD).hash("4512345678")
    assert before != DonorHasher(lambda: OLD).hash("4512345679")
    rotated = DonorHasher(lambda: f"{NEW}\n{OLD}\n")
    assert rotated.hash("4512345678").startswith("new:")
    assert before in rotated.candidates("4512345678")
    assert len(rotated.candidates("4512345678")) == 2


def test_a_bare_secret_is_one_key_with_id_zero():
    ring = KeyRing.parse("s" * 32)
    assert (ring.active, list(ring.keys)) == ("0", ["0"])


@pytest.mark.parametrize("value", ["", "k:short", f"bad id:{'x' * 40}", f"{NEW}\n{NEW}"])
def test_a_bad_key_ring_is_a_configuration_error_that_names_no_secret(value):
    with pytest.raises(ConfigError) as raised:
        KeyRing.parse(value)
    assert "x" * 40 not in str(raised.value)
    assert "n" * 40 not in str(raised.value)


def test_manage_tokens_are_random_and_only_their_hash_matches():
    first, second = new_manage_token(), new_manage_token()
    assert first != second
    assert len(first) >= 43
    assert token_matches(first, token_hash(first))
    assert not token_matches(second, token_hash(first))
    assert first not in token_hash(first)


@pytest.mark.parametrize(
    ("text", "encoding", "units", "fits"),
    [
        ("a" * 160, "GSM-7", 160, True),
        ("a" * 161, "GSM-7", 161, False),
        ("Tak for din støtte, Åse! Æbler", "GSM-7", 30, True),
        ("€" * 80, "GSM-7", 160, True),
        ("€" * 81, "GSM-7", 162, False),
        ("x" * 70 + "é", "GSM-7", 71, True),
        ("🎉" * 35, "UCS-2", 70, True),
        ("ł" * 71, "UCS-2", 71, False),
    ],
)
def test_sms_sizes_follow_gsm_and_ucs2(text, encoding, units, fits):
    size = sms_size(text)
    assert (size.encoding, size.units, size.fits) == (encoding, units, fits)


def test_a_concatenated_sms_holds_less_per_part():
    assert sms_size("a" * 306, messages=2).fits
    assert not sms_size("a" * 307, messages=2).fits
    assert sms_size("ł" * 134, messages=2).fits
    assert not sms_size("ł" * 135, messages=2).fits
