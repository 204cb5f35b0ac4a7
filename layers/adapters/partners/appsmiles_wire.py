"""The app's miles wire contract the hub assumes: field and path names, results, refusals, how values are written."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from partners.errors import PartnerBadResponse, PartnerRejected

PARTNER = "appsmiles"
PROFILE_VARIABLE = "APPSMILES_PROFILE"


class AppsMilesRejected(PartnerRejected):
    """app's miles answered an errorCode other than 0 that is not "already recorded": final."""

    def __init__(self, partner: str, message: str, *, code: int, status: int | None = None) -> None:
        super().__init__(partner, message, status=status)
        self.code = code


class UserNotConnected(AppsMilesRejected):
    """The user token is missing, unknown or logged out (errorCode 4 by default): the user must reconnect."""


@dataclass(frozen=True)
class AppsMilesFields:
    """The wire names of every JSON field; defaults are our reading of the partner's API (see partners.appsmiles)."""

    app_id: str = "appId"
    partner_id: str = "partnerId"
    partner_secret: str = "partnerSecret"  # noqa: S105 - a wire name, not a secret
    access_token: str = "access_token"  # noqa: S105 - a wire name, not a secret
    expires_in: str = "expires_in"
    error_code: str = "errorCode"
    error_msg: str = "errorMsg"
    data: str = "data"
    partner_client_id: str = "partnerClientId"
    partner_client_ids: str = "partnerClientIds"
    tag_id: str = "tagId"
    lang: str = "lang"
    date: str = "date"
    param1: str = "param1"
    action: str = "action"
    actions: str = "actions"
    results: str = "results"
    user: str = "user"
    users: str = "users"
    page: str = "page"
    next_page: str = "nextPage"
    since: str = "since"
    ranking: str = "ranking"
    ranking_size: str = "n"
    deleted: str = "deleted"
    unknown: str = "unknown"
    user_token: str = "userToken"  # noqa: S105 - a wire name, not a secret
    program: str = "program"
    history: str = "history"
    gifts: str = "gifts"
    gift_id: str = "giftId"
    ads: str = "ads"


@dataclass(frozen=True)
class AppsMilesPaths:
    """The path of every call, relative to the base URL."""

    token: str = "auth/token"  # noqa: S105 - a wire name, not a secret
    store: str = "buffer/store"
    multistore: str = "generosity/multistore"
    user_info: str = "user/info"
    user_infos: str = "user/infos"
    incremental_infos: str = "user/incrementalinfos"
    ranking: str = "user/ranking"
    multidelete: str = "user/multidelete"
    get_prog: str = "partner/getprog"
    client_check_credentials: str = "user/clientcheckcredentials"
    initial_check_store: str = "partner/initialcheckstore"
    history_burns: str = "user/historyburns"
    history_earns: str = "user/historyearns"
    generosity_store: str = "generosity/store"
    gift_list: str = "gift/list"
    gift_check_availability: str = "gift/checkavailability"
    ad_bonus: str = "ad/bonus"
    ad_specials: str = "ad/specials"
    ad_news: str = "ad/news"
    logout: str = "user/logout"
    delete_user: str = "user/delete"


@dataclass(frozen=True)
class StoreResult:
    already_recorded: bool  # True when app's miles answered an "already recorded" code
    code: int  # the errorCode (0, or the already-recorded code)
    action: dict[str, Any]  # data.action when given, else {}


@dataclass(frozen=True)
class MultideleteResult:
    deleted: list[str]
    unknown: list[str]


@dataclass(frozen=True)
class UserSession:
    user_token: str
    user: dict[str, Any]


def hint(*settings: str) -> str:
    """` (check APPSMILES_PROFILE.x, ...)`: appended to an error these profile settings could explain."""
    return f" (check {', '.join(f'{PROFILE_VARIABLE}.{name}' for name in settings)})"


BodyEncoding = Literal["json", "form"]
JwtPlacement = Literal["header", "body"]


def form_fields(body: Mapping[str, Any]) -> dict[str, str]:
    """A body as form fields: lists and objects as JSON text, the rest as text."""
    return {
        key: json.dumps(value, separators=(",", ":")) if isinstance(value, list | dict) else str(value)
        for key, value in body.items()
    }


def utc_text(moment: datetime) -> str:
    aware = moment.replace(tzinfo=UTC) if moment.utcoffset() is None else moment
    return aware.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_code(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def object_named(data: Mapping[str, Any], name: str, status: int) -> dict[str, Any]:
    value = data.get(name)
    if not isinstance(value, dict):
        raise PartnerBadResponse(PARTNER, f"the answer has no {name} object", status=status)
    return value


def objects_named(data: Mapping[str, Any], name: str, status: int) -> list[dict[str, Any]]:
    value = data.get(name)
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise PartnerBadResponse(PARTNER, f"the answer has no {name} list", status=status)
    return value
