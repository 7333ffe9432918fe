"""Evaluation scenarios and the named suites (``default``, ``quick``).

A scenario is a traffic trace x a topology, run for a number of control steps; a suite is
a list of scenarios and the seeds every policy faces. Seeds start at `EVAL_SEED_BASE`
(1000): training uses seeds below it, so evaluation traces are never training traces.

Traces: the simulator's synthetic kinds (``diurnal``, ``flash``, ``ramp``,
``fluctuating``; `gnnrl.sim.traces`) and ``replay`` of a ``t_s,rps`` file, by default the
shipped ``gnnrl/assets/traces/daily.csv`` (see `daily_profile`). A replayed file is
compressed into the episode (its whole span over ``steps`` intervals, like the synthetic
``diurnal`` day) and rescaled to the scenario's peak.

Topologies (`TOPOLOGIES`):

* ``static``: the application as specified;
* ``add``: at one third of the episode a new service joins. For OnlineBoutique it is the
  simulator's ``reviewservice``, called by productcatalogservice on half of its requests;
  for another application a service of the same shape is called by its busiest
  non-entry service;
* ``remove``: at half of the episode a service is switched off (its callers stop calling
  it). For OnlineBoutique it is adservice; otherwise the least-loaded leaf service.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pandas as pd

from gnnrl.config import ConfigError, atomic_write_text
from gnnrl.sim.core import BatchedSim
from gnnrl.sim.onlineboutique import reviewservice
from gnnrl.sim.scenario import Scenario, TopologyEvent
from gnnrl.sim.spec import AppSpec, CallSpec
from gnnrl.sim.traces import TRACE_KINDS, load_trace

#: First evaluation seed; training seeds are below it.
EVAL_SEED_BASE = 1000
TOPOLOGIES = ("static", "add", "remove")
SUITE_TRACES = ("diurnal", "flash", "ramp", "fluctuating", "replay")
ASSETS = Path(__file__).resolve().parent.parent / "assets"
DEFAULT_REPLAY = ASSETS / "traces" / "daily.csv"

#: Relative load per hour of day (00..23 h), peak = 1: a typical web-traffic day (night
#: trough near 04:00 at ~30 % of peak, morning ramp, lunchtime plateau, evening peak
#: ~20:00). A hand-set profile in the shape published for large public sites (e.g. the
#: Wikimedia pageview dashboards' hourly curves), not a measurement.
DAILY_PROFILE = (0.55, 0.45, 0.38, 0.33, 0.30, 0.31, 0.36, 0.47, 0.62, 0.74, 0.81, 0.85,
                 0.88, 0.86, 0.83, 0.82, 0.84, 0.87, 0.92, 0.97, 1.00, 0.95, 0.82, 0.67)


def daily_profile(minutes: int = 1440, seed: int = 7) -> pd.DataFrame:
    """The shipped replay trace: `DAILY_PROFILE` interpolated per minute, x lognormal
    noise (sigma 0.05, seed ``seed``), peak 100 req/s. Columns ``t_s, rps``."""
    hours = np.arange(minutes) / 60.0
    prof = np.asarray(DAILY_PROFILE + DAILY_PROFILE[:1])
    shape = np.interp(hours, np.arange(25), prof)
    rng = np.random.default_rng(seed)
    rps = 100.0 * shape * np.exp(rng.normal(0.0, 0.05, minutes))
    return pd.DataFrame({"t_s": np.arange(minutes) * 60.0, "rps": np.round(rps, 3)})


def write_daily_profile(path: str | Path = DEFAULT_REPLAY) -> Path:
    """(Re)generate the shipped replay CSV; ``python -m gnnrl.evaluation.scenarios``."""
    atomic_write_text(path, daily_profile().to_csv(index=False))
    return Path(path)


def default_peak_rps(app: AppSpec) -> float:
    """A peak load every policy can in principle serve: 25 % of the entry load at which
    the bottleneck service, at its max replicas, is fully busy (225 req/s for the
    built-in OnlineBoutique, whose bottleneck is the frontend: 15 pods x 60 req/s)."""
    sim = BatchedSim(app, 1)
    unit = sim.propagate(np.ones(1))[0]
    used = unit > 0
    limit = np.min(sim.max_replicas[used] * sim.cap[used] / unit[used])
    return float(round(0.25 * limit))


@dataclasses.dataclass(frozen=True)
class EvalScenario:
    """One trace x topology for ``steps`` control intervals.

    Attributes:
        trace: a kind of `gnnrl.sim.traces.TRACE_KINDS`, ``"replay"`` (the shipped daily
            file) or a path to a ``t_s,rps`` CSV/Parquet file.
        topology: one of `TOPOLOGIES`.
        steps: episode length (intervals).
        peak_rps: the trace's peak; None = `default_peak_rps` of the application.
    """

    trace: str
    topology: str = "static"
    steps: int = 240
    peak_rps: float | None = None

    def __post_init__(self) -> None:
        if self.topology not in TOPOLOGIES:
            raise ConfigError(f"topology must be one of {TOPOLOGIES}, got {self.topology!r}")
        if self.steps < 8:
            raise ConfigError(f"steps must be >= 8, got {self.steps}")
        if self.peak_rps is not None and not (self.peak_rps > 0 and math.isfinite(self.peak_rps)):
            raise ConfigError(f"peak_rps must be > 0, got {self.peak_rps}")
        if self.trace not in TRACE_KINDS and self.trace != "replay" \
                and not Path(self.trace).exists():
            raise ConfigError(f"trace: {self.trace!r} is neither a trace kind "
                              f"({', '.join(TRACE_KINDS)}, replay) nor an existing file")

    @property
    def trace_label(self) -> str:
        return self.trace if self.trace in TRACE_KINDS or self.trace == "replay" \
            else Path(self.trace).stem

    @property
    def name(self) -> str:
        return f"{self.trace_label}/{self.topology}"

    @property
    def event_step(self) -> int | None:
        """The step of the topology event (None for ``static``)."""
        return {"static": None, "add": self.steps // 3, "remove": self.steps // 2}[
            self.topology]

    @property
    def is_flash(self) -> bool:
        return self.trace == "flash"

    def to_sim_scenario(self, app: AppSpec, work_dir: str | Path, interval_s: float = 15.0
                        ) -> Scenario:
        """The simulator's `Scenario`; a replay is written compressed under ``work_dir``."""
        peak = self.peak_rps or default_peak_rps(app)
        trace = self.trace
        if trace == "replay" or trace not in TRACE_KINDS:
            trace = str(_compressed_replay(DEFAULT_REPLAY if trace == "replay" else Path(trace),
                                           self.steps, interval_s, Path(work_dir)))
        return Scenario(name=self.name, trace=trace, peak_rps=peak,
                        events=topology_events(app, self.topology, self.steps))


def _compressed_replay(src: Path, steps: int, interval_s: float, work_dir: Path) -> Path:
    """Write ``src`` averaged into ``steps`` buckets spanning the whole file, at
    ``interval_s`` per bucket, so the simulator replays it over one episode."""
    raw = pd.read_csv(src) if src.suffix != ".parquet" else pd.read_parquet(src)
    span = float(raw["t_s"].max() - raw["t_s"].min())
    if span <= 0:
        raise ConfigError(f"trace: {src} spans no time")
    rps = load_trace(src, interval_s=max(span / steps, 1e-9))[:steps]
    if len(rps) < steps:
        rps = np.resize(rps, steps)
    out = work_dir / "traces" / f"{src.stem}-{steps}.csv"
    atomic_write_text(out, pd.DataFrame({"t_s": np.arange(steps) * interval_s,
                                         "rps": rps}).to_csv(index=False))
    return out


def topology_events(app: AppSpec, topology: str, steps: int) -> tuple[TopologyEvent, ...]:
    """The events of a topology variant (see the module docstring)."""
    if topology == "static":
        return ()
    sim = BatchedSim(app, 1)
    load = dict(zip(sim.service_names, sim.propagate(np.ones(1))[0], strict=True))
    if topology == "add":
        svc, calls = reviewservice()
        if svc.name in app.services:
            raise ConfigError(f"topology 'add': {svc.name} already exists in {app.name}")
        if "productcatalogservice" not in app.services:
            caller = max((s for s in app.services if s != app.entry), key=load.get,
                         default=app.entry)
            calls = [CallSpec(caller, svc.name, 0.5)]
        return (TopologyEvent(step=steps // 3, kind="add", service=svc, calls=tuple(calls)),)
    if "adservice" in app.services:
        victim = "adservice"
    else:
        callers = {c.src for c in app.calls}
        leaves = [s for s in app.services if s not in callers and s != app.entry]
        if not leaves:
            raise ConfigError(f"topology 'remove': {app.name} has no removable leaf service")
        victim = min(leaves, key=load.get)
    return (TopologyEvent(step=steps // 2, kind="remove", service_name=victim),)


@dataclasses.dataclass(frozen=True)
class Suite:
    """Scenarios x seeds."""

    name: str
    scenarios: tuple[EvalScenario, ...]
    seeds: tuple[int, ...]


def eval_seeds(n: int) -> tuple[int, ...]:
    """``n`` evaluation seeds from `EVAL_SEED_BASE` (disjoint from training seeds)."""
    if n < 1:
        raise ConfigError(f"seeds must be >= 1, got {n}")
    return tuple(range(EVAL_SEED_BASE, EVAL_SEED_BASE + n))


def get_suite(name: str, seeds: int | None = None, steps: int | None = None,
              peak_rps: float | None = None) -> Suite:
    """A named suite: ``default`` (5 traces x 3 topologies, 240 steps = 1 h, 5 seeds) or
    ``quick`` (diurnal/static and flash/add, 60 steps, 2 seeds)."""
    if name == "default":
        n_steps = steps or 240
        scen = tuple(EvalScenario(t, topo, n_steps, peak_rps)
                     for t in SUITE_TRACES for topo in TOPOLOGIES)
        return Suite(name, scen, eval_seeds(seeds or 5))
    if name == "quick":
        n_steps = steps or 60
        scen = (EvalScenario("diurnal", "static", n_steps, peak_rps),
                EvalScenario("flash", "add", n_steps, peak_rps))
        return Suite(name, scen, eval_seeds(seeds or 2))
    raise ConfigError(f"suite: unknown suite {name!r} (known: default, quick)")


def trace_suite(path: str | Path, seeds: int = 5, steps: int = 240,
                peak_rps: float | None = None,
                topologies: tuple[str, ...] = ("static",)) -> Suite:
    """A suite replaying one trace file under the given topologies."""
    scen = tuple(EvalScenario(str(path), t, steps, peak_rps) for t in topologies)
    return Suite(f"trace:{Path(path).stem}", scen, eval_seeds(seeds))


if __name__ == "__main__":  # pragma: no cover
    print(write_daily_profile())
