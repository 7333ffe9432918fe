"""Episode metrics: what one policy did on one scenario and seed, from per-step records.

Inputs are two tables the runner records (`gnnrl.evaluation.runner`):

* ``steps``: one row per control step: ``step, t_s, trace_rps, e2e_p95_ms, e2e_mean_ms,
  slo_p95_ms, slo_violated, error_rate`` (and more, ignored here);
* ``services``: one row per step and *active* service: ``step, service, replicas,
  ready, cpu_m, cpu_request_m, rps_in``.

Definitions (units in the names):

* ``slo_violation_rate``: share of steps whose end-to-end p95 exceeds the SLO.
* ``mean_latency_ms``: mean over steps of the end-to-end mean response time;
  ``p95_latency_ms``: mean over steps of the end-to-end p95 (the SLO's quantity).
* ``error_rate``: failed share of all entry requests (load-weighted over steps).
* ``replica_hours``: sum over steps and services of pods x interval (starting pods count:
  they are paid for); ``cpu_core_hours``: the same weighted by the CPU request, in cores.
* ``mean_cpu_utilization``: CPU used / CPU requested over the episode (0..).
* ``scaling_actions``: (service, step) pairs where the replica count changed, not
  counting a service's appearance or removal by a topology event.
* ``direction_reversals``: a change in the opposite direction to the same service's
  previous change within `FLAP_WINDOW_S` (300 s, the HPA's own scale-down stabilisation
  window: a reversal inside it is what that window exists to prevent).
* ``recover_flash_s`` / ``recover_topology_s``: seconds from the flash-crowd onset (first
  step at >= 65 % of the trace's peak) or the topology event until the SLO holds for
  `RECOVERY_HOLD_STEPS` consecutive steps; 0 if it never broke; the time left in the
  episode if it never recovered (censored); NaN when the scenario has no such event.
* ``event_violation_steps`` / ``other_violation_steps``: violating steps inside /
  outside the first `EVENT_WINDOW_STEPS` steps from a flash-crowd onset or a topology
  event. The step of the event is beyond any policy that does not see the future (the
  jump is observed only once that interval is over), and the next one is served by the
  pods decided after seeing it, some still starting; so event violations measure the
  headroom a policy kept, and other violations measure its everyday control.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

#: Reversals closer than this count as flapping (s).
FLAP_WINDOW_S = 300.0
#: Consecutive SLO-compliant steps that count as recovered.
RECOVERY_HOLD_STEPS = 4
#: A flash crowd starts at the first step at or above this share of the trace's peak.
FLASH_ONSET_SHARE = 0.65
#: Steps from an event (itself included) whose violations count as the event's.
EVENT_WINDOW_STEPS = 2

METRIC_COLUMNS = (
    "slo_violation_rate", "mean_latency_ms", "p95_latency_ms", "error_rate",
    "replica_hours", "cpu_core_hours", "mean_cpu_utilization", "scaling_actions",
    "direction_reversals", "recover_flash_s", "recover_topology_s",
    "event_violation_steps", "other_violation_steps",
)


def time_to_recover(violated: np.ndarray, start: int, interval_s: float,
                    hold: int = RECOVERY_HOLD_STEPS) -> float:
    """Seconds from step ``start`` until ``hold`` consecutive steps meet the SLO.

    Shapes: violated (T,) bool. Returns 0.0 when the SLO holds from ``start`` on; the
    remaining episode time when it never recovers (censored).
    """
    v = np.asarray(violated, dtype=bool)
    T = len(v)
    if start >= T:
        return math.nan
    for s in range(start, T):
        window = v[s:s + hold]
        if not window.any() and (len(window) == hold or s + len(window) == T):
            return float((s - start) * interval_s)
    return float((T - start) * interval_s)


def flash_onset(trace_rps: np.ndarray, share: float = FLASH_ONSET_SHARE) -> int:
    """First step at or above ``share`` of the trace's peak. Shapes: (T,) -> int."""
    x = np.asarray(trace_rps, dtype=float)
    return int(np.flatnonzero(x >= share * x.max())[0])


def _changes(services: pd.DataFrame) -> pd.DataFrame:
    """Per (service, step) replica change made by the policy (appearances excluded)."""
    df = services.sort_values(["service", "step"])[["service", "step", "replicas"]]
    prev_step = df.groupby("service")["step"].shift()
    delta = df["replicas"] - df.groupby("service")["replicas"].shift()
    ok = prev_step.notna() & (df["step"] - prev_step == 1)
    out = df.loc[ok, ["service", "step"]].copy()
    out["delta"] = delta[ok].astype(int)
    return out[out["delta"] != 0]


def count_reversals(changes: pd.DataFrame, interval_s: float,
                    window_s: float = FLAP_WINDOW_S) -> int:
    """Direction reversals within ``window_s`` per service, summed."""
    n = 0
    for _, g in changes.groupby("service"):
        sign = np.sign(g["delta"].to_numpy())
        step = g["step"].to_numpy()
        flip = (sign[1:] != sign[:-1]) & ((step[1:] - step[:-1]) * interval_s <= window_s)
        n += int(flip.sum())
    return n


def episode_metrics(steps: pd.DataFrame, services: pd.DataFrame, interval_s: float,
                    flash_step: int | None = None, topology_step: int | None = None
                    ) -> dict[str, float]:
    """All `METRIC_COLUMNS` for one episode (see the module docstring)."""
    dt_h = interval_s / 3600.0
    violated = steps["slo_violated"].to_numpy(dtype=bool)
    load = steps["trace_rps"].to_numpy(dtype=float)
    err = steps["error_rate"].to_numpy(dtype=float)
    requested_m = (services["replicas"] * services["cpu_request_m"]).sum()
    changes = _changes(services)
    near_event = np.zeros(len(violated), dtype=bool)
    for start in (flash_step, topology_step):
        if start is not None:
            near_event[start:start + EVENT_WINDOW_STEPS] = True
    return {
        "slo_violation_rate": float(violated.mean()),
        "mean_latency_ms": float(steps["e2e_mean_ms"].mean()),
        "p95_latency_ms": float(steps["e2e_p95_ms"].mean()),
        "error_rate": float((err * load).sum() / load.sum()) if load.sum() > 0
        else float(err.mean()),
        "replica_hours": float(services["replicas"].sum() * dt_h),
        "cpu_core_hours": float(requested_m / 1000.0 * dt_h),
        "mean_cpu_utilization": float(services["cpu_m"].sum() / requested_m)
        if requested_m > 0 else math.nan,
        "scaling_actions": float(len(changes)),
        "direction_reversals": float(count_reversals(changes, interval_s)),
        "recover_flash_s": math.nan if flash_step is None
        else time_to_recover(violated, flash_step, interval_s),
        "recover_topology_s": math.nan if topology_step is None
        else time_to_recover(violated, topology_step, interval_s),
        "event_violation_steps": float((violated & near_event).sum()),
        "other_violation_steps": float((violated & ~near_event).sum()),
    }
