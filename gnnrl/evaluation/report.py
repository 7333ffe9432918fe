"""Results tables (Markdown) and the HTML report with plots.

Writes into the output directory:

* ``results.md``: tables aggregated over seeds as ``mean ± std`` (std across seeds of the
  per-seed value): static-topology scenarios, topology-change scenarios (``n/a`` where a
  policy cannot take a changed graph), zero-shot ratios, cost at matched SLO
  (`gnnrl.evaluation.frontier`), and per scenario;
* ``plots/*.png`` (matplotlib, Agg backend): replicas per service against load and
  end-to-end p95 against the SLO over one episode of a flash-crowd and of a
  topology-change scenario, cost (replica-hours) against SLO violations with the HPA
  target sweep as a frontier, the policy-family frontier (`plot_frontier`), and learning
  curves when training logs are given;
* ``report.html``: the tables and the plots embedded as PNG data URIs (one file to share).
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import pandas as pd

from gnnrl.config import atomic_write_bytes, atomic_write_text
from gnnrl.evaluation.uncertainty import format_interval, matched_with_intervals

#: (column, header, scale, decimals) of the main tables.
TABLE_COLUMNS = (
    # violation rates are fractions of a percent: two decimals tell policies apart
    ("slo_violation_rate", "SLO viol. %", 100.0, 2),
    ("p95_latency_ms", "p95 ms", 1.0, 0),
    ("error_rate", "errors %", 100.0, 2),
    ("replica_hours", "replica-h", 1.0, 2),
    ("replica_hours_vs_oracle", "x oracle", 1.0, 2),
    ("cpu_core_hours", "CPU core-h", 1.0, 2),
    ("mean_cpu_utilization", "CPU util %", 100.0, 0),
    ("scaling_actions", "actions", 1.0, 0),
    ("direction_reversals", "reversals", 1.0, 1),
    ("recover_flash_s", "recover flash s", 1.0, 0),
    ("recover_topology_s", "recover topo s", 1.0, 0),
    ("event_violation_steps", "event viol. steps", 1.0, 2),
    ("other_violation_steps", "other viol. steps", 1.0, 2),
)


def _pm(mean: float, std: float, scale: float, dec: int) -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "n/a"
    s = 0.0 if std is None or (isinstance(std, float) and math.isnan(std)) else std
    return f"{mean * scale:.{dec}f} ± {s * scale:.{dec}f}"


def per_seed(summary: pd.DataFrame, mask: pd.Series | None = None) -> pd.DataFrame:
    """Mean over the selected scenarios for each policy and seed (NaN kept if any)."""
    df = summary if mask is None else summary[mask]
    cols = [c for c, *_ in TABLE_COLUMNS if c in df.columns]
    return df.groupby(["policy", "seed"], sort=False)[cols].mean()


def aggregate_table(summary: pd.DataFrame, mask: pd.Series | None = None,
                    order: Sequence[str] | None = None) -> pd.DataFrame:
    """Policy rows, ``mean ± std`` over seeds of the per-seed mean over scenarios."""
    ps = per_seed(summary, mask)
    if ps.empty:
        return pd.DataFrame()
    g = ps.groupby(level="policy", sort=False)
    mean, std = g.mean(), g.std(ddof=0)
    # a policy that did not run some scenario (n/a) shows n/a rather than a partial mean
    na = summary if mask is None else summary[mask]
    missing = na.groupby("policy", sort=False)["slo_violation_rate"].apply(
        lambda s: s.isna().any())
    rows = []
    for pol in order or list(mean.index):
        if pol not in mean.index:
            continue
        row = {"policy": pol}
        for col, head, scale, dec in TABLE_COLUMNS:
            if col not in mean.columns:
                continue
            m = math.nan if missing.get(pol, False) else float(mean[col].loc[pol])
            row[head] = _pm(m, float(std[col].loc[pol]), scale, dec)
        rows.append(row)
    return pd.DataFrame(rows)


def scenario_table(summary: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Scenario x policy: SLO violations % and replica-hours, mean ± std over seeds."""
    rows = []
    for scen, df in summary.groupby("scenario", sort=False):
        g = df.groupby("policy", sort=False)
        mean, std = g.mean(numeric_only=True), g.std(ddof=0, numeric_only=True)
        for pol in order:
            if pol not in mean.index:
                continue
            note = df.loc[df["policy"] == pol, "note"].dropna()
            na = bool(len(note) and str(note.iloc[0]).startswith("n/a"))
            rows.append({
                "scenario": scen, "policy": pol,
                "SLO viol. %": "n/a" if na else _pm(mean["slo_violation_rate"].loc[pol],
                                                    std["slo_violation_rate"].loc[pol], 100, 2),
                "replica-h": "n/a" if na else _pm(mean["replica_hours"].loc[pol],
                                                  std["replica_hours"].loc[pol], 1, 2),
                "x oracle": "n/a" if na else _pm(mean["replica_hours_vs_oracle"].loc[pol],
                                                 std["replica_hours_vs_oracle"].loc[pol], 1, 2),
            })
    return pd.DataFrame(rows)


def zero_shot_table(summary: pd.DataFrame, order: Sequence[str]) -> pd.DataFrame:
    """Violation rate with a service added / removed as a multiple of the static rate
    (same traces and seeds). ``n/a`` where the policy cannot run the changed graph."""
    rows = []
    for pol in order:
        df = summary[summary["policy"] == pol]
        static = df[df["topology"] == "static"]["slo_violation_rate"].mean()
        row = {"policy": pol, "static viol. %": _pm(static, 0.0, 100, 2).split(" ±")[0]}
        for topo in ("add", "remove"):
            v = df[df["topology"] == topo]["slo_violation_rate"]
            if v.empty:
                continue
            if v.isna().any():
                row[f"{topo} viol. %"] = row[f"{topo} / static"] = "n/a"
                continue
            row[f"{topo} viol. %"] = f"{v.mean() * 100:.2f}"
            row[f"{topo} / static"] = "∞" if static == 0 and v.mean() > 0 else (
                "1.00" if static == 0 else f"{v.mean() / static:.2f}")
        rows.append(row)
    return pd.DataFrame(rows)


def _md(df: pd.DataFrame) -> str:
    if df.empty:
        return "_(no rows)_\n"
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------- plots


def _fig_png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_timeline(steps: pd.DataFrame, services: pd.DataFrame, scenario: str, seed: int,
                  policies: Sequence[str], slo_ms: float) -> bytes:
    """Replicas per service against load (left) and e2e p95 against the SLO (right), one
    row per policy, for one scenario and seed."""
    plt = _pyplot()
    pols = [p for p in policies if ((steps["policy"] == p) & (steps["scenario"] == scenario)
                                    & (steps["seed"] == seed)).any()]
    fig, axes = plt.subplots(len(pols), 2, figsize=(13, 2.3 * len(pols) + 0.6),
                             squeeze=False, sharex=True)
    cmap = plt.get_cmap("tab20")
    names = sorted(services.loc[services["scenario"] == scenario, "service"].unique())
    colors = {n: cmap(i % 20) for i, n in enumerate(names)}
    for r, pol in enumerate(pols):
        st = steps[(steps["policy"] == pol) & (steps["scenario"] == scenario)
                   & (steps["seed"] == seed)]
        sv = services[(services["policy"] == pol) & (services["scenario"] == scenario)
                      & (services["seed"] == seed)]
        t_min = st["t_s"] / 60.0
        minutes = dict(zip(st["step"], t_min, strict=True))
        ax = axes[r, 0]
        for name, g in sv.groupby("service"):
            ax.step(g["step"].map(minutes), g["replicas"], where="post",
                    color=colors[name], lw=1.2, label=name)
        ax.set_ylabel(f"{pol}\nreplicas")
        load = ax.twinx()
        load.fill_between(t_min, st["trace_rps"], color="0.6", alpha=0.25, step="post")
        load.set_ylabel("load req/s", color="0.4")
        ax2 = axes[r, 1]
        ax2.plot(t_min, st["e2e_p95_ms"], color="C3", lw=1.2, label="e2e p95")
        ax2.axhline(slo_ms, color="k", ls="--", lw=1, label=f"SLO {slo_ms:.0f} ms")
        top = max(3 * slo_ms, 1.0)
        ax2.set_ylim(0, top)
        ax2.set_ylabel("ms")
        for t in st.loc[st["topology_events"].astype(str) != "", "t_s"]:
            for a in (ax, ax2):
                a.axvline(t / 60.0, color="C2", ls=":", lw=1.5)
        if r == 0:
            ax.set_title(f"{scenario}, seed {seed}: replicas per service vs load")
            ax2.set_title("end-to-end p95 vs SLO (clipped at 3x SLO)")
            ax2.legend(loc="upper right", fontsize=7)
    axes[0, 0].legend(loc="upper left", fontsize=6, ncol=3)
    for a in axes[-1]:
        a.set_xlabel("minutes")
    fig.tight_layout()
    return _fig_png(fig)


def point_styles(n: int) -> list[dict[str, Any]]:
    """Scatter styles of `n` policies drawn in this order at possibly the same point (HPA
    and KEDA often land together): each its own colour (tab10 without its grey, the sweep's
    colour) and marker, and each drawn above the ones before it but smaller, so a point
    drawn later never covers an earlier one (its larger marker shows around it)."""
    palette = [f"C{k}" for k in range(10) if k != 7]
    markers = "oDs^vP*Xh<>"
    big, small = 190.0, 35.0
    step = (big - small) / max(n - 1, 1)
    return [{"color": palette[i % len(palette)], "marker": markers[i % len(markers)],
             "s": big - i * step, "zorder": 3 + i} for i in range(n)]


def plot_cost_vs_violations(summary: pd.DataFrame, hpa_sweep: Sequence[int],
                            dial_sweep_rows: Sequence[str] = ()) -> bytes:
    """Mean replica-hours vs mean SLO-violation rate per policy, over the scenarios every
    policy ran; the HPA target sweep drawn as a line (the frontier to beat), and each GNNRL
    dial sweep (rows ``dial_sweep_rows``, ``NAME@D``) as a line through its dials, the
    default-dial row included."""
    from gnnrl.evaluation.frontier import policy_family

    plt = _pyplot()
    ran_all = summary.groupby("scenario")["slo_violation_rate"].apply(lambda s: s.notna().all())
    common = summary[summary["scenario"].isin(ran_all[ran_all].index)]
    if common.empty:  # some policy is n/a everywhere: use what each ran
        common = summary.dropna(subset=["slo_violation_rate"])
    pts = common.groupby("policy", sort=False)[["replica_hours", "slo_violation_rate"]].mean()
    # the random policy is far off scale and would squash the frontier
    off_scale = [p for p in pts.index if p == "random"]
    pts = pts.drop(index=off_scale)
    fig, ax = plt.subplots(figsize=(7.5, 5))
    sweep_names = [f"hpa-{p}" if p != 70 else "hpa" for p in sorted(hpa_sweep)]
    sweep = pts.loc[[n for n in sweep_names if n in pts.index]]
    if len(sweep):
        ax.plot(sweep["replica_hours"], sweep["slo_violation_rate"] * 100, "-o", color="0.5",
                label="HPA target sweep")
        for name, row in sweep.iterrows():
            pct = "70" if name == "hpa" else str(name).split("-")[1]
            ax.annotate(f"{pct}%", (row["replica_hours"], row["slo_violation_rate"] * 100),
                        textcoords="offset points", xytext=(4, 4), fontsize=8, color="0.35")
    curves: dict[str, list[tuple[float, str]]] = {}
    for name in dial_sweep_rows:
        fam = policy_family(name)
        if fam is not None and name in pts.index:
            curves.setdefault(fam[0], []).append((fam[1], name))
    for name in pts.index:  # the default-dial row (``gnnrl``) belongs on its curve
        fam = policy_family(str(name))
        if fam is not None and fam[0] in curves and name not in dial_sweep_rows:
            curves[fam[0]].append((fam[1], str(name)))
    for k, (family, members) in enumerate(curves.items()):
        members.sort()
        line = pts.loc[[n for _, n in members]]
        ax.plot(line["replica_hours"], line["slo_violation_rate"] * 100, "--", marker=".",
                color=f"C{k % 7}", lw=1, label=f"{family} dial sweep")
        for (dial, _), (_, row) in zip(members, line.iterrows(), strict=True):
            ax.annotate(f"{dial:g}", (row["replica_hours"], row["slo_violation_rate"] * 100),
                        textcoords="offset points", xytext=(4, -10), fontsize=8,
                        color=f"C{k % 7}")
    in_curves = {n for members in curves.values() for _, n in members}
    shown = [n for n in pts.index if not (n in sweep.index and n != "hpa")
             and not (n in in_curves and n in dial_sweep_rows)]
    for name, style in zip(shown, point_styles(len(shown)), strict=True):
        row = pts.loc[name]
        ax.scatter(row["replica_hours"], row["slo_violation_rate"] * 100, label=name,
                   edgecolors="white", linewidths=0.8, **style)
    ax.set_xlabel("replica-hours per episode (mean)")
    ax.set_ylabel("SLO violations, % of steps (mean)")
    ax.set_title("cost vs SLO violations (lower-left is better)"
                 + (f"\n{', '.join(off_scale)} omitted (off scale)" if off_scale else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _fig_png(fig)


def plot_frontier(summary: pd.DataFrame) -> bytes:
    """Replica-hours against SLO-violation rate (means over the scenarios and seeds every
    policy ran): each policy family (``hpa-NN``, ``keda-NN``, any ``FAMILY-KNOB``;
    `gnnrl.evaluation.frontier`) a line through its knob settings, every other policy a
    point, each with its own colour and marker; the HPA sweep's lower-left envelope
    dashed (the matched-SLO reference)."""
    from gnnrl.evaluation.frontier import (
        REFERENCE_FAMILY,
        common_cells,
        envelope,
        frontier_points,
        policy_means,
    )

    plt = _pyplot()
    means = policy_means(summary, common_cells(summary)).dropna()
    means = means.drop(index=[p for p in means.index if p == "random"])  # off scale
    fam = frontier_points(means)
    sizes = fam.groupby("family")["policy"].count()
    lines = [f for f in dict.fromkeys(fam["family"]) if sizes[f] >= 2]
    in_line = set(fam.loc[fam["family"].isin(lines), "policy"])
    singles = [p for p in means.index if p not in in_line]
    fig, ax = plt.subplots(figsize=(7.5, 5))
    palette = [f"C{k}" for k in range(10) if k != 7]  # grey is the envelope's
    markers = "oDs^vP*Xh<>"
    k = 0
    for family in lines:
        pts = fam[fam["family"] == family].sort_values("knob")
        ax.plot(pts["slo_violation_rate"] * 100, pts["replica_hours"], "-",
                marker=markers[k % len(markers)], color=palette[k % len(palette)], ms=6,
                label=f"{family} ({', '.join(f'{x:g}' for x in pts['knob'])})")
        for _, r in pts.iterrows():
            ax.annotate(f"{r['knob']:g}", (r["slo_violation_rate"] * 100, r["replica_hours"]),
                        textcoords="offset points", xytext=(4, 4), fontsize=7,
                        color=palette[k % len(palette)])
        k += 1
    for name in singles:
        ax.scatter(means.loc[name, "slo_violation_rate"] * 100,
                   means.loc[name, "replica_hours"], s=60, color=palette[k % len(palette)],
                   marker=markers[k % len(markers)], zorder=3, label=name)
        k += 1
    ref = fam[fam["family"] == REFERENCE_FAMILY]
    if len(ref) >= 2:
        ex, ey = envelope(ref["slo_violation_rate"], ref["replica_hours"])
        ax.plot(ex * 100, ey, "--", color="0.5", lw=1, zorder=1,
                label="HPA envelope (matched-SLO reference)")
    lo, hi = ax.get_xlim()
    ax.set_xlim(max(lo, -0.05 * max(hi, 0.1)), hi)  # no negative violation axis
    ax.set_xlabel("SLO violations, % of steps (mean)")
    ax.set_ylabel("replica-hours per episode (mean)")
    ax.set_title("cost vs SLO violations by policy family (lower-left is better)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _fig_png(fig)


def plot_matched_intervals(matched: pd.DataFrame) -> bytes | None:
    """Each policy's replica-hours over the HPA frontier at its violation rate, with the
    95 % bootstrap interval (`gnnrl.evaluation.uncertainty`), one row per policy that has a
    ratio (the HPA sweep's own points left out); a line at 1, the frontier. None when no
    row has an interval (an evaluation without a sweep, or of one scenario)."""
    from gnnrl.evaluation.frontier import REFERENCE_FAMILY

    overall = matched[matched["scenario"] == "all"]
    if "replica_hours_vs_hpa_lo" not in overall:
        return None
    rows = overall[overall["replica_hours_vs_hpa_lo"].notna()
                   & (overall["family"] != REFERENCE_FAMILY)]
    if rows.empty:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.32 * len(rows)))
    y = list(range(len(rows)))[::-1]  # the table's order, top to bottom
    ratio = rows["replica_hours_vs_hpa"].to_numpy(dtype=float)
    lo = rows["replica_hours_vs_hpa_lo"].to_numpy(dtype=float)
    hi = rows["replica_hours_vs_hpa_hi"].to_numpy(dtype=float)
    gnnrl = rows["policy"].astype(str).str.startswith("gnnrl").to_numpy()
    for mask, colour, label in ((gnnrl, "C0", "GNNRL"), (~gnnrl, "C1", "baselines")):
        if mask.any():
            ax.errorbar(ratio[mask], [v for v, m in zip(y, mask, strict=True) if m],
                        xerr=[ratio[mask] - lo[mask], hi[mask] - ratio[mask]], fmt="o",
                        color=colour, ecolor=colour, capsize=3, ms=5, label=label)
    ax.axvline(1.0, color="0.5", ls="--", lw=1, label="HPA frontier")
    ax.set_yticks(y, rows["policy"].astype(str).tolist(), fontsize=8)
    ax.set_xlabel("replica-hours / the HPA frontier's at the same violation rate")
    ax.set_title("cost at matched SLO, 95 % interval (scenarios redrawn); left of 1 is cheaper",
                 fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return _fig_png(fig)


def matched_md_table(matched: pd.DataFrame) -> pd.DataFrame:
    """The ``scenario == "all"`` rows of `gnnrl.evaluation.frontier.matched_table` for
    results.md (percent, two decimals; ``-`` where not defined)."""
    rows = []

    def fmt(x: Any, scale: float, dec: int) -> str:  # a cell: a number, NaN or None
        return "-" if x is None or not math.isfinite(float(x)) else f"{x * scale:.{dec}f}"

    overall = matched[matched["scenario"] == "all"]
    # GNNRL's dial curve column only when a dial sweep drew one
    curve = "gnnrl_replica_hours_at_slo" in overall and bool(
        overall["gnnrl_replica_hours_at_slo"].notna().any())
    intervals = "replica_hours_vs_hpa_lo" in overall and bool(
        overall["replica_hours_vs_hpa_lo"].notna().any())
    for r in overall.itertuples(index=False):
        row = {
            "policy": r.policy, "SLO viol. %": fmt(r.slo_violation_rate, 100, 2),
            "replica-h": fmt(r.replica_hours, 1, 2),
            "HPA replica-h at same viol.": fmt(r.hpa_replica_hours_at_slo, 1, 2),
        }
        if intervals:  # the ratio with its 95 % bootstrap interval (gnnrl.evaluation.uncertainty)
            ratio, lo, hi = (math.nan if x is None else float(cast(float, x)) for x in (
                r.replica_hours_vs_hpa, r.replica_hours_vs_hpa_lo, r.replica_hours_vs_hpa_hi))
            row["x HPA at matched SLO (95 % interval)"] = format_interval(ratio, lo, hi)
            row["P(cheaper than HPA)"] = fmt(r.p_cheaper_than_hpa, 100, 0)
        else:
            row["x HPA at matched SLO"] = fmt(r.replica_hours_vs_hpa, 1, 2)
        row["viol. % at HPA-70 cost"] = fmt(r.slo_violation_rate_at_hpa70_cost, 100, 2)
        if curve:
            row["GNNRL replica-h at same viol."] = fmt(r.gnnrl_replica_hours_at_slo, 1, 2)
        rows.append({**row, "note": r.note or ""})
    return pd.DataFrame(rows)


#: accepted column names of a training log: steps, return
CURVE_X = ("env_steps", "global_step", "step", "timesteps")
CURVE_Y = ("return", "episode_return", "ep_rew_mean")


def read_learning_curve(path: str | Path) -> pd.DataFrame:
    """A training log as ``env_steps, return[, slo_violation_rate]`` rows.

    Reads the MLP baseline's ``learning_curve.csv`` and the GNNRL trainer's
    ``metrics.jsonl`` (``global_step``, ``episode_return``, ``slo_violation_rate``;
    rows without a finished episode are skipped).

    Raises:
        ValueError: no step or return column.
    """
    path = Path(path)
    df = pd.read_json(path, lines=True) if path.suffix == ".jsonl" else pd.read_csv(path)
    x = next((c for c in CURVE_X if c in df.columns), None)
    y = next((c for c in CURVE_Y if c in df.columns), None)
    if x is None or y is None:
        raise ValueError(f"{path}: a learning curve needs a step column ({', '.join(CURVE_X)})"
                         f" and a return column ({', '.join(CURVE_Y)}); it has "
                         f"{', '.join(map(str, df.columns))}")
    out = pd.DataFrame({"env_steps": df[x], "return": df[y]})
    if "slo_violation_rate" in df.columns:
        out["slo_violation_rate"] = df["slo_violation_rate"]
    return out.dropna(subset=["return"]).reset_index(drop=True)


def plot_learning_curves(paths: Sequence[str | Path]) -> bytes:
    """Return and SLO-violation rate against environment steps, one line per log
    (`read_learning_curve`): convergence and sample efficiency side by side."""
    plt = _pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4))
    for path in paths:
        df = read_learning_curve(path)
        p = Path(path)
        label = p.parent.name if p.stem in ("metrics", "learning_curve") else p.stem
        a1.plot(df["env_steps"], df["return"], label=label)
        if "slo_violation_rate" in df.columns:
            a2.plot(df["env_steps"], df["slo_violation_rate"] * 100, label=label)
    a1.set_xlabel("environment steps")
    a1.set_ylabel("episode return")
    a2.set_xlabel("environment steps")
    a2.set_ylabel("SLO violations %")
    for a in (a1, a2):
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.suptitle("learning curves")
    fig.tight_layout()
    return _fig_png(fig)


# ---------------------------------------------------------------------------------- writers


def _pick(summary: pd.DataFrame, want) -> str | None:
    """The first scenario one of whose rows satisfies ``want(row)``."""
    rows = summary.drop_duplicates("scenario")
    names = [str(r.scenario) for r in rows.itertuples(index=False) if want(r)]
    return names[0] if names else None


def _timelines(summary: pd.DataFrame, steps: pd.DataFrame, services: pd.DataFrame,
               seed: int, order: Sequence[str], slo: float
               ) -> tuple[dict[str, bytes], str | None, str | None]:
    """Timeline plots of a flash-crowd and a topology-change scenario (or of the first
    scenario when there is neither); returns (plots, flash scenario, topology scenario)."""
    plots: dict[str, bytes] = {}
    flash = _pick(summary, lambda r: str(r.trace).startswith(("flash", "surge")))
    topo = _pick(summary, lambda r: r.topology != "static")
    if topo == flash:
        topo = _pick(summary, lambda r: r.topology != "static" and r.scenario != flash)
    if steps.empty:
        return plots, flash, topo
    for label, scen in (("flash", flash), ("topology", topo)):
        if scen is not None:
            plots[f"timeline_{label}.png"] = plot_timeline(steps, services, scen, seed,
                                                           order, slo)
    if flash is None and topo is None:
        plots["timeline.png"] = plot_timeline(steps, services, summary["scenario"].iloc[0],
                                              seed, order, slo)
    return plots, flash, topo


def write_report(out_dir: str | Path, summary: pd.DataFrame, steps: pd.DataFrame | None,
                 services: pd.DataFrame | None, app: Any, suite: Any,
                 hpa_sweep: Sequence[int] = (), learning_curves: Sequence[str | Path] = (),
                 command: str | None = None, matched: pd.DataFrame | None = None,
                 dial_sweep_rows: Sequence[str] = ()) -> dict[str, Path]:
    """Write ``results.md``, ``plots/*.png`` and ``report.html``; return their paths.

    ``matched``: `gnnrl.evaluation.uncertainty.matched_with_intervals` (computed when
    None).
    ``dial_sweep_rows``: the ``gnnrl@D`` rows a dial sweep added (kept out of the
    zero-shot table and the timelines, as the HPA sweep's rows are; drawn as a line).
    Without the per-step tables (``steps``/``services`` None: results merged from runs
    that did not keep them) the episode timelines are left out."""
    out = Path(out_dir)
    if matched is None:
        matched = matched_with_intervals(summary)
    order = list(dict.fromkeys(summary["policy"]))
    sweep_only = {f"hpa-{p}" for p in hpa_sweep if p != 70} | set(dial_sweep_rows)
    main_order = [p for p in order if p not in sweep_only]
    static = summary["topology"] == "static"
    sections: list[tuple[str, pd.DataFrame]] = [
        ("Static topology (all traces)", aggregate_table(summary, static, order)),
        ("Topology changes (service added / removed mid-episode)",
         aggregate_table(summary, ~static, order)),
        ("Zero-shot: violations with a changed graph vs. static", zero_shot_table(
            summary, main_order)),
        ("Cost at matched SLO (vs the HPA target sweep's envelope)",
         matched_md_table(matched)),
        ("Per scenario", scenario_table(summary, order)),
    ]
    seeds = ", ".join(str(s) for s in suite.seeds)
    head = [f"# Evaluation: {suite.name} suite on {app.name}", "",
            f"- scenarios: {len(suite.scenarios)}; seeds: {seeds}; "
            f"SLO: e2e p95 <= {app.slo_p95_ms:.0f} ms",
            "- values: mean ± std over seeds; `x oracle` = replica-hours / the "
            "clairvoyant oracle's on the same scenario and seed",
            "- `n/a`: the policy cannot take a changed service graph (fixed-size input)",
            "- `x HPA at matched SLO (95 % interval)`: replica-hours over the HPA sweep's "
            "envelope at the same violation rate; the interval and `P(cheaper than HPA)` "
            "come from a paired bootstrap that redraws whole scenarios "
            "(`gnnrl.evaluation.uncertainty`)"]
    from gnnrl.evaluation.frontier import sweep_warnings

    head += [f"- **warning**: {w}" for w in sweep_warnings(summary)]
    if command:
        head += ["", "Reproduce:", "", "```", command, "```"]
    md = "\n".join(head) + "\n"
    for title, df in sections:
        if not df.empty:
            md += f"\n## {title}\n\n{_md(df)}"
    atomic_write_text(out / "results.md", md)

    first_seed = int(suite.seeds[0])
    plots: dict[str, bytes] = {}
    flash: str | None = ""
    topo: str | None = ""
    if steps is not None and services is not None:
        plots, flash, topo = _timelines(summary, steps, services, first_seed, main_order,
                                        float(app.slo_p95_ms))
    plots["cost_vs_violations.png"] = plot_cost_vs_violations(summary, hpa_sweep,
                                                              dial_sweep_rows)
    plots["frontier.png"] = plot_frontier(summary)
    intervals = plot_matched_intervals(matched)
    if intervals is not None:
        plots["matched_intervals.png"] = intervals
    if learning_curves:
        plots["learning_curves.png"] = plot_learning_curves(learning_curves)
    paths = {"results.md": out / "results.md"}
    for name, data in plots.items():
        atomic_write_bytes(out / "plots" / name, data)
        paths[name] = out / "plots" / name

    body = [f"<h1>{html.escape(head[0][2:])}</h1>", "<ul>"]
    body += [f"<li>{html.escape(line[2:])}</li>" for line in head if line.startswith("- ")]
    body.append("</ul>")
    if command:
        body.append(f"<p>Reproduce:</p><pre>{html.escape(command)}</pre>")
    captions = {
        "cost_vs_violations.png": "Cost vs SLO violations; the grey line is the HPA "
                                  "CPU-target sweep"
                                  + ("; dashed: GNNRL's dial sweep (one model, dial 0 = "
                                     "cheapest to 1 = safest)." if dial_sweep_rows else "."),
        "frontier.png": "Replica-hours vs SLO violations: policy families as lines "
                        "through their knob settings, single policies as points; dashed: "
                        "the HPA sweep's lower-left envelope (the matched-SLO reference).",
        "matched_intervals.png": "Replica-hours over the HPA frontier's at the same "
                                 "violation rate, with 95 % intervals from redrawing the "
                                 "scenarios: an interval that crosses 1 is a tie.",
        "timeline_flash.png": f"Flash crowd ({flash}), seed {first_seed}.",
        "timeline_topology.png": f"Topology change ({topo}), seed {first_seed}; dotted "
                                 "green line = the event.",
        "timeline.png": "One episode.",
        "learning_curves.png": "Learning curves from the training logs.",
    }
    for name in ("cost_vs_violations.png", "frontier.png", "matched_intervals.png",
                 "timeline_flash.png",
                 "timeline_topology.png",
                 "timeline.png", "learning_curves.png"):
        if name in plots:
            b64 = base64.b64encode(plots[name]).decode("ascii")
            body.append(f'<figure><img alt="{name}" src="data:image/png;base64,{b64}">'
                        f"<figcaption>{html.escape(captions[name])}</figcaption></figure>")
    for title, df in sections:
        if not df.empty:
            body.append(f"<h2>{html.escape(title)}</h2>")
            body.append(df.to_html(index=False, escape=True, border=0, classes="results"))
    page = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(head[0][2:])}</title><style>"
        "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;color:#222}"
        "table.results{border-collapse:collapse;font-size:13px;margin-bottom:1.5em}"
        "table.results th,table.results td{padding:3px 8px;border-bottom:1px solid #ddd;"
        "text-align:right}table.results td:first-child{text-align:left}"
        "img{max-width:100%}figcaption{color:#555;font-size:13px}"
        "</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
    )
    atomic_write_text(out / "report.html", page)
    paths["report.html"] = out / "report.html"
    return paths
