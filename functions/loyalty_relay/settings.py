"""Loyalty relay's settings, read from its environment on first use: which event earns which action."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, Json

from hub_core.caches import container_cached
from hub_core.config import Settings


class ActionRule(BaseModel):
    """How one detail-type becomes an action: its app's miles tagId, and where the event names the user and itself.

    `user` is the detail field holding the app's miles user id (partnerClientId); an event without it is skipped.
    `key` is the detail field that identifies the happening for good (a re-published event keeps it); without one,
    EventBridge's own event id is used. The key is both our record's key and the `param1` app's miles dedupes on.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    tag_id: str = Field(alias="tagId", min_length=1, max_length=64)
    user: str = Field(min_length=1)
    key: str | None = None


# The default mapping: the three events the hub publishes, each naming its user in its own style.
DEFAULT_ACTIONS = (
    '{"DonationReceived": {"tagId": "DONATION", "user": "appsMilesUserId", "key": "eventId"},'
    ' "LeadCaptured": {"tagId": "LEAD", "user": "apps_miles_user_id", "key": "lead_id"},'
    ' "LicenceIssued": {"tagId": "LICENCE", "user": "apps_miles_user_id", "key": "order_id"}}'
)


class RelaySettings(Settings):
    loyalty_table_name: str
    # JSON: {"<detail-type>": {"tagId": ..., "user": "<detail field>", "key": "<detail field>"}}.
    loyalty_actions: Json[dict[str, ActionRule]] = Field(default=DEFAULT_ACTIONS, validate_default=True)
    # generosity/multistore sends several users' actions of one tagId in one call; its body is our assumption (see
    # partners.appsmiles), so it stays off until checked against app's miles.
    appsmiles_multistore: bool = False
    multistore_min_actions: int = Field(default=2, ge=2)
    # The most one call to app's miles (with its retries) and its record may take; a call is only started when this
    # still fits before the invocation's deadline. template.yaml sizes the queue's BatchSize by it.
    record_seconds: float = Field(default=5.0, gt=0)
    # A second line behind the site signatures (hub_core.member_signature): at most this many actions per member
    # per UTC day are sent; 0 turns the cap off. Counted per event key in RATE_LIMIT_TABLE_NAME (hub_core.ratelimit).
    rate_limit_table_name: str
    member_actions_per_day: int = Field(default=20, ge=0)


@container_cached
def settings() -> RelaySettings:
    return RelaySettings.from_env()  # type: ignore[return-value]
