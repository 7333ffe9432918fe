"""The promotion gate: may a challenger replace the champion? A pure function of numbers.

The gate reads one evaluation summary in which the challenger, the current champion and
the HPA baseline (70 % CPU target) ran on the *same* scenarios and seeds, and compares
two numbers per policy, both "lower is better":

* ``slo_violation_rate`` -- fraction of steps whose end-to-end p95 exceeded the SLO (0..1);
* ``replica_hours`` -- replicas x hours summed over services (the cost proxy).

The challenger passes against a reference R when

    slo(challenger)  <= slo(R) - slo_margin
    cost(challenger) <= cost(R) * (1 - cost_margin)

with one pair of margins against the champion (``slo_margin``, ``cost_margin``) and one
against HPA (``baseline_slo_margin``, ``baseline_cost_margin``). With ``min_confidence``
> 0 the challenger must also pass in at least that share of paired bootstrap redraws of
the evaluation's scenarios (`gnnrl.evaluation.uncertainty.resample_weights`: whole
scenarios drawn with replacement, every policy on the same redrawn episodes), so a win
that rests on one lucky scenario does not replace a champion. Positive margins demand a
strict improvement; negative margins tolerate a bounded regression (e.g.
``cost_margin=-0.10``: up to 10 % more replica-hours). It must pass against every reference
present (HPA always; the champion when there is one). A challenger that scores exactly
like the champion on both numbers is not promoted (a re-run on the same data must not
churn the champion). Missing or mismatched evaluations are a rejection with the reason
named, never a promotion (docs/reliability.md T3).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import pandas as pd

from gnnrl.config import ConfigError, JsonConfig

#: the evaluation-summary columns the gate compares (lower is better for both)
GATE_METRICS = ("slo_violation_rate", "replica_hours")
#: columns that identify one evaluation episode; the suites must match on these
EPISODE_KEYS = ("scenario", "seed")


@dataclasses.dataclass
class GateConfig(JsonConfig):
    """Margins of the promotion gate.

    Attributes:
        slo_margin: required absolute reduction of ``slo_violation_rate`` (fraction 0..1)
            against the champion; negative = tolerated increase. In [-1, 1].
        cost_margin: required relative reduction of ``replica_hours`` against the champion
            (0.05 = 5 % cheaper); negative = tolerated increase. In (-10, 1).
        baseline_slo_margin / baseline_cost_margin: the same against HPA.
        baseline_policy: the evaluation's policy name of HPA at 70 % CPU.
        require_baseline: reject when the baseline is missing from the summary.
        min_confidence: share (0..1) of scenario redraws in which the challenger must pass
            against each reference, on top of passing on the whole evaluation; 0 = not
            checked. Needs per-episode rows (``scenario``, ``seed``) and several
            scenarios: with 2 scenarios one redraw in four repeats the worse one.
    """

    slo_margin: float = 0.0
    cost_margin: float = 0.0
    baseline_slo_margin: float = 0.0
    baseline_cost_margin: float = 0.0
    baseline_policy: str = "hpa"
    require_baseline: bool = True
    min_confidence: float = 0.0

    def __post_init__(self) -> None:
        for name in ("slo_margin", "baseline_slo_margin"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and -1.0 <= value <= 1.0):
                raise ConfigError(f"GateConfig.{name} must be in [-1, 1], got {value!r}")
        for name in ("cost_margin", "baseline_cost_margin"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and -10.0 < value < 1.0):
                raise ConfigError(f"GateConfig.{name} must be in (-10, 1), got {value!r}")
        if not self.baseline_policy:
            raise ConfigError("GateConfig.baseline_policy must be a non-empty policy name")
        c = self.min_confidence
        if not (isinstance(c, int | float) and 0.0 <= c < 1.0):
            raise ConfigError(f"GateConfig.min_confidence must be in [0, 1), got {c!r}")


@dataclasses.dataclass(frozen=True)
class PolicyScore:
    """Mean gate metrics of one policy over its evaluation episodes."""

    policy: str
    slo_violation_rate: float
    replica_hours: float
    episodes: frozenset[tuple[Any, ...]]


@dataclasses.dataclass(frozen=True)
class GateDecision:
    """Outcome of the gate: ``promoted`` and why, with every number compared."""

    promoted: bool
    reasons: tuple[str, ...]
    scores: dict[str, PolicyScore]
    config: GateConfig
    #: per reference role: the share of scenario redraws the challenger passed in
    #: (only with ``config.min_confidence`` > 0)
    confidence: dict[str, float] = dataclasses.field(default_factory=dict)

    def as_tags(self) -> dict[str, str]:
        """Flat string tags for the MLflow model version (``gate.*``)."""
        tags = {
            "gate.decision": "promoted" if self.promoted else "rejected",
            "gate.reason": "; ".join(self.reasons)[:5000],
            "gate.slo_margin": repr(float(self.config.slo_margin)),
            "gate.cost_margin": repr(float(self.config.cost_margin)),
            "gate.baseline_slo_margin": repr(float(self.config.baseline_slo_margin)),
            "gate.baseline_cost_margin": repr(float(self.config.baseline_cost_margin)),
            "gate.min_confidence": repr(float(self.config.min_confidence)),
        }
        for role, share in self.confidence.items():
            tags[f"gate.{role}.confidence"] = f"{share:.4g}"
        for role, score in self.scores.items():
            tags[f"gate.{role}.policy"] = score.policy
            for metric in GATE_METRICS:
                tags[f"gate.{role}.{metric}"] = f"{getattr(score, metric):.6g}"
            tags[f"gate.{role}.episodes"] = str(len(score.episodes))
        return tags


class GateInputError(ValueError):
    """The evaluation summary lacks what the gate needs (columns or policies)."""


def score_policy(summary: pd.DataFrame, policy: str) -> PolicyScore:
    """Average the gate metrics of ``policy`` over its rows of ``summary``.

    Shapes:
        summary: one row per (policy, scenario, seed) episode -- or one row per policy --
        with columns ``policy``, ``slo_violation_rate`` (0..1), ``replica_hours`` (h).

    Raises:
        GateInputError: a column is missing, the policy has no rows, or a value is NaN.
    """
    missing = [c for c in ("policy", *GATE_METRICS) if c not in summary.columns]
    if missing:
        raise GateInputError(f"evaluation summary lacks column(s) {', '.join(missing)}")
    rows = summary[summary["policy"].astype(str) == policy]
    if rows.empty:
        raise GateInputError(f"policy {policy!r} is not in the evaluation summary")
    keys = [k for k in EPISODE_KEYS if k in rows.columns]
    episodes = frozenset(tuple(r) for r in rows[keys].itertuples(index=False)) if keys else None
    episodes = episodes or frozenset()
    means = {m: float(pd.to_numeric(rows[m], errors="coerce").mean()) for m in GATE_METRICS}
    bad = [m for m, v in means.items() if not math.isfinite(v)]
    if bad:
        raise GateInputError(f"policy {policy!r} has non-finite {', '.join(bad)}")
    return PolicyScore(policy=policy, episodes=episodes, **means)


def _margins(role: str, cfg: GateConfig) -> tuple[float, float]:
    """(slo_margin, cost_margin) against ``role``."""
    if role == "baseline":
        return cfg.baseline_slo_margin, cfg.baseline_cost_margin
    return cfg.slo_margin, cfg.cost_margin


def _compare(challenger: PolicyScore, ref: PolicyScore, role: str, cfg: GateConfig) -> list[str]:
    """Reasons the challenger fails against ``ref`` (empty = passes)."""
    failures = []
    if challenger.episodes != ref.episodes:
        failures.append(
            f"{role} {ref.policy!r} was evaluated on other episodes "
            f"({len(ref.episodes)} vs {len(challenger.episodes)}); not comparable"
        )
        return failures
    slo_margin, cost_margin = _margins(role, cfg)
    slo_limit = ref.slo_violation_rate - slo_margin
    if challenger.slo_violation_rate > slo_limit + 1e-12:
        failures.append(
            f"slo_violation_rate {challenger.slo_violation_rate:.4f} > {slo_limit:.4f} "
            f"({role} {ref.slo_violation_rate:.4f} - margin {slo_margin:g})"
        )
    cost_limit = ref.replica_hours * (1.0 - cost_margin)
    if challenger.replica_hours > cost_limit * (1 + 1e-12):
        failures.append(
            f"replica_hours {challenger.replica_hours:.4g} > {cost_limit:.4g} "
            f"({role} {ref.replica_hours:.4g} x (1 - margin {cost_margin:g}))"
        )
    if (not failures and role == "champion"
            and math.isclose(challenger.slo_violation_rate, ref.slo_violation_rate,
                             rel_tol=1e-9, abs_tol=1e-12)
            and math.isclose(challenger.replica_hours, ref.replica_hours,
                             rel_tol=1e-9, abs_tol=1e-12)):
        failures.append(
            f"no improvement on the champion (slo_violation_rate "
            f"{challenger.slo_violation_rate:.4f}, replica_hours {challenger.replica_hours:.4g} "
            "both equal): the champion is kept"
        )
    return failures


#: scenario redraws behind a confidence (the 5th percentile then rests on 100 of them)
CONFIDENCE_RESAMPLES = 2000


def pass_share(summary: pd.DataFrame, challenger: str, reference: str, slo_margin: float,
               cost_margin: float, n: int = CONFIDENCE_RESAMPLES, seed: int = 0) -> float:
    """Share of ``n`` paired redraws of the scenarios in which ``challenger`` passes
    against ``reference`` with these margins (the gate's two inequalities on the redrawn
    episodes' means).

    Raises:
        GateInputError: no ``scenario``/``seed`` columns, or the two policies were
            evaluated on different episodes.
    """
    import numpy as np

    from gnnrl.evaluation.uncertainty import resample_weights

    if not set(EPISODE_KEYS) <= set(summary.columns):
        raise GateInputError("min_confidence needs per-episode rows (scenario, seed columns)")
    keys = list(EPISODE_KEYS)
    mine = summary[summary["policy"].astype(str) == challenger].set_index(keys).sort_index()
    ref = summary[summary["policy"].astype(str) == reference].set_index(keys)
    if set(mine.index) != set(ref.index):
        raise GateInputError(f"{reference!r} was evaluated on other episodes")
    ref = ref.loc[mine.index]
    w = resample_weights(pd.MultiIndex.from_tuples(list(mine.index)), n, "scenario",
                         np.random.default_rng(seed))
    total = w.sum(axis=1)

    def means(df: pd.DataFrame, metric: str) -> Any:
        return w @ pd.to_numeric(df[metric], errors="coerce").to_numpy(dtype=float) / total

    slo_ok = means(mine, "slo_violation_rate") <= (
        means(ref, "slo_violation_rate") - slo_margin + 1e-12)
    cost_ok = means(mine, "replica_hours") <= (
        means(ref, "replica_hours") * (1.0 - cost_margin) * (1 + 1e-12))
    return float(np.mean(slo_ok & cost_ok))


def decide(
    summary: pd.DataFrame,
    challenger_policy: str,
    champion_policy: str | None,
    config: GateConfig | None = None,
) -> GateDecision:
    """Decide whether ``challenger_policy`` may become champion.

    Args:
        summary: the evaluation summary (see `score_policy`).
        challenger_policy: the challenger's policy name in ``summary``.
        champion_policy: the current champion's name in ``summary``; None when the registry
            has no champion yet (then only the baseline is compared).
        config: margins; defaults to `GateConfig()` (no regression allowed).

    Never raises for bad inputs: a summary the gate cannot read is a rejection whose reason
    says why.
    """
    cfg = config or GateConfig()
    scores: dict[str, PolicyScore] = {}
    reasons: list[str] = []
    confidence: dict[str, float] = {}
    try:
        scores["challenger"] = score_policy(summary, challenger_policy)
    except GateInputError as exc:
        return GateDecision(False, (f"challenger: {exc}",), scores, cfg)
    refs = [("baseline", cfg.baseline_policy, cfg.require_baseline)]
    if champion_policy is not None:
        refs.append(("champion", champion_policy, True))
    for role, name, required in refs:
        try:
            scores[role] = score_policy(summary, name)
        except GateInputError as exc:
            if required:
                reasons.append(f"{role}: {exc}")
            continue
        failures = _compare(scores["challenger"], scores[role], role, cfg)
        if not failures and cfg.min_confidence > 0:
            try:
                confidence[role] = pass_share(summary, challenger_policy, name,
                                              *_margins(role, cfg))
            except GateInputError as exc:
                failures.append(str(exc))
            else:
                if confidence[role] < cfg.min_confidence:
                    failures.append(
                        f"passes in only {100 * confidence[role]:.1f} % of "
                        f"{CONFIDENCE_RESAMPLES} redraws of the scenarios (min_confidence "
                        f"{cfg.min_confidence:g}): the win may be one scenario's luck")
        reasons.extend(f"vs {role}: {r}" for r in failures)
    if reasons:
        return GateDecision(False, tuple(reasons), scores, cfg, confidence)
    refs_ok = [role for role in scores if role != "challenger"]
    beaten = ", ".join(f"{role} {scores[role].policy!r}" for role in refs_ok)
    why = f"beats {beaten} by the configured margins" if beaten else "no reference to beat"
    # Negative margins let a challenger pass while worse than the reference (the quick
    # profile does this to exercise the loop): say so instead of claiming a win.
    worse = [role for role in refs_ok
             if scores["challenger"].slo_violation_rate > scores[role].slo_violation_rate
             or scores["challenger"].replica_hours > scores[role].replica_hours]
    if worse:
        why = (f"passes the configured margins although worse than "
               f"{', '.join(f'{r} {scores[r].policy!r}' for r in worse)} "
               "(the margins allow a regression)")
    if confidence:
        why += " (in " + ", ".join(f"{100 * share:.1f} % of the scenario redraws vs {role}"
                                   for role, share in confidence.items()) + ")"
    if champion_policy is None:
        why += " (no previous champion)"
    return GateDecision(True, (why,), scores, cfg, confidence)
