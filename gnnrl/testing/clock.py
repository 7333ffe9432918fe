"""`TickingClock`: the tests' stand-in for ``time.monotonic`` where code takes a bare
``clock()`` callable (the HPA controller, the real-cluster env backend) rather than a
`gnnrl.contracts.clock.Clock`.

It is a `VirtualClock` (time moves by `advance`, by `sleep`, which returns at once and is
recorded in `slept`, or by setting `t`) that can also charge `tick_s` seconds for every
reading, so "the API calls took time" is visible to the code under test without waiting.
"""

from __future__ import annotations

from gnnrl.contracts.clock import VirtualClock


class TickingClock(VirtualClock):
    """A callable virtual clock.

    Args:
        t: the monotonic time to start at, s.
        tick_s: seconds added by every reading (0: time only moves when told).
    """

    def __init__(self, t: float = 0.0, tick_s: float = 0.0) -> None:
        super().__init__(t=t)
        self.tick_s = float(tick_s)

    def monotonic(self) -> float:
        self.t += self.tick_s
        return self.t

    def __call__(self) -> float:
        return self.monotonic()
