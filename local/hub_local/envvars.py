"""The env-vars file of a running local stack, for a real `sam local invoke --env-vars FILE` against it.

SAM gives a function only the variables its template declares (plus Lambda's own), taking their values from the
file: so the file holds, per function, every declared variable with the value the local stack gives it — the AWS
endpoint (`AWS_ENDPOINT_URL`, declared empty in Globals for this), the sandboxes' URLs, the SSM parameter names,
table and queue names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Final, Protocol

DEFAULT_FILE: Final = Path(".aws-sam") / "local-env.json"
_LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "::1", "0.0.0.0")  # noqa: S104 - names to replace, not a bind


class _Stack(Protocol):
    @property
    def template(self) -> Any: ...  # pragma: no cover - a protocol

    def function_env(self, logical_id: str) -> dict[str, str]: ...  # pragma: no cover - a protocol


def sam_env_vars(stack: _Stack, advertise: str | None = None) -> dict[str, dict[str, str]]:
    """`{"<FunctionId>": {VAR: value}}` for every function: its declared variables as the local stack sets them.

    `advertise` replaces the loopback host in every URL, for a container that reaches this machine under another
    name (`host.docker.internal`, a bridge address); None keeps 127.0.0.1 (`--docker-network host`)."""
    document: dict[str, dict[str, str]] = {}
    for logical_id, function in sorted(stack.template.functions.items()):
        env = stack.function_env(logical_id)
        values = {name: env[name] for name in sorted(function.environment) if name in env}
        if advertise:
            values = {name: _advertised(value, advertise) for name, value in values.items()}
        document[logical_id] = values
    return document


def write(stack: _Stack, path: Path, advertise: str | None = None) -> Path:
    """Write the file (its folder created); the path written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sam_env_vars(stack, advertise), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def _advertised(value: str, host: str) -> str:
    for loopback in _LOOPBACK_HOSTS:
        for scheme in ("http://", "https://"):
            value = value.replace(f"{scheme}{loopback}:", f"{scheme}{host}:")
    return value
