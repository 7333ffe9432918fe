"""Cost at matched SLO: compare a policy with the HPA at the same violation rate.

A policy that is both cheaper and more often late than HPA-70 is neither better nor worse
on its own terms; the HPA target sweep (``--hpa-sweep``: HPA at several CPU targets) draws
what the HPA can buy at each violation rate, and a policy is judged against that curve.

* **Families.** Policies named ``FAMILY-KNOB`` or ``FAMILY@KNOB`` (``hpa-50``, ``keda-80``,
  ``hpa-nb-50``, ``gnnrl@0.2``; ``hpa-50+rps`` is knob 50 of ``hpa+rps``) are knob
  settings of one family; bare ``hpa``, ``keda``, ``hpa-nb`` and ``hpa+rps`` are their
  70 % settings, bare ``gnnrl`` (and ``gnnrl-raw``, ``gnnrl+graph``) its default dial
  (`DEFAULT_KNOBS`). `frontier_table` lists every family's points.
* **GNNRL's curve.** The dial sweep (``--dial-sweep``: the one model at several dials,
  rows ``gnnrl@D``) is to GNNRL what the target sweep is to HPA: `matched_table` also reads
  the ``gnnrl`` family's envelope at each policy's violation rate
  (``gnnrl_replica_hours_at_slo``: what GNNRL costs at that SLO), and the ``gnnrl`` rows'
  violations at HPA-70's cost come off the dial curve.
* **Envelope.** A family's cost as a function of its violation rate is the lower-left
  envelope of its points (`envelope`): the Pareto set (no other point at most as late
  and at most as expensive), then its lower convex hull. Convex because running two
  settings for shares of the time achieves every point of the segment between them
  (the same argument as a convex operating frontier), so the hull is what the family can
  reach; between hull vertices the curve is linear, and past the last vertex (up to the
  sweep's largest value) it stays flat, that vertex dominating what lies there.
* **Matched cost** (`matched_table`): the HPA envelope's replica-hours at the policy's
  violation rate, and the policy's cost as a ratio of it (< 1: cheaper than the HPA at
  the same SLO). **Violations at HPA-70's cost**: the policy's family envelope, as
  violation rate per replica-hour, at the replica-hours of ``hpa`` (the 70 % target);
  needs a family of >= 2 points.
* **No extrapolation.** Outside the range the sweep covers (its smallest to largest
  violation rate, or replica-hours for the family curve), a value is NaN and the
  ``note`` column says why: a policy with fewer violations than the strictest HPA target
  in the sweep has no matched HPA cost (extend the sweep to lower targets).

Each comparison uses the scenarios and seeds the policy ran (every HPA point is averaged
over the same ones), so a policy that is n/a on topology changes is compared on the
static scenarios only.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection
from typing import cast

import numpy as np
import pandas as pd

from gnnrl.baselines.floor import DEFAULT_FLOOR_UTILIZATION
from gnnrl.contracts.observation import DEFAULT_DIAL

#: Knob of a family's bare name (``hpa`` = ``hpa-70``, ``gnnrl`` = ``gnnrl@0.5``, the
#: default dial; `gnnrl.evaluation.policies`).
DEFAULT_KNOBS = {"hpa": 70.0, "keda": 70.0, "hpa-nb": 70.0, "hpa+rps": 70.0,
                 **{k: DEFAULT_DIAL for k in ("gnnrl", "gnnrl-raw", "gnnrl+graph",
                                              "gnnrl-raw+graph")}}
#: Family of the reference curve and the knob whose cost `matched_table` matches.
REFERENCE_FAMILY = "hpa"
REFERENCE_KNOB = 70.0
#: Family of GNNRL's dial curve (``gnnrl`` and its ``gnnrl@D`` sweep rows).
GNNRL_FAMILY = "gnnrl"
FRONTIER_COLUMNS = ("family", "knob", "slo_violation_rate", "replica_hours")
MATCHED_COLUMNS = ("scenario", "policy", "family", "knob", "slo_violation_rate",
                   "replica_hours", "hpa_replica_hours_at_slo", "replica_hours_vs_hpa",
                   "replica_hours_vs_hpa_lo", "replica_hours_vs_hpa_hi",
                   "p_cheaper_than_hpa", "slo_violation_rate_at_hpa70_cost",
                   "gnnrl_replica_hours_at_slo", "note")
#: `MATCHED_COLUMNS` filled by the bootstrap (`gnnrl.evaluation.uncertainty`), NaN here.
INTERVAL_COLUMNS = ("replica_hours_vs_hpa_lo", "replica_hours_vs_hpa_hi",
                    "p_cheaper_than_hpa")
# FAMILY-KNOB / FAMILY@KNOB, and FAMILY-KNOB+SUFFIX (``hpa-50+rps``: family ``hpa+rps``);
# a family may carry a model guard (``gnnrl~120-360-50%/60s@0.5``)
_FAMILY = re.compile(r"^(?P<family>[A-Za-z][\w.+~%/-]*?)[-@](?P<knob>\d+(?:\.\d+)?)"
                     r"(?P<suffix>\+[A-Za-z][\w.-]*)?$")


def policy_family(name: str) -> tuple[str, float] | None:
    """``"hpa-50"`` -> ("hpa", 50.0); ``"gnnrl@0.2"`` -> ("gnnrl", 0.2); ``"hpa"`` ->
    ("hpa", 70.0); ``"hpa-nb-50"`` -> ("hpa-nb", 50.0); ``"hpa-50+rps"`` ->
    ("hpa+rps", 50.0); a name without a numeric knob -> None."""
    if name in DEFAULT_KNOBS:
        return name, DEFAULT_KNOBS[name]
    m = _FAMILY.match(name)
    if m is None:
        return None
    return m.group("family") + (m.group("suffix") or ""), float(m.group("knob"))


def envelope(x: Collection[float], y: Collection[float]) -> tuple[np.ndarray, np.ndarray]:
    """Lower-left envelope of points (x, y), both to be minimised.

    Pareto set sorted by x (y then strictly decreases), then its lower convex hull
    (Andrew's monotone chain; collinear middle points dropped). NaN points are ignored.

    Shapes: (n,), (n,) -> (m,), (m,) with m <= n, x increasing, y decreasing.
    """
    pts = sorted((float(a), float(b)) for a, b in zip(x, y, strict=True)
                 if math.isfinite(a) and math.isfinite(b))
    pareto: list[tuple[float, float]] = []
    for px, py in pts:
        if not pareto or py < pareto[-1][1]:
            pareto.append((px, py))
    hull: list[tuple[float, float]] = []
    for p in pareto:
        while len(hull) >= 2:
            (ox, oy), (ax, ay) = hull[-2], hull[-1]
            if (ax - ox) * (p[1] - oy) - (ay - oy) * (p[0] - ox) > 0:
                break
            hull.pop()
        hull.append(p)
    return np.array([p[0] for p in hull]), np.array([p[1] for p in hull])


def frontier_at(x: Collection[float], y: Collection[float], at: float, what: str = "x"
                ) -> tuple[float, str]:
    """The lower-left envelope of points (x, y) evaluated at ``x = at``.

    Linear between envelope vertices; flat (the last vertex's y) from the last vertex to
    the largest x of the points, since a point to the right of the envelope's end is
    dominated by that vertex. Outside ``[min x, max x]`` of the points: (NaN, why), no
    extrapolation.

    Returns:
        (y at ``at``, "" or the reason it is NaN).
    """
    ex, _ = envelope(x, y)
    if len(ex) == 0:
        return math.nan, "no points"
    if not math.isfinite(at):
        return math.nan, f"no {what}"
    value = float(envelope_values(x, y, np.array([at]))[0])
    if math.isnan(value):
        hi = max(float(a) for a, b in zip(x, y, strict=True)
                 if math.isfinite(a) and math.isfinite(b))
        side = "below" if at < ex[0] else "above"
        return math.nan, f"{what} {at:.4g} {side} the range [{ex[0]:.4g}, {hi:.4g}]"
    return value, ""


def envelope_values(x: Collection[float], y: Collection[float], at: np.ndarray
                    ) -> np.ndarray:
    """`frontier_at`'s values at many points: the envelope of (x, y) at each of ``at``
    (m,) -> (m,), NaN outside ``[first envelope vertex, largest finite x]``."""
    ex, ey = envelope(x, y)
    out = np.full(len(at), math.nan)
    if len(ex) == 0:
        return out
    hi = max(float(a) for a, b in zip(x, y, strict=True)
             if math.isfinite(a) and math.isfinite(b))
    tol = 1e-12 * max(1.0, abs(hi))
    inside = (at >= ex[0] - tol) & (at <= hi + tol)
    out[inside] = np.interp(at[inside], ex, ey)
    return out


def policy_means(summary: pd.DataFrame, cells: pd.MultiIndex | None = None) -> pd.DataFrame:
    """Per policy: mean violation rate and replica-hours over ``cells`` ((scenario, seed)
    pairs; None = all rows). A policy missing any of the cells gets NaN."""
    df = summary.set_index(["scenario", "seed"])
    rows = {}
    for pol, g in df.groupby("policy", sort=False):
        g = g[["slo_violation_rate", "replica_hours"]]
        if cells is not None:
            g = g.reindex(cells)
        rows[pol] = g.mean(skipna=False)
    return pd.DataFrame.from_dict(rows, orient="index")


def common_cells(summary: pd.DataFrame) -> pd.MultiIndex:
    """(scenario, seed) pairs every policy ran (all that any ran when none is shared)."""
    ok = summary.dropna(subset=["slo_violation_rate"])
    n = summary["policy"].nunique()
    per = ok.groupby(["scenario", "seed"], sort=False)["policy"].nunique()
    shared = per[per == n].index
    # grouped on two keys: a MultiIndex (the stubs type it as a plain Index)
    return cast(pd.MultiIndex, shared if len(shared) else per.index)


def frontier_points(means: pd.DataFrame) -> pd.DataFrame:
    """Family rows (policy, family, knob, slo_violation_rate, replica_hours) of the
    policies in ``means`` (`policy_means`), sorted by family and knob."""
    rows = []
    for pol, row in means.iterrows():
        fam = policy_family(str(pol))
        if fam is not None:
            rows.append({"policy": pol, "family": fam[0], "knob": fam[1],
                         "slo_violation_rate": row["slo_violation_rate"],
                         "replica_hours": row["replica_hours"]})
    cols = ["policy", *FRONTIER_COLUMNS]
    if not rows:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame(rows, columns=cols).sort_values(["family", "knob"], ignore_index=True)


def frontier_table(summary: pd.DataFrame) -> pd.DataFrame:
    """``frontier.csv``: one row per knob setting of each family, means over the
    scenarios and seeds every policy ran. Columns `FRONTIER_COLUMNS`."""
    if summary.empty:
        return pd.DataFrame(columns=list(FRONTIER_COLUMNS))
    pts = frontier_points(policy_means(summary, common_cells(summary)))
    return pts[list(FRONTIER_COLUMNS)].reset_index(drop=True)


def sweep_warnings(summary: pd.DataFrame) -> list[str]:
    """What makes the HPA sweep a weak reference on this run, as sentences (empty: none).

    The frontier is never extrapolated, so when the sweep's highest (cheapest) target has
    no SLO violation the frontier at zero violations is that target's cost, while a
    higher target might serve the same traffic as cleanly for less: every ratio at zero
    violations would then flatter the policy. (On the ``real-fresh`` windows HPA-90 had
    none and HPA-100 was 5 % cheaper, still with none.)
    """
    if summary.empty:
        return []
    pts = frontier_points(policy_means(summary, common_cells(summary)))
    ref = pts[pts["family"] == REFERENCE_FAMILY].dropna(subset=["slo_violation_rate"])
    if len(ref) < 2:
        return []
    top = ref.iloc[-1]  # sorted by knob: the highest target
    if top["slo_violation_rate"] > 0:
        return []
    return [f"the HPA sweep's highest target ({top['policy']}) has no SLO violation: a "
            "higher one may be as clean for less, so ratios at zero violations may "
            "flatter a policy; extend --hpa-sweep until a target violates (e.g. "
            f"{int(top['knob']) + 10},{int(top['knob']) + 20},{int(top['knob']) + 30})"]


def _matched_rows(summary: pd.DataFrame, scope: str) -> list[dict]:
    rows = []
    ran = summary.dropna(subset=["slo_violation_rate"])
    for pol in dict.fromkeys(summary["policy"]):
        mine = ran[ran["policy"] == pol]
        fam = policy_family(str(pol))
        row = {"scenario": scope, "policy": pol, "family": fam[0] if fam else "",
               "knob": fam[1] if fam else math.nan}
        row.update(dict.fromkeys(INTERVAL_COLUMNS, math.nan))
        if mine.empty:
            rows.append({**row, "slo_violation_rate": math.nan, "replica_hours": math.nan,
                         "hpa_replica_hours_at_slo": math.nan,
                         "replica_hours_vs_hpa": math.nan,
                         "slo_violation_rate_at_hpa70_cost": math.nan,
                         "gnnrl_replica_hours_at_slo": math.nan, "note": "not run"})
            continue
        cells = pd.MultiIndex.from_frame(mine[["scenario", "seed"]])
        pts = frontier_points(policy_means(summary, cells))
        own = policy_means(mine, cells).loc[pol]
        v, c = float(own["slo_violation_rate"]), float(own["replica_hours"])
        notes = []
        ref = pts[pts["family"] == REFERENCE_FAMILY]
        if ref.empty:
            hpa_c, why = math.nan, "no HPA sweep"
        else:
            hpa_c, why = frontier_at(ref["slo_violation_rate"], ref["replica_hours"], v,
                                     "violation rate")
            why = why and f"HPA frontier: {why}, no extrapolation"
        notes.append(why)
        at70 = ref[ref["knob"] == REFERENCE_KNOB]["replica_hours"]
        family = pts[pts["family"] == row["family"]] if fam else pts.iloc[:0]
        if len(family) < 2:
            v70, why = math.nan, ""
        elif at70.empty or not math.isfinite(float(at70.iloc[0])):
            v70, why = math.nan, "HPA-70 not run"
        else:
            v70, why = frontier_at(family["replica_hours"], family["slo_violation_rate"],
                                   float(at70.iloc[0]), "HPA-70's replica-hours")
            why = why and f"{row['family']} curve: {why}"
        notes.append(why)
        gnnrl_c, why = _gnnrl_curve_at(pts, v)
        notes.append(why)
        rows.append({**row, "slo_violation_rate": v, "replica_hours": c,
                     "hpa_replica_hours_at_slo": hpa_c,
                     "replica_hours_vs_hpa": c / hpa_c if hpa_c > 0 else math.nan,
                     "slo_violation_rate_at_hpa70_cost": v70,
                     "gnnrl_replica_hours_at_slo": gnnrl_c,
                     "note": "; ".join(n for n in notes if n)})
    return rows


def _gnnrl_curve_at(pts: pd.DataFrame, violation_rate: float) -> tuple[float, str]:
    """GNNRL's dial curve (the `GNNRL_FAMILY` envelope) at ``violation_rate``; NaN and
    why outside its range, NaN without a note when there is no dial sweep (< 2 points)."""
    curve = pts[pts["family"] == GNNRL_FAMILY]
    if len(curve) < 2:
        return math.nan, ""
    value, why = frontier_at(curve["slo_violation_rate"], curve["replica_hours"],
                             violation_rate, "violation rate")
    return value, why and f"GNNRL dial curve: {why}"


def matched_table(summary: pd.DataFrame, per_scenario: bool = True) -> pd.DataFrame:
    """``matched.csv``: per policy, over all scenarios (``scenario = "all"``) and, with
    ``per_scenario``, per scenario: its violation rate and replica-hours, the HPA
    envelope's replica-hours at that violation rate, their ratio, its family's violation
    rate at HPA-70's replica-hours, and GNNRL's dial curve's replica-hours at its violation
    rate (see the module docstring). Means over the seeds (and scenarios) the policy ran.
    Columns `MATCHED_COLUMNS`; the `INTERVAL_COLUMNS` are NaN
    (`gnnrl.evaluation.uncertainty.matched_with_intervals` fills them)."""
    if summary.empty:
        return pd.DataFrame(columns=list(MATCHED_COLUMNS))
    rows = _matched_rows(summary, "all")
    if per_scenario and summary["scenario"].nunique() > 1:
        for scen, df in summary.groupby("scenario", sort=False):
            rows += _matched_rows(df, str(scen))
    return pd.DataFrame(rows, columns=list(MATCHED_COLUMNS))


#: The rules' knob (a target in %) when a row carries the bare name (`gnnrl.baselines.specs`).
RULE_DEFAULT_KNOBS = {"headroom": 70.0, "floor": round(100.0 * DEFAULT_FLOOR_UTILIZATION, 6),
                      "panic": 70.0, "predictive": 70.0}
RULE_COLUMNS = ("rule", "policy", "slo_violation_rate", "replica_hours",
                "rule_replica_hours_at_slo", "replica_hours_vs_rule",
                "replica_hours_vs_rule_lo", "replica_hours_vs_rule_hi", "p_cheaper_than_rule",
                "dominates", "dominated_by", "note")
#: `RULE_COLUMNS` filled by the bootstrap (`gnnrl.evaluation.uncertainty`), NaN here.
RULE_INTERVAL_COLUMNS = ("replica_hours_vs_rule_lo", "replica_hours_vs_rule_hi",
                         "p_cheaper_than_rule")


def rule_family(name: str) -> tuple[str, float] | None:
    """``"headroom-50"`` -> ("headroom", 50.0), ``"floor"`` -> ("floor", 110.0); None for
    anything but a rule of `RULE_DEFAULT_KNOBS`."""
    if name in RULE_DEFAULT_KNOBS:
        return name, RULE_DEFAULT_KNOBS[name]
    fam = policy_family(name)
    return fam if fam is not None and fam[0] in RULE_DEFAULT_KNOBS else None


def rules_table(summary: pd.DataFrame, curve: str = GNNRL_FAMILY) -> pd.DataFrame:
    """Each rule's knob sweep against each dial point of ``curve`` at matched violations.

    One row per (rule family, dial point): the point's violation rate and replica-hours,
    the rule family's envelope (`frontier_at`, no extrapolation) at that violation rate,
    their ratio (< 1: the dial point is cheaper than any mix of the rule's settings at the
    same SLO), the rule settings the point beats on both axes (no more violations and no
    more replica-hours, one of them strictly less; ``;``-joined) and those that beat it.
    Means over the scenarios and seeds every policy ran. ``curve``: "gnnrl" (as deployed)
    or "gnnrl-raw". Columns `RULE_COLUMNS`; the `RULE_INTERVAL_COLUMNS` are NaN
    (`gnnrl.evaluation.uncertainty.rules_with_intervals` fills them).
    """
    if summary.empty:
        return pd.DataFrame(columns=list(RULE_COLUMNS))
    means = policy_means(summary, common_cells(summary))
    points = frontier_points(means)  # sorted by family and knob
    dials = points[points["family"] == curve]
    rules: dict[str, list[tuple[str, float, float]]] = {}
    for pol, r in means.iterrows():
        fam = rule_family(str(pol))
        if fam is not None:
            rules.setdefault(fam[0], []).append(
                (str(pol), float(r["slo_violation_rate"]), float(r["replica_hours"])))
    rows = []
    for rule, pts in rules.items():
        vs, cs = [p[1] for p in pts], [p[2] for p in pts]
        for pol, v, c in zip(dials["policy"], dials["slo_violation_rate"],
                             dials["replica_hours"], strict=True):
            at, why = frontier_at(vs, cs, v, "violation rate")
            beaten = [name for name, rv, rc in pts if _beats((v, c), (rv, rc))]
            beaters = [name for name, rv, rc in pts if _beats((rv, rc), (v, c))]
            rows.append({"rule": rule, "policy": pol, "slo_violation_rate": v,
                         "replica_hours": c, "rule_replica_hours_at_slo": at,
                         "replica_hours_vs_rule": c / at if at > 0 else math.nan,
                         **dict.fromkeys(RULE_INTERVAL_COLUMNS, math.nan),
                         "dominates": ";".join(beaten), "dominated_by": ";".join(beaters),
                         "note": why and f"{rule} curve: {why}"})
    return pd.DataFrame(rows, columns=list(RULE_COLUMNS))


def _beats(a: tuple[float, float], b: tuple[float, float]) -> bool:
    """(violations, replica-hours) ``a`` is no worse than ``b`` on both and better on one."""
    return a[0] <= b[0] and a[1] <= b[1] and a != b
