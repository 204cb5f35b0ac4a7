"""Adapter for the app's miles loyalty API: partner tokens, actions (points) for our users, users, the web SDK's calls.

The partner's documentation lists the endpoints but not their bodies. Known from the older public API: `auth/token`
answers `{"access_token", "token_type": "bearer", "expires_in"}` and the token travels as `Authorization: Bearer`;
`buffer/store` takes `appId`, `partnerClientId` (our user id), `tagId` (the action code), `lang`, an optional `date`
and an optional `param1`, and app's miles refuses a second identical (partnerClientId, tagId, param1); answers carry
`errorCode` (0 = ok) and `errorMsg`, even with HTTP 200.

Everything else is our assumption (each names the `AppsMilesClient` setting that changes it, where one can):

- Every call is `POST {base_url}/{path}` with a JSON body, and every answer is JSON `{"errorCode", "errorMsg",
  "data": {...}}` (`data` may be absent on errors). Every JSON field name is a setting of `AppsMilesFields` and
  every path one of `AppsMilesPaths` (`fields=`, `paths=`).
- `auth/token` takes `{"appId", "partnerId", "partnerSecret"}` and answers a three-part JWT. Its lifetime is read
  from the JWT's `exp` claim (decoded without checking the signature: we are not its audience), else from
  `expires_in`; it is refreshed `token_refresh_margin` seconds before it ends, but never earlier than half its
  lifetime. One token per (base_url, app_id, partner_id) is shared by every client and thread of the container.
- A 401 on any call but `auth/token` means our token expired or was revoked: it is dropped, a new one fetched and
  the call repeated once; a second 401 is `PartnerAuthError`, as is a 401/403 on `auth/token`.
- `errorCode` other than 0 is a refusal even on HTTP 200 (`AppsMilesRejected`, final), except the "already
  recorded" codes (`already_recorded_codes`, default 105: a second identical action), which are a success with
  `StoreResult.already_recorded`, and the "user not connected" codes (`user_not_connected_codes`, default 4: a
  missing, unknown or logged-out user token), which are `UserNotConnected`. Unknown tag 104, unknown user 103,
  unknown application 10, not enough points 201 and unknown gift 202 are plain `AppsMilesRejected` with their code.
- `buffer/store` and `generosity/multistore` with `param1` on every action are idempotent at app's miles, so they
  may be retried; without it they are sent once. Reads, `user/multidelete` and `auth/token` are idempotent; the
  front end's `generosity/store` is retried only with `param1`, `user/logout` and `user/delete` are idempotent.
- An action for a user app's miles has never seen creates that user (its buffer credits users before they first
  open the app). `date` is sent as ISO 8601 UTC (`2026-11-24T10:00:00Z`); a naive datetime is read as UTC.
- `generosity/multistore` answers one result per action, in request order, each with the errorCode buffer/store
  would give; `user/infos` pages by `page` (100 users) and `nextPage`, which `user_infos` follows to the end.
- The front end's calls carry our partner token too, and the user's token in the body field `userToken`.
- The wire format is a setting too (`body_encoding`: "json" or "form", form values of lists and objects being JSON
  text; `jwt_placement`: "header" for `Authorization: Bearer`, or "body" for the body field `jwt_field`), as
  are the codes, `lang`, and every field and path name: on a deployed stack all of them come from the
  `APPSMILES_PROFILE` JSON (partners.profiles.AppsMilesProfile). A refusal they could explain names them: a 401
  after a fresh token names `jwt_placement`/`body_encoding`, a 400/415 names `body_encoding`/`fields`, an
  answer without errorCode names `fields`.
- Nothing logs a user id, a user token, the JWT or the secret: log lines carry the path template; error messages
  from the partner are scrubbed of the secret, the JWT, the call's user tokens and user ids.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from partners.appsmiles_transport import AppsMilesTransport, in_flight
from partners.appsmiles_wire import (
    PARTNER,
    AppsMilesRejected,
    MultideleteResult,
    StoreResult,
    UserSession,
    is_code,
    object_named,
    objects_named,
    utc_text,
)
from partners.errors import PartnerBadResponse

# The web SDK's lists are short; a partner that keeps announcing pages is looping, not listing.
MAX_PAGES = 10_000


class AppsMilesClient(AppsMilesTransport):
    """Calls app's miles through the shared HTTP core; `base_url` is the API root (…/api)."""

    # --- back end -----------------------------------------------------------------------------------------

    def store_action(
        self, user_id: str, tag_id: str, *, param1: str | None = None, date: datetime | None = None
    ) -> StoreResult:
        """buffer/store: credit `user_id` with the action `tag_id` (creating the user at app's miles if new)."""
        f = self.fields
        body: dict[str, Any] = {f.partner_client_id: user_id, f.tag_id: tag_id, f.lang: self.lang}
        if date is not None:
            body[f.date] = utc_text(date)
        if param1 is not None:
            body[f.param1] = param1
        return self._store(self.paths.store, body, idempotent=param1 is not None, secrets=(user_id,))

    def multistore(
        self, tag_id: str, actions: Sequence[tuple[str, str | None]], *, date: datetime | None = None
    ) -> list[StoreResult | AppsMilesRejected]:
        """generosity/multistore: one action `tag_id` for each (user_id, param1); one outcome per action, in order."""
        f = self.fields
        wire_actions: list[dict[str, Any]] = []
        for user_id, param1 in actions:
            item: dict[str, Any] = {f.partner_client_id: user_id}
            if param1 is not None:
                item[f.param1] = param1
            wire_actions.append(item)
        body: dict[str, Any] = {f.tag_id: tag_id, f.lang: self.lang, f.actions: wire_actions}
        if date is not None:
            body[f.date] = utc_text(date)
        user_ids = tuple(user_id for user_id, _ in actions)
        idempotent = all(param1 is not None for _, param1 in actions)
        data, status = self._call(self.paths.multistore, body, idempotent=idempotent, secrets=user_ids)
        results = data.get(f.results)
        if not isinstance(results, list) or len(results) != len(actions):
            raise PartnerBadResponse(PARTNER, "multistore answered no result per action", status=status)
        outcomes: list[StoreResult | AppsMilesRejected] = []
        with in_flight("", self._with_secret(user_ids)):
            for index, result in enumerate(results):
                if not isinstance(result, dict) or not is_code(result.get(f.error_code)):
                    raise PartnerBadResponse(PARTNER, f"multistore result {index} has no errorCode", status=status)
                code = result[f.error_code]
                action = {k: v for k, v in result.items() if k not in (f.error_code, f.error_msg)}
                if code == 0 or code in self.already_recorded_codes:
                    outcomes.append(StoreResult(already_recorded=code != 0, code=code, action=action))
                else:
                    outcomes.append(self._rejection(code, result, status))
        return outcomes

    def user_info(self, user_id: str) -> dict[str, Any]:
        """user/info: the user (partnerClientId, points, createdAt); unknown → AppsMilesRejected code 103."""
        f = self.fields
        data, status = self._call(self.paths.user_info, {f.partner_client_id: user_id}, secrets=(user_id,))
        return object_named(data, f.user, status)

    def user_infos(self, user_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """user/infos: these users (every user when None), following nextPage to the end."""
        f = self.fields
        body: dict[str, Any] = {}
        if user_ids is not None:
            body[f.partner_client_ids] = list(user_ids)
        users: list[dict[str, Any]] = []
        seen_pages: set[int] = set()
        while True:
            data, status = self._call(self.paths.user_infos, body, secrets=tuple(user_ids or ()))
            users.extend(objects_named(data, f.users, status))
            next_page = data.get(f.next_page)
            if next_page is None:
                return users
            if not is_code(next_page) or next_page in seen_pages or len(seen_pages) >= MAX_PAGES:
                raise PartnerBadResponse(PARTNER, "user/infos announced a next page it cannot have", status=status)
            seen_pages.add(next_page)
            body = {**body, f.page: next_page}

    def incremental_infos(self, since: datetime) -> list[dict[str, Any]]:
        """user/incrementalinfos: users changed since `since`, each with their actions and gifts."""
        data, status = self._call(self.paths.incremental_infos, {self.fields.since: utc_text(since)})
        return objects_named(data, self.fields.users, status)

    def ranking(self, user_id: str, n: int = 5) -> list[dict[str, Any]]:
        """user/ranking: up to `n` users above and below `user_id`, with their rank."""
        f = self.fields
        body = {f.partner_client_id: user_id, f.ranking_size: n}
        data, status = self._call(self.paths.ranking, body, secrets=(user_id,))
        return objects_named(data, f.ranking, status)

    def multidelete(self, user_ids: Sequence[str]) -> MultideleteResult:
        """user/multidelete: delete these users with their actions and gifts; unknown ones are reported, not refused."""
        f = self.fields
        ids = list(user_ids)
        data, status = self._call(self.paths.multidelete, {f.partner_client_ids: ids}, secrets=tuple(ids))
        deleted, unknown = data.get(f.deleted), data.get(f.unknown, [])
        if not isinstance(deleted, list) or not isinstance(unknown, list):
            raise PartnerBadResponse(PARTNER, "multidelete answered no deleted/unknown lists", status=status)
        return MultideleteResult(deleted=[str(item) for item in deleted], unknown=[str(item) for item in unknown])

    # --- front end (the web SDK's calls) ------------------------------------------------------------------

    def get_prog(self) -> dict[str, Any]:
        """partner/getprog: the programme (name, actions and their points, gifts)."""
        data, status = self._call(self.paths.get_prog, {self.fields.lang: self.lang})
        return object_named(data, self.fields.program, status)

    def client_check_credentials(self, user_id: str) -> UserSession:
        """user/clientcheckcredentials: a user token for `user_id` (the user is created when unknown)."""
        f = self.fields
        body = {f.partner_client_id: user_id, f.lang: self.lang}
        data, status = self._call(self.paths.client_check_credentials, body, secrets=(user_id,))
        user = object_named(data, f.user, status)
        user_token = user.get(f.user_token)
        if not isinstance(user_token, str) or not user_token:
            raise PartnerBadResponse(PARTNER, "clientcheckcredentials answered no user token", status=status)
        return UserSession(user_token=user_token, user=user)

    def initial_check_store(self, user_token: str) -> dict[str, Any]:
        """partner/initialcheckstore: {"program", "user"} for the connected user."""
        data, _ = self._user_call(self.paths.initial_check_store, user_token, {self.fields.lang: self.lang})
        return data

    def history_burns(self, user_token: str) -> list[dict[str, Any]]:
        """user/historyburns: the gifts the user bought."""
        data, status = self._user_call(self.paths.history_burns, user_token)
        return objects_named(data, self.fields.history, status)

    def history_earns(self, user_token: str) -> list[dict[str, Any]]:
        """user/historyearns: the actions the user was credited for."""
        data, status = self._user_call(self.paths.history_earns, user_token)
        return objects_named(data, self.fields.history, status)

    def generosity_store(self, user_token: str, tag_id: str, *, param1: str | None = None) -> StoreResult:
        """generosity/store: the connected user performs `tag_id`; answered as buffer/store."""
        f = self.fields
        body: dict[str, Any] = {f.user_token: user_token, f.tag_id: tag_id, f.lang: self.lang}
        if param1 is not None:
            body[f.param1] = param1
        return self._store(self.paths.generosity_store, body, idempotent=param1 is not None, secrets=(user_token,))

    def gift_list(self, user_token: str) -> list[dict[str, Any]]:
        """gift/list: the gifts on offer, with their cost in points."""
        data, status = self._user_call(self.paths.gift_list, user_token, {self.fields.lang: self.lang})
        return objects_named(data, self.fields.gifts, status)

    def gift_check_availability(self, user_token: str, gift_id: str) -> dict[str, Any]:
        """gift/checkavailability: {"gift", "points"}; not enough points → code 201, unknown gift → 202."""
        data, _ = self._user_call(self.paths.gift_check_availability, user_token, {self.fields.gift_id: gift_id})
        return data

    def ad_bonus(self, user_token: str) -> list[dict[str, Any]]:
        return self._ads(self.paths.ad_bonus, user_token)

    def ad_specials(self, user_token: str) -> list[dict[str, Any]]:
        return self._ads(self.paths.ad_specials, user_token)

    def ad_news(self, user_token: str) -> list[dict[str, Any]]:
        return self._ads(self.paths.ad_news, user_token)

    def logout(self, user_token: str) -> None:
        """user/logout: every user token of that user stops working."""
        self._user_call(self.paths.logout, user_token)

    def delete_user(self, user_token: str) -> None:
        """user/delete: the connected user and their history are deleted."""
        self._user_call(self.paths.delete_user, user_token)

    def _ads(self, path: str, user_token: str) -> list[dict[str, Any]]:
        data, status = self._user_call(path, user_token, {self.fields.lang: self.lang})
        return objects_named(data, self.fields.ads, status)
