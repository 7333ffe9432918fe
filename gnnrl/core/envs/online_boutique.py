"""`OnlineBoutique`: the Gymnasium environment (registered as ``gnnrl/OnlineBoutique-v0``).

One step is one control interval (15 s by default). The action holds one move per slot
(`gnnrl.core.envs.moves`); every active service's move is applied in the same step.
A move that the mask marks invalid (out of [min, max], or on an empty slot) is executed as
"nothing" and counted in ``info["invalid_actions"]``; it never raises.

``k8s=False`` (default) runs the simulator; ``k8s=True`` acts on a real cluster through
`gnnrl.core.envs.k8s_backend` (observations from Kiali or Prometheus + Kubernetes,
actions through the Deployments' scale subresource).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gnnrl.core.envs.cluster_view import (
    SimObservables,
    SimViewIndex,
    ViewSlots,
    observation_from_view,
    sim_observables,
    sim_view_index,
    view_from_metrics,
    view_slots,
)
from gnnrl.contracts.observation import (
    DEFAULT_DIAL,
    GLOBAL_DIM_RAW,
    NODE_DIM_RAW,
    V1_NODE_DIM,
    check_dial,
)
from gnnrl.core.envs.dynamic_graph_space import DynamicGraphConfig, DynamicGraphSpace
from gnnrl.core.envs.lag import MetricsLag
from gnnrl.core.envs.obs_extras import LoadHistory, ObservationContext
from gnnrl.core.envs.moves import DELTAS, NUM_MOVES, moves_to_replicas
from gnnrl.core.envs.obs_kernel import apply_moves_kernel, deltas, info_rows_kernel
from gnnrl.core.envs.observation import observation_from_snapshot
from gnnrl.core.envs.reward import RewardConfig, reward, reward_one
from gnnrl.sim.core import BatchedSim, SimConfig
from gnnrl.sim.scenario import Scenario, TopologyEvent, universe
from gnnrl.sim.spec import AppSpec, load_app_spec
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


class OnlineBoutique(gym.Env):
    """Horizontal autoscaling of a microservice application as a Gymnasium env.

    Args:
        k8s: act on a real cluster (needs `backend` or the k8s backend's settings).
        goal_reward: ``"latency"`` or ``"cost"``: picks the reward weights preset
            (`gnnrl.core.envs.reward`), unless `reward_config` is given.
        use_graph: dict observation (True) or the flat gym-hpa-style Box of the initial
            services' 6 node features (False; refuses scenarios that change the topology).
        app: application spec (name, path, dict or AppSpec); default OnlineBoutique.
        trace: trace kind, replay file path or array of req/s; ignored with `scenario`.
        scenario: a `Scenario` or a list of them (one is drawn per episode).
        max_steps: episode length in control intervals (truncation).
        peak_rps: peak of synthetic traces (default: the scenario's).
        hpa_target: CPU utilisation target used for the ``desired_replicas`` feature.
        backend: a real-cluster backend instance (k8s=True).
        sim_backend: ``"numba"`` (compiled step, observation and info kernels; default) or
            ``"numpy"`` (the vectorised reference implementation); the same results.
        dial: the operator's preference in [0, 1] shown in the observation and weighing
            the reward's cost term (`gnnrl.core.envs.reward`), or ``"random"``: a new one
            drawn uniformly per episode (training a preference-conditioned policy).
        time_of_day_s: seconds after 00:00 UTC at the episode's start (the observation's
            time of day), or ``"random"``: drawn per episode (synthetic traces have no
            real clock, so training must not learn one from them).

    Observation/action contracts: see `gnnrl.core.envs.observation` and the README.

    Cluster timing (``sim_config.timing``, `gnnrl.sim.timing`): with lagged metrics the
    observation and info's per-slot ``cpu_m``, ``mem_mi``, ``rps_in`` and ``p95_ms`` are
    what the cluster's metrics pipelines would show (`gnnrl.core.envs.lag`); the SLO,
    error, cost and ``entry_rps`` numbers and the reward stay the truth.
    """

    # declared as gymnasium's Env declares it (not a ClassVar there, so not one here)
    metadata: dict[str, Any] = {"render_modes": ["ansi"]}  # noqa: RUF012

    def __init__(
        self,
        k8s: bool = False,
        goal_reward: str = "latency",
        use_graph: bool = True,
        app: str | AppSpec | dict | None = None,
        trace: str | np.ndarray | None = None,
        scenario: Scenario | Sequence[Scenario] | None = None,
        max_steps: int = 240,
        graph_config: DynamicGraphConfig | None = None,
        sim_config: SimConfig | None = None,
        reward_config: RewardConfig | None = None,
        peak_rps: float | None = None,
        hpa_target: float = 0.7,
        backend: Any = None,
        render_mode: str | None = None,
        sim_backend: str = "numba",
        dial: float | str = DEFAULT_DIAL,
        time_of_day_s: float | str = 0.0,
    ) -> None:
        super().__init__()
        if max_steps < 1:
            raise ValueError(f"max_steps: must be >= 1, got {max_steps}")
        if dial != "random":
            check_dial(dial)
        if time_of_day_s != "random" and not isinstance(time_of_day_s, int | float):
            raise ValueError(f"time_of_day_s: a number of seconds or 'random', "
                             f"got {time_of_day_s!r}")
        self.dial_setting = dial
        self.tod_setting = time_of_day_s
        self.dial = DEFAULT_DIAL if dial == "random" else float(dial)
        self._tod0 = 0.0 if time_of_day_s == "random" else float(time_of_day_s)
        self.history = LoadHistory()
        self.k8s = k8s
        self.use_graph = use_graph
        self.app: AppSpec = load_app_spec(app if app is not None else "onlineboutique")
        self.reward_config = reward_config or RewardConfig.preset(goal_reward)
        self.goal_reward = goal_reward
        self.graph_config = graph_config or DynamicGraphConfig()
        self.graph_space = DynamicGraphSpace(self.graph_config)
        self.sim_config = sim_config or SimConfig()
        self.sim_backend = sim_backend
        self.max_steps = max_steps
        self.hpa_target = hpa_target
        self.render_mode = render_mode
        if scenario is None:
            trace_spec = "diurnal" if trace is None else trace
            scenarios: list[Scenario] = [Scenario(
                name=trace_spec if isinstance(trace_spec, str) else "array",
                trace=trace_spec if isinstance(trace_spec, str) else "array",
                peak_rps=peak_rps or 100.0)]
            self._trace_array = None if isinstance(trace_spec, str) else np.asarray(trace_spec)
        else:
            scenarios = [scenario] if isinstance(scenario, Scenario) else list(scenario)
            self._trace_array = None
        if peak_rps is not None:
            scenarios = [Scenario(s.name, s.trace, peak_rps, s.events) for s in scenarios]
        self.scenarios = scenarios
        if not use_graph and any(s.events for s in scenarios):
            raise ValueError("use_graph=False: the flat observation has a fixed set of "
                             "services and cannot follow topology events; use use_graph=True")
        self.backend = backend
        if k8s:
            self._init_k8s()
            if not use_graph:
                raise ValueError("k8s=True needs use_graph=True")

        n, e = self.graph_config.max_nodes, self.graph_config.max_edges
        self.action_space = spaces.MultiDiscrete([NUM_MOVES] * n)
        big = np.float32(np.finfo(np.float32).max)
        if use_graph:
            self.observation_space = spaces.Dict({
                "svc_df": spaces.Box(0.0, big, (n, NODE_DIM_RAW), np.float32),
                "edge_df": spaces.Box(0.0, big, (e, 7), np.float32),
                # tod_sin / tod_cos are in [-1, 1]
                "global_feats": spaces.Box(-1.0, big, (GLOBAL_DIM_RAW,), np.float32),
                "node_mask": spaces.MultiBinary(n),
                "edge_mask": spaces.MultiBinary(e),
                "num_nodes": spaces.Discrete(n + 1),
                "invalid_action_mask": spaces.MultiBinary(n * NUM_MOVES),
            })
        else:
            k = len(self.app.services)
            # the seed's 6 columns (what the gym-hpa-style MLP baseline was built on)
            self.observation_space = spaces.Box(0.0, big, (k * V1_NODE_DIM,), np.float32)
        self.scenario: Scenario = scenarios[0]
        self.sim: BatchedSim | None = None
        self._obs: dict[str, np.ndarray] | None = None
        self._topo: _Topology | None = None
        self._cost_of: Any = None
        self._cost_value = 0.0
        self._move_base = np.arange(n, dtype=np.int64) * NUM_MOVES
        self._deltas = deltas()
        self._event_steps: frozenset[int] = frozenset()
        self._lag: MetricsLag | None = None
        self.t = 0

    @property
    def observed_metrics(self) -> Any:
        """The `StepMetrics` the last observation was built from: the step's metrics as
        the cluster's metrics pipelines show them (lagged with realistic timing)."""
        return self._seen

    @property
    def metrics_lag(self) -> MetricsLag | None:
        """This episode's delay lines (None with idealised metrics timing)."""
        return self._lag

    # ------------------------------------------------------------------ helpers
    def _init_k8s(self) -> None:
        if self.backend is None:
            raise ValueError(
                "k8s=True needs backend=gnnrl.core.envs.k8s_backend.K8sBackend(namespace, "
                "graph_source, k8s_source) (see README, 'Real cluster')")
        for method in ("observe", "apply"):
            if not callable(getattr(self.backend, method, None)):
                raise TypeError(f"backend: {type(self.backend).__name__} has no {method}()")

    # ------------------------------------------------------------------ real cluster
    def _k8s_observe(self) -> tuple[dict, dict]:
        before = set(self.graph_space.node_mapping)
        snap = self.backend.observe()
        ts = snap.ts
        tod = ts.hour * 3600.0 + ts.minute * 60.0 + ts.second
        obs, per_slot = observation_from_snapshot(snap, self.graph_space, self.app,
                                                  self.hpa_target, self._context(tod),
                                                  self.history)
        after = set(self.graph_space.node_mapping)
        events = [f"add {n}" for n in sorted(after - before)] + \
            [f"remove {n}" for n in sorted(before - after)]
        inbound = snap.edges[snap.edges["target"] == self.app.entry]
        qps = inbound["qps"].fillna(0.0).to_numpy(float)
        p95 = float(np.nan_to_num(inbound["p95_ms"].max(), nan=0.0)) if len(inbound) else 0.0
        err = float((inbound["err_rate"].fillna(0.0).to_numpy(float) * qps).sum()
                    / max(qps.sum(), 1e-9))
        cost = float((per_slot["replicas"] * per_slot["cpu_request_m"]).sum() / 1000.0)
        self._obs = obs
        self._k8s_slots = per_slot
        info = {"slot_names": self.graph_space.slot_names(), **per_slot,
                "e2e_p95_ms": p95, "slo_p95_ms": self.app.slo_p95_ms,
                "slo_violated": bool(p95 > self.app.slo_p95_ms), "error_rate": err,
                "cost": cost, "entry_rps": float(qps.sum()), "invalid_actions": 0,
                "topology_events": events, "t_s": float(snap.ts.timestamp()), "step": self.t,
                "scenario": "k8s", "skipped_nodes": dict(snap.skipped)}
        return obs, info

    def _k8s_step(self, moves: np.ndarray, invalid: int):
        names = self.graph_space.slot_names()
        current = self._k8s_slots["replicas"]
        desired = {name: int(moves_to_replicas(current[slot], moves[slot]))
                   for slot, name in enumerate(names) if name is not None}
        outcomes = self.backend.apply(desired)
        self.t += 1
        obs, info = self._k8s_observe()
        cost_min = sum(s.min_replicas * s.cpu_request_m for s in self.app.services.values())
        r = float(reward(self.reward_config, np.array([info["e2e_p95_ms"]]),
                         self.app.slo_p95_ms, np.array([info["error_rate"]]),
                         np.array([info["cost"]]), cost_min / 1000.0,
                         self.reward_config.cost_scale(self.dial))[0])
        info.update(invalid_actions=invalid, reward=r, scale_outcomes=outcomes)
        return obs, r, False, self.t >= self.max_steps, info

    def future_entry_rps(self, k: int) -> np.ndarray:
        """The entry req/s of the next `k` steps (for the clairvoyant oracle only)."""
        start = self.t + 1
        return self._trace[start:start + k].copy()

    def _topology(self) -> _Topology:
        """Everything that depends only on the slot mapping and the active services.

        Cached; `_sync_mapping` (called on every topology change) invalidates it.
        """
        if self._topo is None:
            sim = self.sim
            assert sim is not None
            n = self.graph_config.max_nodes
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

    def _observe(self, m) -> None:
        """Observation and info rows of the step that measured `m` (the truth): the one
        builder's observation of the cluster view of the metrics, lagged when the cluster
        timing lags them."""
        topo = self._topology()
        assert self.sim is not None
        truth, m = m, (self._lag.push(m) if self._lag is not None else m)
        view, slots = view_from_metrics(m, topo.view_index, self._observables,
                                        topo.view_slots, backend=self.sim_backend,
                                        truth=truth)
        self._obs = observation_from_view(
            view, slots, self.hpa_target, backend=self.sim_backend,
            context=self._context(self._tod0 + self.t * self.sim_config.interval_s),
            history=self.history)
        if self.sim_backend != "numpy":
            # info's per-slot rows and the cost, in the same pass over the metrics
            block = topo.info_block.copy()
            self._cost_value = info_rows_kernel(
                m.replicas, m.ready, m.cpu_m, m.mem_mi, m.rps_in, m.p95_ms, m.active,
                self.sim.cpu_request, topo.mapped, topo.slots, block, self._cost_work)
            self._cost_of = truth
            self._info_block = block
        self._metrics, self._seen = truth, m

    def _context(self, time_of_day_s: float) -> ObservationContext:
        return ObservationContext(self.app.slo_p95_ms, self.sim_config.interval_s, self.dial,
                                  time_of_day_s)

    def _get_obs(self) -> Any:
        assert self._obs is not None
        if self.use_graph:
            return dict(self._obs)  # fresh arrays every step: no copy needed
        assert self.sim is not None
        # the initial services' rows of the graph observation, in app-spec order
        slot_of = self._topology().slot_idx[0]
        rows = slot_of[[self.sim.index[s] for s in self.app.service_names]]
        return self._obs["svc_df"][rows, :V1_NODE_DIM].reshape(-1)

    def _info(self, events: list[str], invalid: int, rew: float | None = None) -> dict:
        sim, m = self.sim, self._metrics
        assert sim is not None
        topo = self._topology()
        if self.sim_backend == "numpy":
            block = topo.info_block.copy()
            dynamic = np.concatenate([getattr(self._seen, attr)[0]
                                      for attr in _DYNAMIC_ATTRS])
            block.reshape(-1)[topo.info_dst] = dynamic.take(topo.info_src)
        else:  # filled by _observe with this step's metrics
            block = self._info_block
        p95 = float(m.e2e_p95_ms[0])
        info = {
            "slot_names": list(topo.slot_names),
            **dict(zip(_PER_SLOT, block, strict=True)),
            "e2e_p95_ms": p95,
            "e2e_mean_ms": float(m.e2e_mean_ms[0]),
            "slo_p95_ms": self.app.slo_p95_ms,
            "slo_violated": p95 > self.app.slo_p95_ms,
            "error_rate": float(m.e2e_err_rate[0]),
            "cost": self._cost(m),
            "entry_rps": float(m.rps_in[0, sim.index[self.app.entry]]),
            "invalid_actions": int(invalid),
            "topology_events": events,
            "t_s": float(sim.t_s),
            "step": self.t,
            "scenario": self.scenario.name,
        }
        if rew is not None:
            info["reward"] = rew
        return info

    def _cost(self, m) -> float:
        """Cores requested by the pods that exist (replicas x CPU request), cached per step."""
        if self._cost_of is not m:
            assert self.sim is not None
            self._cost_value = float(np.add.reduce(m.replicas[0] * self.sim.cpu_request
                                                   * m.active[0]) / 1000.0)
            self._cost_of = m
        return self._cost_value

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.history.reset()
        if self.k8s:
            self.t = 0
            self.graph_space.reset()
            return self._k8s_observe()
        rng = self.np_random
        self.scenario = self.scenarios[int(rng.integers(len(self.scenarios)))]
        # drawn after the scenario, so fixed settings leave the episode's draws unchanged
        if self.dial_setting == "random":
            self.dial = float(rng.uniform(0.0, 1.0))
        if self.tod_setting == "random":
            self._tod0 = float(rng.uniform(0.0, 86_400.0))
        length = self.max_steps + 1 + LOOKAHEAD
        if self._trace_array is not None:
            tr = np.resize(self._trace_array.astype(float), length)
        else:
            tr = trace_from_spec(self.scenario.trace, length, self.sim_config.interval_s,
                                 self.scenario.peak_rps, seed=int(rng.integers(2**31)))
        self._trace = tr
        self.app_universe, inactive = universe(self.app, self.scenario.events)
        self.sim = BatchedSim(self.app_universe, 1, self.sim_config,
                              seed=np.random.default_rng(int(rng.integers(2**31))),
                              inactive=inactive, backend=self.sim_backend)
        self._event_steps = frozenset(ev.step for ev in self.scenario.events)
        self._cost_work = np.empty(self.sim.num_services)
        self._observables: SimObservables = sim_observables(self.sim)
        self._target = np.empty((1, self.sim.num_services), dtype=np.int64)
        self.graph_space.reset()
        self._sync_mapping()
        self.t = 0
        events = self._apply_events(0)
        # Warm start: every service sized for ~50 % of its capacity at the first load,
        # so no policy starts from an arbitrary overload.
        lam = self.sim.propagate(np.array([tr[0]]))
        warm = np.ceil(lam / (0.5 * self.sim.cap))
        warm = np.clip(warm, self.sim.min_replicas, self.sim.max_replicas)
        self.sim.reset(warm)
        m = self.sim.step(np.array([tr[0]]))
        self._lag = None
        timing = self.sim_config.timing
        if timing.lags_cpu or timing.lags_rates:  # (no draw at all with ideal timing)
            self._lag = MetricsLag(timing, self.sim_config.interval_s, 1)
            self._lag.reset(m, slice(None), timing.cpu_lag_s(rng, 1))
        self._observe(m)
        self._cost_scale = float(self.reward_config.cost_scale(self.dial))
        self._cost_min = float((self.sim.min_replicas * self.sim.cpu_request
                                * self.sim.active[0]).sum() / 1000.0)
        return self._get_obs(), self._info(events, 0)

    def action_masks(self) -> np.ndarray:
        """(max_nodes*15,) bool, True = VALID (sb3-contrib MaskablePPO polarity)."""
        assert self._obs is not None, "call reset() first"
        return self._obs["invalid_action_mask"] == 0

    def step(self, action):
        if self._obs is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action, dtype=np.int64).reshape(-1)
        n = self.graph_config.max_nodes
        if action.shape != (n,):
            raise ValueError(f"action: expected shape ({n},), got {action.shape}")
        if self.k8s:
            moves, invalid = self._validated_moves(action)
            return self._k8s_step(moves, invalid)
        sim = self.sim
        assert sim is not None

        topo = self._topology()  # the mapping the action saw
        self.t += 1
        events = self._apply_events(self.t)
        # replicas now: those of the last step, unless an event just changed them.
        # Services removed by this step's events are forced to 0 by the simulator.
        base = sim.replicas[0] if events else self._metrics.replicas[0]
        if self.sim_backend == "numpy":
            invalid, target = self._moves_numpy(action, topo, base)
        else:
            target = self._target[0]
            invalid = apply_moves_kernel(action, self._obs["invalid_action_mask"], base,
                                         topo.mapped, topo.slots, self._deltas, target)
        if events:  # a service added now keeps its pods (its slot had no action yet)
            for name in (ev.split(" ", 1)[1] for ev in events if ev.startswith("add ")):
                target[sim.index[name]] = sim.replicas[0, sim.index[name]]
        m = sim.step(self._trace[self.t:self.t + 1], target[None, :])
        self._observe(m)
        cost = self._cost(m)
        if self.sim_backend == "numpy":
            r = float(reward(self.reward_config, m.e2e_p95_ms, self.app.slo_p95_ms,
                             m.e2e_err_rate, np.array([cost]), self._cost_min,
                             self._cost_scale)[0])
        else:
            r = reward_one(self.reward_config, float(m.e2e_p95_ms[0]), self.app.slo_p95_ms,
                           float(m.e2e_err_rate[0]), cost, self._cost_min, self._cost_scale)
        if not math.isfinite(r):
            raise FloatingPointError(f"non-finite reward at step {self.t}")
        truncated = self.t >= self.max_steps
        return self._get_obs(), r, False, truncated, self._info(events, invalid, r)

    def _validated_moves(self, action: np.ndarray) -> tuple[np.ndarray, int]:
        """(max_nodes,) moves with out-of-range and masked ones replaced by "nothing", and
        how many were replaced."""
        moves = np.minimum(np.maximum(action, 0), NUM_MOVES - 1)
        bad = action != moves
        assert self._obs is not None, "call reset() first"
        # the mask is service-major (slot * 15 + move): one gather finds each slot's entry
        bad |= self._obs["invalid_action_mask"].take(self._move_base + moves) != 0
        moves[bad] = 0
        return moves, int(np.count_nonzero(bad))

    def _moves_numpy(self, action: np.ndarray, topo: _Topology, base: np.ndarray
                     ) -> tuple[int, np.ndarray]:
        """The reference of `apply_moves_kernel`: (invalid moves, (S,) int64 targets)."""
        moves, invalid = self._validated_moves(action)
        target = base.copy()
        target[topo.mapped] += DELTAS.take(moves.take(topo.slots))
        return invalid, target

    def render(self):
        if self.render_mode != "ansi" or self.sim is None:
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
