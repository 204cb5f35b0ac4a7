"""Per-container caches that are built on first use and can all be reset at once (tests, the local runner)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Collection
from typing import Any

_RESETTERS: list[Callable[[], None]] = []


def container_cached[**P, R](factory: Callable[P, R]) -> Callable[P, R]:
    """Memoise a factory for the life of the container: settings, clients and sessions are built once, lazily."""
    cached = functools.cache(factory)
    _RESETTERS.append(cached.cache_clear)
    return cached  # type: ignore[return-value]


def on_reset(resetter: Callable[[], None]) -> None:
    """Register something else to clear with `reset_all` (a third-party cache, a session pool)."""
    _RESETTERS.append(resetter)


def reset_all(keep: Collection[Callable[..., Any]] = ()) -> None:
    """Forget every cached factory's result, as a fresh container would, except the factories in `keep`."""
    for resetter in _RESETTERS:
        # A cached factory's resetter is its bound cache_clear; a registered function is itself.
        if resetter not in keep and getattr(resetter, "__self__", None) not in keep:
            resetter()


class TtlCache:
    """A small time-bounded memo for partner reads that may be slightly stale (project lists, catalogues)."""

    def __init__(self, max_entries: int = 128, clock: Callable[[], float] = time.monotonic):
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[Any, tuple[float, Any]] = {}
        on_reset(self.clear)

    def get_or_load[T](self, key: Any, load: Callable[[], T], ttl_seconds: float) -> T:
        now = self._clock()
        hit = self._entries.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]  # type: ignore[no-any-return]
        value = load()
        if len(self._entries) >= self.max_entries:
            self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
        self._entries[key] = (now + ttl_seconds, value)
        return value

    def put(self, key: Any, value: Any, ttl_seconds: float) -> None:
        """Replace one entry with a value just read (a fresher one than the cache held)."""
        self._entries[key] = (self._clock() + ttl_seconds, value)

    def clear(self) -> None:
        self._entries.clear()
