"""The parameter sweep behind the headroom rule's defaults (`gnnrl.baselines.headroom`).

Run:  python benchmarks/sweep_headroom.py

Sweeps (low_target, high_target, knee) on *training* seeds (500-504; evaluation uses 1000+)
of the default suite, next to HPA-70, and prints violations, replica-hours and reversals
per setting, cheapest first.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from gnnrl.baselines.headroom import HeadroomConfig, HeadroomPolicy
from gnnrl.baselines.hpa import HPAPolicy
from gnnrl.evaluation.runner import evaluate

GRID = [(0.7, 1.0, 0.5), (0.6, 1.0, 0.5), (0.7, 1.1, 0.6), (0.8, 0.8, 0.5),
        (0.7, 0.9, 0.5), (0.7, 1.0, 0.4)]


def main() -> None:
    policies: list[Any] = [HPAPolicy(0.7)]
    for lo, hi, knee in GRID:
        policies.append(HeadroomPolicy(HeadroomConfig(lo, hi, knee),
                                       name=f"headroom-{lo:g}-{hi:g}-{knee:g}"))
    df = evaluate(policies, suite="default", seeds=[500, 501, 502, 503, 504],
                  out_dir="headroom-sweep", progress=True, report=False)
    table = df.groupby("policy")[["slo_violation_rate", "replica_hours",
                                  "direction_reversals"]].mean()
    with pd.option_context("display.width", 160):
        print(table.sort_values("replica_hours").round(4).to_string())


if __name__ == "__main__":
    main()
