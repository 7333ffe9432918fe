"""`OnlineBoutique`: the Gymnasium environment (registered as ``gnnrl/OnlineBoutique-v0``).

One step is one control interval (15 s by default). The action holds one move per slot
(`gnnrl.core.envs.moves`); every active service's move is applied in the same step.
A move that the mask marks invalid (out of [min, max], or on an empty slot) is executed as
"nothing" and counted in ``info["invalid_actions"]``; it never raises.

Where the numbers come from is a `gnnrl.core.envs.backend.Backend`, picked once when the
env is built: ``k8s=False`` (default) runs the simulator (`SimBackend`); ``k8s=True`` acts on
a real cluster (`ClusterBackend` over `gnnrl.core.envs.k8s_backend`: observations from
Kiali or Prometheus + Kubernetes, actions through the Deployments' scale subresource).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from gnnrl.contracts.observation import (
    DEFAULT_DIAL,
    GLOBAL_DIM_RAW,
    NODE_DIM_RAW,
    V1_NODE_DIM,
    check_dial,
)
from gnnrl.core.envs.backend import Backend, EpisodeSettings
from gnnrl.core.envs.cluster_backend import ClusterBackend
from gnnrl.core.envs.dynamic_graph_space import DynamicGraphConfig, DynamicGraphSpace
from gnnrl.core.envs.lag import MetricsLag
from gnnrl.core.envs.moves import NUM_MOVES
from gnnrl.core.envs.obs_extras import LoadHistory
from gnnrl.core.envs.reward import RewardConfig, reward, reward_one
from gnnrl.core.envs.sim_backend import LOOKAHEAD, SimBackend
from gnnrl.sim.core import BatchedSim, SimConfig, StepMetrics
from gnnrl.sim.scenario import Scenario
from gnnrl.sim.spec import AppSpec, load_app_spec

__all__ = ["LOOKAHEAD", "OnlineBoutique"]


def _reward_reference(cfg: RewardConfig, p95_ms: float, slo_ms: float, err: float,
                      cost_cores: float, cost_min_cores: float, cost_scale: float) -> float:
    """`reward_one` through the vectorised `reward` (the numpy reference path)."""
    return float(reward(cfg, np.array([p95_ms]), slo_ms, np.array([err]),
                        np.array([cost_cores]), cost_min_cores, cost_scale)[0])


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
        backend: the real cluster's `gnnrl.core.envs.k8s_backend.K8sBackend` (k8s=True;
            anything with its ``observe()`` and ``apply(desired)``).
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
        self.settings = EpisodeSettings(
            slo_p95_ms=self.app.slo_p95_ms, interval_s=self.sim_config.interval_s,
            dial_setting=dial, tod_setting=time_of_day_s,
            dial=DEFAULT_DIAL if dial == "random" else float(dial),
            tod0_s=0.0 if time_of_day_s == "random" else float(time_of_day_s))
        trace_array = None
        if scenario is None:
            trace_spec = "diurnal" if trace is None else trace
            scenarios: list[Scenario] = [Scenario(
                name=trace_spec if isinstance(trace_spec, str) else "array",
                trace=trace_spec if isinstance(trace_spec, str) else "array",
                peak_rps=peak_rps or 100.0)]
            trace_array = None if isinstance(trace_spec, str) else np.asarray(trace_spec)
        else:
            scenarios = [scenario] if isinstance(scenario, Scenario) else list(scenario)
        if peak_rps is not None:
            scenarios = [Scenario(s.name, s.trace, peak_rps, s.events) for s in scenarios]
        self.scenarios = scenarios
        if not use_graph and any(s.events for s in scenarios):
            raise ValueError("use_graph=False: the flat observation has a fixed set of "
                             "services and cannot follow topology events; use use_graph=True")
        self.backend = backend
        # the one place the simulator and a real cluster differ (see backend.py)
        self._sim: SimBackend | None = None
        self.env_backend: Backend
        if k8s:
            self.env_backend = ClusterBackend(backend, self.app, self.graph_space,
                                              self.history, self.settings, hpa_target)
            if not use_graph:
                raise ValueError("k8s=True needs use_graph=True")
        else:
            self._sim = SimBackend(self.app, scenarios, trace_array, self.sim_config,
                                   self.graph_space, self.history, self.settings,
                                   hpa_target, max_steps, compute=sim_backend)
            self.env_backend = self._sim
        # the vectorised reward on the numpy reference path (the same values)
        self._reward = _reward_reference if sim_backend == "numpy" else reward_one

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
        self._obs: dict[str, np.ndarray] | None = None
        self._cost_scale = 1.0
        self.t = 0

    # ------------------------------------------------------------------ settings
    @property
    def dial_setting(self) -> float | str:
        """The dial as given: a number in [0, 1] or ``"random"``."""
        return self.settings.dial_setting

    @property
    def tod_setting(self) -> float | str:
        """The starting time of day as given: seconds after 00:00 UTC or ``"random"``."""
        return self.settings.tod_setting

    @property
    def dial(self) -> float:
        """This episode's dial (drawn at reset when the setting is ``"random"``)."""
        return self.settings.dial

    # ------------------------------------------------------------------ the simulator
    # (None or an error on a real cluster, as documented on each)
    @property
    def sim(self) -> BatchedSim | None:
        """This episode's simulator (None before the first reset and with k8s=True)."""
        return None if self._sim is None else self._sim.sim

    @property
    def scenario(self) -> Scenario:
        """This episode's scenario (the first one before reset and with k8s=True)."""
        return self.scenarios[0] if self._sim is None else self._sim.scenario

    @property
    def app_universe(self) -> AppSpec:
        """This episode's app with every service its scenario ever adds (simulator)."""
        return self._simulator().app_universe

    @property
    def observed_metrics(self) -> StepMetrics:
        """The `StepMetrics` the last observation was built from: the step's metrics as
        the cluster's metrics pipelines show them (lagged with realistic timing)."""
        return self._simulator().observed_metrics

    @property
    def metrics_lag(self) -> MetricsLag | None:
        """This episode's delay lines (None with idealised metrics timing)."""
        return None if self._sim is None else self._sim.lag

    def future_entry_rps(self, k: int) -> np.ndarray:
        """The entry req/s of the next `k` steps (for the clairvoyant oracle only)."""
        return self._simulator().future_entry_rps(self.t, k)

    def current_entry_rps(self) -> float:
        """The true entry req/s of the step just served (no lag, no noise: for the
        perfect-information reactive bound, `gnnrl.baselines.oracle`)."""
        return float(self._simulator().future_entry_rps(self.t - 1, 1)[0])

    def _simulator(self) -> SimBackend:
        if self._sim is None:
            raise RuntimeError("k8s=True: a real cluster has no simulator state")
        return self._sim

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self.history.reset()
        self.graph_space.reset()
        self.t = 0
        self.env_backend.reset(self.np_random)
        self._cost_scale = float(self.reward_config.cost_scale(self.dial))
        self._obs, info = self.env_backend.observe_state(0)
        return self._get_obs(), info

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
        self.t += 1
        scaled = self.env_backend.apply_scale(action, self.t)
        self.env_backend.advance(self.t)
        self._obs, info = self.env_backend.observe_state(self.t)
        r = self._reward(self.reward_config, info["e2e_p95_ms"], self.app.slo_p95_ms,
                         info["error_rate"], info["cost"], self.env_backend.cost_min,
                         self._cost_scale)
        if not math.isfinite(r):
            raise FloatingPointError(f"non-finite reward at step {self.t}")
        info["reward"] = r
        info.update(scaled)
        truncated = self.t >= self.max_steps
        return self._get_obs(), r, False, truncated, info

    def _get_obs(self) -> Any:
        assert self._obs is not None
        if self.use_graph:
            return dict(self._obs)  # fresh arrays every step: no copy needed
        # the initial services' rows of the graph observation, in app-spec order
        slot_of = self.graph_space.node_mapping
        rows = [slot_of.get(s, -1) for s in self.app.service_names]
        return self._obs["svc_df"][rows, :V1_NODE_DIM].reshape(-1)

    def render(self):
        if self.render_mode != "ansi":
            return None
        return self.env_backend.render()
