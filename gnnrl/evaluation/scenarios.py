"""Evaluation scenarios and the named suites (``default``, ``quick``, ``real``, ``stress``).

A scenario is a traffic trace x a topology, run for a number of control steps; a suite is
a list of scenarios and the seeds every policy faces. Seeds start at `EVAL_SEED_BASE`
(1000): training uses seeds below it, so evaluation traces are never training traces.

Traces: the simulator's synthetic kinds (``diurnal``, ``flash``, ``ramp``,
``fluctuating``, ``surge``; `gnnrl.sim.traces`), ``replay`` of the shipped
``gnnrl/assets/traces/daily.csv`` (see `daily_profile`; compressed into the episode in the
``default`` suite, like the synthetic ``diurnal`` day), and real traces (the built-in
``worldcup98`` and ``aws-elb``, or a file; `gnnrl.sim.trace_io`). A real trace is replayed
at its own time scale over a window (``start``, ``duration``), 15 s per step, rescaled so
the window's maximum is the scenario's peak; ``compress`` squeezes the window into
``steps`` instead. Which windows are for training and which for evaluation is
`gnnrl.sim.trace_windows`.

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
import functools
import hashlib
import math
from pathlib import Path

import numpy as np
import pandas as pd

from gnnrl.config import ConfigError, atomic_write_text
from gnnrl.contracts.seeds import EVAL_SEED_BASE, VALIDATION_SEED_BASE
from gnnrl.sim.capacity import default_peak_rps
from gnnrl.sim.core import BatchedSim, SimConfig
from gnnrl.sim.onlineboutique import reviewservice
from gnnrl.sim.scenario import Scenario, TopologyEvent
from gnnrl.sim.spec import AppSpec, CallSpec, load_app_spec
from gnnrl.sim.timing import TimingConfig
from gnnrl.sim.trace_io import (
    BUILTIN_TRACES,
    TraceError,
    check_window,
    format_duration,
    is_real_trace,
    parse_duration,
    read_trace,
)
from gnnrl.sim.trace_windows import (
    EVAL_WINDOWS,
    FRESH_2_EVAL_WINDOWS,
    FRESH_EVAL_WINDOWS,
    LATE_EVAL_WINDOWS,
    VALIDATION_WINDOWS,
    TraceWindow,
)
from gnnrl.sim.traces import TRACE_KINDS, TraceSpec, history_before, window_trace

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


#: Control interval the native-resolution step counts assume (`SimConfig.interval_s`).
CONTROL_INTERVAL_S = 15.0
#: Simulator timing models a scenario may ask for (passed on as ``SimConfig.timing`` where
#: the simulator has one).
TIMINGS = ("ideal", "realistic")


@functools.lru_cache(maxsize=16)
def _builtin_app(name: str) -> AppSpec:
    return load_app_spec(name)


def _label_of(source: str) -> str:
    name = Path(source).name
    for suffix in (".gz", ".bz2", ".xz", ".zip", ".csv", ".parquet"):
        name = name.removesuffix(suffix)
    return name


@dataclasses.dataclass(frozen=True)
class EvalScenario:
    """One trace x topology for ``steps`` control intervals.

    Attributes:
        trace: a kind of `gnnrl.sim.traces.TRACE_KINDS`, ``"replay"`` (the shipped daily
            file), a built-in real trace (``worldcup98``, ``aws-elb``) or a trace file
            (``minute,count``, ``timestamp,value`` or ``t_s,rps``; `gnnrl.sim.trace_io`).
        topology: one of `TOPOLOGIES`.
        steps: episode length (intervals). None: 240 for a synthetic or compressed trace;
            for a replay at native resolution the window's own length (``duration`` /
            15 s: 12 h = 2880 steps), or, without a duration, the trace from ``start`` to
            its end. A native replay given both must agree.
        peak_rps: the trace's peak (a replay's window is rescaled so its maximum is this);
            None = `default_peak_rps` of the application.
        start / duration: the replayed window (``"294h"``, ``"90m"``, ``"1d"``); start is an
            offset from the trace's first timestamp (None = 0).
        compress: squeeze the window into ``steps`` intervals instead of replaying it at
            its own time scale (how ``replay`` runs in the ``default`` suite).
        app: a built-in application name (`gnnrl.sim.spec.load_app_spec`) to run this
            scenario on; None = the run's application.
        timing: simulator timing model (`TIMINGS`), passed on as ``SimConfig.timing``.
        startup_s: when set, every service's start-up time (pod created -> Ready), s.
        label: the trace's name in reports (default: derived from ``trace`` and window).
    """

    trace: str
    topology: str = "static"
    steps: int | None = None
    peak_rps: float | None = None
    start: str | None = None
    duration: str | None = None
    compress: bool = False
    app: str | None = None
    timing: str = "ideal"
    startup_s: float | None = None
    label: str | None = None

    def __post_init__(self) -> None:
        if self.topology not in TOPOLOGIES:
            raise ConfigError(f"topology must be one of {TOPOLOGIES}, got {self.topology!r}")
        if self.peak_rps is not None and not (self.peak_rps > 0 and math.isfinite(self.peak_rps)):
            raise ConfigError(f"peak_rps must be > 0, got {self.peak_rps}")
        if self.timing not in TIMINGS:
            raise ConfigError(f"timing must be one of {TIMINGS}, got {self.timing!r}")
        if self.startup_s is not None and not (
                self.startup_s >= 0 and math.isfinite(self.startup_s)):
            raise ConfigError(f"startup_s must be >= 0, got {self.startup_s}")
        if self.app is not None and not str(self.app).strip():
            raise ConfigError("app must be a non-empty application name or None")
        if self.trace in TRACE_KINDS:
            if self.start is not None or self.duration is not None or self.compress:
                raise ConfigError(f"trace {self.trace!r} is synthetic: start, duration and "
                                  "compress apply to a replayed trace only")
            steps = 240 if self.steps is None else self.steps
        elif self.trace == "replay" or is_real_trace(self.trace):
            steps = self._replay_steps()
        else:
            raise ConfigError(f"trace: {self.trace!r} is neither a trace kind "
                              f"({', '.join(TRACE_KINDS)}, replay), a built-in trace "
                              f"({', '.join(BUILTIN_TRACES)}) nor an existing file")
        if steps < 8:
            raise ConfigError(f"steps must be >= 8, got {steps}")
        object.__setattr__(self, "steps", int(steps))

    def _replay_steps(self) -> int:
        """The episode length of a replay (see ``steps``); validates the window."""
        try:
            start_s = parse_duration(self.start, "start") if self.start is not None else 0.0
            dur_s = parse_duration(self.duration, "duration") \
                if self.duration is not None else None
            raw = read_trace(self.source)
            if self.compress:
                check_window(raw, start_s, dur_s)
                return 240 if self.steps is None else self.steps
            if dur_s is None and self.steps is not None:
                dur_s = self.steps * CONTROL_INTERVAL_S
            dur_s = check_window(raw, start_s, dur_s)
        except TraceError as exc:
            raise ConfigError(str(exc)) from exc
        native = max(round(dur_s / CONTROL_INTERVAL_S), 1)
        if self.steps is not None and self.steps != native:
            raise ConfigError(f"steps: {self.steps} disagrees with the window "
                              f"{self.duration} replayed at its own time scale ({native} "
                              f"steps of {CONTROL_INTERVAL_S:g} s); drop steps, or compress "
                              "the window into them")
        return native

    @property
    def source(self) -> str:
        """The replayed file or built-in trace name (the trace itself when synthetic)."""
        return str(DEFAULT_REPLAY) if self.trace == "replay" else self.trace

    @property
    def windowed(self) -> bool:
        return self.start is not None or self.duration is not None

    @property
    def trace_label(self) -> str:
        if self.label:
            return self.label
        if self.trace in TRACE_KINDS or self.trace == "replay":
            return self.trace
        base = _label_of(self.trace)
        if not self.windowed:
            return base
        return f"{base}@{self.start or '0s'}" + (f"+{self.duration}" if self.duration else "")

    @property
    def name(self) -> str:
        """``TRACE/TOPOLOGY``, prefixed ``APP/`` when the scenario names its app."""
        base = f"{self.trace_label}/{self.topology}"
        return base if self.app is None else f"{self.app}/{base}"

    @property
    def event_step(self) -> int | None:
        """The step of the topology event (None for ``static``)."""
        assert self.steps is not None
        return {"static": None, "add": self.steps // 3, "remove": self.steps // 2}[
            self.topology]

    @property
    def is_flash(self) -> bool:
        """A one-interval step to the peak (``flash``, ``surge``): flash metrics apply."""
        return self.trace in ("flash", "surge")

    def resolve_app(self, app: AppSpec) -> AppSpec:
        """The application this scenario runs: ``app`` or the named built-in one, with
        every service's start-up time set to ``startup_s`` when given."""
        spec = app if self.app is None else _builtin_app(self.app)
        if self.startup_s is None:
            return spec
        services = {n: dataclasses.replace(s, startup_s=float(self.startup_s))
                    for n, s in spec.services.items()}
        return spec.with_services(services, spec.calls)

    def sim_config(self, base: SimConfig | None = None) -> SimConfig:
        """``base`` with this scenario's ``timing`` (`gnnrl.sim.timing` preset name)."""
        return dataclasses.replace(base or SimConfig(), timing=TimingConfig.preset(self.timing))

    def sim_trace(self, work_dir: str | Path, interval_s: float = CONTROL_INTERVAL_S) -> str:
        """The simulator's trace spec: a kind, a compressed copy written under ``work_dir``,
        or a native window ``SOURCE@START+DURATION`` (`gnnrl.sim.traces.trace_from_spec`)."""
        assert self.steps is not None
        if self.trace in TRACE_KINDS:
            return self.trace
        if self.compress:
            return str(_compressed_replay(self.source, self.steps, interval_s, Path(work_dir),
                                          self.start, self.duration))
        if abs(interval_s - CONTROL_INTERVAL_S) > 1e-9:
            raise ConfigError(f"interval_s: a native-resolution replay counts steps of "
                              f"{CONTROL_INTERVAL_S:g} s, the simulator runs {interval_s:g} s")
        return str(TraceSpec(self.source, self.start or "0s",
                             self.duration or format_duration(self.steps * interval_s)))

    def history_rps(self, app: AppSpec, interval_s: float = CONTROL_INTERVAL_S
                    ) -> np.ndarray | None:
        """Entry req/s before the window (`gnnrl.sim.traces.history_before`), on the
        window's scale, for policies that forecast from history; None for synthetic and
        compressed traces, which have no past."""
        if self.trace in TRACE_KINDS or self.compress:
            return None
        return history_before(self.source, start=self.start, duration=self.duration,
                              interval_s=interval_s,
                              peak_rps=self.peak_rps or default_peak_rps(app))

    def to_sim_scenario(self, app: AppSpec, work_dir: str | Path, interval_s: float = 15.0
                        ) -> Scenario:
        """The simulator's `Scenario` on ``app`` (already `resolve_app`-ed)."""
        assert self.steps is not None
        peak = self.peak_rps or default_peak_rps(app)
        events = topology_events(app, self.topology, self.steps)
        if self.startup_s is not None:
            events = tuple(dataclasses.replace(e, service=dataclasses.replace(
                e.service, startup_s=float(self.startup_s))) if e.service is not None else e
                for e in events)
        return Scenario(name=self.name, trace=self.sim_trace(work_dir, interval_s),
                        peak_rps=peak, events=events)


def _compressed_replay(src: str | Path, steps: int, interval_s: float, work_dir: Path,
                       start: str | None = None, duration: str | None = None) -> Path:
    """Write the window of ``src`` squeezed into ``steps`` buckets (`window_trace` with
    ``compress=True``), at ``interval_s`` per bucket, so the simulator replays it over one
    episode."""
    rps = window_trace(src, start=start, duration=duration, steps=steps, compress=True)
    key = hashlib.sha1(f"{Path(src).resolve()}|{start}|{duration}".encode()).hexdigest()[:8]
    out = work_dir / "traces" / f"{_label_of(str(src))}-{steps}-{key}.csv"
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
            caller = max((s for s in app.services if s != app.entry), key=load.__getitem__,
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
        victim = min(leaves, key=load.__getitem__)
    return (TopologyEvent(step=steps // 2, kind="remove", service_name=victim),)


@dataclasses.dataclass(frozen=True)
class Suite:
    """Scenarios x seeds."""

    name: str
    scenarios: tuple[EvalScenario, ...]
    seeds: tuple[int, ...]


def eval_seeds(n: int, base: int = EVAL_SEED_BASE) -> tuple[int, ...]:
    """``n`` evaluation seeds from `EVAL_SEED_BASE` (disjoint from training seeds), or
    from ``base`` (`VALIDATION_SEED_BASE` for the validation suite)."""
    if n < 1:
        raise ConfigError(f"seeds must be >= 1, got {n}")
    return tuple(range(base, base + n))


#: Suites `get_suite` knows.
SUITES = ("default", "quick", "real", "real-late", "real-fresh", "real-fresh-2",
          "real-validation", "stress", "apps")
#: The real-traffic suites and their windows.
REAL_SUITE_WINDOWS = {"real": EVAL_WINDOWS, "real-late": LATE_EVAL_WINDOWS,
                      "real-fresh": FRESH_EVAL_WINDOWS, "real-fresh-2": FRESH_2_EVAL_WINDOWS,
                      "real-validation": VALIDATION_WINDOWS}
#: The ``apps`` suite's applications: both built-ins and generated apps from the
#: evaluation-only seeds (`gnnrl.sim.generator.EVAL_APP_SEEDS`, never used in training).
APPS_SUITE_APPS = ("onlineboutique", "socialnetwork", "generated-1000", "generated-1001",
                   "generated-1002")
#: ... each under a real evaluation window at native resolution and a synthetic flash crowd
APPS_SUITE_WINDOW = "wc98-match-day"
#: The ``stress`` suite: (trace kind, label) x every service's start-up time, s.
STRESS_TRACES = (("surge", "surge10x"), ("flash", "flash"))
STRESS_STARTUPS_S = (30.0, 60.0)


def real_suite(seeds: int = 3, peak_rps: float | None = None,
               windows: tuple[TraceWindow, ...] = EVAL_WINDOWS, name: str = "real") -> Suite:
    """The evaluation windows of the real traces (`gnnrl.sim.trace_windows.EVAL_WINDOWS`;
    ``real-late``: `LATE_EVAL_WINDOWS`...) replayed at their own time scale (15 s steps),
    static topology. ``real-validation`` runs from the validation seeds
    (`VALIDATION_SEED_BASE`), every other suite from the evaluation seeds."""
    scen = tuple(EvalScenario(w.trace, "static", None, peak_rps, start=w.start,
                              duration=w.duration, label=w.name, timing="realistic")
                 for w in windows)
    base = VALIDATION_SEED_BASE if name == "real-validation" else EVAL_SEED_BASE
    return Suite(name, scen, eval_seeds(seeds, base))


def stress_suite(seeds: int = 5, steps: int = 240, peak_rps: float | None = None) -> Suite:
    """Surges that outrun pod start-ups: the 10x ``surge`` (base 10 % of peak -> 100 % in
    one interval) and the ``flash`` step (30 % -> 100 % in one interval), each with every
    service starting in 30 s and in 60 s."""
    scen = tuple(EvalScenario(kind, "static", steps, peak_rps, startup_s=startup,
                              label=f"{label}-startup{startup:g}s", timing="realistic")
                 for kind, label in STRESS_TRACES for startup in STRESS_STARTUPS_S)
    return Suite("stress", scen, eval_seeds(seeds))


def apps_suite(seeds: int = 2, steps: int = 240, peak_rps: float | None = None) -> Suite:
    """Every application of `APPS_SUITE_APPS` under the `APPS_SUITE_WINDOW` evaluation
    window (native resolution) and a ``flash`` crowd (``steps`` intervals), static
    topology, each at its own default peak (`default_peak_rps`) unless ``peak_rps``."""
    window = next(w for w in EVAL_WINDOWS if w.name == APPS_SUITE_WINDOW)
    scen: list[EvalScenario] = []
    for app in APPS_SUITE_APPS:
        scen.append(EvalScenario(window.trace, "static", None, peak_rps, start=window.start,
                                 duration=window.duration, app=app, label=window.name,
                                 timing="realistic"))
        scen.append(EvalScenario("flash", "static", steps, peak_rps, app=app,
                                 timing="realistic"))
    return Suite("apps", tuple(scen), eval_seeds(seeds))


def get_suite(name: str, seeds: int | None = None, steps: int | None = None,
              peak_rps: float | None = None) -> Suite:
    """A named suite (`SUITES`). ``real``, ``stress`` and ``apps`` run with realistic
    cluster timing (`gnnrl.sim.timing`: metrics lag, per-pod start-ups on readiness-probe
    ticks); ``default`` and ``quick`` keep the idealised timing of earlier releases
    (`with_timing` switches either way).

    * ``default``: 5 traces x 3 topologies, 240 steps = 1 h, 5 seeds (``replay``
      compressed: the shipped day in one episode);
    * ``quick``: diurnal/static and flash/add, 60 steps, 2 seeds;
    * ``real``: `real_suite` (native resolution, so ``steps`` does not apply), 3 seeds;
    * ``real-late``: the same on the four later windows (`LATE_EVAL_WINDOWS`);
    * ``real-fresh``: the same on three windows declared with the model guard's cap
      (`FRESH_EVAL_WINDOWS`); ``real-fresh-2``: the last unused days, declared with the
      guard's ``last_pods`` window (`FRESH_2_EVAL_WINDOWS`);
    * ``real-validation``: the real-traffic validation windows (`VALIDATION_WINDOWS`)
      from validation seeds: for choosing settings, never for claims;
    * ``stress``: `stress_suite`, 240 steps, 5 seeds;
    * ``apps``: `apps_suite`, 2 seeds.
    """
    if name == "default":
        n_steps = steps or 240
        scen = tuple(EvalScenario(t, topo, n_steps, peak_rps, compress=t == "replay")
                     for t in SUITE_TRACES for topo in TOPOLOGIES)
        return Suite(name, scen, eval_seeds(seeds or 5))
    if name == "quick":
        n_steps = steps or 60
        scen = (EvalScenario("diurnal", "static", n_steps, peak_rps),
                EvalScenario("flash", "add", n_steps, peak_rps))
        return Suite(name, scen, eval_seeds(seeds or 2))
    if name in REAL_SUITE_WINDOWS:
        if steps is not None:
            raise ConfigError(f"steps: the {name} suite replays its windows at their own "
                              "time scale; their lengths are fixed (see docs/evaluation.md)")
        return real_suite(seeds or 3, peak_rps, REAL_SUITE_WINDOWS[name], name)
    if name == "stress":
        return stress_suite(seeds or 5, steps or 240, peak_rps)
    if name == "apps":
        return apps_suite(seeds or 2, steps or 240, peak_rps)
    raise ConfigError(f"suite: unknown suite {name!r} (known: {', '.join(SUITES)})")


def with_timing(suite: Suite, timing: str) -> Suite:
    """``suite`` with every scenario's timing set to ``timing`` (`TIMINGS`)."""
    if timing not in TIMINGS:
        raise ConfigError(f"timing must be one of {TIMINGS}, got {timing!r}")
    return dataclasses.replace(suite, scenarios=tuple(
        dataclasses.replace(s, timing=timing) for s in suite.scenarios))


def trace_suite(path: str | Path, seeds: int = 5, steps: int | None = None,
                peak_rps: float | None = None,
                topologies: tuple[str, ...] = ("static",), start: str | None = None,
                duration: str | None = None, compress: bool = False,
                timing: str = "ideal") -> Suite:
    """A suite replaying one trace (built-in name or file) under the given topologies.

    At the trace's own time scale by default: the window ``start`` + ``duration`` (or
    ``steps`` intervals, or the rest of the trace); ``compress`` squeezes the window into
    ``steps`` (default 240) intervals instead.
    """
    scen = tuple(EvalScenario(str(path), t, steps, peak_rps, start=start, duration=duration,
                              compress=compress, timing=timing) for t in topologies)
    return Suite(f"trace:{scen[0].trace_label}" if scen else f"trace:{path}", scen,
                 eval_seeds(seeds))


if __name__ == "__main__":  # pragma: no cover
    print(write_daily_profile())
