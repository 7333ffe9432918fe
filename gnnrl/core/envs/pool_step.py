"""`PoolStep`: what one step of a pool of environments returns (env layer, so that the
pools in `gnnrl.core.envs.vector` and the trainer's `EnvPool` share it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class PoolStep:
    """What `EnvPool.step` returns. Arrays are ``(B,)`` unless noted.

    final_obs[i] / final_info[i]: the last observation and info of env i's episode when it
    ended at this step (None otherwise); obs/infos already belong to the next episode then.
    """

    obs: dict[str, np.ndarray]
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    infos: list[dict[str, Any]]
    final_obs: list[dict[str, Any] | None]
    final_info: list[dict[str, Any] | None]

    @property
    def done(self) -> np.ndarray:
        return np.logical_or(self.terminated, self.truncated)


class VectorPool:
    """What the trainer needs of a pool of B environments, whatever runs them.

    Implemented by `gnnrl.core.agents.rollout.EnvPool` (B Gymnasium envs),
    `gnnrl.core.envs.vector.BatchedEnvPool` / `gnnrl.core.agents.sim_pool.SimPool` (B rows
    of one batched simulator) and `gnnrl.core.agents.pool_group.PoolGroup` (several pools
    side by side, e.g. one per application).

    Attributes:
        episodes: (B,) int64, episodes started per env (the per-episode seeds follow it;
            a resumed run writes the checkpointed counters back in place).
    """

    episodes: np.ndarray
    #: B
    num_envs: int

    def reset(self) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
        """Start a new episode in every env: (observations with a leading B axis, infos)."""
        raise NotImplementedError

    def step(self, actions: np.ndarray) -> PoolStep:
        """Apply ``actions`` (B, max_nodes); envs whose episode ended are reset at once."""
        raise NotImplementedError

    def all_at_episode_start(self) -> bool:
        """True when every env has just been reset (a clean point to checkpoint)."""
        raise NotImplementedError

    def noise_state(self) -> Any:
        """Randomness shared across episodes that a checkpoint must carry (JSON-able);
        None when every episode's randomness comes from its own seed."""
        return None

    def set_noise_state(self, state: Any) -> None:
        """Restore a `noise_state` (after the resumed run's first `reset`)."""

    def close(self) -> None:
        """Release the envs."""
