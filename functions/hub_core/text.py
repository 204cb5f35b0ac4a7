"""The rules every free text and every number typed as text obey, whichever form or event it arrives in."""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator
from pydantic_core import PydanticCustomError

# Format characters that reorder or hide text (bidirectional overrides and isolates, the BOM, the word joiner and
# invisible operators): they make a stored name display as something else (a "Trojan Source" style spoof). Other
# Cf characters stay allowed: the zero-width (non-)joiner is part of Persian, Indic and emoji spelling.
_HIDING = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2060\u2061\u2062\u2063\u2064")
_HIDING |= frozenset("\u2066\u2067\u2068\u2069\ufeff\ufff9\ufffa\ufffb")
# A textarea's line breaks and tab: the only control characters a multi-line text may hold.
_LAYOUT = frozenset("\n\r\t")
# For a query parameter's pattern (pydantic's Rust regex): no C0 or C1 control character, no DEL.
SINGLE_LINE_PATTERN = r"^[^\x00-\x1f\x7f-\x9f]*$"
# ASCII digits only: `\d` in Python (and in pydantic's Rust regexes) also matches Arabic-Indic and other digits.
ASCII_DIGITS = re.compile(r"[0-9]+")


def _has_refused(value: str, *, multi_line: bool) -> bool:
    # str.isprintable is False for every Cc, Cf, Cs, Zl and Zp character (and the other unprintable ones), so a
    # printable value holds nothing _refused could refuse: most values (a messageKey, a name) skip the per-character
    # category lookups of a callback or form that comes in by the thousand.
    if value.isprintable():
        return False
    return any(_refused(char, multi_line=multi_line) for char in value)


def _refused(char: str, *, multi_line: bool) -> bool:
    category = unicodedata.category(char)
    if category == "Cc":
        return not (multi_line and char in _LAYOUT)
    if category in ("Zl", "Zp"):  # U+2028/U+2029 break a line as surely as LF
        return not multi_line
    return char in _HIDING or category == "Cs"


def single_line(value: str) -> str:
    """A name, a reference, a code: no control character (NUL, ESC, CR, LF, ...) and no text-hiding format mark."""
    if _has_refused(value, multi_line=False):
        raise PydanticCustomError(
            "control_character", "must not contain control characters (such as NUL, ESC or a line break)"
        )
    return value


def multi_line(value: str) -> str:
    """A description: line breaks and tabs are its layout; any other control character is refused."""
    if _has_refused(value, multi_line=True):
        raise PydanticCustomError(
            "control_character", "must not contain control characters other than line breaks and tabs"
        )
    return value


def has_control(value: str) -> bool:
    """True when `single_line` would refuse the value (for checks outside a pydantic model)."""
    return _has_refused(value, multi_line=False)


def ascii_digits(value: str) -> bool:
    """True when every character is 0-9 (and there is at least one): str.isdigit also says yes to '٦' and '²'."""
    return ASCII_DIGITS.fullmatch(value) is not None


# The shared rules, as metadata to put right after a field's length constraints (`Annotated[str, StringConstraints(
# max_length=100), NO_CONTROL]`: placed before them, the constraints would lose their own error types).
NO_CONTROL = AfterValidator(single_line)
LAYOUT_ONLY = AfterValidator(multi_line)
# The shared field types for free text without a length of its own.
SingleLine = Annotated[str, NO_CONTROL]
MultiLine = Annotated[str, LAYOUT_ONLY]
