"""How sure a matched-SLO ratio is: a paired bootstrap over the suite's episodes.

A ratio such as "0.89x the HPA frontier" is a mean over a handful of traffic windows and
applications. Another pick of windows would give another number; the question a reader
needs answered is whether the sign of ``ratio - 1`` would survive it.

* **Paired.** Every policy ran on the same (scenario, seed) cells, so one resample of the
  cells is applied to all of them at once: the policy's means *and* the reference sweep's
  points (and so its envelope) are recomputed on the same resampled episodes. Differences
  that come from a hard scenario hitting every policy cancel, as they do in the point
  estimate.
* **Unit** (``unit``):
  - ``"scenario"`` (default): a cluster bootstrap. Whole scenarios (a trace window on an
    application, with all its seeds) are drawn with replacement. This is the uncertainty
    of "would it hold on other traffic and other apps like these", the claim the suites
    make. With few scenarios (the ``real`` suite has five) the interval is coarse and
    honest about it.
  - ``"seed"``: the scenarios are kept, and within each the seeds are drawn with
    replacement (a stratified bootstrap). Only the simulator's randomness (request
    noise, start-up jitter) varies: narrower, and not a statement about other traffic.
* **Ratio per resample.** The reference family's envelope (`frontier.frontier_at`: the
  lower convex hull, no extrapolation) is read at the policy's resampled violation rate;
  a resample where that rate falls outside the sweep's range has no ratio and is left
  out. ``defined`` is the share of resamples that had one: read an interval whose
  ``defined`` is well below 1 with care.
* **Interval.** Percentiles of the defined resamples' ratios (``level``, 95 % by default);
  ``p_below_1`` is the share of them under 1 (the policy cheaper than the reference
  family at its own SLO). Seeded: the same inputs give the same interval.

What it does not cover: the simulator's own error against a real cluster
(docs/simulator.md), and any choice made after looking at these suites.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from gnnrl.evaluation.frontier import (
    GNNRL_FAMILY,
    INTERVAL_COLUMNS,
    REFERENCE_FAMILY,
    RULE_INTERVAL_COLUMNS,
    common_cells,
    envelope_values,
    matched_table,
    policy_family,
    rule_family,
    rules_table,
)

#: Resamples per interval: the 2.5 % and 97.5 % percentiles then rest on 50 draws each.
DEFAULT_RESAMPLES = 2000
DEFAULT_LEVEL = 0.95
UNITS = ("scenario", "seed")
BOOTSTRAP_COLUMNS = ("policy", "reference", "ratio", "ratio_lo", "ratio_hi", "p_below_1",
                     "defined", "resamples", "unit")


def resample_weights(cells: pd.MultiIndex, n: int, unit: str, rng: np.random.Generator
                     ) -> np.ndarray:
    """Multiplicities of the (scenario, seed) ``cells`` in ``n`` bootstrap resamples,
    (n, len(cells)) float64: whole scenarios drawn with replacement (``unit="scenario"``),
    or each scenario's seeds drawn with replacement within it (``"seed"``). Every row keeps
    the cell count of the original (an unbiased mean's weights up to the row sum)."""
    if unit not in UNITS:
        raise ValueError(f"unit: one of {', '.join(UNITS)}, got {unit!r}")
    scenarios = cells.get_level_values(0)
    groups = [np.flatnonzero(scenarios == s) for s in dict.fromkeys(scenarios)]
    w = np.zeros((n, len(cells)))
    if unit == "scenario":
        draws = rng.integers(0, len(groups), size=(n, len(groups)))
        counts = np.stack([np.bincount(row, minlength=len(groups)) for row in draws])
        for g, idx in enumerate(groups):
            w[:, idx] = counts[:, g:g + 1]
        return w
    rows = np.arange(n)[:, None]
    for idx in groups:
        picks = rng.integers(0, len(idx), size=(n, len(idx)))
        np.add.at(w, (rows, idx[picks]), 1.0)
    return w


def _table(summary: pd.DataFrame, cells: pd.MultiIndex, column: str,
           policies: Sequence[str]) -> np.ndarray:
    """(len(policies), len(cells)) of ``column``; NaN where a policy did not run a cell."""
    df = summary.set_index(["scenario", "seed"])
    out = np.full((len(policies), len(cells)), math.nan)
    for i, pol in enumerate(policies):
        mine = df[df["policy"] == pol][column]
        out[i] = mine[~mine.index.duplicated()].reindex(cells).to_numpy(dtype=np.float64)
    return out


def _ratios(pv: np.ndarray, pc: np.ndarray, rv: np.ndarray, rc: np.ndarray,
            weights: np.ndarray) -> np.ndarray:
    """Replica-hours over the reference envelope at the same violation rate, for P
    policies (``pv``, ``pc``: (P, C)) against K reference settings (``rv``, ``rc``: (K, C))
    under each row of ``weights`` (B, C) -> (P, B)."""
    total = weights.sum(axis=1)
    v, c = pv @ weights.T / total, pc @ weights.T / total
    ref_v, ref_c = rv @ weights.T / total, rc @ weights.T / total
    out = np.full(v.shape, math.nan)
    for b in range(weights.shape[0]):
        at = envelope_values(ref_v[:, b], ref_c[:, b], v[:, b])
        ok = at > 0
        out[ok, b] = c[ok, b] / at[ok]
    return out


def _summarise(point: float, draws: np.ndarray, n: int, level: float) -> dict[str, float]:
    ok = draws[np.isfinite(draws)]
    row = {"ratio": point, "ratio_lo": math.nan, "ratio_hi": math.nan,
           "p_below_1": math.nan, "defined": len(ok) / n if n else 0.0, "resamples": float(n)}
    if len(ok):
        lo, hi = np.quantile(ok, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
        row.update(ratio_lo=float(lo), ratio_hi=float(hi), p_below_1=float(np.mean(ok < 1.0)))
    return row


def _bootstrap(summary: pd.DataFrame, policies: Sequence[str], reference: Sequence[str],
               n: int, unit: str, level: float, seed: int) -> dict[str, dict[str, float]]:
    """`bootstrap_ratio` of several policies; those that ran the same cells share one set
    of resamples (and so one reference envelope per resample)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level: in (0, 1), got {level}")
    undefined = {"ratio": math.nan, "ratio_lo": math.nan, "ratio_hi": math.nan,
                 "p_below_1": math.nan, "defined": 0.0, "resamples": float(n)}
    ran = summary.dropna(subset=["slo_violation_rate"])
    groups: dict[tuple, list[str]] = {}
    for pol in policies:
        ran_cells = ran.loc[ran["policy"] == pol, ["scenario", "seed"]].drop_duplicates()
        groups.setdefault(tuple(map(tuple, ran_cells.to_numpy())), []).append(pol)
    out: dict[str, dict[str, float]] = {}
    for key, pols in groups.items():
        if not key or not reference:
            out.update({p: dict(undefined) for p in pols})
            continue
        cells = pd.MultiIndex.from_tuples(key)
        rv = _table(summary, cells, "slo_violation_rate", reference)
        rc = _table(summary, cells, "replica_hours", reference)
        if not (np.isfinite(rv).all() and np.isfinite(rc).all()):
            out.update({p: dict(undefined) for p in pols})
            continue
        pv = _table(summary, cells, "slo_violation_rate", pols)
        pc = _table(summary, cells, "replica_hours", pols)
        point = _ratios(pv, pc, rv, rc, np.ones((1, len(cells))))[:, 0]
        # one generator per cell set, seeded alike: a policy's interval does not depend
        # on which other policies are in the table
        w = resample_weights(cells, n, unit, np.random.default_rng(seed))
        draws = _ratios(pv, pc, rv, rc, w)
        for i, pol in enumerate(pols):
            out[pol] = _summarise(float(point[i]), draws[i], n, level)
    return out


def bootstrap_ratio(summary: pd.DataFrame, policy: str, reference: Sequence[str],
                    n: int = DEFAULT_RESAMPLES, unit: str = "scenario",
                    level: float = DEFAULT_LEVEL, seed: int = 0) -> dict[str, float]:
    """``policy``'s replica-hours over the envelope of the ``reference`` policies (one
    family's knob settings) at its violation rate, with a bootstrap interval.

    Means over the (scenario, seed) cells ``policy`` ran; a reference setting missing one
    of them makes the comparison undefined (NaN). Returns ``ratio`` (the point estimate,
    as `frontier.matched_table` computes it), ``ratio_lo``/``ratio_hi`` (the ``level``
    percentile interval), ``p_below_1`` and ``defined`` (shares of the resamples, see the
    module docstring) and ``resamples``.
    """
    return _bootstrap(summary, [policy], reference, n, unit, level, seed)[policy]


def _family_members(summary: pd.DataFrame, family: str,
                    family_of: Callable[[str], tuple[str, float] | None]) -> list[str]:
    return [p for p in dict.fromkeys(summary["policy"].astype(str))
            if (f := family_of(p)) is not None and f[0] == family]


def bootstrap_table(summary: pd.DataFrame, reference: str = REFERENCE_FAMILY,
                    policies: Sequence[str] | None = None, n: int = DEFAULT_RESAMPLES,
                    unit: str = "scenario", level: float = DEFAULT_LEVEL, seed: int = 0
                    ) -> pd.DataFrame:
    """`bootstrap_ratio` of each of ``policies`` (None: every policy outside the reference
    family) against the ``reference`` family: ``"hpa"`` (the HPA target sweep, as
    ``matched.csv``) or a rule (``"headroom"``, ``"floor"``, ``"panic"``,
    ``"predictive"``: its knob sweep, as ``rules.csv``). Columns `BOOTSTRAP_COLUMNS`."""
    family_of = rule_family if reference != REFERENCE_FAMILY else policy_family
    members = _family_members(summary, reference, family_of)
    if policies is None:
        policies = [p for p in dict.fromkeys(summary["policy"].astype(str))
                    if p not in members]
    boot = _bootstrap(summary, list(policies), members, n, unit, level, seed)
    rows = [{"policy": p, "reference": reference, **boot[p], "unit": unit} for p in policies]
    return pd.DataFrame(rows, columns=list(BOOTSTRAP_COLUMNS))


def _filled(table: pd.DataFrame, rows: Sequence[bool], ratio: str, boot: pd.DataFrame,
            columns: tuple[str, str, str]) -> pd.DataFrame:
    """``table`` with ``columns`` (lo, hi, p) set from ``boot`` (`bootstrap_table`, by
    policy) on the ``rows`` whose ``ratio`` is defined (no matched point: no interval)."""
    found = {str(r["policy"]): r for r in boot.to_dict("records")}
    records = table.to_dict("records")
    for rec, chosen in zip(records, rows, strict=True):
        b = found.get(str(rec["policy"]))
        if chosen and b is not None and math.isfinite(float(rec[ratio])):
            rec.update(zip(columns, (b["ratio_lo"], b["ratio_hi"], b["p_below_1"]),
                           strict=True))
    return pd.DataFrame(records, columns=table.columns)


def matched_with_intervals(summary: pd.DataFrame, n: int = DEFAULT_RESAMPLES,
                           unit: str = "scenario", seed: int = 0) -> pd.DataFrame:
    """`frontier.matched_table` with the ratio's interval and ``p_cheaper_than_hpa`` filled
    on the ``scenario == "all"`` rows (`bootstrap_ratio` against the HPA sweep; per-scenario
    rows stay NaN: one scenario has nothing to resample across). The sweep's own points
    get their ratio as a zero-width interval."""
    matched = matched_table(summary)
    if matched.empty or n <= 0:
        return matched
    overall = [s == "all" for s in matched["scenario"]]
    boot = bootstrap_table(summary, REFERENCE_FAMILY, n=n, unit=unit, seed=seed)
    sweep = [p for p in dict.fromkeys(summary["policy"].astype(str))
             if (f := policy_family(p)) is not None and f[0] == REFERENCE_FAMILY]
    own = matched[matched["policy"].isin(sweep) & (matched["scenario"] == "all")]
    itself = pd.DataFrame({"policy": own["policy"], "ratio_lo": own["replica_hours_vs_hpa"],
                           "ratio_hi": own["replica_hours_vs_hpa"], "p_below_1": math.nan})
    return _filled(matched, overall, "replica_hours_vs_hpa", pd.concat([boot, itself]),
                   INTERVAL_COLUMNS)


def rules_with_intervals(summary: pd.DataFrame, curve: str = GNNRL_FAMILY,
                         n: int = DEFAULT_RESAMPLES, unit: str = "scenario", seed: int = 0
                         ) -> pd.DataFrame:
    """`frontier.rules_table` with each dial point's ratio to the rule family's envelope
    given an interval and ``p_cheaper_than_rule`` (`bootstrap_ratio`)."""
    rules = rules_table(summary, curve)
    if rules.empty or n <= 0:
        return rules
    # the table's points are means over the cells every policy ran: redraw those
    shared = set(common_cells(summary))
    keys = zip(summary["scenario"], summary["seed"], strict=True)
    summary = summary[[k in shared for k in keys]]
    for rule in dict.fromkeys(rules["rule"].astype(str)):
        mine = [str(r) == rule for r in rules["rule"]]
        boot = bootstrap_table(summary, rule, list(rules.loc[mine, "policy"].astype(str)),
                               n=n, unit=unit, seed=seed)
        rules = _filled(rules, mine, "replica_hours_vs_rule", boot, RULE_INTERVAL_COLUMNS)
    return rules


def format_interval(ratio: float, lo: float, hi: float, dec: int = 2) -> str:
    """``"0.89 (0.84-0.95)"``; ``"-"`` without a ratio, the bare ratio without an interval."""
    if not math.isfinite(ratio):
        return "-"
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return f"{ratio:.{dec}f}"
    return f"{ratio:.{dec}f} ({lo:.{dec}f}-{hi:.{dec}f})"
