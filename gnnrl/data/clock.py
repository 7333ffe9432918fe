"""The collector's clocks: `gnnrl.contracts.clock`, re-exported for existing imports."""

from gnnrl.contracts.clock import Clock, SystemClock, VirtualClock

__all__ = ["Clock", "SystemClock", "VirtualClock"]
