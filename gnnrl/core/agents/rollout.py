"""Vectorised envs with controlled episode seeds, and the rollout storage of PPO.

`EnvPool` steps B Gymnasium envs in lock-step with "same-step" auto-reset: when an episode
ends, the final observation is returned separately (for bootstrapping on truncation) and
the env is reset at once. Unlike ``gymnasium.vector.SyncVectorEnv`` it chooses every
episode's seed itself, from ``(run seed, env index, episode number)`` mapped into
``[0, 1000)`` (training seeds stay below 1000; evaluation uses 1000 and up). That makes a
resumed run replay exactly the episodes of an uninterrupted one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from gnnrl.contracts.seeds import TRAIN_SEED_LIMIT
from gnnrl.core.envs.pool_step import PoolStep, VectorPool
from gnnrl.encoders.graph_batch import TENSOR_KEYS



def episode_seed(run_seed: int, env_index: int, episode: int) -> int:
    """The reset seed of ``episode`` in env ``env_index`` of a run: an int in [0, 1000)."""
    rng = np.random.default_rng([run_seed, env_index, episode])
    return int(rng.integers(0, TRAIN_SEED_LIMIT))


#: Training-only observation keys, stacked when every observation has them (the
#: asymmetric critic's inputs, `gnnrl.core.envs.vector.privileged_features`).
TRAINING_KEYS = ("privileged",)


def stack_obs(observations: Sequence[dict[str, Any]]) -> dict[str, np.ndarray]:
    """Stack per-env observation dicts (only the keys the policy and its critic read)."""
    keys = [*TENSOR_KEYS, *(k for k in TRAINING_KEYS
                            if observations and all(k in o for o in observations))]
    return {k: np.stack([np.asarray(o[k]) for o in observations]) for k in keys}


class EnvPool(VectorPool):
    """B envs stepped in lock-step, auto-reset on the same step, seeds chosen per episode."""

    def __init__(self, env_fns: Sequence[Callable[[], Any]], run_seed: int) -> None:
        self.envs = [fn() for fn in env_fns]
        self.num_envs = len(self.envs)
        self.run_seed = run_seed
        self.episodes = np.zeros(len(self.envs), np.int64)  # episodes started per env
        self.steps_in_episode = np.zeros(len(self.envs), np.int64)

    def _reset_one(self, i: int) -> tuple[dict, dict]:
        seed = episode_seed(self.run_seed, i, int(self.episodes[i]))
        self.episodes[i] += 1
        self.steps_in_episode[i] = 0
        return self.envs[i].reset(seed=seed)

    def reset(self) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
        """Start a new episode in every env."""
        pairs = [self._reset_one(i) for i in range(self.num_envs)]
        return stack_obs([p[0] for p in pairs]), [p[1] for p in pairs]

    def step(self, actions: np.ndarray) -> PoolStep:
        """Apply ``actions`` ``(B, max_nodes)``; reset the envs whose episode ended."""
        obs_list, infos, finals, final_infos = [], [], [], []
        rewards = np.zeros(self.num_envs, np.float64)
        term = np.zeros(self.num_envs, bool)
        trunc = np.zeros(self.num_envs, bool)
        for i, env in enumerate(self.envs):
            obs, r, te, tr, info = env.step(actions[i])
            self.steps_in_episode[i] += 1
            rewards[i], term[i], trunc[i] = r, te, tr
            if te or tr:
                finals.append(obs)
                final_infos.append(info)
                obs, info = self._reset_one(i)
            else:
                finals.append(None)
                final_infos.append(None)
            obs_list.append(obs)
            infos.append(info)
        return PoolStep(stack_obs(obs_list), rewards, term, trunc, infos, finals, final_infos)

    def all_at_episode_start(self) -> bool:
        """True when every env has just been reset (a clean point to checkpoint)."""
        return bool((self.steps_in_episode == 0).all())

    def close(self) -> None:
        for env in self.envs:
            close = getattr(env, "close", None)
            if close is not None:
                close()


@dataclass
class RolloutBuffer:
    """T steps x B envs of observations, pre-step TGN memory, actions and outcomes.

    Shapes: obs[k] ``(T, B, ...)``; memory ``(T, B, N, D)``; last ``(T, B, N)``;
    time ``(T, B)``; actions ``(T, B, N)``; logp/values/rewards ``(T, B)``
    (``values_t`` on the device; ``values`` is its host copy, read once per update);
    terminated/truncated ``(T, B)`` bool; final_values ``(T, B)`` (value of the final
    observation where an episode ended, else 0).
    """

    num_steps: int
    num_envs: int
    max_nodes: int
    memory_dim: int
    device: torch.device
    obs: dict[str, Tensor] = field(default_factory=dict)
    pos: int = 0

    def __post_init__(self) -> None:
        t, b, n = self.num_steps, self.num_envs, self.max_nodes
        self.memory = torch.zeros(t, b, n, self.memory_dim, device=self.device)
        self.last = torch.zeros(t, b, n, device=self.device)
        self.time = torch.zeros(t, b, device=self.device)
        self.actions = torch.zeros(t, b, n, dtype=torch.long, device=self.device)
        self.logp = torch.zeros(t, b, device=self.device)
        # values stay on the device during the rollout: no host sync per step
        self.values_t = torch.zeros(t, b, device=self.device)
        self.rewards = np.zeros((t, b), np.float32)
        self.terminated = np.zeros((t, b), bool)
        self.truncated = np.zeros((t, b), bool)
        self.final_values = np.zeros((t, b), np.float32)

    def add(self, obs: dict[str, Tensor], memory: tuple[Tensor, Tensor, Tensor] | None,
            actions: Tensor, logp: Tensor, values: Tensor) -> int:
        """Store the decision part of step ``pos``; returns ``pos`` (outcomes set later)."""
        if not self.obs:
            self.obs = {k: torch.zeros((self.num_steps, *v.shape), dtype=v.dtype,
                                       device=self.device) for k, v in obs.items()}
        p = self.pos
        for k, v in obs.items():
            self.obs[k][p] = v
        if memory is not None:
            self.memory[p], self.last[p], self.time[p] = memory
        self.actions[p] = actions
        self.logp[p] = logp
        self.values_t[p] = values
        self.pos += 1
        return p

    @property
    def values(self) -> np.ndarray:
        """``(T, B)`` float32 values on the host."""
        return self.values_t.cpu().numpy()

    def flat_obs(self) -> dict[str, Tensor]:
        return {k: v.reshape(-1, *v.shape[2:]) for k, v in self.obs.items()}

    def reset(self) -> None:
        self.pos = 0
        self.final_values[:] = 0.0
