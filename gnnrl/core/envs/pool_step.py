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
