"""Merge a re-run of some policies into an earlier evaluation of the same suite.

Use: python scripts/combine_results.py BASE_DIR NEW_DIR OUT_DIR

Every row of ``NEW_DIR/summary.csv`` replaces the rows of the same policy in
``BASE_DIR/summary.csv`` (same suite, scenarios and seeds: `gnnrl evaluate` is
deterministic per policy x scenario x seed, so rows of separate runs are interchangeable);
``OUT_DIR`` receives the merged ``summary.csv``, ``frontier.csv``, ``matched.csv`` and the
frontier plot. This is how the results of a retrained model are folded into an evaluation
of the baselines without re-running the baselines.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from gnnrl.config import atomic_write_bytes, atomic_write_text
from gnnrl.evaluation.frontier import frontier_table, matched_table
from gnnrl.evaluation.report import plot_frontier

KEYS = ["scenario", "seed"]


def combine(base_dir: Path, new_dir: Path, out_dir: Path) -> pd.DataFrame:
    base = pd.read_csv(base_dir / "summary.csv")
    new = pd.read_csv(new_dir / "summary.csv")
    replaced = set(new["policy"]) - {"oracle"}  # the oracle runs in every evaluation
    cells_base = set(map(tuple, base[KEYS].drop_duplicates().to_numpy()))
    cells_new = set(map(tuple, new[KEYS].drop_duplicates().to_numpy()))
    if cells_base != cells_new:
        raise SystemExit(f"{base_dir} and {new_dir} cover different scenarios/seeds")
    merged = pd.concat([base[~base["policy"].isin(replaced)],
                        new[new["policy"].isin(replaced)]], ignore_index=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "summary.csv", merged.to_csv(index=False))
    atomic_write_text(out_dir / "frontier.csv", frontier_table(merged).to_csv(index=False))
    atomic_write_text(out_dir / "matched.csv", matched_table(merged).to_csv(index=False))
    (out_dir / "plots").mkdir(exist_ok=True)
    atomic_write_bytes(out_dir / "plots" / "frontier.png", plot_frontier(merged))
    return merged


if __name__ == "__main__":
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    combine(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
