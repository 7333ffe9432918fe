"""Crane's Effective HPA (EHPA) with its DSP predictor, on requests per second.

gocrane/crane's EHPA (https://gocrane.io/docs/tutorials/using-effective-hpa-to-scaling-with-effectiveness/,
``pkg/controller/ehpa``) scales through an ordinary HPA to which it adds a *prediction*
metric: the largest value the predictor forecasts for the metric within the prediction
window. The HPA takes the larger of the live and the forecast recommendations
(``computeReplicasForMetrics``), so the workload is scaled up before a periodic peak
arrives and is not scaled down just before one. The predictor is Crane's DSP
(`gnnrl.baselines.dsp`): it finds the period of the metric's history (a day or a week in
production) and forecasts the next cycle from the past ones.

Per service s, every control interval:

    live_s     = the service's req/s over the interval that just ended
    forecast_s = max of the DSP forecast over the next L_s intervals,
                 L_s = ceil(startup_s / interval) + 1   (a pod requested now serves then)
    rec_s      = max(ceil(live_s / target_s), ceil(forecast_s / target_s))
    target_s   = req/s at which one pod uses ``utilization`` of its CPU request

with KEDA's formula (``External`` metric, ``AverageValue`` target: `gnnrl.baselines.keda`)
and autoscaling/v2's default behaviour (`HPAPolicy`) on top. Without a forecast (too little
history, or no period in it) it is KEDA at the same operating point; the knob
``utilization`` moves it along the cost/SLO frontier like ``keda-NN``.

What it sees: each service's received req/s over the last interval (``info["rps_in"]``),
its pods and the simulated time, like KEDA; plus the **history before the episode**, the
req/s per interval that a Prometheus would hold for the days before (Crane queries
7 days). Neither the environment nor the scenario keeps a trace before the episode (a
synthetic or replayed day starts at step 0), so the history is handed to the policy:

    policy.reset(env, history_rps=...)

``history_rps`` is either a mapping service -> (T,) req/s, or a (T,) array of *entry*
req/s that the policy spreads over the services with the call graph at the episode's
start (`BatchedSim.propagate`, linear in the entry load). Samples are one per control
interval, oldest first, and the last one is the interval just before the one the reset's
observation reports. Without it (``reset(env)``, what the evaluation runner calls today)
the rule has no forecast and behaves as KEDA. The forecast is fitted once per episode at
reset (Crane refits every 12 h, half a day; our episodes are one compressed day at most).
Services added during the episode have no history and use the live metric.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from gnnrl.baselines.base import interval_s, service_specs, unwrapped
from gnnrl.baselines.dsp import DSPConfig, forecast_cycle
from gnnrl.baselines.hpa import HPAConfig
from gnnrl.baselines.keda import KEDAPolicy, keda_recommendation
from gnnrl.config import ConfigError, JsonConfig
from gnnrl.hpa import combine_metrics


@dataclasses.dataclass
class PredictiveConfig(JsonConfig):
    """Parameters of `PredictivePolicy`.

    Attributes:
        utilization: operating point, as a fraction of the CPU request (0.7 = HPA-70's);
            the per-pod req/s target is the load at which one pod uses this much of it.
        lookahead_intervals: extra intervals the forecast looks ahead beyond each
            service's start-up time (1 = the interval in which the new pod serves).
        dsp: the predictor's settings (`DSPConfig`).
    """

    utilization: float = 0.7
    lookahead_intervals: int = 1
    dsp: DSPConfig = dataclasses.field(default_factory=DSPConfig)

    def __post_init__(self) -> None:
        if not (0.0 < self.utilization <= 2.0):
            raise ConfigError(f"utilization: must be in (0, 2] (of the CPU request), "
                              f"got {self.utilization}")
        if self.lookahead_intervals < 1:
            raise ConfigError(f"lookahead_intervals: must be >= 1, "
                              f"got {self.lookahead_intervals}")


def service_history(env: Any, history_rps: Any) -> dict[str, np.ndarray]:
    """Per-service req/s history from ``history_rps`` (see the module docstring).

    Shapes: a mapping service -> (T,) is taken as is; a (T,) array of entry req/s becomes
    service -> (T,) through the call graph in force at the episode's start.

    Raises:
        ConfigError: not 1-D, negative or non-finite samples.
    """
    if history_rps is None:
        return {}
    if isinstance(history_rps, Mapping):
        series = {str(k): np.asarray(v, dtype=float) for k, v in history_rps.items()}
    else:
        entry = np.asarray(history_rps, dtype=float)
        sim = unwrapped(env).sim
        unit = sim.propagate(np.ones(sim.n))[0]  # (S,) req/s per entry req/s
        series = {name: entry * float(unit[sim.index[name]]) for name in sim.service_names}
    for name, x in series.items():
        if x.ndim != 1 or not np.all(np.isfinite(x)) or np.any(x < 0):
            raise ConfigError(f"history_rps: {name}: need a 1-D series of finite req/s >= 0")
    return series


class PredictivePolicy(KEDAPolicy):
    """Crane EHPA-style: max(DSP forecast, live req/s) through KEDA's formula and the HPA.

    Args:
        config: `PredictiveConfig`.
        hpa: the behaviour of the HPA underneath (default autoscaling/v2's).
        name: the row label; default ``predictive`` (``predictive-NN`` off 70 %).
    """

    def __init__(self, config: PredictiveConfig | None = None, hpa: HPAConfig | None = None,
                 name: str | None = None) -> None:
        cfg = config or PredictiveConfig()
        pct = round(cfg.utilization * 100)
        super().__init__(utilization=cfg.utilization, config=hpa,
                         name=name or ("predictive" if pct == 70 else f"predictive-{pct}"))
        self.predictive = cfg
        #: service -> forecast cycle; element j is for the (j)-th interval of the episode
        self.cycles: dict[str, np.ndarray] = {}
        self._lead: dict[str, int] = {}
        self._step = -1

    def reset(self, env: Any = None, history_rps: Any = None) -> None:
        """Start an episode; ``history_rps`` (optional) warms the forecaster up."""
        super().reset(env)
        self._step = -1
        dt = interval_s(env)
        self._lead = {name: math.ceil(spec.startup_s / dt - 1e-9)
                      + self.predictive.lookahead_intervals
                      for name, spec in service_specs(env).items()}
        self.cycles = {}
        for name, series in service_history(env, history_rps).items():
            cycle = forecast_cycle(series, self.predictive.dsp)
            if cycle is not None:
                self.cycles[name] = cycle

    def forecast(self, service: str) -> float | None:
        """Largest forecast req/s of ``service`` over its look-ahead from the current
        interval (None = no forecast)."""
        cycle = self.cycles.get(service)
        if cycle is None:
            return None
        ahead = self._step + 1 + np.arange(self._lead.get(service, 1))
        return float(cycle[ahead % cycle.size].max())

    def act(self, obs: dict, info: dict) -> np.ndarray:
        self._step += 1  # 0 = the reset's observation, the interval after the history
        return super().act(obs, info)

    def _recommend(self, i: int, current: int, info: dict) -> int | None:
        name = info["slot_names"][i]
        threshold = self.threshold(name)
        tol = self.config.tolerances
        live = keda_recommendation(current, float(info["rps_in"][i]), threshold, tol)
        ahead = self.forecast(name)
        if ahead is None:
            return live
        return combine_metrics(current, [live, keda_recommendation(current, ahead,
                                                                   threshold, tol)])
