"""The one clock protocol, and its real and virtual implementations.

Every wait and every timestamp of the collector and of the in-cluster scaler goes through
a `Clock`: the real one (`SystemClock`, sleep interruptible by a stop event) and a virtual
one (`VirtualClock`: sleeping advances time instantly; the simulator's fast mode and the
tests of windows, Retry-After and lease expiry run in microseconds)."""

from __future__ import annotations

import threading
import time
from typing import Protocol

import pandas as pd


class Clock(Protocol):
    """What the collector and the scaler need from time."""

    def monotonic(self) -> float:
        """Seconds on a monotonic scale (differences only)."""

    def now(self) -> pd.Timestamp:
        """The current UTC wall time (timestamps of snapshots and gap rows)."""

    def sleep(self, seconds: float) -> None:
        """Wait `seconds` (may return early when a stop is requested)."""


class SystemClock:
    """Real time; `sleep` returns as soon as `stop` is set (SIGTERM handling)."""

    def __init__(self, stop: threading.Event | None = None) -> None:
        self.stop = stop or threading.Event()

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> pd.Timestamp:
        return pd.Timestamp.now(tz="UTC")

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.stop.wait(seconds)


class VirtualClock:
    """Time that only moves when someone sleeps or calls `advance` (no real waiting).

    Args:
        start: wall time at monotonic 0 (UTC).
        t: the monotonic time to start at, s.
    """

    def __init__(self, start: pd.Timestamp | str = "2026-01-01T00:00:00Z",
                 t: float = 0.0) -> None:
        stamp = pd.Timestamp(start)
        self.start = stamp.tz_localize("UTC") if stamp.tzinfo is None \
            else stamp.tz_convert("UTC")
        #: seconds on the monotonic scale; `now()` is ``start + t``
        self.t = float(t)
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.t

    def now(self) -> pd.Timestamp:
        return self.start + pd.Timedelta(seconds=self.t)

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.slept.append(seconds)
            self.t += seconds

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass without a sleep (e.g. a slow HTTP answer in a test)."""
        self.t += seconds
