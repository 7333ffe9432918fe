"""Run the speed benchmarks in benchmarks/ and print their ratios against references.

Each benchmark measures a reference in the same run (CartPole for the env, an MLP of the
same width for the policy, the HPA-rule tick for the scaler, json.loads for snapshot
parsing) and prints ratios, so numbers from different machines stay comparable.

With --json (env, train, policy or all), the figures are measured in this process and the
LAST line printed is one JSON object with them and their same-run references:
  env:    gym_step_us, cartpole_step_us, batched_state_steps_per_s, batched_obs_steps_per_s
  train:  gnn_env_steps_per_s, mlp_env_steps_per_s (same width, same env pool)
  policy: decision_p50_ms, decision_p99_ms, mlp_decision_p50_ms
Default runs take tens of seconds; --quick a few (smoke tests), --long minutes.

Examples:
  gnnrl benchmark --list
  gnnrl benchmark env                  # simulator / Gymnasium API vs CartPole
  gnnrl benchmark env policy scaler    # several
  gnnrl benchmark all
  gnnrl benchmark des                  # fluid model vs discrete-event simulation
  gnnrl benchmark policy --json        # last line: {"decision_p50_ms": ..., ...}
  gnnrl benchmark all --json --long --device auto
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, TypedDict

BENCHMARKS = {
    "env": "bench_env.py",
    "policy": "bench_policy.py",
    "scaler": "bench_scaler.py",
    "snapshots": "bench_snapshots.py",
    "des": "des_check.py",
}
#: what --json measures
JSON_BENCHMARKS = ("env", "train", "policy")
#: --quick / default / --long settings of the --json measurements
class _Effort(TypedDict):
    env_seconds: float
    env_copies: int
    decisions: int
    updates: int
    num_steps: int


EFFORT: dict[str, _Effort] = {
    "quick": {"env_seconds": 0.3, "env_copies": 32, "decisions": 40, "updates": 1,
              "num_steps": 16},
    "default": {"env_seconds": 2.0, "env_copies": 256, "decisions": 1000, "updates": 2,
                "num_steps": 120},
    "long": {"env_seconds": 10.0, "env_copies": 256, "decisions": 10000, "updates": 6,
             "num_steps": 120},
}


def bench_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "benchmarks"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", default=["env"],
                   help=f"which: {', '.join(BENCHMARKS)} or all [env]; with --json: "
                        f"{', '.join(JSON_BENCHMARKS)} or all")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.add_argument("--json", action="store_true",
                   help="measure here and print the figures as one JSON object (last line)")
    effort = p.add_mutually_exclusive_group()
    effort.add_argument("--quick", action="store_true", help="tiny runs (smoke test)")
    effort.add_argument("--long", action="store_true", help="longer runs, steadier figures")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="cpu",
                   help="torch device of the policy and train figures")
    p.add_argument("--learner-processes", type=int, default=1,
                   help="processes sharing each PPO update in the train figure")


def _load_script(name: str) -> ModuleType:
    path = bench_dir() / BENCHMARKS[name]
    if not path.exists():
        raise FileNotFoundError(f"{path} not found (benchmarks ship with the source "
                                "checkout, not the wheel)")
    spec = importlib.util.spec_from_file_location(f"gnnrl_bench_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def env_figures(seconds: float, copies: int) -> dict[str, float]:
    """Gymnasium-API step time beside CartPole's, and the batched core's env-steps/s
    (state only; with the padded observations), with `bench_env.best_rates`."""
    import gymnasium as gym
    import numpy as np

    from gnnrl.core.envs import OnlineBoutique
    from gnnrl.core.envs.obs_extras import BatchedContext, BatchedLoadHistory
    from gnnrl.core.envs.observation import build_observations, observation_layout
    from gnnrl.sim import BatchedSim, load_app_spec

    bench_env = _load_script("env")
    cart = gym.make("CartPole-v1")
    cart.reset(seed=0)

    def cart_step() -> None:
        _, _, term, trunc, _ = cart.step(cart.action_space.sample())
        if term or trunc:
            cart.reset()

    env = OnlineBoutique(max_steps=200_000)
    env.reset(seed=0)
    shape = env.action_space.shape
    assert shape is not None  # MultiDiscrete: one move per slot
    noop = np.zeros(shape, dtype=np.int64)
    sim = BatchedSim(load_app_spec("onlineboutique"), copies, seed=0)
    sim.reset()
    rps = np.linspace(20, 120, copies)
    slot = np.tile(np.arange(sim.num_services), (copies, 1))
    eslot = np.tile(np.arange(len(sim.edges)), (copies, 1))
    layout = observation_layout(sim, slot, eslot, sim.active, 20, 400)
    # schema v2 included: the per-copy context and the load history of the trends
    context = BatchedContext(sim.app.slo_p95_ms, 15.0, np.full(copies, 0.5), np.zeros(copies))
    history = BatchedLoadHistory(copies, sim.num_services)
    rates = bench_env.best_rates({
        "cart": cart_step,
        "env": lambda: env.step(noop),
        "state": lambda: sim.step(rps),
        "full": lambda: build_observations(sim.step(rps), sim, slot, eslot, 20, 400,
                                           layout=layout, context=context, history=history),
    }, seconds)
    return {"gym_step_us": 1e6 / rates["env"], "cartpole_step_us": 1e6 / rates["cart"],
            "batched_state_steps_per_s": rates["state"] * copies,
            "batched_obs_steps_per_s": rates["full"] * copies}


def _device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available")
    return name


def measure(names: list[str], effort: str, device: str = "cpu",
            learner_processes: int = 1) -> dict[str, Any]:
    """The --json figures of ``names`` (a subset of `JSON_BENCHMARKS`)."""
    e = EFFORT[effort]
    out: dict[str, Any] = {"effort": effort, "device": device}
    t0 = time.perf_counter()
    if "env" in names:
        out.update(env_figures(e["env_seconds"], e["env_copies"]))
    if "policy" in names:
        out.update(_load_script("policy").policy_figures(e["decisions"], device))
    if "train" in names:
        out.update(_load_script("policy").train_figures(e["updates"], e["num_steps"],
                                                        device=device,
                                                        learner_processes=learner_processes))
        out["gnn_over_mlp"] = out["gnn_env_steps_per_s"] / out["mlp_env_steps_per_s"]
    out["seconds"] = time.perf_counter() - t0
    return out


def _run_json(args: argparse.Namespace) -> int:
    names = list(JSON_BENCHMARKS) if "all" in args.names else args.names
    unknown = [n for n in names if n not in JSON_BENCHMARKS]
    if unknown:
        print(f"gnnrl benchmark: error: --json measures {', '.join(JSON_BENCHMARKS)} or all,"
              f" not {', '.join(unknown)}", file=sys.stderr)
        return 2
    effort = "quick" if args.quick else "long" if args.long else "default"
    try:
        figures = measure(names, effort, _device(args.device), args.learner_processes)
    except (FileNotFoundError, ValueError) as exc:
        print(f"gnnrl benchmark: error: {exc}", file=sys.stderr)
        return 2
    for key, value in figures.items():
        print(f"{key:28s} {value:,.3f}" if isinstance(value, float) else f"{key:28s} {value}")
    print(json.dumps(figures, sort_keys=True))
    return 0


def run(args: argparse.Namespace) -> int:
    root = bench_dir()
    if args.list:
        for name, rel in BENCHMARKS.items():
            state = "" if (root / rel).exists() else "  (missing in this install)"
            print(f"{name:10s} benchmarks/{rel}{state}")
        return 0
    if args.json:
        return _run_json(args)
    names = list(BENCHMARKS) if "all" in args.names else args.names
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        print(f"gnnrl benchmark: error: unknown benchmark(s) {', '.join(unknown)} "
              f"(known: {', '.join(BENCHMARKS)}, all)", file=sys.stderr)
        return 2
    rc = 0
    for name in names:
        script = root / BENCHMARKS[name]
        if not script.exists():
            print(f"gnnrl benchmark: error: {script} not found (benchmarks ship with the "
                  "source checkout, not the wheel)", file=sys.stderr)
            rc = 2
            continue
        print(f"== {name}: python {script.relative_to(root.parent)}", flush=True)
        rc = max(rc, subprocess.call([sys.executable, str(script)]))
    return rc
