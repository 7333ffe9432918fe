"""Run policies through identical scenarios and seeds; record every step; summarise.

Every (policy, scenario, seed) episode builds a fresh `OnlineBoutique` from the same
`Scenario` and calls ``env.reset(seed=seed)``, so every policy meets the same trace, the
same arrival noise stream (as long as it takes the same decisions) and the same topology
events at the same step. The oracle always runs (it is the yardstick of
``replica_hours_vs_oracle``).

A policy with ``supports_topology_change = False`` (the gym-hpa-style MLP, whose input
is a fixed-size vector of the initial services) is not run on topology-change scenarios:
its row has NaN metrics and ``note = "n/a: fixed input graph"``.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gnnrl.baselines.base import reset_policy
from gnnrl.config import ConfigError, atomic_write_bytes, atomic_write_text
from gnnrl.evaluation.frontier import frontier_table
from gnnrl.evaluation.uncertainty import matched_with_intervals, rules_with_intervals
from gnnrl.evaluation.metrics import METRIC_COLUMNS, episode_metrics, flash_onset
from gnnrl.evaluation.policies import dial_sweep_specs
from gnnrl.evaluation.scenarios import EvalScenario, Suite, get_suite, with_timing
from gnnrl.sim.core import SimConfig
from gnnrl.sim.spec import AppSpec, load_app_spec

NA_TOPOLOGY = "n/a: fixed input graph"
_SLOT_KEYS = ("replicas", "ready_replicas", "cpu_m", "cpu_request_m", "rps_in", "p95_ms")


@dataclasses.dataclass
class Episode:
    """One episode's records. ``steps``: one row per step; ``services``: per step x
    active service; ``metrics``: `episode_metrics` (+ identification columns)."""

    steps: pd.DataFrame
    services: pd.DataFrame
    metrics: dict[str, Any]


def run_episode(policy: Any, scenario: EvalScenario, seed: int, app: AppSpec,
                work_dir: str | Path, sim_config: SimConfig | None = None) -> Episode:
    """Step ``policy`` through one scenario and seed; return its records and metrics."""
    from gnnrl.core.envs.online_boutique import OnlineBoutique

    app = scenario.resolve_app(app)
    sim_config = scenario.sim_config(sim_config)
    sim_scen = scenario.to_sim_scenario(app, work_dir, sim_config.interval_s)
    n_steps = scenario.steps
    assert n_steps is not None  # resolved by EvalScenario.__post_init__
    env = OnlineBoutique(app=app, scenario=sim_scen, max_steps=n_steps,
                         use_graph=getattr(policy, "use_graph", True), sim_config=sim_config)
    obs, info = env.reset(seed=seed)
    trace = np.asarray(env.future_entry_rps(n_steps), dtype=float)
    _reset(policy, env, scenario, app, sim_config.interval_s)
    step_rows: dict[str, list] = {k: [] for k in (
        "step", "t_s", "trace_rps", "entry_rps", "e2e_p95_ms", "e2e_mean_ms", "slo_p95_ms",
        "slo_violated", "error_rate", "cost_cores", "invalid_actions", "reward",
        "topology_events")}
    svc_rows: dict[str, list] = {k: [] for k in ("step", "service", "move", *_SLOT_KEYS)}
    for t in range(1, n_steps + 1):
        moves = np.asarray(policy.act(obs, info), dtype=np.int64)
        obs, reward, terminated, truncated, info = env.step(moves)
        step_rows["step"].append(t)
        step_rows["t_s"].append(info["t_s"])
        step_rows["trace_rps"].append(trace[t - 1])
        step_rows["entry_rps"].append(info["entry_rps"])
        step_rows["e2e_p95_ms"].append(info["e2e_p95_ms"])
        step_rows["e2e_mean_ms"].append(info["e2e_mean_ms"])
        step_rows["slo_p95_ms"].append(info["slo_p95_ms"])
        step_rows["slo_violated"].append(bool(info["slo_violated"]))
        step_rows["error_rate"].append(info["error_rate"])
        step_rows["cost_cores"].append(info["cost"])
        step_rows["invalid_actions"].append(info["invalid_actions"])
        step_rows["reward"].append(float(reward))
        step_rows["topology_events"].append("; ".join(info["topology_events"]))
        for i, name in enumerate(info["slot_names"]):
            if name is None:
                continue
            svc_rows["step"].append(t)
            svc_rows["service"].append(name)
            svc_rows["move"].append(int(moves[i]))
            for k in _SLOT_KEYS:
                svc_rows[k].append(float(info[k][i]))
        if terminated or truncated:
            break
    steps = pd.DataFrame(step_rows)
    services = pd.DataFrame(svc_rows)
    services["replicas"] = services["replicas"].astype(np.int64)
    event = scenario.event_step
    # positions in `steps` (row k is step k + 1): the flash's first interval at the
    # crowd's load is row flash_onset(trace) (trace[k] is step k + 1's load); a topology
    # event at step E is in force during row E - 1 (the interval that saw it happen)
    metrics = episode_metrics(
        steps, services, sim_config.interval_s,
        flash_step=flash_onset(trace) if scenario.is_flash else None,
        topology_step=None if event is None else event - 1,
    )
    return Episode(steps, services, metrics)


def _reset(policy: Any, env: Any, scenario: EvalScenario, app: AppSpec,
           interval_s: float) -> None:
    """Reset ``policy``; a forecasting policy also gets the entry req/s before a real
    trace's window (`gnnrl.baselines.base.reset_policy`)."""
    if "history_rps" in inspect.signature(policy.reset).parameters:
        reset_policy(policy, env, scenario.history_rps(app, interval_s))
    else:  # reading the history costs a trace read: only for the policies that use it
        policy.reset(env)


def _ident(policy: str, scenario: EvalScenario, seed: int, app: str) -> dict[str, Any]:
    return {"policy": policy, "scenario": scenario.name, "trace": scenario.trace_label,
            "topology": scenario.topology, "seed": seed, "app": app}


def _na_row(policy: str, scenario: EvalScenario, seed: int, app: str,
            note: str) -> dict[str, Any]:
    row = _ident(policy, scenario, seed, app)
    row.update(dict.fromkeys(METRIC_COLUMNS, math.nan))
    row["note"] = note
    return row


def _resolve_policies(policies: Sequence[Any], hpa_sweep: Sequence[int],
                      dial_sweep: Sequence[float] = ()) -> tuple[list[Any], list[str | None]]:
    """Policies to run (sweeps and oracle added) and, for each, the spec that rebuilds it
    in another process (None for a policy given as an object)."""
    from gnnrl.evaluation.policies import make_policy

    out = [make_policy(p) if isinstance(p, str) else p for p in policies]
    recipes: list[str | None] = [p if isinstance(p, str) else None for p in policies]
    all_names = [p.name for p in out]
    dup = sorted({n for n in all_names if all_names.count(n) > 1})
    if dup:
        raise ConfigError(f"policies: duplicate policy name(s) {', '.join(dup)}")
    names = set(all_names)
    for spec in dial_sweep_specs(policies, dial_sweep):
        name = spec.partition("=")[0]
        if name not in names:  # a dial also given by hand (gnnrl@0.25) runs once
            out.append(make_policy(spec))
            recipes.append(spec)
            names.add(name)
    for pct in hpa_sweep:
        if not (1 <= int(pct) <= 200):
            raise ConfigError(f"hpa_sweep: targets must be 1..200 %, got {pct}")
        pol = make_policy(f"hpa-{int(pct)}")
        if pol.name not in names:
            out.append(pol)
            recipes.append(f"hpa-{int(pct)}")
            names.add(pol.name)
    if "oracle" not in names:
        out.append(make_policy("oracle"))
        recipes.append("oracle")
    return out, recipes


Cell = list[tuple[dict[str, Any], pd.DataFrame | None, pd.DataFrame | None]]


def _run_cell(policies: Sequence[Any], scenario: EvalScenario, seed: int, app: AppSpec,
              out_dir: str | Path, sim_config: SimConfig | None) -> Cell:
    """Every policy on one scenario and seed: (summary row, steps, services) each."""
    out: Cell = []
    app = scenario.resolve_app(app)
    for policy in policies:
        if scenario.topology != "static" and not getattr(
                policy, "supports_topology_change", True):
            out.append((_na_row(policy.name, scenario, seed, app.name, NA_TOPOLOGY), None,
                        None))
            continue
        ep = run_episode(policy, scenario, seed, app, out_dir, sim_config)
        ident = _ident(policy.name, scenario, seed, app.name)
        out.append(({**ident, **ep.metrics, "note": ""}, ep.steps.assign(**ident),
                    ep.services.assign(**ident)))
    return out


_WORKER_POLICIES: dict[tuple[str, ...], list[Any]] = {}


def _cell_worker(recipes: tuple[str, ...], scenario: EvalScenario, seed: int, app: AppSpec,
                 out_dir: str, sim_config: SimConfig | None) -> Cell:
    """`_run_cell` in a worker process; policies are rebuilt once per process."""
    from gnnrl.evaluation.policies import make_policy

    if not _WORKER_POLICIES:
        # one torch thread per worker process: N workers x the default intra-op pool
        # oversubscribe the cores (the workers already use one core each)
        import torch

        torch.set_num_threads(1)
    if recipes not in _WORKER_POLICIES:
        _WORKER_POLICIES[recipes] = [make_policy(r) for r in recipes]
    return _run_cell(_WORKER_POLICIES[recipes], scenario, seed, app, out_dir, sim_config)


def run_suite(policies: Sequence[Any], suite: Suite, app: AppSpec, out_dir: str | Path,
              progress: bool = True, sim_config: SimConfig | None = None,
              workers: int = 1, recipes: Sequence[str | None] | None = None
              ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Every policy x scenario x seed. Returns (summary, steps, services) tables.

    With ``workers > 1`` and a spec (``recipes``) for every policy, (scenario, seed) cells
    run in that many processes (spawned, so torch-based policies are safe); the tables are
    assembled in the same order as a sequential run, so the output is identical.
    """
    from tqdm.auto import tqdm

    for scenario in suite.scenarios:  # a bad application name fails before any run
        scenario.resolve_app(app)
    cells = [(scenario, seed) for scenario in suite.scenarios for seed in suite.seeds]
    results: list[Cell] = []
    parallel = workers > 1 and recipes is not None and all(r is not None for r in recipes)
    with tqdm(total=len(cells) * len(policies), desc="evaluate", unit="run",
              disable=not progress) as bar:
        if parallel:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            assert recipes is not None
            key = tuple(str(r) for r in recipes)
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
                futures = [pool.submit(_cell_worker, key, sc, seed, app, str(out_dir),
                                       sim_config) for sc, seed in cells]
                for fut in futures:
                    results.append(fut.result())
                    bar.update(len(policies))
        else:
            for scenario, seed in cells:
                bar.set_postfix_str(f"{scenario.name} seed={seed}")
                results.append(_run_cell(policies, scenario, seed, app, out_dir, sim_config))
                bar.update(len(policies))
    rows = [row for cell in results for row, _, _ in cell]
    steps_parts = [st for cell in results for _, st, _ in cell if st is not None]
    svc_parts = [sv for cell in results for _, _, sv in cell if sv is not None]
    summary = pd.DataFrame(rows)
    oracle = summary[summary["policy"] == "oracle"].set_index(["scenario", "seed"])[
        "replica_hours"]
    key_idx = pd.MultiIndex.from_frame(summary[["scenario", "seed"]])
    summary["replica_hours_vs_oracle"] = summary["replica_hours"].to_numpy() / \
        oracle.reindex(key_idx).to_numpy()
    steps = pd.concat(steps_parts, ignore_index=True) if steps_parts else pd.DataFrame()
    services = pd.concat(svc_parts, ignore_index=True) if svc_parts else pd.DataFrame()
    return summary, steps, services


def _write_parquet(df: pd.DataFrame, path: Path) -> None:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    atomic_write_bytes(path, buf.getvalue())


def write_tables(out: Path, summary: pd.DataFrame) -> pd.DataFrame:
    """Write ``summary.csv``, ``frontier.csv``, ``matched.csv`` and, when rule settings and
    GNNRL's dials both ran, ``rules.csv`` (else remove an earlier one) under ``out``
    (atomically, each); return the matched table."""
    atomic_write_text(out / "summary.csv", summary.to_csv(index=False))
    matched = matched_with_intervals(summary)
    atomic_write_text(out / "frontier.csv", frontier_table(summary).to_csv(index=False))
    atomic_write_text(out / "matched.csv", matched.to_csv(index=False))
    rules = rules_with_intervals(summary)
    if not rules.empty:
        atomic_write_text(out / "rules.csv", rules.to_csv(index=False))
    else:  # an earlier run's table in a reused --out would read as this run's
        (out / "rules.csv").unlink(missing_ok=True)
    return matched


def evaluate(policies: Sequence[Any], suite: str | Suite = "default",
             seeds: int | Sequence[int] | None = None, out_dir: str | Path = "eval-out",
             app: str | AppSpec | None = None, hpa_sweep: Sequence[int] = (),
             steps: int | None = None, peak_rps: float | None = None,
             learning_curves: Sequence[str | Path] = (), progress: bool = True,
             report: bool = True, sim_config: SimConfig | None = None,
             command: str | None = None, workers: int = 1,
             timing: str | None = None, dial_sweep: Sequence[float] = ()) -> pd.DataFrame:
    """Evaluate policies on a suite and write the results under ``out_dir``.

    Args:
        policies: policy specs (``"hpa"``, ``"mlp:model.zip"``, see
            `gnnrl.evaluation.policies`) or `Policy` objects. The oracle is always added.
        suite: a suite name (`gnnrl.evaluation.scenarios.SUITES`) or a `Suite`.
        seeds: number of seeds (from 1000) or explicit seeds; None = the suite's.
        out_dir: output directory (created).
        app: application spec (name, path or AppSpec); default OnlineBoutique.
        hpa_sweep: HPA CPU targets in percent added as ``hpa-NN`` rows (the frontier).
        steps / peak_rps: override the suite's episode length / trace peak (a replay at
            native resolution has the length of its window: a different ``steps`` is an
            error).
        learning_curves: training-log CSVs to chart in the report.
        command: the command line to print as "Reproduce:" in the report.
        workers: processes for the runs (policies given as specs only; same output).
        timing: "ideal" or "realistic" for every scenario (None = each suite's own:
            realistic for ``real``, ``stress`` and ``apps``).
        dial_sweep: dials in [0, 1] at which every GNNRL spec given without a dial is
            also run, as ``gnnrl@D`` rows (`dial_sweep_specs`): GNNRL's curve in the
            frontier, as ``hpa_sweep`` is HPA's.

    Writes:
        ``steps.parquet`` (per step), ``services.parquet`` (per step x service),
        ``summary.csv`` (per policy x scenario x seed), ``frontier.csv`` (per knob
        setting of each policy family), ``matched.csv`` (cost at matched SLO, per
        policy, with a 95 % bootstrap interval over the scenarios;
        `gnnrl.evaluation.frontier`, `gnnrl.evaluation.uncertainty`), ``rules.csv``
        (each rule's settings against GNNRL's dial points, `rules_table`, with intervals;
        only when both ran), ``results.md`` and
        ``report.html`` (`gnnrl.evaluation.report`).

    Returns:
        The summary table (one row per policy x scenario x seed).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    app_spec = app if isinstance(app, AppSpec) else load_app_spec(app or "onlineboutique")
    if isinstance(suite, str):
        n_seeds = seeds if isinstance(seeds, int) else None
        suite = get_suite(suite, seeds=n_seeds, steps=steps, peak_rps=peak_rps)
    elif steps is not None or peak_rps is not None:
        suite = dataclasses.replace(suite, scenarios=tuple(
            dataclasses.replace(s, steps=steps or s.steps, peak_rps=peak_rps or s.peak_rps)
            for s in suite.scenarios))
    if seeds is not None and not isinstance(seeds, int):
        suite = dataclasses.replace(suite, seeds=tuple(int(s) for s in seeds))
    elif isinstance(seeds, int) and suite.seeds and len(suite.seeds) != seeds:
        from gnnrl.evaluation.scenarios import eval_seeds

        suite = dataclasses.replace(suite, seeds=eval_seeds(seeds))
    if timing is not None:
        suite = with_timing(suite, timing)
    if workers < 1:
        raise ConfigError(f"workers must be >= 1, got {workers}")
    pols, recipes = _resolve_policies(policies, hpa_sweep, dial_sweep)
    summary, step_df, svc_df = run_suite(pols, suite, app_spec, out, progress, sim_config,
                                         workers=workers, recipes=recipes)
    _write_parquet(step_df, out / "steps.parquet")
    _write_parquet(svc_df, out / "services.parquet")
    matched = write_tables(out, summary)
    if report:
        from gnnrl.evaluation.report import write_report

        write_report(out, summary, step_df, svc_df, app_spec, suite,
                     hpa_sweep=[int(p) for p in hpa_sweep], learning_curves=learning_curves,
                     command=command, matched=matched,
                     dial_sweep_rows=[r.partition("=")[0] for r in
                                      dial_sweep_specs(policies, dial_sweep)])
    return summary
