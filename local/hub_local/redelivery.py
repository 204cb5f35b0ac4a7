"""At-least-once delivery on demand: which SQS messages and EventBridge events the local stack delivers twice, or late.

SQS and EventBridge promise at-least-once delivery, and Lambda's event source mapping and asynchronous queue add
duplicates of their own; a laptop's moto never duplicates anything, so code that is only right for exactly-once
passes locally. With the switch on, a seeded RNG picks deliveries to repeat:

- an SQS message that the function settled is, with probability `duplicate_rate`, left in the queue instead of
  deleted: it comes back with the same messageId and a higher receive count, as an SQS duplicate does (at most once
  per message, and never when that receive would send it to its DLQ, which a duplicate of a settled message on AWS
  would not make more likely than its own failures);
- an event a rule routes to a target is, with the same probability, delivered to it a second time;
- each duplicate is, with probability `late_rate`, late: it comes back after `late_seconds` rather than at once.

The seed makes one run's choices repeatable (in order of the draws; threads make the order vary under load).
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

ENV_SWITCH: Final = "HUB_LOCAL_AT_LEAST_ONCE"
ENV_SEED: Final = "HUB_LOCAL_SEED"
ENV_DUPLICATE_RATE: Final = "HUB_LOCAL_DUPLICATE_RATE"
ENV_LATE_RATE: Final = "HUB_LOCAL_LATE_RATE"
DEFAULT_DUPLICATE_RATE: Final = 0.25
DEFAULT_LATE_RATE: Final = 0.3
DEFAULT_LATE_SECONDS: Final = 1.0
DEFAULT_SEED: Final = 16
_TRUE: Final = ("1", "true", "yes", "on")


@dataclass
class Redelivery:
    """The choices and the counts: `duplicates` and `late` by channel ("sqs:<queue>", "events:<target>")."""

    enabled: bool = False
    duplicate_rate: float = DEFAULT_DUPLICATE_RATE
    late_rate: float = DEFAULT_LATE_RATE
    late_seconds: float = DEFAULT_LATE_SECONDS
    seed: int = DEFAULT_SEED
    duplicates: dict[str, int] = field(default_factory=dict)
    late: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 0.0 <= self.duplicate_rate <= 1.0 or not 0.0 <= self.late_rate <= 1.0:
            raise ValueError("duplicate_rate and late_rate are probabilities (0 to 1)")
        self._random = random.Random(self.seed)
        self._lock = threading.Lock()
        self._repeated: set[str] = set()

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str],
        *,
        enabled: bool | None = None,
        duplicate_rate: float | None = None,
        late_rate: float | None = None,
        late_seconds: float | None = None,
        seed: int | None = None,
    ) -> Redelivery:
        """The arguments given, else HUB_LOCAL_AT_LEAST_ONCE, HUB_LOCAL_SEED, HUB_LOCAL_DUPLICATE_RATE and
        HUB_LOCAL_LATE_RATE, else the defaults (off)."""
        if enabled is None:
            enabled = environ.get(ENV_SWITCH, "").strip().lower() in _TRUE
        return cls(
            enabled=enabled,
            duplicate_rate=float(environ.get(ENV_DUPLICATE_RATE, DEFAULT_DUPLICATE_RATE))
            if duplicate_rate is None
            else duplicate_rate,
            late_rate=float(environ.get(ENV_LATE_RATE, DEFAULT_LATE_RATE)) if late_rate is None else late_rate,
            late_seconds=DEFAULT_LATE_SECONDS if late_seconds is None else late_seconds,
            seed=int(environ.get(ENV_SEED, DEFAULT_SEED)) if seed is None else seed,
        )

    def repeat(self, channel: str, key: str | None = None) -> float | None:
        """Whether to deliver this once more: None for no, else after how many seconds (0: at once).
        With `key` (an SQS messageId), a delivery is repeated at most once."""
        if not self.enabled:
            return None
        with self._lock:
            if key is not None and key in self._repeated:
                return None
            if self._random.random() >= self.duplicate_rate:
                return None
            late = self._random.random() < self.late_rate
            if key is not None:
                self._repeated.add(key)
            self.duplicates[channel] = self.duplicates.get(channel, 0) + 1
            if late:
                self.late[channel] = self.late.get(channel, 0) + 1
            return self.late_seconds if late else 0.0

    @property
    def total(self) -> int:
        with self._lock:
            return sum(self.duplicates.values())
