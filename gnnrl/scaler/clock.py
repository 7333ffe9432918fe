"""Injectable clocks: every wait and every timestamp of the scaler goes through one.

`MonotonicClock` is the real one; `FakeClock` advances only when told (or when slept on),
so tests of windows, Retry-After and lease expiry run in microseconds.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol


class Clock(Protocol):
    """Seconds (monotonic) and a sleep that may be interrupted by `stop`."""

    def now(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class MonotonicClock:
    """`time.monotonic` and an interruptible sleep (set `stop_event` to wake up at once)."""

    def __init__(self) -> None:
        self.stop_event = threading.Event()

    def now(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.stop_event.wait(seconds)


class FakeClock:
    """A clock that moves only by `advance` or `sleep` (which returns at once).

    Attributes:
        t: the current time, seconds.
        slept: every sleep asked for, in order (tests check Retry-After with it).
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.t = float(start)
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(float(seconds))
        self.t += max(0.0, float(seconds))

    def advance(self, seconds: float) -> None:
        self.t += float(seconds)
