"""Callback signatures, manage tokens and SMS sizes: pure functions, no I/O."""

from __future__ import annotations

import pytest

from campaign_lifecycle.sms import sms_size
from hub_core.config import ConfigError
from hub_core.tokens import CallbackSigner, KeyRing, new_manage_token, token_hash, token_matches

OLD = "old:" + "o" * 40
NEW = "new:" + "n" * 40


def test_a_token_verifies_for_its_campaign_only():
    signer = CallbackSigner(lambda: NEW)
    token = signer.token_for("1/hjerte/anna50")
    assert token.startswith("new.")
    assert signer.verify("1/hjerte/anna50", token)
    assert not signer.verify("1/hjerte/anna51", token)
    assert not signer.verify("1/hjerte/anna50", token[:-1] + ("A" if token[-1] != "A" else "B"))


def test_rotation_signs_with_the_first_key_and_still_verifies_the_old_ones():
    before = CallbackSigner(lambda: OLD).token_for("2/stoet/x1")
    rotated = CallbackSigner(lambda: f"{NEW}\n{OLD}\n")
    assert rotated.verify("2/stoet/x1", before)
    assert rotated.token_for("2/stoet/x1").startswith("new.")
    retired = CallbackSigner(lambda: NEW)
    assert not retired.verify("2/stoet/x1", before)


@pytest.mark.parametrize("token", ["", "no-dot", "unknown.abc", ".abc", "new."])
def test_malformed_tokens_and_unknown_key_ids_are_refused(token):
    assert not CallbackSigner(lambda: NEW).verify("1/a/b", token)


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
