"""hub_core.config: settings read from upper-cased variables, validated, frozen, and errors that name no value."""

from __future__ import annotations

import pytest
from pydantic import Field, field_validator

from hub_core.config import ConfigError, Settings


class QueueSettings(Settings):
    queue_url: str = Field(min_length=1)
    batch_size: int = Field(default=10, ge=1, le=10)
    dry_run: bool = False

    @field_validator("queue_url")
    @classmethod
    def _local_only(cls, value: str) -> str:
        if not value.startswith("http://127.0.0.1"):
            raise ValueError("must point at 127.0.0.1")
        return value


@pytest.fixture(autouse=True)
def clean(monkeypatch):
    for name in ("QUEUE_URL", "BATCH_SIZE", "DRY_RUN", "queue_url"):
        monkeypatch.delenv(name, raising=False)


def test_defaults_fill_what_the_environment_does_not_set(monkeypatch):
    monkeypatch.setenv("QUEUE_URL", "http://127.0.0.1:9/q")
    assert QueueSettings.from_env() == QueueSettings(queue_url="http://127.0.0.1:9/q", batch_size=10, dry_run=False)


def test_values_are_converted_from_their_strings(monkeypatch):
    monkeypatch.setenv("QUEUE_URL", "http://127.0.0.1:9/q")
    monkeypatch.setenv("BATCH_SIZE", "3")
    monkeypatch.setenv("DRY_RUN", "true")
    settings = QueueSettings.from_env()
    assert (settings.batch_size, settings.dry_run) == (3, True)


def test_only_the_upper_cased_name_is_read(monkeypatch):
    monkeypatch.setenv("queue_url", "http://127.0.0.1:9/lower")
    with pytest.raises(ConfigError, match=r"QUEUE_URL \(missing\)"):
        QueueSettings.from_env()


def test_other_variables_are_ignored_and_settings_cannot_change(monkeypatch):
    monkeypatch.setenv("QUEUE_URL", "http://127.0.0.1:9/q")
    monkeypatch.setenv("SOMETHING_ELSE", "x")
    settings = QueueSettings.from_env()
    with pytest.raises(ValueError, match="frozen"):
        settings.batch_size = 5  # type: ignore[misc]


def test_every_bad_variable_is_named_with_its_rule_and_never_its_value(monkeypatch):
    monkeypatch.setenv("QUEUE_URL", "https://secret.example/api-key-123")
    monkeypatch.setenv("BATCH_SIZE", "11")
    with pytest.raises(ConfigError) as caught:
        QueueSettings.from_env()
    message = str(caught.value)
    assert message.startswith("QueueSettings: bad or missing environment: ")
    assert "QUEUE_URL (must point at 127.0.0.1)" in message  # a validator's own words
    assert "BATCH_SIZE (less_than_equal)" in message
    assert "api-key-123" not in message
    assert "11" not in message
    assert caught.value.__cause__ is None  # pydantic's error, which holds the input, is not chained


def test_an_empty_value_is_a_value_not_a_missing_one(monkeypatch):
    monkeypatch.setenv("QUEUE_URL", "")
    with pytest.raises(ConfigError, match=r"QUEUE_URL \(string_too_short\)"):
        QueueSettings.from_env()
