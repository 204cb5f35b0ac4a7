"""hub_core.caches: container-cached factories reset together (with exceptions kept), and TtlCache's bounds."""

from __future__ import annotations

import pytest

from hub_core import caches
from hub_core.caches import TtlCache, container_cached, on_reset, reset_all


def counting_factory():
    calls = []

    def build() -> object:
        calls.append(1)
        return object()

    return build, calls


def test_a_cached_factory_builds_once_until_reset():
    build, calls = counting_factory()
    cached = container_cached(build)
    first = cached()
    assert cached() is first
    assert len(calls) == 1
    reset_all()
    assert cached() is not first
    assert len(calls) == 2


def test_a_cached_factory_memoises_per_argument():
    seen: list[str] = []
    cached = container_cached(lambda name: seen.append(name) or name.upper())
    assert [cached("a"), cached("b"), cached("a")] == ["A", "B", "A"]
    assert seen == ["a", "b"]


def test_reset_keeps_the_factories_it_is_told_to_keep():
    kept_build, kept_calls = counting_factory()
    other_build, other_calls = counting_factory()
    kept, other = container_cached(kept_build), container_cached(other_build)
    kept_value, other_value = kept(), other()
    reset_all(keep=[kept])
    assert kept() is kept_value
    assert other() is not other_value
    assert (len(kept_calls), len(other_calls)) == (1, 2)


def test_registered_resetters_run_on_reset_unless_kept():
    cleared: list[str] = []

    def clear_sessions() -> None:
        cleared.append("sessions")

    on_reset(clear_sessions)
    reset_all(keep=[clear_sessions])
    assert cleared == []
    reset_all()
    assert cleared == ["sessions"]
    caches._RESETTERS.remove(clear_sessions)  # this test's resetter is not the process's


def test_an_entry_is_served_until_its_ttl_ends_and_loaded_again_after():
    now = [100.0]
    cache = TtlCache(clock=lambda: now[0])
    loads: list[int] = []
    load = lambda: loads.append(len(loads)) or len(loads)  # noqa: E731 - a counter in one line
    assert cache.get_or_load("k", load, ttl_seconds=5) == 1
    now[0] = 104.9
    assert cache.get_or_load("k", load, ttl_seconds=5) == 1
    now[0] = 105.0  # expiry is exclusive: at its end the entry is stale
    assert cache.get_or_load("k", load, ttl_seconds=5) == 2


def test_keys_are_kept_apart_and_a_put_replaces_the_entry_with_its_own_ttl():
    now = [0.0]
    cache = TtlCache(clock=lambda: now[0])
    assert cache.get_or_load(("projects", 1), lambda: "p1", ttl_seconds=60) == "p1"
    assert cache.get_or_load(("projects", 2), lambda: "p2", ttl_seconds=60) == "p2"
    cache.put(("projects", 1), "fresher", ttl_seconds=10)
    assert cache.get_or_load(("projects", 1), lambda: "reloaded", ttl_seconds=60) == "fresher"
    now[0] = 11
    assert cache.get_or_load(("projects", 1), lambda: "reloaded", ttl_seconds=60) == "reloaded"
    assert cache.get_or_load(("projects", 2), lambda: "unused", ttl_seconds=60) == "p2"


def test_a_full_cache_drops_expired_entries_before_live_ones():
    now = [0.0]
    cache = TtlCache(max_entries=2, clock=lambda: now[0])
    cache.get_or_load("short", lambda: "s", ttl_seconds=1)
    cache.get_or_load("long", lambda: "l", ttl_seconds=100)
    now[0] = 2
    cache.get_or_load("new", lambda: "n", ttl_seconds=100)
    assert set(cache._entries) == {"long", "new"}  # the expired one went, the oldest live one stayed


def test_a_full_cache_of_live_entries_drops_the_oldest():
    cache = TtlCache(max_entries=2, clock=lambda: 0.0)
    for name in ("a", "b", "c"):
        cache.get_or_load(name, lambda name=name: name, ttl_seconds=100)
    assert list(cache._entries) == ["b", "c"]


def test_a_failed_load_caches_nothing():
    cache = TtlCache(clock=lambda: 0.0)

    def failing() -> str:
        raise ConnectionError("partner down")

    for _ in range(2):
        with pytest.raises(ConnectionError):
            cache.get_or_load("k", failing, ttl_seconds=60)
    assert cache._entries == {}
    assert cache.get_or_load("k", lambda: "ok", ttl_seconds=60) == "ok"


def test_every_ttl_cache_is_cleared_by_reset_all():
    cache = TtlCache(clock=lambda: 0.0)
    cache.put("k", "v", ttl_seconds=60)
    reset_all()
    assert cache.get_or_load("k", lambda: "after reset", ttl_seconds=60) == "after reset"
