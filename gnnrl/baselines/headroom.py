"""A load-aware headroom rule: GNNRL's imitation teacher, and a baseline row of its own.

Why a second rule next to HPA. In the simulator (and in the real systems it models) the
SLO violations of a *reactive* policy come almost entirely from two events nobody can see
coming: the first interval of a flash crowd, and a new service arriving with one pod
(docs/evaluation.md, "Where violations come from"). What a policy controls is how much
headroom it keeps for such jumps, and HPA keeps the same relative headroom at every load
level. But the jump a load can still make is bounded by the application's peak: from a
night trough, traffic can triple; near the daily peak, it cannot. So the headroom worth
paying for depends on where the load stands relative to the peak. This rule makes that
one observation explicit; it is the regularity we expect a learned policy to find, and we
use it as the behaviour-cloning teacher (`gnnrl.core.agents.imitation`) before PPO.

Per service s, every control interval (15 s):

    target_s   = low_target   if entry_rps < knee x peak_rps   else  high_target
    threshold_s = req/s at which one pod of s uses target_s of its CPU request
                  (`rps_at_cpu_utilization`, the operating point HPA's target means)
    rec_s      = ceil(rps_in_s / threshold_s)       (KEDA's AverageValue formula)
    rec_s     *= overshoot     if rps_in_s > jump_ratio x last interval's rps_in_s
    replicas_s = max(rec_s over the last window_steps intervals)

* the recommendation watches requests per second, as KEDA does (`gnnrl.baselines.keda`),
  because CPU saturates at the limit in overload and under-reports demand;
* ``overshoot`` on a jump drains the backlog the jump left behind (the backlog's delay is
  backlog / capacity: `gnnrl.sim.core`); scale-up is otherwise immediate and unlimited
  up to the action space's 7 pods per step;
* the scale-down window is HPA's stabilisation (max recommendation over a window,
  kubernetes/kubernetes ``pkg/controller/podautoscaler/horizontal.go``
  ``stabilizeRecommendation``), 2 minutes instead of the default 5.

``peak_rps`` is the application's peak entry load. In the simulator it is the scenario's
(what a trace is scaled to); in a cluster it is what the pipeline's collection measured
(`gnnrl.data.calibrate`). It is knowledge of the traffic *envelope*, not of the future:
the rule does not know when the load will move.

The default parameters were chosen on training seeds (< 1000) with
``python benchmarks/sweep_headroom.py``; evaluation uses seeds from 1000.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from typing import Any

import numpy as np

from gnnrl.baselines.base import (
    ReplicaTargetPolicy,
    rps_at_cpu_utilization,
    service_specs,
    unwrapped,
)
from gnnrl.config import ConfigError, JsonConfig


@dataclasses.dataclass
class HeadroomConfig(JsonConfig):
    """Parameters of `HeadroomPolicy` (see the module docstring for the formula).

    Attributes:
        low_target / high_target: CPU target as a fraction of the request below / above
            the knee (0.7 = HPA's usual 70 %).
        knee: entry load, as a fraction of ``peak_rps``, where the target switches.
        window_steps: scale-down stabilisation window, in control intervals.
        jump_ratio: an interval-on-interval load ratio above which the step is a jump.
        overshoot: factor on the recommendation after a jump (>= 1).
        peak_rps: the application's peak entry load, req/s; None = the scenario's.
    """

    low_target: float = 0.7
    high_target: float = 1.0
    knee: float = 0.5
    window_steps: int = 8
    jump_ratio: float = 1.5
    overshoot: float = 1.5
    peak_rps: float | None = None

    def __post_init__(self) -> None:
        for name in ("low_target", "high_target"):
            v = getattr(self, name)
            if not (0.0 < v <= 2.0):
                raise ConfigError(f"{name}: must be in (0, 2] (of the CPU request), got {v}")
        if not (0.0 <= self.knee <= 1.0):
            raise ConfigError(f"knee: must be in [0, 1] (of peak_rps), got {self.knee}")
        if self.window_steps < 1:
            raise ConfigError(f"window_steps: must be >= 1, got {self.window_steps}")
        if not self.jump_ratio > 1.0:
            raise ConfigError(f"jump_ratio: must be > 1, got {self.jump_ratio}")
        if not self.overshoot >= 1.0:
            raise ConfigError(f"overshoot: must be >= 1, got {self.overshoot}")
        if self.peak_rps is not None and not (self.peak_rps > 0 and math.isfinite(self.peak_rps)):
            raise ConfigError(f"peak_rps: must be > 0, got {self.peak_rps}")

    @classmethod
    def at_target(cls, low_target: float) -> HeadroomConfig:
        """The default rule moved along the cost/SLO frontier by one knob (``headroom-NN``):
        ``low_target`` replaces 0.7 and ``high_target`` keeps its ratio to it (1.0 / 0.7),
        so both operating points move together; the knee, window and jump handling stay."""
        base = cls()
        return cls(low_target=low_target,
                   high_target=low_target * base.high_target / base.low_target)


class HeadroomPolicy(ReplicaTargetPolicy):
    """The load-aware headroom rule as a `Policy` (one decision per 15 s interval)."""

    def __init__(self, config: HeadroomConfig | None = None, name: str = "headroom") -> None:
        self.config = config or HeadroomConfig()
        self.name = name
        self._low: dict[str, float] = {}
        self._high: dict[str, float] = {}
        self._history: dict[str, deque[int]] = {}
        self._last_rps: dict[str, float] = {}
        self.peak_rps = 0.0

    def reset(self, env: Any) -> None:
        super().reset(env)
        cfg = self.config
        specs = service_specs(env)
        self._low = {n: rps_at_cpu_utilization(s, cfg.low_target) for n, s in specs.items()}
        self._high = {n: rps_at_cpu_utilization(s, cfg.high_target) for n, s in specs.items()}
        self._history = {}
        self._last_rps = {}
        base = unwrapped(env)
        self.peak_rps = cfg.peak_rps or float(base.scenario.peak_rps)
        self._entry = base.sim.app.entry

    def recommendation(self, name: str, rps: float, entry_rps: float) -> int:
        """This interval's raw recommendation for ``name`` (before the window), pods."""
        cfg = self.config
        low = entry_rps < cfg.knee * self.peak_rps
        rec = math.ceil(rps / (self._low if low else self._high)[name] - 1e-9)
        last = self._last_rps.get(name)
        if last is not None and last > 0 and rps > cfg.jump_ratio * last:
            rec = math.ceil(rec * cfg.overshoot)
        self._last_rps[name] = rps
        return rec

    def desired_replicas(self, obs: dict, info: dict) -> np.ndarray:
        names = info["slot_names"]
        out = np.asarray(info["replicas"], dtype=np.int64).copy()
        rps_in = np.asarray(info["rps_in"], dtype=float)
        entry_rps = float(rps_in[names.index(self._entry)]) if self._entry in names else 0.0
        for key in set(self._history) - set(names):  # removed services start afresh
            self._history.pop(key)
            self._last_rps.pop(key, None)
        for i, name in enumerate(names):
            if name is None:
                continue
            hist = self._history.setdefault(name, deque(maxlen=self.config.window_steps))
            hist.append(self.recommendation(name, float(rps_in[i]), entry_rps))
            out[i] = max(hist)
        return out
