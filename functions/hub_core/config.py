"""Reads a function's settings from its environment into a validated model, on first use, never at import."""

from __future__ import annotations

import os

from pydantic import BaseModel, ConfigDict, ValidationError


class ConfigError(RuntimeError):
    """The function's environment is incomplete or wrong: a deployment problem, not a caller's."""


class Settings(BaseModel):
    """Base of every function's settings: each field is read from the upper-cased environment variable."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    @classmethod
    def from_env(cls) -> Settings:
        values = {name: os.environ[name.upper()] for name in cls.model_fields if name.upper() in os.environ}
        try:
            return cls.model_validate(values)
        except ValidationError as exc:
            problems = ", ".join(f"{'.'.join(map(str, e['loc'])).upper()} ({e['type']})" for e in exc.errors())
            raise ConfigError(f"{cls.__name__}: bad or missing environment: {problems}") from None
