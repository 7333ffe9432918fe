"""`SimBackend`: the simulator behind `OnlineBoutique` (the env's default backend).

One episode draws a scenario, the dial and time of day where they are ``"random"``
(`EpisodeSettings.draw`), a trace and a `BatchedSim` of one copy, warm-started with every
service sized for ~50 % of its capacity at the first load. Each step applies the
scenario's topology events of that step, the action's replica targets, then runs one
control interval (`BatchedSim.step`); the observation is the one builder's view of the
step's metrics (`gnnrl.core.envs.cluster_view`), lagged when the cluster timing lags them
(`gnnrl.core.envs.lag`).

``compute="numba"`` runs the compiled move, observation and info kernels;
``compute="numpy"`` the vectorised reference they are tested against (the same results).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from gnnrl.core.envs.backend import EpisodeSettings
from gnnrl.core.envs.cluster_view import (
    SimObservables,
    SimViewIndex,
    ViewSlots,
    observation_from_metrics,
    sim_observables,
    sim_view_index,
    view_slots,
)
from gnnrl.core.envs.dynamic_graph_space import DynamicGraphSpace
from gnnrl.core.envs.lag import MetricsLag
from gnnrl.core.envs.moves import DELTAS, validated_moves
from gnnrl.core.envs.obs_extras import LoadHistory
from gnnrl.core.envs.obs_kernel import apply_moves_kernel, deltas, info_rows_kernel
from gnnrl.sim.core import BatchedSim, SimConfig, StepMetrics
from gnnrl.sim.scenario import Scenario, TopologyEvent, universe
from gnnrl.sim.spec import AppSpec
from gnnrl.sim.traces import trace_from_spec

#: Extra trace steps generated beyond the episode, for policies that look ahead (oracle).
LOOKAHEAD = 64

#: info's per-slot arrays (max_nodes,) float, in this order; the dynamic ones come from
#: the step's metrics (attribute names in _DYNAMIC_ATTRS), the others are constants.
_PER_SLOT = ("replicas", "ready_replicas", "cpu_m", "cpu_request_m", "mem_mi", "rps_in",
             "min_replicas", "max_replicas", "p95_ms")
_DYNAMIC = ("replicas", "ready_replicas", "cpu_m", "mem_mi", "rps_in", "p95_ms")
_DYNAMIC_ATTRS = ("replicas", "ready", "cpu_m", "mem_mi", "rps_in", "p95_ms")


@dataclasses.dataclass(frozen=True)
class _Topology:
    """What depends only on the slot mapping (rebuilt on topology events; see _topology)."""

    slot_idx: np.ndarray  # (1, S) slot of each sim service, -1 = unmapped
    edge_slot: np.ndarray  # (1, E) slot of each edge, -1 = unmapped
    mapped: np.ndarray  # (K,) int64 sim columns of mapped services
    slots: np.ndarray  # (K,) their slots
    view_index: SimViewIndex  # which services and edges the cluster view holds
    view_slots: ViewSlots  # their slots
    info_block: np.ndarray  # (len(_PER_SLOT), max_nodes) with the constant rows filled
    info_dst: np.ndarray  # flat positions in info_block of the dynamic values
    info_src: np.ndarray  # their flat positions in the concatenated metrics rows
    slot_names: list[str | None]


class SimBackend:
    """The simulated cluster of one `OnlineBoutique` (see the module docstring).

    Args:
        app: the application (its services before any topology event).
        scenarios: the scenarios an episode is drawn from (uniformly).
        trace_array: req/s per step replayed (repeated to the episode's length) instead of
            the scenario's trace, or None.
        sim_config: the simulator's settings (interval, timing, ...).
        graph_space: the env's slot mapping (this backend keeps it in step with the
            simulator's active services).
        history: the env's load history (trend features).
        settings: the env's dial and time of day.
        hpa_target: CPU utilisation target of the ``desired_replicas`` feature.
        max_steps: episode length in control intervals.
        compute: ``"numba"`` (compiled kernels) or ``"numpy"`` (the vectorised reference).
    """

    def __init__(self, app: AppSpec, scenarios: Sequence[Scenario],
                 trace_array: np.ndarray | None, sim_config: SimConfig,
                 graph_space: DynamicGraphSpace, history: LoadHistory,
                 settings: EpisodeSettings, hpa_target: float, max_steps: int,
                 compute: str = "numba") -> None:
        self.app = app
        self.scenarios = list(scenarios)
        self.trace_array = trace_array
        self.sim_config = sim_config
        self.graph_space = graph_space
        self.history = history
        self.settings = settings
        self.hpa_target = hpa_target
        self.max_steps = max_steps
        self.compute = compute
        self.scenario: Scenario = self.scenarios[0]
        self.sim: BatchedSim | None = None
        self.lag: MetricsLag | None = None
        self.cost_min = 0.0
        self._obs: dict[str, np.ndarray] | None = None
        self._topo: _Topology | None = None
        self._cost_of: Any = None
        self._cost_value = 0.0
        self._deltas = deltas()
        self._event_steps: frozenset[int] = frozenset()
        self._events: list[str] = []
        self._target = np.empty((1, 0), dtype=np.int64)

    @property
    def metrics(self) -> StepMetrics:
        """The last step's metrics as they happened (the truth)."""
        return self._metrics

    @property
    def observed_metrics(self) -> StepMetrics:
        """The last step's metrics as the cluster's metrics pipelines show them."""
        return self._seen

    def future_entry_rps(self, t: int, k: int) -> np.ndarray:
        """The entry req/s of the `k` steps after step `t` (for the clairvoyant oracle)."""
        start = t + 1
        return self._trace[start:start + k].copy()

    # ------------------------------------------------------------------ Backend
    def reset(self, rng: np.random.Generator) -> None:
        self.scenario = self.scenarios[int(rng.integers(len(self.scenarios)))]
        # drawn after the scenario, so fixed settings leave the episode's draws unchanged
        self.settings.draw(rng)
        length = self.max_steps + 1 + LOOKAHEAD
        if self.trace_array is not None:
            tr = np.resize(self.trace_array.astype(float), length)
        else:
            tr = trace_from_spec(self.scenario.trace, length, self.sim_config.interval_s,
                                 self.scenario.peak_rps, seed=int(rng.integers(2**31)))
        self._trace = tr
        self.app_universe, inactive = universe(self.app, self.scenario.events)
        self.sim = sim = BatchedSim(self.app_universe, 1, self.sim_config,
                                    seed=np.random.default_rng(int(rng.integers(2**31))),
                                    inactive=inactive, backend=self.compute)
        self._event_steps = frozenset(ev.step for ev in self.scenario.events)
        self._cost_work = np.empty(sim.num_services)
        self._observables: SimObservables = sim_observables(sim)
        self._target = np.empty((1, sim.num_services), dtype=np.int64)
        self._sync_mapping()
        self._events = self._apply_events(0)
        # Warm start: every service sized for ~50 % of its capacity at the first load,
        # so no policy starts from an arbitrary overload.
        lam = sim.propagate(np.array([tr[0]]))
        warm = np.ceil(lam / (0.5 * sim.cap))
        warm = np.clip(warm, sim.min_replicas, sim.max_replicas)
        sim.reset(warm)
        self._m = sim.step(np.array([tr[0]]))
        self.lag = None
        timing = self.sim_config.timing
        if timing.lags_cpu or timing.lags_rates:  # (no draw at all with ideal timing)
            self.lag = MetricsLag(timing, self.sim_config.interval_s, 1)
            self.lag.reset(self._m, slice(None), timing.cpu_lag_s(rng, 1))
        self.cost_min = float((sim.min_replicas * sim.cpu_request
                               * sim.active[0]).sum() / 1000.0)

    def apply_scale(self, action: np.ndarray, t: int) -> dict[str, Any]:
        """Step `t`'s topology events, then the action's replica targets (applied by the
        simulator's next `advance`)."""
        sim = self.sim
        assert sim is not None and self._obs is not None, "call reset() first"
        topo = self._topology()  # the mapping the action saw
        self._events = events = self._apply_events(t)
        # replicas now: those of the last step, unless an event just changed them.
        # Services removed by this step's events are forced to 0 by the simulator.
        base = sim.replicas[0] if events else self._metrics.replicas[0]
        if self.compute == "numpy":
            invalid, target = self._moves_numpy(action, topo, base)
        else:
            target = self._target[0]
            invalid = apply_moves_kernel(action, self._obs["invalid_action_mask"], base,
                                         topo.mapped, topo.slots, self._deltas, target)
        if events:  # a service added now keeps its pods (its slot had no action yet)
            for name in (ev.split(" ", 1)[1] for ev in events if ev.startswith("add ")):
                target[sim.index[name]] = sim.replicas[0, sim.index[name]]
        self._step_target = target
        return {"invalid_actions": int(invalid)}

    def advance(self, t: int) -> None:
        assert self.sim is not None
        self._m = self.sim.step(self._trace[t:t + 1], self._step_target[None, :])

    def observe_state(self, t: int) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        self._observe(self._m, t)
        assert self._obs is not None
        return self._obs, self._info(t)

    def render(self) -> str | None:
        if self.sim is None:
            return None
        m, sim = self._metrics, self.sim
        lines = [f"t={sim.t_s:.0f}s e2e p95={m.e2e_p95_ms[0]:.0f}ms "
                 f"(SLO {self.app.slo_p95_ms:.0f}) err={m.e2e_err_rate[0]:.3f}"]
        for name, slot in sorted(self.graph_space.node_mapping.items(), key=lambda x: x[1]):
            i = sim.index[name]
            lines.append(f"  [{slot:2d}] {name:24s} pods={m.replicas[0, i]:3d} "
                         f"ready={m.ready[0, i]:3d} rps={m.rps_in[0, i]:8.1f} "
                         f"cpu={m.cpu_m[0, i]:7.0f}m p95={m.p95_ms[0, i]:6.0f}ms")
        return "\n".join(lines)

    # ------------------------------------------------------------------ helpers
    def _topology(self) -> _Topology:
        """Everything that depends only on the slot mapping and the active services.

        Cached; `_sync_mapping` (called on every topology change) invalidates it.
        """
        if self._topo is None:
            sim = self.sim
            assert sim is not None
            n = self.graph_space.max_nodes
            slot_idx = np.full((1, sim.num_services), -1, dtype=np.int64)
            for name, slot in self.graph_space.node_mapping.items():
                slot_idx[0, sim.index[name]] = slot
            edge_slot = np.full((1, len(sim.edges)), -1, dtype=np.int64)
            for k, (i, j) in enumerate(sim.edges):
                key = (sim.service_names[i], sim.service_names[j])
                edge_slot[0, k] = self.graph_space.edge_mapping.get(key, -1)
            mapped = np.ascontiguousarray(np.nonzero(slot_idx[0] >= 0)[0], dtype=np.int64)
            slots = np.ascontiguousarray(slot_idx[0, mapped])
            # the view holds the active services in the order _sync_mapping gave slots, so
            # the mapping the one builder would make is the one the env already holds
            index = sim_view_index(sim, self.app_universe.service_names, sim.active[0],
                                   self._observables)
            # info's per-slot block: constant rows filled once; the dynamic rows come from
            # one concatenated (len(_DYNAMIC) * S,) vector through flat indices
            block = np.zeros((len(_PER_SLOT), n))
            for column, values in (("cpu_request_m", sim.cpu_request),
                                   ("min_replicas", sim.min_replicas),
                                   ("max_replicas", sim.max_replicas)):
                block[_PER_SLOT.index(column), slots] = values[mapped]
            S = sim.num_services
            dyn_rows = np.array([_PER_SLOT.index(k) for k in _DYNAMIC])
            self._topo = _Topology(
                slot_idx=slot_idx, edge_slot=edge_slot, mapped=mapped, slots=slots,
                view_index=index, view_slots=view_slots(index, self.graph_space),
                info_block=block,
                info_dst=(dyn_rows[:, None] * n + slots[None, :]).ravel(),
                info_src=(np.arange(len(_DYNAMIC))[:, None] * S + mapped[None, :]).ravel(),
                slot_names=self.graph_space.slot_names())
        return self._topo

    def _sync_mapping(self) -> list[str]:
        sim = self.sim
        assert sim is not None
        active = [s for s in self.app_universe.service_names if sim.active[0, sim.index[s]]]
        change = self.graph_space.update_node_mapping(active)
        self._topo = None
        self.graph_space.update_edge_mapping(
            (sim.service_names[i], sim.service_names[j]) for i, j in sim.edges)
        return [f"add {n}" for n in change["added"]] + [f"remove {n}" for n in change["removed"]]

    def _apply_events(self, step: int) -> list[str]:
        sim = self.sim
        assert sim is not None
        if step not in self._event_steps:
            return []
        done: list[TopologyEvent] = [ev for ev in self.scenario.events if ev.step == step]
        for ev in done:
            sim.set_active(ev.name, ev.kind == "add")
        if done:
            self._sync_mapping()
        return [ev.describe() for ev in done]

    def _observe(self, m: StepMetrics, t: int) -> None:
        """Observation and info rows of the step that measured `m` (the truth): the one
        builder's observation of the cluster view of the metrics, lagged when the cluster
        timing lags them."""
        topo = self._topology()
        assert self.sim is not None
        truth, m = m, (self.lag.push(m) if self.lag is not None else m)
        self._obs = observation_from_metrics(
            m, topo.view_index, self._observables, topo.view_slots, self.hpa_target,
            self.compute, truth=truth, history=self.history,
            context=self.settings.context(self.settings.tod0_s
                                          + t * self.sim_config.interval_s))
        if self.compute != "numpy":
            # info's per-slot rows and the cost, in the same pass over the metrics
            block = topo.info_block.copy()
            self._cost_value = info_rows_kernel(
                m.replicas, m.ready, m.cpu_m, m.mem_mi, m.rps_in, m.p95_ms, m.active,
                self.sim.cpu_request, topo.mapped, topo.slots, block, self._cost_work)
            self._cost_of = truth
            self._info_block = block
        self._metrics, self._seen = truth, m

    def _info(self, t: int) -> dict[str, Any]:
        sim, m = self.sim, self._metrics
        assert sim is not None
        topo = self._topology()
        if self.compute == "numpy":
            block = topo.info_block.copy()
            dynamic = np.concatenate([getattr(self._seen, attr)[0]
                                      for attr in _DYNAMIC_ATTRS])
            block.reshape(-1)[topo.info_dst] = dynamic.take(topo.info_src)
        else:  # filled by _observe with this step's metrics
            block = self._info_block
        p95 = float(m.e2e_p95_ms[0])
        return {
            "slot_names": list(topo.slot_names),
            **dict(zip(_PER_SLOT, block, strict=True)),
            "e2e_p95_ms": p95,
            "e2e_mean_ms": float(m.e2e_mean_ms[0]),
            "slo_p95_ms": self.app.slo_p95_ms,
            "slo_violated": p95 > self.app.slo_p95_ms,
            "error_rate": float(m.e2e_err_rate[0]),
            "cost": self._cost(m),
            "entry_rps": float(m.rps_in[0, sim.index[self.app.entry]]),
            "invalid_actions": 0,
            "topology_events": self._events,
            "t_s": float(sim.t_s),
            "step": t,
            "scenario": self.scenario.name,
        }

    def _cost(self, m: StepMetrics) -> float:
        """Cores requested by the pods that exist (replicas x CPU request), cached per step."""
        if self._cost_of is not m:
            assert self.sim is not None
            self._cost_value = float(np.add.reduce(m.replicas[0] * self.sim.cpu_request
                                                   * m.active[0]) / 1000.0)
            self._cost_of = m
        return self._cost_value

    def _moves_numpy(self, action: np.ndarray, topo: _Topology, base: np.ndarray
                     ) -> tuple[int, np.ndarray]:
        """The reference of `apply_moves_kernel`: (invalid moves, (S,) int64 targets)."""
        assert self._obs is not None
        moves, invalid = validated_moves(action, self._obs["invalid_action_mask"])
        target = base.copy()
        target[topo.mapped] += DELTAS.take(moves.take(topo.slots))
        return invalid, target
