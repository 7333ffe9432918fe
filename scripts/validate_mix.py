"""Score policies on a training mix's *validation* episodes: the numbers of docs/policy.md.

Every setup of the mix (app x timing x start-up scale, `scenario_mix.training_setups`),
its synthetic scenarios without topology events (every ``--every``-th), one hour-long
episode each with reset seeds from 5000 (`VALIDATION_SEED_BASE`: never a training or an
evaluation seed). For each policy and dial: mean SLO-violation rate, replica-hours,
direction reversals per episode (`gnnrl.evaluation.metrics.count_reversals`: a change
against the service's previous one within 300 s), scaling actions (replica-count changes)
and pods started per episode, and the
replica-hours over the HPA sweep's frontier at the same violation rate (interpolated,
`gnnrl.evaluation.frontier.frontier_at`; blank outside the sweep's range).

Policies: any `gnnrl evaluate` spec (``gnnrl:runs/x/best`` gets ``@D`` for each dial;
``gnnrl-raw:...`` the bare decisions), ``oracle@dial`` and ``headroom@dial`` (the
imitation teachers, their knob following the dial). HPA targets run once (they ignore the
dial). ``gnnrl[:PATH]~W-D`` is the deployed model behind a guard whose model scale-down
window is W s and whose delay after a scale-up is D s, ``~W-D-50%/60s`` with a scale-down
cap (`gnnrl.hpa.model_guard.parse_model_guard`; ``~300-0`` is the HPA object alone): how
the scaler's ``model_guard`` defaults were chosen.

Examples:
    python scripts/validate_mix.py --policies gnnrl,gnnrl-raw,oracle@dial
    python scripts/validate_mix.py --config runs/x/train_config.json \\
        --policies gnnrl:runs/x/best --dials 0.5 --workers 2 --out val.csv
    python scripts/validate_mix.py --policies gnnrl~300-0,gnnrl~120-360,gnnrl~120-0 \\
        --workers 2
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import csv
import functools
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_CONFIG = (Path(__file__).resolve().parents[1]
                  / "gnnrl/assets/models/default/train_config.json")


def _policy(spec: str, dial: float):
    from gnnrl.baselines.dialled import DialledRule, slo_margin, target_pct
    from gnnrl.baselines.oracle import OraclePolicy
    from gnnrl.baselines.specs import make_baseline
    from gnnrl.evaluation.policies import make_policy, parse_gnnrl_spec

    if spec == "oracle@dial":
        return DialledRule("oracle", lambda d: OraclePolicy(slo_margin=slo_margin(d)))
    if spec == "headroom@dial":
        return DialledRule("headroom", lambda d: make_baseline(f"headroom-{target_pct(d)}"))
    parsed = parse_gnnrl_spec(spec)
    if parsed is not None and parsed.dial is None:
        return make_policy(f"{spec}@{dial:g}")
    return make_policy(spec)


@functools.lru_cache(maxsize=2)
def _mix(config: str) -> tuple:
    """The config and its setups, built once per process (apps, scenarios, traces)."""
    from gnnrl.core.agents.scenario_mix import training_setups
    from gnnrl.core.agents.train import TrainConfig

    cfg = TrainConfig.load(config)
    return cfg, training_setups(cfg.apps or (cfg.app,), cfg.seed, cfg.traces, cfg.peaks,
                                cfg.peak_scales, cfg.topology, cfg.max_steps, cfg.timings,
                                cfg.startup_scales)


def _episode(job: tuple) -> dict:
    import torch

    from gnnrl.contracts.seeds import VALIDATION_SEED_BASE
    from gnnrl.core.envs import OnlineBoutique
    from gnnrl.evaluation.metrics import count_reversals
    from gnnrl.sim import SimConfig
    from gnnrl.sim.timing import TimingConfig

    torch.set_num_threads(1)
    config, spec, dial, k, j, every = job
    cfg, setups = _mix(config)
    su = setups[k]
    sc = [s for s in su.scenarios if not s.events][::every][j]
    env = OnlineBoutique(app=su.app, scenario=sc, max_steps=cfg.max_steps, dial=dial,
                         sim_config=SimConfig(timing=TimingConfig.preset(su.timing)))
    policy = _policy(spec, dial)
    obs, info = env.reset(seed=VALIDATION_SEED_BASE + 17 * k + j)
    policy.reset(env)
    interval = float(env.unwrapped.sim_config.interval_s)
    violated, rep_h, rows, done, step = 0, 0.0, [], False, 0
    while not done:
        obs, _, terminated, truncated, info = env.step(policy.act(obs, info))
        done = bool(terminated or truncated)
        violated += int(info["slo_violated"])
        rep_h += float(np.sum(info["replicas"])) * interval / 3600.0
        rows += [(name, step, int(r)) for name, r in zip(info["slot_names"],
                                                          info["replicas"], strict=True)
                 if name is not None]
        step += 1
    services = pd.DataFrame(rows, columns=["service", "step", "replicas"]).sort_values(
        ["service", "step"])
    delta = services.groupby("service")["replicas"].diff()
    changes = services.assign(delta=delta)[delta.fillna(0) != 0]
    return {"policy": spec, "dial": dial, "violation_rate": violated / max(step, 1),
            "replica_hours": rep_h, "reversals": count_reversals(changes, interval),
            "actions": len(changes), "pods_started": float(delta[delta > 0].sum())}


def _jobs(config: str, specs: list[str], dials: list[float], every: int) -> list[tuple]:
    _, setups = _mix(config)
    jobs = []
    for spec in specs:
        for dial in (dials if not spec.startswith("hpa") else [0.5]):
            for k, su in enumerate(setups):
                n = len([s for s in su.scenarios if not s.events][::every])
                jobs += [(config, spec, dial, k, j, every) for j in range(n)]
    return jobs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(DEFAULT_CONFIG),
                        help="the training mix (a TrainConfig JSON; default: the shipped "
                             "model's recipe)")
    parser.add_argument("--policies", default="gnnrl,oracle@dial",
                        help="comma list of policy specs (default: %(default)s)")
    parser.add_argument("--dials", default="0,0.5,1", help="comma list (default: %(default)s)")
    parser.add_argument("--hpa-sweep", default="30,40,50,60,70",
                        help="HPA targets, %% CPU, for the frontier (default: %(default)s)")
    parser.add_argument("--every", type=int, default=3,
                        help="every N-th scenario of each setup (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", help="also write the table as CSV here")
    args = parser.parse_args(argv)

    from tqdm import tqdm

    from gnnrl.config import atomic_write_text
    from gnnrl.evaluation.frontier import frontier_at

    specs = [s for s in args.policies.split(",") if s]
    hpa = [f"hpa-{int(t)}" for t in args.hpa_sweep.split(",") if t]
    dials = [float(d) for d in args.dials.split(",")]
    for spec in specs + hpa:  # a bad spec fails here, before any episode runs
        _policy(spec, 0.5)
    jobs = _jobs(args.config, specs + hpa, dials, args.every)
    if args.workers > 1:
        with cf.ProcessPoolExecutor(args.workers) as pool:
            rows = list(tqdm(pool.map(_episode, jobs), total=len(jobs), desc="validate",
                             unit="episode"))
    else:
        rows = [_episode(job) for job in tqdm(jobs, desc="validate", unit="episode")]
    table = (pd.DataFrame(rows).groupby(["policy", "dial"], sort=False)
             .mean(numeric_only=True).reset_index())
    front = table[table["policy"].isin(hpa)]
    table["x_hpa_frontier"] = [
        r.replica_hours / at if math.isfinite(at := frontier_at(
            front["violation_rate"], front["replica_hours"], r.violation_rate)[0]) else math.nan
        for r in table.itertuples()]
    table.insert(2, "violation_pct", 100 * table.pop("violation_rate"))
    print(f"{len(jobs)} episodes; {table['policy'].nunique()} policies")
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    if args.out:
        buf = io.StringIO()
        table.to_csv(buf, index=False, quoting=csv.QUOTE_MINIMAL)
        atomic_write_text(Path(args.out), buf.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
