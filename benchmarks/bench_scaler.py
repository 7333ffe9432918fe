"""Scaler tick latency and memory, the model tick beside the HPA-rule-only tick (same run).

Run:  python benchmarks/bench_scaler.py [--ticks 300] [--model DIR]

Each variant runs in its own process (so its RSS is its own), driving the simulator as the
cluster (`SimCluster`, OnlineBoutique, 11 services; no network) through `Scaler.tick`:
  1. reference: the HPA rule only (no model);
  2. the policy: PPO_GNN (GNN + TGN) on every tick, the shipped default model when present,
     else a freshly initialised one with the default architecture (same compute).
Prints tick p50/p99 (ms), peak RSS (MiB) and the model/rule ratio. torch runs single-threaded,
as `gnnrl scaler run` does. Goal (issue #7): model tick p99 <= 50 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's gnnrl, whatever the editable install maps
DEFAULT_MODEL = ROOT / "gnnrl" / "assets" / "models" / "default"


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux


def _model_dir(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    if (DEFAULT_MODEL / "weights.pt").is_file():
        return DEFAULT_MODEL
    import torch

    from gnnrl.core.agents.ppo_gnn import PPO_GNN

    torch.manual_seed(0)
    return PPO_GNN().save(Path(tempfile.mkdtemp(prefix="bench-scaler-")) / "model")


def run_variant(variant: str, ticks: int, model: str | None) -> dict:
    """One variant in this process: tick latencies (ms) and peak RSS."""
    import numpy as np

    from gnnrl.scaler.clock import FakeClock
    from gnnrl.scaler.config import ScalerConfig
    from gnnrl.scaler.loop import Scaler
    from gnnrl.scaler.model_source import ModelSource
    from gnnrl.scaler.sim_cluster import SimCluster

    rss_start = _rss_mib()
    clock = FakeClock(0.0)
    cluster = SimCluster("onlineboutique", clock, seed=0)
    cfg = ScalerConfig(namespace="sim", source="sim", mode="active", recover_after_healthy=1,
                       services={n: {"min_replicas": lo, "max_replicas": hi}
                                 for n, (lo, hi) in cluster.limits.items()})
    models = None
    if variant == "model":
        import torch

        torch.set_num_threads(1)
        path = _model_dir(model)
        models = ModelSource(str(path), "", clock)
        cfg = cfg.replace(model=str(path))
    scaler = Scaler(cfg, cluster, clock, models=models)
    scaler.start()
    lat, modes = [], []
    for i in range(ticks + 20):
        t0 = time.perf_counter()
        report = scaler.tick()
        dt = (time.perf_counter() - t0) * 1000.0
        if i >= 20:  # warm-up (first model calls, allocator)
            lat.append(dt)
            modes.append(report.mode)
        clock.advance(cfg.interval_s)
    a = np.asarray(lat)
    return {"variant": variant, "ticks": ticks, "p50_ms": float(np.percentile(a, 50)),
            "p99_ms": float(np.percentile(a, 99)), "max_ms": float(a.max()),
            "model_ticks": modes.count("model"), "rss_mib": _rss_mib(),
            "rss_start_mib": rss_start}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--ticks", type=int, default=300)
    p.add_argument("--model", help="model folder (default: shipped default or a fresh one)")
    p.add_argument("--variant", choices=["rule", "model"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.variant:
        print(json.dumps(run_variant(args.variant, args.ticks, args.model)))
        return 0
    results = {}
    for variant in ("rule", "model"):
        cmd = [sys.executable, __file__, "--variant", variant, "--ticks", str(args.ticks)]
        if args.model:
            cmd += ["--model", args.model]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT)
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"scaler tick, OnlineBoutique in the simulator, {args.ticks} ticks, no network")
    print(f"{'variant':<28}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'peak RSS MiB':>14}")
    names = {"rule": "HPA rule only (reference)", "model": "PPO_GNN + TGN (policy)"}
    for v, r in results.items():
        print(f"{names[v]:<28}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['max_ms']:>9.2f}"
              f"{r['rss_mib']:>14.0f}")
    rule, model = results["rule"], results["model"]
    ratio = {k: model[k] / rule[k] for k in ("p50_ms", "p99_ms", "rss_mib")}
    print(f"model/rule: p50 x{ratio['p50_ms']:.1f}, p99 x{ratio['p99_ms']:.1f}, "
          f"RSS x{ratio['rss_mib']:.1f}; model ticks {model['model_ticks']}/{args.ticks}")
    goal = "met" if model["p99_ms"] <= 50.0 else "NOT met"
    print(f"goal tick p99 <= 50 ms: {goal} ({model['p99_ms']:.1f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
