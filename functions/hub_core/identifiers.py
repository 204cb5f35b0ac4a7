"""Rules for the identifiers several functions accept, so a person's id means the same everywhere."""

from __future__ import annotations

# app's miles' partnerClientId (our member id) as the hub accepts it: an id, never free text.
APPS_MILES_USER_ID = r"^[A-Za-z0-9._:@-]{1,64}$"
