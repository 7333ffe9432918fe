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
                    (`as_deployed`), at the default dial (`DEFAULT_DIAL`)
``gnnrl[:PATH]@D``  the same at dial D in [0, 1] (0 = cheapest, 1 = safest), e.g.
                    ``gnnrl@0.8``, ``gnnrl:runs/x/best@0.25``; the row is ``gnnrl@D``
``gnnrl[:PATH]~G[@D]`` deployed behind the model guard G instead of the scaler's default:
                    ``W-D`` (scale-down window, delay after a scale-up, s) or ``W-D-CAP``
                    with a scale-down cap ``P%/Ts`` or ``Npods/Ts``, e.g.
                    ``gnnrl~120-360-50%/60s@0.5`` (`gnnrl.hpa.model_guard`); the row
                    name always carries the dial
``gnnrl-raw[:PATH][@D]`` the same model's bare decisions, without the guard
``SPEC+graph``      SPEC with the graph-wide scale-up: callees of a throttled service are
                    sized for the load their callers receive (`GraphScaleUp`;
                    ``gnnrl`` has it already)
==================  =====================================================================

Any spec may be prefixed with ``LABEL=`` to name its row, e.g.
``gnnrl-no-tgn=gnnrl:models/no_tgn`` for the temporal-memory ablation next to ``gnnrl``.

The dial is the text after the last ``@`` of a GNNRL spec (before ``+graph``): a PATH that
contains ``@`` needs an explicit dial (``gnnrl:runs/a@b/best@0.5``). A guard is the text
after the last ``~`` when it starts with a digit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from gnnrl.baselines.specs import (
    BASELINE_NAMES,
    GRAPH_SUFFIX,
    UnknownPolicySpec,
    make_baseline,
    split_label,
)
from gnnrl.config import ConfigError
from gnnrl.contracts.observation import DEFAULT_DIAL, check_dial
from gnnrl.core.agents.dial import dial_label, parse_dial

POLICY_NAMES = (*BASELINE_NAMES, "gnnrl[:PATH][@D]", "gnnrl-raw[:PATH][@D]")
#: the spec kinds that load a GNNRL model (and take a dial)
GNNRL_KINDS = ("gnnrl", "gnnrl-raw")
DIAL_SEP = "@"
GUARD_SEP = "~"


@dataclasses.dataclass(frozen=True)
class GNNRLSpec:
    """A parsed ``gnnrl[-raw][:PATH][~G][@D][+graph]`` spec (without its ``LABEL=``).

    Attributes:
        kind: "gnnrl" (as deployed) or "gnnrl-raw" (bare decisions).
        path: the model folder; None = the shipped default model.
        dial: the dial given with ``@D``; None = not given (`DEFAULT_DIAL` is served).
        graph: the spec ends with ``+graph``.
        guard: the model guard's short form (`gnnrl.hpa.model_guard.parse_model_guard`,
            normalised); None = the scaler's default guard.
    """

    kind: str
    path: str | None = None
    dial: float | None = None
    graph: bool = False
    guard: str | None = None

    @property
    def serving_dial(self) -> float:
        """The dial the model serves at."""
        return DEFAULT_DIAL if self.dial is None else self.dial

    @property
    def name(self) -> str:
        """The row label without ``LABEL=``: ``gnnrl``, ``gnnrl@0.25``,
        ``gnnrl-raw@1+graph``, ``gnnrl~120-360-50%/60s@0.5`` (a guarded row always
        names its dial, so that its family reads as one; the path is not part of it)."""
        dial = self.serving_dial if self.guard is not None else self.dial
        at = "" if dial is None else f"{DIAL_SEP}{dial_label(dial)}"
        guard = "" if self.guard is None else f"{GUARD_SEP}{self.guard}"
        return f"{self.kind}{guard}{at}{GRAPH_SUFFIX if self.graph else ''}"

    def spec(self) -> str:
        """The spec text that parses back to this (`parse_gnnrl_spec`)."""
        path = f":{self.path}" if self.path else ""
        guard = "" if self.guard is None else f"{GUARD_SEP}{self.guard}"
        at = "" if self.dial is None else f"{DIAL_SEP}{dial_label(self.dial)}"
        return f"{self.kind}{path}{guard}{at}{GRAPH_SUFFIX if self.graph else ''}"


def parse_gnnrl_spec(spec: str) -> GNNRLSpec | None:
    """``"gnnrl:runs/x/best@0.8"`` -> GNNRLSpec("gnnrl", "runs/x/best", 0.8); a spec of
    another kind -> None. ``spec`` carries no ``LABEL=`` (`split_label` first).

    Raises:
        ConfigError: a dial that is not a number in [0, 1] (``gnnrl@1.5``, ``gnnrl@x``,
            ``gnnrl@``), or a dial on a spec that takes none (``hpa@0.5``).
    """
    spec = spec.strip()
    graph = spec.endswith(GRAPH_SUFFIX)
    base = spec[: -len(GRAPH_SUFFIX)] if graph else spec
    head = base.partition(":")[0]
    kind = head.partition(DIAL_SEP)[0].partition(GUARD_SEP)[0]
    if kind not in GNNRL_KINDS:
        if DIAL_SEP in head:
            raise ConfigError(f"policies: {spec!r}: only {' and '.join(GNNRL_KINDS)} take a "
                              f"dial ({DIAL_SEP}D)")
        return None
    dial = None
    if DIAL_SEP in base:
        base, _, text = base.rpartition(DIAL_SEP)
        try:
            dial = parse_dial(text.strip())
        except ValueError as exc:
            hint = (f" (the dial follows the last {DIAL_SEP!r}: a PATH holding one needs an "
                    "explicit dial)") if ":" in base else ""
            raise ConfigError(f"policies: {spec!r}: {exc}{hint}") from None
    guard = None
    head, sep, tail = base.rpartition(GUARD_SEP)
    if sep and tail[:1].isdigit():
        if kind != "gnnrl":
            raise ConfigError(f"policies: {spec!r}: only gnnrl (as deployed) takes a model "
                              f"guard ({GUARD_SEP}G)")
        from gnnrl.hpa.model_guard import parse_model_guard, short_model_guard

        try:
            guard = short_model_guard(parse_model_guard(tail))
        except ConfigError as exc:
            raise ConfigError(f"policies: {spec!r}: {exc}") from None
        base = head
    name, _, path = base.partition(":")
    if name != kind:  # e.g. gnnrl@0.5@0.7
        raise ConfigError(f"policies: {spec!r}: expected {kind}[:PATH][{GUARD_SEP}G]"
                          f"[{DIAL_SEP}D]")
    return GNNRLSpec(kind, path or None, dial, graph, guard)


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
    gnnrl = parse_gnnrl_spec(spec)
    if gnnrl is not None:
        return gnnrl_policy(gnnrl)
    try:
        return make_baseline(spec)
    except UnknownPolicySpec:
        raise ConfigError(f"policies: unknown policy {spec!r} (known: "
                          f"{', '.join(POLICY_NAMES)})") from None


def gnnrl_policy(spec: GNNRLSpec) -> Any:
    """The GNNRL policy of ``spec``: as deployed (``gnnrl``) or bare (``gnnrl-raw``), at
    its dial, named ``spec.name``.

    Raises:
        ModelLoadError / ConfigError: see `PPO_GNN.load`.
    """
    from gnnrl.evaluation.gnnrl_policy import GNNRLPolicy

    label = spec.name
    policy = GNNRLPolicy.load(spec.path, name=label, dial=spec.serving_dial)
    if spec.kind == "gnnrl-raw":
        if spec.graph:
            from gnnrl.baselines.graph_scaleup import GraphScaleUp

            return GraphScaleUp(policy, name=label)
        return policy
    from gnnrl.baselines.guarded import as_deployed
    from gnnrl.hpa.model_guard import parse_model_guard

    guard = None if spec.guard is None else parse_model_guard(spec.guard)
    # the deployed path has the graph-wide scale-up already: gnnrl+graph == gnnrl
    return as_deployed(policy, name=label, model_guard=guard)


def dial_sweep_specs(policies: Sequence[Any], dial_sweep: Sequence[float]) -> list[str]:
    """The ``gnnrl@D`` rows of a dial sweep: for every GNNRL spec in ``policies`` given
    without a dial (``gnnrl``, ``gnnrl:PATH``, ``LABEL=gnnrl:PATH``, ``gnnrl-raw``...), one
    spec per dial, labelled ``NAME@D`` (``gnnrl@0.25``, ``LABEL@0.25``; ``+graph`` kept
    last) so that `gnnrl.evaluation.frontier` reads them as one family's knob settings.
    An unlabelled spec's default-dial point is its own row (``gnnrl`` is ``gnnrl@0.5``,
    `DEFAULT_KNOBS`) and is not run twice.

    Raises:
        ConfigError: a dial outside [0, 1], or a sweep with no GNNRL spec to sweep.
    """
    dials = []
    for d in dial_sweep:
        try:
            dials.append(check_dial(d))
        except ValueError as exc:
            raise ConfigError(f"dial_sweep: {exc}") from None
    if not dials:
        return []
    out = []
    for text in policies:
        if not isinstance(text, str):
            continue
        label, spec = split_label(text)
        parsed = parse_gnnrl_spec(spec)
        if parsed is None or parsed.dial is not None:
            continue
        for d in dict.fromkeys(dials):
            if label is None and d == DEFAULT_DIAL:
                continue
            at = dataclasses.replace(parsed, dial=d)
            if label is None and at.guard is not None:  # its name is its own (no label:
                out.append(at.spec())                   # a label holds no '~', '%', '/')
                continue
            name = at.name
            if label is not None:  # LABEL@D, with a +graph label's suffix kept last
                stem = label[: -len(GRAPH_SUFFIX)] if label.endswith(GRAPH_SUFFIX) else label
                name = f"{stem}@{dial_label(d)}{label[len(stem):]}"
            out.append(f"{name}={at.spec()}")
    if not out:
        raise ConfigError("dial_sweep: no gnnrl policy without a dial in the policies to "
                          "sweep (e.g. --policies hpa,gnnrl)")
    return out


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
