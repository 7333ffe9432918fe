"""Baseline policy specs -> `Policy` objects (the rules and the MLP peer).

The grammar is `gnnrl.evaluation.policies`' (where the GNN policy's specs are added);
training takes its imitation teachers from here, so it does not depend on evaluation.
"""

from __future__ import annotations

import re
from typing import Any

from gnnrl.config import ConfigError

#: spec suffix: the policy with the graph-wide scale-up (`gnnrl.baselines.graph_scaleup`)
GRAPH_SUFFIX = "+graph"

BASELINE_NAMES = ("hpa", "hpa-NN", "hpa-nb[-NN]", "hpa[-NN]+rps", "keda", "keda-NN",
                  "static", "static-N", "random", "oracle[-NN]", "oracle-now[-NN]",
                  "headroom", "headroom-NN",
                  "floor", "floor-NN", "predictive", "predictive-NN", "panic", "panic-NN",
                  "mlp[:PATH]", "SPEC+graph")


class UnknownPolicySpec(ConfigError):
    """Not a baseline spec (the caller may know it: e.g. ``gnnrl``)."""


def split_label(spec: str) -> tuple[str | None, str]:
    """``"LABEL=SPEC"`` -> (LABEL, SPEC); (None, spec) without a label.

    A label may hold ``@`` and ``+`` (``mine@0.25``, ``mine+graph``: the row names of a dial
    sweep and of the graph-wide variant parse back as one family's knob settings).

    Raises:
        ConfigError: a label with other characters than letters, digits, '_', '.', '-',
            '@', '+'.
    """
    spec = spec.strip()
    label, eq, rest = spec.partition("=")
    if not eq:
        return None, spec
    if not re.fullmatch(r"[A-Za-z0-9_.@+-]+", label):
        raise ConfigError(f"policies: bad label {label!r} in {spec!r} (letters, digits, "
                          "'_', '.', '-', '@', '+')")
    return label, rest.strip()


def make_baseline(spec: str) -> Any:
    """Build the baseline named by ``spec`` (``LABEL=`` prefixes and ``+graph`` included).

    Raises:
        UnknownPolicySpec: not a baseline spec.
        ConfigError: a baseline spec with a bad value (e.g. a percentage outside 1..200).
    """
    label, spec = split_label(spec)
    if label:
        policy = make_baseline(spec)
        policy.name = label
        return policy
    if spec.endswith(GRAPH_SUFFIX):
        from gnnrl.baselines.graph_scaleup import GraphScaleUp

        return GraphScaleUp(make_baseline(spec[: -len(GRAPH_SUFFIX)]))
    kind, _, path = spec.partition(":")
    hpa = re.fullmatch(r"hpa(-nb)?(?:-(\d+))?(\+rps)?", kind)
    if hpa and not path and (hpa.group(1) or hpa.group(3)):
        from gnnrl.baselines.hpa import HPAPolicy
        from gnnrl.hpa import HPAConfig

        pct = _percent(spec, hpa.group(2))
        return HPAPolicy(pct / 100, config=HPAConfig(behavior=not hpa.group(1)),
                         rps_utilization=pct / 100 if hpa.group(3) else None)
    m = re.fullmatch(r"(hpa|keda|static)(?:-(\d+))?", kind)
    if m and not path:
        base, num = m.group(1), m.group(2)
        if base == "static":
            from gnnrl.baselines.static import StaticPolicy

            return StaticPolicy(None if num is None else int(num),
                                name=spec if num else "static")
        pct = _percent(spec, num)
        if base == "hpa":
            from gnnrl.baselines.hpa import HPAPolicy

            return HPAPolicy(pct / 100)
        from gnnrl.baselines.keda import KEDAPolicy

        return KEDAPolicy(utilization=pct / 100)
    if kind == "random" and not path:
        from gnnrl.baselines.random_policy import RandomMaskedPolicy

        return RandomMaskedPolicy(seed=0)
    m = re.fullmatch(r"oracle(-now)?(?:-(\d+))?", kind)
    if m and not path:
        from gnnrl.baselines.oracle import OraclePolicy

        rho = None if m.group(2) is None else int(m.group(2))
        if rho is not None and not 1 <= rho <= 99:
            raise ConfigError(f"policies: {spec!r}: utilisation must be 1..99 %")
        return OraclePolicy(None if rho is None else rho / 100, lookahead=not m.group(1),
                            name=spec)
    m = re.fullmatch(r"(headroom|floor|predictive|panic)(?:-(\d+))?", kind)
    if m and not path:
        return _rule(spec, m.group(1), None if m.group(2) is None else int(m.group(2)))
    if kind == "mlp":
        from gnnrl.baselines.mlp_ppo import MLPPPOPolicy

        return MLPPPOPolicy.load(path or None)
    raise UnknownPolicySpec(f"policies: unknown policy {spec!r} (known: "
                            f"{', '.join(BASELINE_NAMES)})")


def _percent(spec: str, num: str | None) -> int:
    pct = 70 if num is None else int(num)
    if not (1 <= pct <= 200):
        raise ConfigError(f"policies: {spec!r}: target must be 1..200 %")
    return pct


def _rule(spec: str, base: str, pct: int | None) -> Any:
    """``headroom``/``floor``/``predictive``/``panic`` with their knob in percent."""
    top = 140 if base == "headroom" else 200  # headroom's high target (10/7 x) <= 200 %
    if pct is not None and not (1 <= pct <= top):
        raise ConfigError(f"policies: {spec!r}: target must be 1..{top} %")
    if base == "headroom":
        from gnnrl.baselines.headroom import HeadroomConfig, HeadroomPolicy

        if pct is None or pct == 70:
            return HeadroomPolicy()
        return HeadroomPolicy(HeadroomConfig.at_target(pct / 100), name=f"headroom-{pct}")
    if base == "floor":
        from gnnrl.baselines.floor import DEFAULT_FLOOR_UTILIZATION, FloorPolicy

        return FloorPolicy(DEFAULT_FLOOR_UTILIZATION if pct is None else pct / 100)
    if base == "predictive":
        from gnnrl.baselines.predictive import PredictiveConfig, PredictivePolicy

        return PredictivePolicy(PredictiveConfig(utilization=0.7 if pct is None else pct / 100))
    from gnnrl.baselines.panic import PanicConfig, PanicPolicy

    return PanicPolicy(PanicConfig(target_utilization=0.7 if pct is None else pct / 100))
