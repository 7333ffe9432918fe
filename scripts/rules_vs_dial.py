"""Each rule's knob sweep against GNNRL's dial points, at matched violations.

Use: python scripts/rules_vs_dial.py SUMMARY_CSV [SUMMARY_CSV ...] [--curve gnnrl|gnnrl-raw]

`gnnrl evaluate` writes the same table as ``rules.csv`` when rule settings and GNNRL's
dials run together; this script joins separate runs. The files are ``summary.csv`` of
`gnnrl evaluate` runs of one suite (same scenarios and
seeds: rows of separate runs are interchangeable, a policy's first occurrence is kept),
for example the suite's results with the dial sweep plus a run of rule settings::

    gnnrl evaluate --policies headroom-50,headroom-60,headroom-80,panic-80,panic-90 \\
        --suite real --seeds 2 --out /tmp/rules-real
    python scripts/rules_vs_dial.py docs/results/real/summary.csv /tmp/rules-real/summary.csv

Prints one markdown table per rule (`gnnrl.evaluation.frontier.rules_table`): for each
dial point, its violations and replica-hours, the rule's envelope at the same violation
rate, their ratio (< 1: cheaper than any mix of the rule's settings) with a 95 % paired
bootstrap interval over the scenarios and the share of resamples where it is below 1
(`gnnrl.evaluation.uncertainty`), the settings it beats on both axes and those that beat
it.
"""

from __future__ import annotations

import argparse

import pandas as pd

from gnnrl.evaluation.uncertainty import format_interval, rules_with_intervals


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  python scripts/rules_vs_dial.py docs/results/real/summary.csv "
               "docs/results/rule-sweeps/real.csv\n  python scripts/rules_vs_dial.py "
               "docs/results/stress/summary.csv docs/results/rule-sweeps/stress.csv "
               "--curve gnnrl-raw")
    parser.add_argument("summaries", nargs="+", help="summary.csv files of one suite")
    parser.add_argument("--curve", default="gnnrl", choices=("gnnrl", "gnnrl-raw"))
    args = parser.parse_args(argv)
    runs = pd.concat([pd.read_csv(p) for p in args.summaries], ignore_index=True)
    runs = runs.drop_duplicates(["policy", "scenario", "seed"])
    table = rules_with_intervals(runs, args.curve)
    if table.empty:
        print("no rule rows or no dial points in these files")
        return 1
    for rule, rows in table.groupby("rule", sort=False):
        print(f"\n{rule}\n")
        print("| dial point | violations | replica-h | the rule's at that SLO | ratio (95 % "
              "interval) | P(cheaper) | beats | beaten by |")
        print("|---|---:|---:|---:|---:|---:|---|---|")
        for _, r in rows.iterrows():
            at = "n/a" if pd.isna(r.rule_replica_hours_at_slo) else \
                f"{r.rule_replica_hours_at_slo:.1f}"
            ratio = "n/a" if pd.isna(r.replica_hours_vs_rule) else format_interval(
                r.replica_hours_vs_rule, r.replica_hours_vs_rule_lo,
                r.replica_hours_vs_rule_hi, 3)
            p = "-" if pd.isna(r.p_cheaper_than_rule) else f"{100 * r.p_cheaper_than_rule:.0f} %"
            print(f"| {r.policy} | {100 * r.slo_violation_rate:.3f} % | "
                  f"{r.replica_hours:.1f} | {at} | {ratio} | {p} | {r.dominates or '-'} | "
                  f"{r.dominated_by or '-'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
