"""Cost at matched SLO against the HPA sweep, with 95 % intervals, over several runs at once.

Use: python scripts/matched_vs_hpa.py SUMMARY_CSV [SUMMARY_CSV ...] [--policies P,P,...]

The files are ``summary.csv`` of `gnnrl evaluate` runs with the same policies and seeds;
their scenarios are pooled (a policy's first row per scenario and seed is kept), so two
suites read as one, e.g. the ``real`` and ``real-late`` windows together::

    python scripts/matched_vs_hpa.py docs/results/real/summary.csv \\
        docs/results/real-late/summary.csv

Prints one markdown row per policy: violations, replica-hours, the ratio to the HPA
sweep's envelope at the same violation rate with its 95 % interval when whole scenarios
are redrawn, and the share of redraws in which it is below 1
(`gnnrl.evaluation.uncertainty.matched_with_intervals`). A policy must have run every
pooled scenario the HPA sweep ran to be compared.
"""

from __future__ import annotations

import argparse
import math

import pandas as pd

from gnnrl.evaluation.uncertainty import format_interval, matched_with_intervals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  python scripts/matched_vs_hpa.py docs/results/real/summary.csv "
               "docs/results/real-late/summary.csv --policies gnnrl@0.75,gnnrl@1,hpa")
    parser.add_argument("summaries", nargs="+", help="summary.csv files")
    parser.add_argument("--policies", default="",
                        help="comma-separated rows to print (default: all)")
    args = parser.parse_args(argv)
    runs = pd.concat([pd.read_csv(p) for p in args.summaries], ignore_index=True)
    runs = runs.drop_duplicates(["policy", "scenario", "seed"])
    matched = matched_with_intervals(runs)
    rows = matched[matched["scenario"] == "all"]
    if args.policies:
        wanted = [p.strip() for p in args.policies.split(",") if p.strip()]
        missing = sorted(set(wanted) - set(rows["policy"]))
        if missing:
            parser.error(f"--policies: not in the summaries: {', '.join(missing)}")
        rows = rows.set_index("policy").loc[wanted].reset_index()
    print(f"{runs['scenario'].nunique()} scenarios x {runs['seed'].nunique()} seeds\n")
    print("| policy | violations | replica-h | x HPA frontier (95 % interval) | P(cheaper) |")
    print("|---|---:|---:|---:|---:|")
    for r in rows.itertuples(index=False):
        ratio = format_interval(float(r.replica_hours_vs_hpa), float(r.replica_hours_vs_hpa_lo),
                                float(r.replica_hours_vs_hpa_hi), 3)
        p = "-" if math.isnan(float(r.p_cheaper_than_hpa)) else \
            f"{100 * float(r.p_cheaper_than_hpa):.0f} %"
        print(f"| {r.policy} | {100 * float(r.slo_violation_rate):.4f} % | "
              f"{float(r.replica_hours):.1f} | {ratio if ratio != '-' else 'n/a'} | {p} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
