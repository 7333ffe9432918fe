"""Run the speed benchmarks in benchmarks/ and print their ratios against references.

Each benchmark measures a reference in the same run (CartPole for the env, an MLP of the
same width for the policy, the HPA-rule tick for the scaler, json.loads for snapshot
parsing) and prints ratios, so numbers from different machines stay comparable.

Examples:
  gnnrl benchmark --list
  gnnrl benchmark env                  # simulator / Gymnasium API vs CartPole
  gnnrl benchmark env policy scaler    # several
  gnnrl benchmark all
  gnnrl benchmark des                  # fluid model vs discrete-event simulation
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

BENCHMARKS = {
    "env": "bench_env.py",
    "policy": "bench_policy.py",
    "scaler": "bench_scaler.py",
    "snapshots": "bench_snapshots.py",
    "des": "des_check.py",
}


def bench_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "benchmarks"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("names", nargs="*", default=["env"],
                   help=f"which: {', '.join(BENCHMARKS)} or all [env]")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")


def run(args: argparse.Namespace) -> int:
    root = bench_dir()
    if args.list:
        for name, script in BENCHMARKS.items():
            state = "" if (root / script).exists() else "  (missing in this install)"
            print(f"{name:10s} benchmarks/{script}{state}")
        return 0
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
