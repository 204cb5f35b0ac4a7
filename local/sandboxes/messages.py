"""What a sandbox's route handlers see and answer: the request (headers, JSON, form), the response, the record."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, overload
from urllib.parse import parse_qs, urlencode


class Headers(Mapping[str, str]):
    """Case-insensitive, read-only request headers; a repeated header is joined with ", "."""

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        merged: dict[str, str] = {}
        for name, value in items:
            key = name.lower()
            merged[key] = f"{merged[key]}, {value}" if key in merged else value
        self._items = merged

    def __getitem__(self, key: str) -> str:
        return self._items[key.lower()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({sorted(self._items)})"


@dataclass(frozen=True)
class SandboxRequest:
    """One request as a route handler sees it."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Headers
    body: bytes
    base_url: str
    path_params: Mapping[str, str] = field(default_factory=dict)

    @overload
    def query_value(self, name: str) -> str | None: ...
    @overload
    def query_value(self, name: str, default: str) -> str: ...
    def query_value(self, name: str, default: str | None = None) -> str | None:
        """The first value of a query parameter, or `default` when it is absent."""
        values = self.query.get(name)
        return values[0] if values else default

    @cached_property
    def _decoded(self) -> tuple[Any, str | None]:
        if not self.body.strip():
            return None, None
        try:
            return json.loads(self.body), None
        except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting is "not JSON" too
            return None, "body is not valid JSON"

    @property
    def json(self) -> Any:
        """The parsed JSON body; None when the body is empty or not JSON (see `json_error`)."""
        return self._decoded[0]

    @property
    def json_error(self) -> str | None:
        """Why the body could not be parsed as JSON, or None when it could (or was empty)."""
        return self._decoded[1]

    @cached_property
    def form(self) -> Mapping[str, list[str]]:
        """Fields of an application/x-www-form-urlencoded body; empty for any other content type."""
        content_type = self.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            return {}
        return parse_qs(self.body.decode("utf-8", "replace"), keep_blank_values=True)

    def form_value(self, name: str, default: str | None = None) -> str | None:
        values = self.form.get(name)
        return values[0] if values else default

    def url_for(self, path: str, query: Mapping[str, str] | Sequence[tuple[str, str]] | None = None) -> str:
        """An absolute URL on this sandbox, as the client addressed it (Host header), for Link headers."""
        url = f"{self.base_url}{path}"
        return f"{url}?{urlencode(query)}" if query else url


@dataclass(frozen=True)
class SandboxResponse:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


def json_response(status: int, body: Any, headers: Mapping[str, str] | None = None) -> SandboxResponse:
    """A JSON answer; `headers` are added to (and may override) the Content-Type."""
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    return SandboxResponse(status, payload, {"Content-Type": "application/json", **(headers or {})})


@dataclass(frozen=True)
class RecordedRequest:
    """A partner request as received; holds keys and personal data, so it never leaves the process."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Headers
    body_json: Any
    faulted: bool = False
    # Wall-clock seconds when the request arrived: fault tests measure a client's pauses (Retry-After) by it.
    received_at: float = 0.0
