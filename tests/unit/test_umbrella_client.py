"""hub_core.umbrella: the shared Umbrella client's settings from the environment, and the client built from them."""

from __future__ import annotations

import pytest

from hub_core import secrets
from hub_core.config import ConfigError
from hub_core.umbrella import UmbrellaSettings, umbrella_client


@pytest.fixture(autouse=True)
def environment(monkeypatch):
    for name in ("UMBRELLA_BASE_URL", "UMBRELLA_PROFILE", "UMBRELLA_CONNECT_TIMEOUT", "UMBRELLA_READ_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("UMBRELLA_BASE_URL", "http://127.0.0.1:9/umbrella/")


def test_the_defaults_are_the_documented_timeouts():
    config = UmbrellaSettings.from_env()
    assert (config.umbrella_connect_timeout, config.umbrella_read_timeout) == (3.05, 8.0)


def test_the_client_takes_the_settings_address_timeouts_and_three_attempts(monkeypatch):
    monkeypatch.setenv("UMBRELLA_READ_TIMEOUT", "4.5")
    client = umbrella_client(UmbrellaSettings.from_env())  # type: ignore[arg-type]
    assert client.http.base_url == "http://127.0.0.1:9/umbrella"
    assert (client.http.timeouts.connect, client.http.timeouts.read) == (3.05, 4.5)
    assert (client.http.retry.max_attempts, client.http.retry.max_retry_after) == (3, 3.0)


def test_building_the_client_reads_no_secret(monkeypatch):
    reads: list[str] = []
    monkeypatch.setattr("hub_core.umbrella.secret", lambda name: reads.append(name) or "key")
    client = umbrella_client(UmbrellaSettings.from_env())  # type: ignore[arg-type]
    assert reads == []  # a cold start does not touch SSM
    assert client._api_key() == "key"
    assert reads == ["UMBRELLA_API_KEY_PARAM"]  # read on use, so a rotated key is picked up


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [("UMBRELLA_BASE_URL", "", "UMBRELLA_BASE_URL"), ("UMBRELLA_READ_TIMEOUT", "0", "UMBRELLA_READ_TIMEOUT"),
     ("UMBRELLA_CONNECT_TIMEOUT", "-1", "UMBRELLA_CONNECT_TIMEOUT")],
)  # fmt: skip
def test_a_bad_setting_is_a_configuration_error_naming_it(monkeypatch, variable, value, named):
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=named):
        UmbrellaSettings.from_env()


def test_a_profile_naming_a_reading_the_client_does_not_know_is_refused(monkeypatch):
    monkeypatch.setenv("UMBRELLA_PROFILE", '{"amounts": "float"}')
    with pytest.raises(ConfigError, match="UMBRELLA_PROFILE"):
        UmbrellaSettings.from_env()


def test_the_api_key_parameter_is_one_of_the_functions_secrets(monkeypatch):
    monkeypatch.setenv("UMBRELLA_API_KEY_PARAM", "/partner-hub/test/umbrella")
    assert "/partner-hub/test/umbrella" in secrets.function_secret_names()
