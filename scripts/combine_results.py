"""Merge a re-run of some policies into an earlier evaluation of the same suite.

Use: python scripts/combine_results.py BASE_DIR NEW_DIR OUT_DIR [SUITE [COMMAND]]

Every row of ``NEW_DIR/summary.csv`` replaces the rows of the same policy in
``BASE_DIR/summary.csv`` (same suite, scenarios and seeds: `gnnrl evaluate` is
deterministic per policy x scenario x seed, so rows of separate runs are interchangeable);
``OUT_DIR`` receives the merged ``summary.csv``, ``frontier.csv``, ``matched.csv``,
``rules.csv`` (when rule settings and GNNRL's dials are both there, as `gnnrl evaluate`
writes it) and the frontier plot; with ``SUITE`` (its name,
`gnnrl.evaluation.scenarios.get_suite`), also ``results.md``, ``report.html`` and the
plots (the episode timelines only when both runs kept their per-step tables), with
``COMMAND`` as the command that reproduces the whole table. This is how the results of a
retrained model (or of a new default guard) are folded into an evaluation of the
baselines without re-running them.
With ``NEW_DIR`` the same as ``BASE_DIR`` nothing is merged: the tables and the report are
rewritten from ``summary.csv`` (after a change to how they are computed).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pandas as pd

from gnnrl.config import atomic_write_bytes
from gnnrl.evaluation.report import plot_frontier
from gnnrl.evaluation.runner import write_tables

KEYS = ["scenario", "seed"]


def _merged_parquet(base_dir: Path, new_dir: Path, name: str, replaced: set[str]
                    ) -> pd.DataFrame | None:
    if not ((base_dir / name).is_file() and (new_dir / name).is_file()):
        return None
    base, new = pd.read_parquet(base_dir / name), pd.read_parquet(new_dir / name)
    return pd.concat([base[~base["policy"].isin(replaced)], new[new["policy"].isin(replaced)]],
                     ignore_index=True)


def combine(base_dir: Path, new_dir: Path, out_dir: Path, suite: str | None = None,
            command: str | None = None) -> pd.DataFrame:
    base = pd.read_csv(base_dir / "summary.csv")
    new = pd.read_csv(new_dir / "summary.csv")
    replaced = set(new["policy"]) - {"oracle"}  # the oracle runs in every evaluation
    cells_base = set(map(tuple, base[KEYS].drop_duplicates().to_numpy()))
    cells_new = set(map(tuple, new[KEYS].drop_duplicates().to_numpy()))
    if cells_base != cells_new:
        raise SystemExit(f"{base_dir} and {new_dir} cover different scenarios/seeds")
    if new_dir.resolve() == base_dir.resolve():  # refresh the tables and the report
        merged = base
    else:
        merged = pd.concat([base[~base["policy"].isin(replaced)],
                            new[new["policy"].isin(replaced)]], ignore_index=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    matched = write_tables(out_dir, merged)
    (out_dir / "plots").mkdir(exist_ok=True)
    atomic_write_bytes(out_dir / "plots" / "frontier.png", plot_frontier(merged))
    steps = _merged_parquet(base_dir, new_dir, "steps.parquet", replaced)
    services = _merged_parquet(base_dir, new_dir, "services.parquet", replaced)
    if suite:  # without per-step tables the report leaves the timelines out
        from gnnrl.evaluation.report import write_report
        from gnnrl.evaluation.scenarios import get_suite
        from gnnrl.sim.spec import load_app_spec

        sweep = sorted({int(p.split("-")[1]) for p in merged["policy"]
                        if p.startswith("hpa-") and p.split("-")[1].isdigit()})
        words = (command or "").split()
        curves = []  # the command's --learning-curves files, charted again
        if "--learning-curves" in words:
            for word in words[words.index("--learning-curves") + 1:]:
                if word.startswith("--"):
                    break
                curves.append(word)
        dials = [p for p in merged["policy"].unique() if "@" in str(p)]
        # the seeds the rows ran, not the suite's default count
        ran = dataclasses.replace(get_suite(suite),
                                  seeds=tuple(sorted(int(x) for x in merged["seed"].unique())))
        write_report(out_dir, merged, steps, services, load_app_spec("onlineboutique"),
                     ran, hpa_sweep=sweep, command=command,
                     learning_curves=curves, matched=matched, dial_sweep_rows=dials)
    return merged


if __name__ == "__main__":
    if len(sys.argv) not in (4, 5, 6):
        raise SystemExit(__doc__)
    combine(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]),
            *(sys.argv[4:6] if len(sys.argv) > 4 else ()))
