"""Partner profiles: every wire assumption the partners' documents leave open, one validated model per partner.

A profile is read from one JSON object per partner (the template's `<Partner>Profile` parameter, reaching the
functions as `<PARTNER>_PROFILE`); a key left out keeps its default, an unknown key or a bad value is a
`ProfileError` that names the variable and the setting (`UMBRELLA_PROFILE.key_parameter: ...`). The defaults and
why each was chosen are in docs/partner-settings.md; each adapter's docstring says what each setting changes.

Adapter errors that a profile setting could explain (a refused key, an answer of the other shape) name the
setting through `hint()`, so that a mismatch with the real partner is diagnosed from the message alone.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

# No partner adapter is imported here: every function reads a profile, and each uses one partner. The app's miles
# wire names are imported where an app's miles profile is read; Pimenko's refusal wording lives here, and mlm takes it.

# Pimenko's one refusal told apart by its text (its document gives no code): the French and English wordings.
DEFAULT_MAX_SITES_MARKERS: tuple[str, ...] = ("nombre maximal de sites", "maximum number of sites")


class ProfileError(ValueError):
    """A partner profile that cannot be used: the message names the variable and the setting at fault."""


class _Profile(BaseModel):
    # Built on first use, not at import (every function imports the adapters, few use each model on a cold start);
    # hub_core.priming builds them before a SnapStart snapshot.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    # The environment variable the profile is read from; error messages and hints name settings through it.
    VARIABLE: ClassVar[str] = ""

    @classmethod
    def from_json(cls, text: str | None) -> Self:
        """The profile in `text` (a JSON object; empty or None → every default)."""
        raw = (text or "").strip() or "{}"
        try:
            values = json.loads(raw)
        except ValueError:
            raise ProfileError(f"{cls.VARIABLE} is not JSON: it must be a JSON object of settings") from None
        if not isinstance(values, dict):
            raise ProfileError(f"{cls.VARIABLE} must be a JSON object of settings")
        return cls.from_mapping(values)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Self:
        try:
            return cls.model_validate(dict(values))
        except ValidationError as exc:
            problems = "; ".join(
                f"{cls.VARIABLE}.{'.'.join(map(str, error['loc']))}: {error['msg']}"
                for error in exc.errors(include_url=False, include_input=False)
            )
            raise ProfileError(problems) from None

    @classmethod
    def coerce(cls, value: object) -> object:
        """A settings field's before-validator: JSON text becomes the profile, its errors a ValueError naming them."""
        if isinstance(value, str):
            try:
                return cls.from_json(value)
            except ProfileError as exc:
                raise ValueError(str(exc)) from None
        return value

    @classmethod
    def hint(cls, *names: str) -> str:
        """`(check UMBRELLA_PROFILE.key_parameter, ...)`: appended to an error that these settings could explain."""
        return f" (check {', '.join(f'{cls.VARIABLE}.{name}' for name in names)})"


class UmbrellaProfile(_Profile):
    """Umbrella Indsamlings API: how the key travels, how amounts and codes read, what a stopped campaign answers."""

    VARIABLE = "UMBRELLA_PROFILE"

    # The introduction says "a parameter named apikey"; the parameter tables spell it apiKey.
    key_placement: Literal["query", "bearer"] = "query"
    key_parameter: Literal["apikey", "apiKey"] = "apikey"
    # The models say integer; the donations example shows "amount": "5000". Both are read unless "integer".
    amounts: Literal["integer_or_string", "integer"] = "integer_or_string"
    # The document says nothing of case: "sensitive" keeps ANNA50 and anna50 apart; "insensitive" folds them.
    donation_codes: Literal["sensitive", "insensitive"] = "sensitive"
    # What a stopped campaign answers to GET: "not_found" (404, gone) or "readable" (200 with its data).
    stopped_campaign: Literal["not_found", "readable"] = "not_found"
    # The errors' wording that means "donation code already in use" (the document has no error codes).
    code_in_use_wording: str = Field(default="already in use", min_length=1)

    def client_options(self) -> dict[str, Any]:
        """The `UmbrellaClient` keyword arguments this profile sets."""
        return self.model_dump()


class AppsMilesProfile(_Profile):
    """app's miles: body encoding, where the token goes, field and path names, the codes that mean something."""

    VARIABLE = "APPSMILES_PROFILE"

    body_encoding: Literal["json", "form"] = "json"
    # "header": Authorization: Bearer <token>; "body": the token as the body field `jwt_field`.
    jwt_placement: Literal["header", "body"] = "header"
    jwt_field: str = Field(default="token", min_length=1)
    already_recorded_codes: tuple[int, ...] = (105,)
    user_not_connected_codes: tuple[int, ...] = (4,)
    lang: str = Field(default="fr", min_length=1)
    # Wire names that differ from partners.appsmiles_wire.AppsMilesFields / AppsMilesPaths, e.g. {"tag_id": "tag"}.
    fields: dict[str, str] = Field(default_factory=dict)
    paths: dict[str, str] = Field(default_factory=dict)

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, str]) -> dict[str, str]:
        from partners.appsmiles_wire import AppsMilesFields  # noqa: PLC0415 - see the imports above

        return _known(value, AppsMilesFields)

    @field_validator("paths")
    @classmethod
    def _known_paths(cls, value: dict[str, str]) -> dict[str, str]:
        from partners.appsmiles_wire import AppsMilesPaths  # noqa: PLC0415 - see the imports above

        return _known(value, AppsMilesPaths)

    def client_options(self) -> dict[str, Any]:
        """The `AppsMilesClient` keyword arguments this profile sets."""
        from partners.appsmiles_wire import AppsMilesFields, AppsMilesPaths  # noqa: PLC0415 - see the imports above

        return {
            "body_encoding": self.body_encoding,
            "jwt_placement": self.jwt_placement,
            "jwt_field": self.jwt_field,
            "already_recorded_codes": self.already_recorded_codes,
            "user_not_connected_codes": self.user_not_connected_codes,
            "lang": self.lang,
            "fields": AppsMilesFields(**self.fields),
            "paths": AppsMilesPaths(**self.paths),
        }


class MiimosaProfile(_Profile):
    """MiiMOSA API v1: the authorization header's scheme (pagination by Link rel="next" needs no setting)."""

    VARIABLE = "MIIMOSA_PROFILE"

    # The samples send `authorization: <key>`; "Bearer " (with its space) sends `Bearer <key>`.
    auth_scheme: Literal["", "Bearer ", "Token "] = ""

    def client_options(self) -> dict[str, Any]:
        """The `MiimosaClient` keyword arguments this profile sets."""
        return self.model_dump()


class MlmProfile(_Profile):
    """Pimenko MLM: the wording of the one refusal told apart by its text."""

    VARIABLE = "MLM_PROFILE"

    max_sites_markers: tuple[str, ...] = Field(default=DEFAULT_MAX_SITES_MARKERS, min_length=1)

    @field_validator("max_sites_markers")
    @classmethod
    def _not_blank(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if any(not marker.strip() for marker in value):
            raise ValueError("a marker must not be blank")
        return value

    def client_options(self) -> dict[str, Any]:
        """The `MlmClient` keyword arguments this profile sets."""
        return self.model_dump()


def _known(value: dict[str, str], names: type) -> dict[str, str]:
    unknown = sorted(set(value) - {field.name for field in dataclasses.fields(names)})
    if unknown:
        raise ValueError(f"unknown name(s): {', '.join(unknown)}")
    if any(not wire.strip() for wire in value.values()):
        raise ValueError("a wire name must not be blank")
    return value


# Fields of a function's settings that read a profile from its JSON variable (hub_core.config.Settings).
UmbrellaProfileSetting = Annotated[UmbrellaProfile, BeforeValidator(UmbrellaProfile.coerce)]
AppsMilesProfileSetting = Annotated[AppsMilesProfile, BeforeValidator(AppsMilesProfile.coerce)]
MiimosaProfileSetting = Annotated[MiimosaProfile, BeforeValidator(MiimosaProfile.coerce)]
MlmProfileSetting = Annotated[MlmProfile, BeforeValidator(MlmProfile.coerce)]
