"""The one error type commands raise: reported as one line on stderr with a non-zero exit, never a traceback."""

from __future__ import annotations

from typing import Final

EXIT_FAILURE: Final = 1
EXIT_USAGE: Final = 2


class CliError(Exception):
    """Something the operator can act on, said in one line (no secret, no personal data)."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.exit_code = exit_code
