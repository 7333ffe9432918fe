"""Policy specs on the command line -> `Policy` objects.

Spec grammar (comma-separated in ``--policies``):

==================  =====================================================================
``hpa``             Kubernetes HPA, CPU target 70 % of the request, `behavior` at its
                    defaults (`HPAPolicy`); what "HPA" means in the results
``hpa-NN``          the same at NN % (e.g. ``hpa-50``)
``hpa-nb[-NN]``     an HPA object without a `behavior` field (upstream's other path:
                    scale-up at most max(2 x current, 4) per sync)
``hpa[-NN]+rps``    CPU plus a Pods req/s metric at the same operating point; the
                    controller follows the larger recommendation
``keda``            KEDA-style req/s-per-replica target at HPA-70's operating point
``keda-NN``         the same at NN % of the CPU request's equivalent load
``static``          fixed replicas provisioned for the episode's peak (`StaticPolicy`)
``static-N``        N replicas for every service
``random``          uniformly random valid moves (`RandomMaskedPolicy`)
``oracle``          clairvoyant minimum replicas at a calibrated safe utilisation
``headroom``        load-aware headroom rule, GNNRL's imitation teacher (`HeadroomPolicy`)
``headroom-NN``     the same with its low target at NN % (high target kept at 10/7 of it)
``floor``           HPA-70 above a floor sized for the nominal peak at 110 % of the request
``floor-NN``        the same with the floor at NN % of the request (`FloorPolicy`)
``predictive``      Crane EHPA-style: max(periodic forecast, live req/s) at 70 %
``predictive-NN``   the same at NN % of the CPU request's equivalent load
``panic``           Knative KPA-style stable/panic windows on req/s, target 70 %
``panic-NN``        the same at NN % (`PanicPolicy`)
``mlp[:PATH]``      gym-hpa-style MaskablePPO MLP (default: the shipped one)
``gnnrl[:PATH]``    the GNN policy (`PPO_GNN.load`; without PATH the shipped default model)
                    as deployed: graph-wide scale-up, then the in-cluster scaler's guard
                    (`as_deployed`)
``gnnrl-raw[:PATH]`` the same model's bare decisions, without the guard
``SPEC+graph``      SPEC with the graph-wide scale-up: callees of a throttled service are
                    sized for the load their callers receive (`GraphScaleUp`;
                    ``gnnrl`` has it already)
==================  =====================================================================

Any spec may be prefixed with ``LABEL=`` to name its row, e.g.
``gnnrl-no-tgn=gnnrl:models/no_tgn`` for the temporal-memory ablation next to ``gnnrl``.
"""

from __future__ import annotations

import re
from typing import Any

from gnnrl.config import ConfigError

POLICY_NAMES = ("hpa", "hpa-NN", "hpa-nb[-NN]", "hpa[-NN]+rps", "keda", "keda-NN", "static",
                "static-N", "random", "oracle", "headroom", "headroom-NN", "floor", "floor-NN",
                "predictive", "predictive-NN", "panic", "panic-NN", "mlp[:PATH]",
                "gnnrl[:PATH]", "gnnrl-raw[:PATH]", "SPEC+graph")


def make_policy(spec: str) -> Any:
    """Build the policy named by ``spec`` (see the module docstring).

    Raises:
        ConfigError: unknown spec, or a percentage outside 1..200.
    """
    spec = spec.strip()
    label, eq, rest = spec.partition("=")
    if eq:
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", label):
            raise ConfigError(f"policies: bad label {label!r} in {spec!r} (letters, digits, "
                              "'_', '.', '-')")
        policy = make_policy(rest)
        policy.name = label
        return policy
    if spec.endswith(GRAPH_SUFFIX):
        return _graph(spec[: -len(GRAPH_SUFFIX)])
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
    if kind == "oracle" and not path:
        from gnnrl.baselines.oracle import OraclePolicy

        return OraclePolicy()
    m = re.fullmatch(r"(headroom|floor|predictive|panic)(?:-(\d+))?", kind)
    if m and not path:
        return _rule(spec, m.group(1), None if m.group(2) is None else int(m.group(2)))
    if kind == "mlp":
        from gnnrl.baselines.mlp_ppo import MLPPPOPolicy

        return MLPPPOPolicy.load(path or None)
    if kind in ("gnnrl", "gnnrl-raw"):
        from gnnrl.evaluation.gnnrl_policy import GNNRLPolicy

        policy = GNNRLPolicy.load(path or None, name=kind)
        if kind == "gnnrl-raw":
            return policy
        from gnnrl.evaluation.guarded import as_deployed

        return as_deployed(policy, name="gnnrl")
    raise ConfigError(f"policies: unknown policy {spec!r} (known: {', '.join(POLICY_NAMES)})")


GRAPH_SUFFIX = "+graph"


def _graph(base: str) -> Any:
    """``SPEC+graph``: the policy of ``SPEC`` with the graph-wide scale-up
    (`gnnrl.baselines.graph_scaleup`); for ``gnnrl`` inside the scaler's guard, as
    deployed."""
    from gnnrl.baselines.graph_scaleup import GraphScaleUp

    if base.partition(":")[0] == "gnnrl":  # the deployed path already has it
        policy = make_policy(base)
        policy.name = base.partition(":")[0] + GRAPH_SUFFIX
        return policy
    return GraphScaleUp(make_policy(base))


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


def parse_policies(text: str) -> list[Any]:
    """``"hpa,keda,oracle"`` -> policies, in order; duplicate names are an error."""
    specs = [s for s in (p.strip() for p in text.split(",")) if s]
    if not specs:
        raise ConfigError("policies: at least one policy is needed")
    policies = [make_policy(s) for s in specs]
    names = [p.name for p in policies]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"policies: duplicate policy name(s) {', '.join(dup)}")
    return policies
