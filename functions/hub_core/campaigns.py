"""A campaign's key as at Umbrella (service, route, donation code) and its ref, the one string naming it in our tables.

Shared by the lifecycle (which creates campaigns and stores them under their ref) and the ingester (which finds them
by the ref its callback URL spells), so the two cannot come to spell one campaign two ways.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A service id as the lifecycle stores it: a positive int32 written the way Python writes it (no sign, no leading
# zero, ASCII digits only). A URL that spells it otherwise names no campaign we hold.
_CANONICAL_SERVICE_ID = re.compile(r"[1-9][0-9]{0,9}", flags=re.ASCII)
_INT32_MAX = 2**31 - 1


@dataclass(frozen=True, slots=True)
class CampaignKey:
    """A campaign is its service, route and donation code, as at Umbrella."""

    service_id: int
    route: str
    donation_code: str

    @property
    def ref(self) -> str:
        """The one string that names the campaign in our table, tokens and URLs (its parts cannot hold a '/')."""
        return f"{self.service_id}/{self.route}/{self.donation_code}"

    @classmethod
    def from_ref(cls, ref: str) -> CampaignKey:
        """A ref we stored (ValueError for anything else)."""
        service_id, route, code = ref.split("/")
        return cls(int(service_id), route, code)

    @classmethod
    def from_path(cls, service_id: str, route: str, donation_code: str) -> CampaignKey | None:
        """The campaign a URL's path segments name, exactly as they are spelled; None when the service id is not
        spelled the way a stored ref spells it (`007`, `+7`, Arabic-Indic digits): no campaign of ours has that ref."""
        if _CANONICAL_SERVICE_ID.fullmatch(service_id) is None or int(service_id) > _INT32_MAX:
            return None
        return cls(int(service_id), route, donation_code)
