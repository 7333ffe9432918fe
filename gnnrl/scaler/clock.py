"""The scaler's clocks: every wait and every timestamp of the scaler goes through one
(`gnnrl.contracts.clock.Clock`; the scaler reads `monotonic()` for deadlines, windows and
lease times).

`MonotonicClock` is the real one; `FakeClock` advances only when told (or when slept on),
so tests of windows, Retry-After and lease expiry run in microseconds.
"""

from __future__ import annotations

import threading

from gnnrl.contracts.clock import Clock, SystemClock, VirtualClock


class MonotonicClock(SystemClock):
    """`time.monotonic` and an interruptible sleep (set `stop_event` to wake up at once)."""

    @property
    def stop_event(self) -> threading.Event:
        """The event that wakes a sleep (the scaler's name for `stop`)."""
        return self.stop


class FakeClock(VirtualClock):
    """A clock that moves only by `advance` or `sleep` (which returns at once).

    Attributes:
        t: the current monotonic time, seconds (starts at 1000 s).
        slept: every sleep asked for, in order (tests check Retry-After with it).
    """

    def __init__(self, start: float = 1000.0) -> None:
        super().__init__(t=start)


__all__ = ["Clock", "FakeClock", "MonotonicClock"]
