"""Real and virtual clocks. Everything in the local runtime asks a clock for the time, so a test
can run a month of waits in milliseconds."""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    virtual: bool

    def now(self) -> float: ...

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> None: ...


class RealClock:
    virtual = False

    def now(self) -> float:
        return time.time()

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> None:
        if seconds <= 0:
            return
        if wake is not None:
            wake.wait(seconds)
        else:
            time.sleep(seconds)


class VirtualClock:
    """Time that only moves when told to (or when the runtime skips to the next timer)."""

    virtual = True

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._now = float(start)
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += max(0.0, seconds)

    def advance_to(self, when: float) -> None:
        with self._lock:
            self._now = max(self._now, when)

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> None:
        self.advance(seconds)
