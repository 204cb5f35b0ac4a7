"""The organisation's SMS texts: templates from settings with a few safe placeholders, and the rule for visitor text.

Umbrella sends `confirmText` to `confirmMsisdn` and `answerMessage` to every donor, so a visitor who could choose them
could send any text to any Danish number. The texts are therefore the organisation's templates; a visitor may only
name the campaign, and that name is held to `check_display_text` before it goes into a template.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from dataclasses import dataclass

from campaign_lifecycle.sms import sms_size
from hub_core.config import ConfigError

DEFAULT_CONFIRM_TEMPLATE = "Indsamlingen {name} er oprettet. Din kode til at ændre eller stoppe den: {token}"
DEFAULT_ANSWER_TEMPLATE = "Tak for din støtte til {name}!"
CONFIRM_PLACEHOLDERS = frozenset({"name", "code", "keyword", "amount", "token"})
ANSWER_PLACEHOLDERS = frozenset({"name", "code", "keyword", "amount"})

# Letters of any script, spaces and a little punctuation; no digits (so no phone number), no '/', ':' or '@'.
_DISPLAY_TEXT = re.compile(r"^[^\W\d_]+(?:[ '\u2019,.!?&-]+[^\W\d_]+)*[.!?]?$")
# A dot between letters is how a bare domain ("evil.dk", "www.x.com") reads: not a name.
_DOMAIN_LIKE = re.compile(r"[^\W\d_]\.[^\W\d_]|\bwww\b", re.IGNORECASE)


class DisplayTextError(ValueError):
    """Visitor text that may not go into an SMS; `rule` and the message name what is wrong, never the text."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


def check_display_text(value: str, *, max_length: int) -> str:
    """A campaign name fit for an SMS: letters, spaces and basic punctuation, no URL or number, at most max_length."""
    text = " ".join(value.split())
    if not text:
        raise DisplayTextError("min_length", "must not be blank")
    if len(text) > max_length:
        raise DisplayTextError("max_length", f"must be at most {max_length} characters")
    if any(char.isdigit() for char in text):
        raise DisplayTextError("no_digits", "must not contain digits (no phone numbers or codes)")
    if _DOMAIN_LIKE.search(text) or not _DISPLAY_TEXT.match(text):
        raise DisplayTextError(
            "letters_only", "may hold only letters, spaces and basic punctuation (no web addresses or symbols)"
        )
    return text


def check_template(template: str, allowed: frozenset[str], *, setting: str, required: frozenset[str]) -> str:
    """A template of the organisation's: only the known, plain placeholders ({name}, not {name.x} or {name!r})."""
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(template)]
    except ValueError:
        raise ConfigError(f"{setting} is not a valid template (unbalanced braces)") from None
    used = {name for name, _, _ in fields if name is not None}
    plain = all(not spec and conversion is None for name, spec, conversion in fields if name is not None)
    if not plain or not used <= allowed:
        raise ConfigError(f"{setting} may use only the placeholders {', '.join(f'{{{n}}}' for n in sorted(allowed))}")
    if not required <= used:
        raise ConfigError(f"{setting} must contain {', '.join(f'{{{n}}}' for n in sorted(required))}")
    return template


def kroner(ore: int) -> str:
    """5000 → "50", 2550 → "25,50": how an amount reads in a Danish SMS."""
    whole, rest = divmod(ore, 100)
    return str(whole) if rest == 0 else f"{whole},{rest:02d}"


@dataclass(frozen=True)
class RenderedText:
    text: str
    fits: bool


def render(template: str, values: Mapping[str, str], *, sms_messages: int) -> RenderedText:
    """The template with its placeholders filled (values are data, never parsed as a template themselves)."""
    text = template.format_map(dict(values))
    return RenderedText(text, sms_size(text, messages=sms_messages).fits)
