"""`BatchedEnvPool`: B OnlineBoutique episodes stepped as one `BatchedSim` (training speed).

It runs the same simulator, observation builder and reward as `OnlineBoutique` (not a
second model): the B copies are rows of one `BatchedSim`, so one step costs one set of
numpy operations instead of B. It has the interface of `gnnrl.core.agents.rollout.EnvPool`
(same-step auto-reset, final observations for bootstrapping, per-episode seeds below 1000)
and can replace it in the trainer.

Differences from B separate envs, both documented trade-offs:
* the simulator's noise comes from one generator seeded by the run seed (per-episode
  traces, scenarios and start states still come from the per-episode seeds);
* every copy runs over the union of the scenarios' services (inactive ones are masked).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gnnrl.contracts.observation import DEFAULT_DIAL, check_dial
from gnnrl.contracts.seeds import TRAIN_SEED_LIMIT
from gnnrl.core.envs.dynamic_graph_space import DynamicGraphConfig, DynamicGraphSpace
from gnnrl.core.envs.lag import MetricsLag
from gnnrl.core.envs.moves import DELTAS, NUM_MOVES
from gnnrl.core.envs.obs_extras import BatchedContext, BatchedLoadHistory
from gnnrl.core.envs.pool_step import PoolStep, VectorPool
from gnnrl.core.envs.observation import (
    ObservationLayout,
    build_observations,
    observation_layout,
)
from gnnrl.core.envs.sim_backend import LOOKAHEAD
from gnnrl.core.envs.reward import RewardConfig, reward
from gnnrl.sim.core import BatchedSim, SimConfig, StepMetrics
from gnnrl.sim.scenario import Scenario, TopologyEvent
from gnnrl.sim.spec import AppSpec, load_app_spec
from gnnrl.sim.traces import trace_from_spec

#: "no further topology event" in `BatchedEnvPool._next_event`
_NO_EVENT = np.iinfo(np.int64).max

#: Steps ahead whose entry load the privileged features read (up to 4 min at 15 s).
PRIVILEGED_AHEAD = (1, 2, 4, 8, 16)
#: Width of `privileged_features`: the load ahead, then the true peak utilisation and p95.
PRIVILEGED_DIM = len(PRIVILEGED_AHEAD) + 2


def privileged_features(trace: np.ndarray, t: np.ndarray, m: StepMetrics, cap: np.ndarray,
                        slo_ms: float) -> np.ndarray:
    """What only the simulator knows about each copy's state, for an asymmetric critic.

    Columns (all clipped to [-3, 3]):
      * ``log((rps[t+k] + 1) / (rps[t] + 1))`` for k in `PRIVILEGED_AHEAD`: the entry load
        ahead relative to now, read from the episode's trace (no policy can see it);
      * ``log1p`` of the busiest active service's true utilisation, offered req/s over its
        ready pods' capacity (the policy sees it through the metrics' lag and noise);
      * ``log(e2e_p95 / SLO)`` of this step, unlagged.

    Shapes: trace ``(B, T)`` req/s at the entry; t ``(B,)`` the step each copy is at; m
    the simulator's true metrics of that step; cap ``(S,)`` req/s per pod -> ``(B, P)``
    float32, P = `PRIVILEGED_DIM`.
    """
    rows = np.arange(len(t))
    now = trace[rows, t]
    ahead = np.stack([trace[rows, np.minimum(t + k, trace.shape[1] - 1)]
                      for k in PRIVILEGED_AHEAD], 1)
    trend = np.log((ahead + 1.0) / (now[:, None] + 1.0))
    util = m.rps_in / (np.maximum(m.ready, 1.0) * cap[None, :])
    peak = np.log1p(np.where(m.active, util, 0.0).max(axis=1))
    p95 = np.log(np.maximum(m.e2e_p95_ms, 1e-3) / slo_ms)
    out = np.concatenate([trend, peak[:, None], p95[:, None]], 1)
    return np.clip(out, -3.0, 3.0).astype(np.float32)



def _episode_seed(run_seed: int, env_index: int, episode: int) -> int:
    # the same mapping as gnnrl.core.agents.rollout.episode_seed (training seeds)
    rng = np.random.default_rng([run_seed, env_index, episode])
    return int(rng.integers(0, TRAIN_SEED_LIMIT))


class BatchedEnvPool(VectorPool):
    """B simulated episodes in lock-step on one `BatchedSim`.

    Args:
        num_envs: B.
        run_seed: seeds episodes (via the per-episode seed) and the simulator's noise.
        app: application spec (default OnlineBoutique).
        scenarios: scenarios drawn uniformly per episode (default: one diurnal scenario).
        max_steps, goal_reward, reward_config, sim_config, graph_config, hpa_target, dial,
            time_of_day_s: as in `OnlineBoutique` (``"random"`` draws per episode).
        privileged: add the key ``"privileged"`` (`privileged_features`, ``(B, P)``) to
            the observations, for a trainer's asymmetric critic.
    """

    def __init__(self, num_envs: int, run_seed: int = 0, app: str | AppSpec | None = None,
                 scenarios: Sequence[Scenario] | None = None, max_steps: int = 240,
                 goal_reward: str = "latency", reward_config: RewardConfig | None = None,
                 sim_config: SimConfig | None = None,
                 graph_config: DynamicGraphConfig | None = None,
                 hpa_target: float = 0.7, dial: float | str = DEFAULT_DIAL,
                 time_of_day_s: float | str = 0.0, privileged: bool = False) -> None:
        self.app = load_app_spec(app or "onlineboutique")
        self.privileged = privileged
        self.scenarios = list(scenarios or [Scenario()])
        self.max_steps = max_steps
        self.reward_config = reward_config or RewardConfig.preset(goal_reward)
        self.sim_config = sim_config or SimConfig()
        self.graph_config = graph_config or DynamicGraphConfig()
        self.hpa_target = hpa_target
        self.run_seed = run_seed
        if dial != "random":
            check_dial(dial)
        self.dial_setting, self.tod_setting = dial, time_of_day_s
        B = self.num_envs = num_envs
        self.dial = np.full(B, DEFAULT_DIAL if dial == "random" else float(dial))
        self.tod0 = np.full(B, 0.0 if time_of_day_s == "random" else float(time_of_day_s))
        self.cost_scale = np.asarray(self.reward_config.cost_scale(self.dial))
        services = dict(self.app.services)
        calls = list(self.app.calls)
        for sc in self.scenarios:
            for ev in sc.events:
                if ev.kind == "add" and ev.service is not None:
                    services.setdefault(ev.service.name, ev.service)
                    known = {(c.src, c.dst) for c in calls}
                    calls += [c for c in ev.calls if (c.src, c.dst) not in known]
        self.universe = self.app.with_services(services, tuple(calls))
        self.sim = BatchedSim(self.universe, B, self.sim_config,
                              seed=np.random.default_rng([run_seed, 7919]))
        S, E = self.sim.num_services, len(self.sim.edges)
        self.history = BatchedLoadHistory(B, S)
        self.spaces = [DynamicGraphSpace(self.graph_config) for _ in range(B)]
        self.slot_idx = np.full((B, S), -1, np.int64)
        self.edge_slot = np.full((B, E), -1, np.int64)
        self.trace = np.zeros((B, max_steps + 1 + LOOKAHEAD))
        self.t = np.zeros(B, np.int64)
        self.episodes = np.zeros(B, np.int64)
        self.steps_in_episode = np.zeros(B, np.int64)
        self.scenario_of: list[Scenario] = [self.scenarios[0]] * B
        self.cost_min = np.ones(B)
        self.m: StepMetrics | None = None
        #: what the policies read: `m` through the delay lines of the cluster timing
        self.seen: StepMetrics | None = None
        timing = self.sim_config.timing
        self._lag = (MetricsLag(timing, self.sim_config.interval_s, B)
                     if timing.lags_cpu or timing.lags_rates else None)
        self.obs: dict[str, np.ndarray] | None = None
        self.events_now: list[list[str]] = [[] for _ in range(B)]
        # caches: observation layout (rebuilt after any copy's mapping changes), slot names
        # per copy, and the next step at which each copy has a topology event
        self._layout: ObservationLayout | None = None
        self._slot_names: list[list[str | None]] = [[] for _ in range(B)]
        self._next_event = np.full(B, _NO_EVENT, np.int64)
        self._with_events: set[int] = set()
        # a one-copy simulator for warm starts of single copies
        self._warm = BatchedSim(self.universe, 1, self.sim_config,
                                seed=np.random.default_rng([run_seed, 104729]))

    # ------------------------------------------------------------------ mapping
    def _sync(self, i: int) -> None:
        sim, space = self.sim, self.spaces[i]
        active = [s for s in self.universe.service_names if sim.active[i, sim.index[s]]]
        space.update_node_mapping(active)
        space.update_edge_mapping((sim.service_names[a], sim.service_names[b])
                                  for a, b in sim.edges)
        self.slot_idx[i] = -1
        for name, slot in space.node_mapping.items():
            self.slot_idx[i, sim.index[name]] = slot
        for k, (a, b) in enumerate(sim.edges):
            self.edge_slot[i, k] = space.edge_mapping.get(
                (sim.service_names[a], sim.service_names[b]), -1)
        self._layout = None
        self._slot_names[i] = space.slot_names()

    def _apply_events(self, i: int, step: int) -> list[str]:
        evs: list[TopologyEvent] = [e for e in self.scenario_of[i].events if e.step == step]
        for ev in evs:
            self.sim.set_active(ev.name, ev.kind == "add", copies=np.array([i]))
        if evs:
            self._sync(i)
        return [ev.describe() for ev in evs]

    # ------------------------------------------------------------------ reset
    def _reset_one(self, i: int) -> None:
        seed = _episode_seed(self.run_seed, i, int(self.episodes[i]))
        self.episodes[i] += 1
        self.steps_in_episode[i] = 0
        rng = np.random.default_rng(seed)
        sc = self.scenarios[int(rng.integers(len(self.scenarios)))]
        self.scenario_of[i] = sc
        # drawn right after the scenario, as `OnlineBoutique.reset` does
        if self.dial_setting == "random":
            self.dial[i] = rng.uniform(0.0, 1.0)
            self.cost_scale[i] = self.reward_config.cost_scale(float(self.dial[i]))
        if self.tod_setting == "random":
            self.tod0[i] = rng.uniform(0.0, 86_400.0)
        self.history.reset_copy(i)
        self.trace[i] = trace_from_spec(sc.trace, self.trace.shape[1],
                                        self.sim_config.interval_s, sc.peak_rps,
                                        seed=int(rng.integers(2**31)))
        sim = self.sim
        # the base app's services start active; services added by events start inactive
        sim.active[i] = [s in self.app.services for s in sim.service_names]
        self.spaces[i].reset()
        self.t[i] = 0
        self._sync(i)
        events = self._apply_events(i, 0)
        # warm start on the one-copy simulator, then copy the state into row i
        w = self._warm
        w.active[0] = sim.active[i]
        lam = w.propagate(np.array([self.trace[i, 0]]))
        warm = np.clip(np.ceil(lam / (0.5 * w.cap)), w.min_replicas, w.max_replicas)
        w.reset(warm)
        m = w.step(np.array([self.trace[i, 0]]))
        sim.ready[i], sim.pending[:, i], sim.backlog[i] = w.ready[0], w.pending[:, 0], \
            w.backlog[0]
        if self.m is None:
            self.m = type(m)(**{k: np.repeat(v, self.num_envs, axis=0)
                                for k, v in vars(m).items()})
            if self._lag is not None:
                self.seen = type(m)(**{k: v.copy() for k, v in vars(self.m).items()})
                self._lag.reset(self.m, slice(None), np.zeros(self.num_envs))
        else:
            for k, v in vars(m).items():
                getattr(self.m, k)[i] = v[0]
                if self.seen is not self.m and self.seen is not None:
                    getattr(self.seen, k)[i] = v[0]
        if self._lag is not None:  # (no draw at all with ideal timing)
            self._lag.reset(m, np.array([i]), self.sim_config.timing.cpu_lag_s(rng, 1))
        else:
            self.seen = self.m
        act = sim.active[i]
        self.cost_min[i] = float((sim.min_replicas * sim.cpu_request * act).sum() / 1000.0)
        self._set_events_now(i, events)
        self._next_event[i] = self._event_after(i, 0)

    def _event_after(self, i: int, step: int) -> int:
        """The first step after `step` at which copy i's scenario has an event."""
        return min((e.step for e in self.scenario_of[i].events if e.step > step),
                   default=_NO_EVENT)

    def _set_events_now(self, i: int, events: list[str]) -> None:
        self.events_now[i] = events
        if events:
            self._with_events.add(i)
        else:
            self._with_events.discard(i)

    def _build_obs(self) -> dict[str, np.ndarray]:
        if self._layout is None:
            self._layout = observation_layout(self.sim, self.slot_idx, self.edge_slot,
                                              self.sim.active, self.graph_config.max_nodes,
                                              self.graph_config.max_edges)
        dt = self.sim_config.interval_s
        context = BatchedContext(self.app.slo_p95_ms, dt, self.dial, self.tod0 + self.t * dt)
        obs = build_observations(self.seen, self.sim, self.slot_idx, self.edge_slot,
                                 self.graph_config.max_nodes, self.graph_config.max_edges,
                                 self.hpa_target, layout=self._layout, context=context,
                                 history=self.history, truth=self.m)
        if self.privileged:
            assert self.m is not None
            obs["privileged"] = privileged_features(self.trace, self.t, self.m, self.sim.cap,
                                                    self.app.slo_p95_ms)
        return obs

    def _infos(self, copies: Sequence[int], rewards: np.ndarray | None = None
               ) -> list[dict[str, Any]]:
        """info dicts of `copies` (same keys and values as one `OnlineBoutique` per copy
        would give for them; computed with one set of numpy calls for all copies)."""
        m, sim = self.m, self.sim
        assert m is not None, "call reset() first"
        B, n = self.num_envs, self.graph_config.max_nodes
        cost = np.add.reduce(m.replicas * sim.cpu_request * m.active, axis=1) / 1000.0
        mapped = self.slot_idx >= 0
        replicas = np.zeros((B, n))
        rows = (self.slot_idx + (np.arange(B) * n)[:, None])[mapped]
        replicas.reshape(-1)[rows] = m.replicas[mapped]
        p95 = m.e2e_p95_ms.tolist()
        err = m.e2e_err_rate.tolist()
        cost_l = cost.tolist()
        steps = self.t.tolist()
        rew = None if rewards is None else rewards.tolist()
        slo = self.app.slo_p95_ms
        dt = self.sim_config.interval_s
        out = []
        for i in copies:
            info = {"slot_names": list(self._slot_names[i]), "replicas": replicas[i],
                    "e2e_p95_ms": p95[i], "slo_p95_ms": slo, "slo_violated": p95[i] > slo,
                    "error_rate": err[i], "cost": cost_l[i],
                    "topology_events": self.events_now[i], "step": steps[i],
                    "t_s": float(steps[i] * dt), "scenario": self.scenario_of[i].name}
            if rew is not None:
                info["reward"] = rew[i]
            out.append(info)
        return out

    def _info(self, i: int, rew: float | None = None) -> dict[str, Any]:
        info = self._infos([i])[0]
        if rew is not None:
            info["reward"] = rew
        return info

    def reset(self) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
        """Start a new episode in every copy. Returns (obs with a leading B axis, infos)."""
        for i in range(self.num_envs):
            self._reset_one(i)
        self.obs = self._build_obs()
        self.history.commit()
        return self.obs, self._infos(range(self.num_envs))

    # ------------------------------------------------------------------ step
    def step(self, actions: np.ndarray):
        """Apply ``actions`` (B, max_nodes); copies whose episode ended are reset at once.

        Returns a `gnnrl.core.envs.pool_step.PoolStep`.
        """

        assert self.obs is not None and self.m is not None, "call reset() first"
        B, n = self.num_envs, self.graph_config.max_nodes
        moves = np.clip(np.asarray(actions, np.int64).reshape(B, n), 0, NUM_MOVES - 1)
        invalid = self.obs["invalid_action_mask"].reshape(B, n, NUM_MOVES).astype(bool)
        bad = np.take_along_axis(invalid, moves[..., None], axis=2)[..., 0]
        moves = np.where(bad, 0, moves)
        sim = self.sim
        mapped = self.slot_idx >= 0
        slot_moves = np.take_along_axis(moves, np.where(mapped, self.slot_idx, 0), axis=1)
        target = sim.replicas + np.where(mapped, DELTAS[slot_moves], 0)
        self.t += 1
        self.steps_in_episode += 1
        for i in list(self._with_events):  # last step's events are over
            self._set_events_now(i, [])
        for i in np.nonzero(self.t == self._next_event)[0].tolist():
            self._set_events_now(i, self._apply_events(i, int(self.t[i])))
            self._next_event[i] = self._event_after(i, int(self.t[i]))
            for ev in self.events_now[i]:
                if ev.startswith("add "):
                    j = sim.index[ev[4:]]
                    target[i, j] = sim.replicas[i, j]
        rps = self.trace[np.arange(B), self.t]
        self.m = sim.step(rps, target)
        m = self.m
        self.seen = self._lag.push(m) if self._lag is not None else m
        cost = (m.replicas * sim.cpu_request * m.active).sum(axis=1) / 1000.0
        rewards = reward(self.reward_config, m.e2e_p95_ms, self.app.slo_p95_ms,
                         m.e2e_err_rate, cost, self.cost_min, self.cost_scale)
        if not np.isfinite(rewards).all():
            bad_env = int(np.nonzero(~np.isfinite(rewards))[0][0])
            raise FloatingPointError(f"non-finite reward in env {bad_env} at step "
                                     f"{int(self.t[bad_env])}")
        self.obs = self._build_obs()
        trunc = self.t >= self.max_steps
        term = np.zeros(B, bool)
        infos = self._infos(range(B), rewards)
        finals: list[dict | None] = [None] * B
        final_infos: list[dict | None] = [None] * B
        done = np.nonzero(trunc)[0]
        if len(done):
            for i in done.tolist():
                finals[i] = {k: v[i].copy() for k, v in self.obs.items()}
                final_infos[i] = infos[i]
                self._reset_one(int(i))
            self.obs = self._build_obs()
            for i, info in zip(done.tolist(), self._infos(done.tolist()), strict=True):
                infos[i] = info
        self.history.commit()
        return PoolStep(dict(self.obs), rewards.astype(np.float64), term, trunc, infos,
                        finals, final_infos)

    def all_at_episode_start(self) -> bool:
        return bool((self.steps_in_episode == 0).all())

    def close(self) -> None:
        pass
