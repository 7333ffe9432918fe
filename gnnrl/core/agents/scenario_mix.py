"""The training mix: applications x cluster timings x traffic traces x peak loads x
topology changes.

Every env of a training run gets the whole list and draws one scenario per episode from
its own seeded RNG (`OnlineBoutique.reset`), so the policy sees steady days, flash crowds,
ramps and random walks, with services added and removed mid-episode.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from gnnrl.sim.capacity import default_peak_rps
from gnnrl.contracts.seeds import TRAIN_APP_SEEDS
from gnnrl.sim.generator import GENERATED_PREFIX, generated_app_seed
from gnnrl.sim.onlineboutique import reviewservice
from gnnrl.sim.scenario import Scenario, TopologyEvent
from gnnrl.sim.spec import AppSpec, load_app_spec
from gnnrl.sim.trace_io import BUILTIN_TRACES
from gnnrl.sim.trace_windows import (
    HELD_OUT_WINDOWS,
    TRAIN_WINDOWS,
    VALIDATION_WINDOWS,
    TraceWindow,
    overlapping_windows,
)
from gnnrl.sim.traces import TRACE_KINDS, parse_trace_spec

#: topology variants, as (label, [(step fraction of the episode, kind, service)])
TOPOLOGY_VARIANTS: dict[str, tuple[tuple[float, str, str], ...]] = {
    "static": (),
    "add": ((0.3, "add", "reviewservice"),),
    "remove": ((0.5, "remove", "adservice"),),
    "churn": ((0.2, "add", "reviewservice"), (0.6, "remove", "recommendationservice"),
              (0.8, "remove", "reviewservice")),
}


def _events(app: AppSpec, variant: str, max_steps: int) -> tuple[TopologyEvent, ...]:
    events = []
    review, review_calls = reviewservice()
    for frac, kind, name in TOPOLOGY_VARIANTS[variant]:
        step = max(1, int(frac * max_steps))
        if kind == "add":
            if name != review.name:
                raise ValueError(f"no spec for added service {name!r}")
            calls = tuple(c for c in review_calls if c.src in app.services)
            events.append(TopologyEvent(step=step, kind="add", service=review, calls=calls))
        elif name in app.services or name == review.name:
            events.append(TopologyEvent(step=step, kind="remove", service_name=name))
    return tuple(events)


def training_scenarios(app: AppSpec, traces: Sequence[str], peaks: Sequence[float],
                       topology: Sequence[str], max_steps: int) -> list[Scenario]:
    """Every combination of ``traces`` x ``peaks`` x ``topology`` variants.

    Topology variants other than "static" need OnlineBoutique's services (the added
    ``reviewservice`` is called by ``productcatalogservice``); for another app they are
    skipped.
    """
    unknown = sorted(set(topology) - set(TOPOLOGY_VARIANTS))
    if unknown:
        raise ValueError(f"unknown topology variant(s) {unknown}; known: "
                         f"{sorted(TOPOLOGY_VARIANTS)}")
    ob = {"productcatalogservice", "adservice", "recommendationservice"} <= set(app.services)
    out = []
    for trace in traces:
        for peak in peaks:
            for variant in topology:
                if variant != "static" and not ob:
                    continue
                out.append(Scenario(name=f"{trace}-{peak:g}-{variant}", trace=trace,
                                    peak_rps=float(peak),
                                    events=_events(app, variant, max_steps)))
    if not out:
        raise ValueError("the scenario mix is empty")
    return out


@dataclasses.dataclass(frozen=True)
class TrainSetup:
    """One (application, cluster timing, start-up scale) of a training run, with its
    scenario mix; the trainer runs one pool of envs per setup.

    Attributes:
        label: ``app/timing/startupX`` (logs).
        app: the application, start-up times already scaled.
        scenarios: its training scenarios.
        timing: cluster timing preset (`gnnrl.sim.timing.TIMING_PRESETS`).
    """

    label: str
    app: AppSpec
    scenarios: tuple[Scenario, ...]
    timing: str


def expand_apps(apps: Sequence[str], seed: int) -> list[str]:
    """App names with every ``generated:K`` replaced by K generated training apps, their
    seeds drawn from `TRAIN_APP_SEEDS` by the run ``seed``; a named ``generated-<seed>``
    must be a training seed (evaluation apps never appear in training).

    Raises:
        ValueError: a malformed ``generated:K`` or an evaluation app.
    """
    out: list[str] = []
    rng = np.random.default_rng([seed, 424243])
    for name in apps:
        if name.startswith("generated:"):
            try:
                k = int(name.split(":", 1)[1])
            except ValueError:
                raise ValueError(f"apps: {name!r}: expected generated:K, K an integer") \
                    from None
            if k < 1:
                raise ValueError(f"apps: {name!r}: K must be >= 1")
            seeds = rng.choice(len(TRAIN_APP_SEEDS), size=k, replace=False)
            out += [f"{GENERATED_PREFIX}{TRAIN_APP_SEEDS[int(s)]}" for s in sorted(seeds)]
            continue
        app_seed = generated_app_seed(name)
        if app_seed is not None and app_seed not in TRAIN_APP_SEEDS:
            raise ValueError(f"apps: {name!r} is an evaluation app (training apps use seeds "
                             f"{TRAIN_APP_SEEDS.start}..{TRAIN_APP_SEEDS.stop - 1})")
        out.append(name)
    return out


def check_training_traces(traces: Sequence[str]) -> None:
    """Refuse a real-trace window that overlaps an evaluation window (ValueError)."""
    for spec in traces:
        if spec in TRACE_KINDS:
            continue
        parsed = parse_trace_spec(spec)
        if parsed.source not in BUILTIN_TRACES:
            continue
        if not parsed.windowed:
            raise ValueError(f"traces: {spec!r} is the whole {parsed.source} trace, which "
                             f"holds evaluation windows; train on a window of it "
                             f"(e.g. {TRAIN_WINDOWS[0].spec})")
        mine = TraceWindow(spec, parsed.source, parsed.start or "0s",
                           parsed.duration or "1d", "")
        clash = overlapping_windows((mine,), HELD_OUT_WINDOWS)
        if clash:
            kind = "validation" if clash[0][1] in VALIDATION_WINDOWS else "evaluation"
            raise ValueError(f"traces: {spec!r} overlaps the {kind} window "
                             f"{clash[0][1].name!r} ({clash[0][1].spec})")


def training_setups(apps: Sequence[str], seed: int, traces: Sequence[str],
                    peaks: Sequence[float], peak_scales: Sequence[float],
                    topology: Sequence[str], max_steps: int, timings: Sequence[str],
                    startup_scales: Sequence[float]) -> list[TrainSetup]:
    """Every app (`expand_apps`) x timing preset; start-up scales cycle over the setups.

    Peaks: ``peak_scales`` x each app's `default_peak_rps` when given (apps differ in
    capacity by orders of magnitude), else the absolute ``peaks``.
    """
    check_training_traces(traces)
    setups = []
    for a, name in enumerate(expand_apps(apps, seed)):
        base = load_app_spec(name)
        app_peaks = ([s * default_peak_rps(base) for s in peak_scales] if peak_scales
                     else list(peaks))
        for t, timing in enumerate(timings):
            # shifted per app, so no timing always comes with the same start-up scale
            scale = float(startup_scales[(a + t) % len(startup_scales)])
            app = base if scale == 1.0 else base.with_services(
                {n: dataclasses.replace(s, startup_s=s.startup_s * scale)
                 for n, s in base.services.items()}, base.calls)
            setups.append(TrainSetup(f"{base.name}/{timing}/startup{scale:g}x", app,
                                     tuple(training_scenarios(app, traces, app_peaks,
                                                              topology, max_steps)),
                                     timing))
    return setups
