"""Daemon threads that work until asked to stop: the SQS pumps', the bus routers' and the schedule timer's."""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable, Iterable


class StoppableThreads:
    """A stop flag and the threads that watch it: `stop()` asks, `join()` waits (and forgets them)."""

    def __init__(self) -> None:
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def _start_threads(self, target: Callable[[], None], names: Iterable[str]) -> None:
        self._threads = [threading.Thread(target=target, name=name, daemon=True) for name in names]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Ask the threads to stop after what they are doing (at most one poll)."""
        self._stopping.set()

    def join(self, timeout: float | None = None) -> None:
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []

    def _poll(self, cycle: Callable[[], int], failure: str, idle_seconds: float | None = None) -> None:
        """Run `cycle` until stopped, pausing `idle_seconds` when it found nothing to do; a failed cycle (a transient
        moto error) is reported as `failure` and retried a second later, so the thread outlives it."""
        while not self._stopping.is_set():
            try:
                if not cycle() and idle_seconds is not None:
                    self._stopping.wait(idle_seconds)
            except Exception:
                if self._stopping.is_set():
                    break
                print(failure, file=sys.stderr)
                traceback.print_exc(file=sys.stderr)
                self._stopping.wait(1.0)
