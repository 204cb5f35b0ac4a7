"""hub_core.tokens' key ring as the hub reads it: from SSM on moto, parsed once per value, rotations seen at once."""

from __future__ import annotations

import hashlib
import hmac

import boto3
import pytest

from hub_core.config import ConfigError
from hub_core.ratelimit import subject_key
from hub_core.tokens import DonorHasher, KeyRing, donor_hasher, hashing_key
from tests.conftest import in_process_aws

FIRST = "k1:" + "a" * 32
SECOND = "k2:" + "b" * 32
PARAMETER = "/partner-hub/test/callback-signing-key"


@pytest.fixture
def ssm(monkeypatch):
    with in_process_aws(monkeypatch):
        monkeypatch.setenv("CALLBACK_SIGNING_KEY_PARAM", PARAMETER)
        client = boto3.client("ssm")
        client.put_parameter(Name=PARAMETER, Value=f"{FIRST}\n{SECOND}", Type="SecureString")
        yield client


def test_the_first_line_is_the_active_key_and_blank_lines_and_spaces_do_not_count():
    ring = KeyRing.parse(f"\n  {SECOND}  \n\n{FIRST}\n")
    assert ring.active == "k2"
    assert ring.keys == {"k2": b"b" * 32, "k1": b"a" * 32}


def test_a_key_may_hold_colons_after_its_id():
    ring = KeyRing.parse("k1:" + "x:" * 16)
    assert ring.keys["k1"] == ("x:" * 16).encode()


def test_a_key_is_measured_in_bytes():
    assert KeyRing.parse("k1:" + "ø" * 16).keys["k1"] == ("ø" * 16).encode()  # 16 characters, 32 bytes
    with pytest.raises(ConfigError, match="at least 32 bytes"):
        KeyRing.parse("k1:" + "a" * 31)


def test_only_blank_lines_are_an_empty_ring():
    with pytest.raises(ConfigError, match="empty"):
        KeyRing.parse("\n  \n")


def test_the_hashing_key_is_the_active_key_read_from_ssm(ssm):
    assert hashing_key() == b"a" * 32
    # What rate limits key their counters with: not the plain hash of the subject.
    assert subject_key("ip", "198.51.100.7", hashing_key()) != subject_key("ip", "198.51.100.7")


def test_a_donor_hash_is_the_active_keys_labelled_mac(ssm):
    expected = hmac.new(b"a" * 32, b"partner-hub/donor-msisdn/v1\n4512345678", hashlib.sha256).hexdigest()
    assert donor_hasher().hash("4512345678") == f"k1:{expected}"
    assert donor_hasher().candidates("4512345678")[0] == f"k1:{expected}"
    assert donor_hasher().candidates("4512345678")[1].startswith("k2:")


def test_a_missing_key_ring_parameter_is_a_configuration_error(ssm):
    ssm.delete_parameter(Name=PARAMETER)
    with pytest.raises(ConfigError):
        hashing_key()


def test_the_ring_is_parsed_once_per_value_and_again_when_it_changes(monkeypatch):
    values = [FIRST, FIRST, SECOND]
    parsed: list[str] = []
    real = KeyRing.parse

    def counting(value: str) -> KeyRing:
        parsed.append(value)
        return real(value)

    monkeypatch.setattr(KeyRing, "parse", staticmethod(counting))
    hasher = DonorHasher(lambda: values.pop(0))
    first, again = hasher.hash("4512345678"), hasher.hash("4512345678")
    assert first == again
    assert parsed == [FIRST]  # the same value twice: parsed once
    rotated = hasher.hash("4512345678")
    assert rotated.startswith("k2:")
    assert parsed == [FIRST, SECOND]


def test_a_ring_that_turns_bad_is_refused_not_served_from_the_last_good_one():
    values = [FIRST, "k1:short"]
    hasher = DonorHasher(lambda: values.pop(0))
    hasher.hash("4512345678")
    with pytest.raises(ConfigError):
        hasher.hash("4512345678")
