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

from typing import Any

from gnnrl.baselines.specs import (
    BASELINE_NAMES,
    GRAPH_SUFFIX,
    UnknownPolicySpec,
    make_baseline,
    split_label,
)
from gnnrl.config import ConfigError

POLICY_NAMES = (*BASELINE_NAMES, "gnnrl[:PATH]", "gnnrl-raw[:PATH]")


def make_policy(spec: str) -> Any:
    """Build the policy named by ``spec`` (see the module docstring).

    Raises:
        ConfigError: unknown spec, or a percentage outside 1..200.
    """
    label, spec = split_label(spec)
    if label:
        policy = make_policy(spec)
        policy.name = label
        return policy
    base = spec[: -len(GRAPH_SUFFIX)] if spec.endswith(GRAPH_SUFFIX) else spec
    kind, _, path = base.partition(":")
    if kind in ("gnnrl", "gnnrl-raw"):
        from gnnrl.evaluation.gnnrl_policy import GNNRLPolicy

        policy = GNNRLPolicy.load(path or None, name=kind)
        if kind == "gnnrl-raw":
            if base != spec:
                from gnnrl.baselines.graph_scaleup import GraphScaleUp

                return GraphScaleUp(policy)
            return policy
        from gnnrl.evaluation.guarded import as_deployed

        # the deployed path has the graph-wide scale-up already: gnnrl+graph == gnnrl
        return as_deployed(policy, name="gnnrl" + (GRAPH_SUFFIX if base != spec else ""))
    try:
        return make_baseline(spec)
    except UnknownPolicySpec:
        raise ConfigError(f"policies: unknown policy {spec!r} (known: "
                          f"{', '.join(POLICY_NAMES)})") from None


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
