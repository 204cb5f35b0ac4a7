"""Reading what operators hand to commands: JSON files (or '-' for stdin)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hub_cli.errors import EXIT_USAGE, CliError


def read_json(path: str) -> Any:
    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror or error}", EXIT_USAGE) from None
    try:
        return json.loads(text)
    except ValueError as error:
        raise CliError(f"{path} is not valid JSON: {error}", EXIT_USAGE) from None


def read_json_object(path: str) -> dict[str, Any]:
    document = read_json(path)
    if not isinstance(document, dict):
        raise CliError(f"{path} must hold a JSON object, not {type(document).__name__}", EXIT_USAGE)
    return document
