"""How much of an SMS a text takes: GSM 03.38 septets when it can, UCS-2 code units when it cannot."""

from __future__ import annotations

from dataclasses import dataclass

# The GSM 03.38 default alphabet (Danish æ, ø, å are in it) and its extension table, whose characters take two
# septets each (an escape, then the character).
_GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENSION = frozenset("^{}\\[~]|€\f")
GSM_SINGLE_LIMIT = 160
UCS2_SINGLE_LIMIT = 70


@dataclass(frozen=True)
class SmsSize:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    limit: int  # what one message holds in that encoding

    @property
    def fits(self) -> bool:
        return self.units <= self.limit


def sms_size(text: str, *, messages: int = 1) -> SmsSize:
    """The size of `text` against `messages` SMS (a concatenated SMS loses 7 or 3 characters a part to its header)."""
    if all(char in _GSM_BASIC or char in _GSM_EXTENSION for char in text):
        units = sum(2 if char in _GSM_EXTENSION else 1 for char in text)
        limit = GSM_SINGLE_LIMIT if messages == 1 else 153 * messages
        return SmsSize("GSM-7", units, limit)
    units = len(text.encode("utf-16-le")) // 2
    limit = UCS2_SINGLE_LIMIT if messages == 1 else 67 * messages
    return SmsSize("UCS-2", units, limit)
