"""Failures on demand for a sandbox: the fault modes, a fault's lifetime, and the thread-safe queue consuming them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Final, Literal, get_args

FaultMode = Literal["status", "rate_limit", "slow", "hang", "malformed", "drop"]
FAULT_MODES: Final[frozenset[str]] = frozenset(get_args(FaultMode))
_MODE_NAMES: Final = ", ".join(sorted(FAULT_MODES))
# Looks like the start of a real answer so that a client which sniffs the first bytes is still fooled.
MALFORMED_BODY: Final = b'{"data": [{"id": 1, "title": "truncat'
# What a control request's fault may say (POST /_sandbox/faults).
FAULT_FIELDS: Final = frozenset(
    ("mode", "count", "for_seconds", "status", "retry_after", "delay", "path_prefix"),
)


@dataclass
class Fault:
    mode: FaultMode
    status: int = 503
    retry_after: int | None = None
    delay: float | None = None
    path_prefix: str | None = None
    remaining: int | None = None
    expires_at: float | None = None  # on the injector's monotonic clock

    def matches(self, path: str) -> bool:
        return self.path_prefix is None or path.startswith(self.path_prefix)

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at

    def describe(self, now: float) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "status": self.status,
            "retry_after": self.retry_after,
            "delay": self.delay,
            "path_prefix": self.path_prefix,
            "remaining": self.remaining,
            "expires_in": None if self.expires_at is None else max(0.0, self.expires_at - now),
        }


def _is_int(value: object) -> bool:
    # bool is an int subclass, and `"count": true` in a control request is a mistake, not a count of 1.
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return _is_int(value) or isinstance(value, float)


def _is_path(value: object) -> bool:
    return isinstance(value, str) and value.startswith("/")


class FaultInjector:
    """Failures on demand, consumed in the order they were added; thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(
        self,
        mode: FaultMode,
        *,
        count: int | None = None,
        for_seconds: float | None = None,
        status: int = 503,
        retry_after: int | None = None,
        delay: float | None = None,
        path_prefix: str | None = None,
    ) -> Fault:
        """Queue a fault; with neither `count` nor `for_seconds` it lasts until `clear()`."""
        checks = (
            (isinstance(mode, str) and mode in FAULT_MODES, f"mode must be one of {_MODE_NAMES}"),
            (count is None or (_is_int(count) and count >= 1), "count must be a positive integer"),
            (for_seconds is None or (_is_number(for_seconds) and for_seconds > 0), "for_seconds must be > 0"),
            (_is_int(status) and 200 <= status <= 599, "status must be an integer from 200 to 599"),
            (retry_after is None or (_is_int(retry_after) and retry_after >= 0), "retry_after must be >= 0"),
            (delay is None or (_is_number(delay) and delay >= 0), "delay must be a number >= 0"),
            (mode not in ("slow", "hang") or delay is not None, f"a {mode} fault needs a delay"),
            (path_prefix is None or _is_path(path_prefix), "path_prefix must be a string starting with /"),
        )
        problems = [message for ok, message in checks if not ok]
        if problems:
            raise ValueError("; ".join(problems))
        fault = Fault(
            mode=mode,
            status=status,
            retry_after=retry_after,
            delay=delay,
            path_prefix=path_prefix,
            remaining=count,
            expires_at=None if for_seconds is None else self._clock() + for_seconds,
        )
        with self._lock:
            self._faults.append(fault)
        return replace(fault)

    def clear(self) -> int:
        """Remove every fault; returns how many were pending."""
        with self._lock:
            cleared = len(self._faults)
            self._faults.clear()
        return cleared

    def active(self) -> list[Fault]:
        """Copies of the faults still pending, in consumption order."""
        with self._lock:
            self._prune()
            return [replace(fault) for fault in self._faults]

    def describe(self) -> list[dict[str, Any]]:
        now = self._clock()
        return [fault.describe(now) for fault in self.active()]

    def take(self, path: str) -> Fault | None:
        """Consume the first pending fault that applies to `path`, if any."""
        with self._lock:
            self._prune()
            for fault in self._faults:
                if not fault.matches(path):
                    continue
                if fault.remaining is not None:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                return replace(fault)
        return None

    def __len__(self) -> int:
        return len(self.active())

    def _prune(self) -> None:
        now = self._clock()
        self._faults = [fault for fault in self._faults if not fault.expired(now)]
