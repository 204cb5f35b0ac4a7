"""A sandbox's modes: which reading of its partner's document it plays, parsed from a mapping or JSON text."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError


class SandboxModes(BaseModel):
    """Which reading of its partner's document a sandbox plays; each subclass lists the plausible readings."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ModesError(ValueError):
    """A mode that is not one of the sandbox's readings (the message names it)."""


def parse_modes[M: SandboxModes](kind: type[M], given: M | Mapping[str, Any] | str | None) -> M:
    """`given` (modes, a mapping, a JSON object's text or None for the defaults) as `kind`."""
    if isinstance(given, kind):
        return given
    values: Any = given or {}
    if isinstance(given, str):
        try:
            values = json.loads(given) if given.strip() else {}
        except ValueError:
            raise ModesError(f"{kind.__name__}: not a JSON object") from None
    try:
        return kind.model_validate(dict(values) if isinstance(values, Mapping) else values)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, error['loc']))}: {error['msg']}"
            for error in exc.errors(include_url=False, include_input=False)
        )
        raise ModesError(f"{kind.__name__}: {problems}") from None
