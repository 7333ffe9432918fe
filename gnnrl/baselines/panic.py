"""Knative's Pod Autoscaler (KPA): a stable window and a panic window on request load.

A port of the decision in knative/serving ``pkg/autoscaler/scaling/autoscaler.go``
(``autoscaler.Scale``), with the defaults of its ``config-autoscaler`` ConfigMap
(https://knative.dev/docs/serving/autoscaling/kpa-specific/): stable window 60 s, panic
window 10 % of it (6 s), panic threshold 200 %, target utilisation 70 %, max scale-up rate
1000, max scale-down rate 2, no scale-down delay. Per service, every control interval:

    stable = mean req/s over the stable window        panic = mean req/s over the panic window
    target = req/s per pod at the operating point     (``target_utilization``; see below)
    dspc   = ceil(stable / target)                    dppc  = ceil(panic / target)
    ready  = max(1, ready pods)
    both clamped to [floor(ready / max_scale_down_rate), ceil(ready x max_scale_up_rate)]
    over   = dppc / ready >= panic_threshold
    panicking starts when ``over``, is extended while ``over``, and ends once not ``over``
      and more than a stable window has passed since it was last ``over``
    desired = dspc                                       when not panicking
            = max so far in this panic of max(dspc, dppc)  when panicking (never scales down)

In our 15 s control steps the panic window (6 s) is shorter than an interval, so it is the
last interval's req/s: a load that doubles the current pods' target load is answered at
the next step with the pods that load needs. As upstream, an autoscaler that starts with
more than one ready pod starts in panic mode at that count (it holds the scale until it
has a stable window of data: "we're keeping at least the current scale"). Not ported:
scale to zero and the activator's burst capacity (our services keep ``min_replicas``).

What it sees: each service's received req/s over the interval that just ended
(``info["rps_in"]``, the queue-proxy's request count in Knative), its ready pods and the
simulated time. KPA's target is a per-pod request rate (or concurrency) x the target
utilisation; here the per-pod rate at 100 % is the load at which one pod uses its whole
CPU request, and the target is the req/s at which one pod uses ``target_utilization`` of
it (`rps_at_cpu_utilization`), so ``panic-NN`` runs at the operating point of ``hpa-NN``
and ``keda-NN``. The knob is ``target_utilization``.
"""

from __future__ import annotations

import dataclasses
import math
from collections import deque
from typing import Any

import numpy as np

from gnnrl.baselines.base import (
    ReplicaTargetPolicy,
    interval_s,
    rps_at_cpu_utilization,
    service_specs,
)
from gnnrl.config import ConfigError, JsonConfig


@dataclasses.dataclass
class PanicConfig(JsonConfig):
    """Knative ``config-autoscaler`` settings that `PanicPolicy` uses (upstream defaults).

    Attributes:
        target_utilization: share of a pod's capacity the stable mode aims for
            (``container-concurrency-target-percentage``), in (0, 2] of the CPU request.
        stable_window_s: ``stable-window``, seconds.
        panic_window_pct: ``panic-window-percentage``: the panic window as % of the stable
            window (at least one control interval).
        panic_threshold: ``panic-threshold-percentage`` / 100: panic when the panic
            window's demand needs this many times the ready pods.
        max_scale_up_rate / max_scale_down_rate: ``max-scale-up-rate`` and
            ``max-scale-down-rate``: at most ready x up, at least ready / down pods.
    """

    target_utilization: float = 0.7
    stable_window_s: float = 60.0
    panic_window_pct: float = 10.0
    panic_threshold: float = 2.0
    max_scale_up_rate: float = 1000.0
    max_scale_down_rate: float = 2.0

    def __post_init__(self) -> None:
        if not (0.0 < self.target_utilization <= 2.0):
            raise ConfigError(f"target_utilization: must be in (0, 2] (of the CPU request), "
                              f"got {self.target_utilization}")
        if not self.stable_window_s > 0:
            raise ConfigError(f"stable_window_s: must be > 0, got {self.stable_window_s}")
        if not (0.0 < self.panic_window_pct <= 100.0):
            raise ConfigError(f"panic_window_pct: must be in (0, 100], "
                              f"got {self.panic_window_pct}")
        if not self.panic_threshold > 1.0:
            raise ConfigError(f"panic_threshold: must be > 1, got {self.panic_threshold}")
        if not self.max_scale_up_rate > 1.0:
            raise ConfigError(f"max_scale_up_rate: must be > 1, got {self.max_scale_up_rate}")
        if not self.max_scale_down_rate > 1.0:
            raise ConfigError(f"max_scale_down_rate: must be > 1, "
                              f"got {self.max_scale_down_rate}")


@dataclasses.dataclass
class _KPAState:
    """One revision's autoscaler: its load samples and panic state (upstream's fields)."""

    samples: deque[float]
    panic_time: float | None = None
    max_panic_pods: int = 0


class PanicPolicy(ReplicaTargetPolicy):
    """Knative KPA-style autoscaling on req/s, one autoscaler per service.

    Args:
        config: `PanicConfig` (Knative's defaults).
        name: the row label; default ``panic`` (``panic-NN`` off a 70 % target).
    """

    def __init__(self, config: PanicConfig | None = None, name: str | None = None) -> None:
        self.config = config or PanicConfig()
        pct = round(self.config.target_utilization * 100)
        self.name = name or ("panic" if pct == 70 else f"panic-{pct}")
        self._state: dict[str, _KPAState] = {}
        self._targets: dict[str, float] = {}
        self._stable_n = 1
        self._panic_n = 1

    def reset(self, env: Any) -> None:
        super().reset(env)
        dt = interval_s(env)
        cfg = self.config
        # windows in control intervals: the stable window's samples, and the panic window
        # (10 % of it) rounded up to at least the one interval we can observe
        self._stable_n = max(1, round(cfg.stable_window_s / dt))
        self._panic_n = max(1, math.ceil(cfg.stable_window_s * cfg.panic_window_pct / 100
                                         / dt - 1e-9))
        self._targets = {n: rps_at_cpu_utilization(s, cfg.target_utilization)
                         for n, s in service_specs(env).items()}
        self._state = {}

    def panicking(self, service: str) -> bool:
        """Whether ``service``'s autoscaler is in panic mode (after the last decision)."""
        state = self._state.get(service)
        return state is not None and state.panic_time is not None

    def scale(self, service: str, rps: float, ready: int, now: float) -> int:
        """One ``autoscaler.Scale`` for ``service``: record ``rps`` (req/s over the last
        interval) and return the desired pods, given its ``ready`` pods at time ``now`` (s)."""
        cfg = self.config
        state = self._state.get(service)
        if state is None:  # newAutoscaler: more than one ready pod -> start panicking
            state = self._state[service] = _KPAState(deque(maxlen=self._stable_n))
            if ready > 1:
                state.panic_time, state.max_panic_pods = now, ready
        state.samples.append(max(float(rps), 0.0))
        samples = list(state.samples)
        stable = float(np.mean(samples))
        panic = float(np.mean(samples[-self._panic_n:]))
        target = self._targets[service]
        pods = max(1.0, float(ready))
        max_up = math.ceil(cfg.max_scale_up_rate * pods)
        max_down = math.floor(pods / cfg.max_scale_down_rate)
        dspc = math.ceil(stable / target - 1e-9)
        dppc = math.ceil(panic / target - 1e-9)
        desired_stable = int(min(max(dspc, max_down), max_up))
        desired_panic = int(min(max(dppc, max_down), max_up))
        over = dppc / pods >= cfg.panic_threshold
        if over:  # begin panicking, or extend the panic
            state.panic_time = now
        elif state.panic_time is not None and now > state.panic_time + cfg.stable_window_s:
            state.panic_time, state.max_panic_pods = None, 0  # the surge reached `stable`
        desired = desired_stable
        if state.panic_time is not None:  # only increases while panicking
            state.max_panic_pods = max(state.max_panic_pods, desired_stable, desired_panic)
            desired = state.max_panic_pods
        return desired

    def desired_replicas(self, obs: dict, info: dict) -> np.ndarray:
        names = info["slot_names"]
        out = np.asarray(info["replicas"], dtype=np.int64).copy()
        for gone in set(self._state) - set(names):  # a removed service's autoscaler goes
            del self._state[gone]
        now = float(info.get("t_s", 0.0))
        for i, name in enumerate(names):
            if name is None:
                continue
            out[i] = self.scale(name, float(info["rps_in"][i]),
                                int(info["ready_replicas"][i]), now)
        return out
