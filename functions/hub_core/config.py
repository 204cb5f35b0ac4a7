"""Reads a function's settings from its environment into a validated model, on first use, never at import."""

from __future__ import annotations

import os
from typing import Any

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
            problems = ", ".join(_problem(error) for error in exc.errors(include_input=False, include_url=False))
            raise ConfigError(f"{cls.__name__}: bad or missing environment: {problems}") from None


def _problem(error: Any) -> str:
    """`VARIABLE (type)`; a validator's own words too (a partner profile names its setting there, never a value)."""
    where = ".".join(map(str, error["loc"])).upper()
    if error["type"] == "value_error":
        return f"{where} ({error['msg'].removeprefix('Value error, ')})"
    return f"{where} ({error['type']})"
