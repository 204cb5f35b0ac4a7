"""Loyalty relay's settings, read from its environment on first use: which event earns which action."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, Json, model_validator

from hub_core.caches import container_cached
from hub_core.config import Settings


class ActionRule(BaseModel):
    """How one detail-type becomes an action: its app's miles tagId, where the event names itself, and how the
    relay finds the member.

    The hub's events carry no member id, so that a queued or dead-lettered event holds ids only: `member` is the
    detail field flagging that the event's owning record names a member, `owner` the table that record is in
    (`leads`, `campaigns` or `licences`), and `owner_key` the detail field holding the record's key; the relay reads
    the member id from there (one GetItem). `user` is for an event that names the member itself (a detail field
    holding the app's miles user id), as the hub's events did before; it is read first when present.
    `key` is the detail field that identifies the happening for good (a re-published event keeps it); without one,
    EventBridge's own event id is used. The key is both our record's key and the `param1` app's miles dedupes on.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    tag_id: str = Field(alias="tagId", min_length=1, max_length=64)
    user: str | None = Field(default=None, min_length=1)
    member: str | None = Field(default=None, min_length=1)
    owner: Literal["leads", "campaigns", "licences"] | None = None
    owner_key: str | None = Field(default=None, alias="ownerKey", min_length=1)
    key: str | None = None

    @model_validator(mode="after")
    def _names_the_member_somehow(self) -> ActionRule:
        if self.member is not None and (self.owner is None or self.owner_key is None):
            raise ValueError("a rule with `member` needs `owner` and `ownerKey`")
        if self.member is None and self.user is None:
            raise ValueError("a rule needs `member` (with `owner` and `ownerKey`) or `user`")
        return self


# The default mapping: the three events the hub publishes. Each flags a member and names its owning record; `user`
# still reads events published before the events carried ids only, while the queue may hold them.
DEFAULT_ACTIONS = (
    '{"DonationReceived": {"tagId": "DONATION", "member": "appsMilesMember", "owner": "campaigns",'
    ' "ownerKey": "campaign", "user": "appsMilesUserId", "key": "eventId"},'
    ' "LeadCaptured": {"tagId": "LEAD", "member": "apps_miles_member", "owner": "leads", "ownerKey": "lead_id",'
    ' "user": "apps_miles_user_id", "key": "lead_id"},'
    ' "LicenceIssued": {"tagId": "LICENCE", "member": "apps_miles_member", "owner": "licences",'
    ' "ownerKey": "order_id", "user": "apps_miles_user_id", "key": "order_id"}}'
)


class RelaySettings(Settings):
    loyalty_table_name: str
    # The owning tables the member id is read from (GetItem only); "" for one the relay is not given.
    leads_table_name: str = ""
    campaigns_table_name: str = ""
    licences_table_name: str = ""
    # JSON: {"<detail-type>": {"tagId": ..., "member": "<detail flag>", "owner": "leads|campaigns|licences",
    #        "ownerKey": "<detail field>", "user": "<detail field>", "key": "<detail field>"}}.
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
