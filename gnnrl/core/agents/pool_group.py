"""`PoolGroup`: several rollout pools side by side, seen by the trainer as one.

Training for generality runs several applications at once (OnlineBoutique, the
socialNetwork model, generated apps), each with its own cluster timing and start-up
times. A batched simulator holds one application, so each (application, timing) pair is
its own `gnnrl.core.agents.sim_pool.SimPool`; the group concatenates their observations
(every pool pads to the same ``max_nodes`` / ``max_edges``), splits the actions back, and
keeps one ``episodes`` array whose slices the pools count in, so per-episode seeds and
checkpoints work as for one pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gnnrl.core.envs.pool_step import PoolStep, VectorPool


class PoolGroup(VectorPool):
    """The pools' envs in order: env ``i`` of pool ``k`` is env ``offset_k + i``.

    Args:
        pools: the pools (at least one), all with the same observation shapes.
    """

    def __init__(self, pools: Sequence[VectorPool]) -> None:
        if not pools:
            raise ValueError("PoolGroup needs at least one pool")
        self.pools = list(pools)
        sizes = [p.num_envs for p in self.pools]
        self.bounds = np.cumsum([0, *sizes])
        self.num_envs = int(self.bounds[-1])
        self.episodes = np.concatenate([p.episodes for p in self.pools])
        for k, p in enumerate(self.pools):  # the pools count in slices of one array
            p.episodes = self.episodes[self.bounds[k]:self.bounds[k + 1]]

    def _slices(self) -> list[slice]:
        return [slice(int(a), int(b)) for a, b in zip(self.bounds[:-1], self.bounds[1:],
                                                       strict=True)]

    def reset(self) -> tuple[dict[str, np.ndarray], list[dict[str, Any]]]:
        parts = [p.reset() for p in self.pools]
        return _concat([o for o, _ in parts]), [i for _, infos in parts for i in infos]

    def step(self, actions: np.ndarray) -> PoolStep:
        steps = [p.step(actions[s]) for p, s in zip(self.pools, self._slices(), strict=True)]
        return PoolStep(_concat([s.obs for s in steps]),
                        np.concatenate([s.rewards for s in steps]),
                        np.concatenate([s.terminated for s in steps]),
                        np.concatenate([s.truncated for s in steps]),
                        [i for s in steps for i in s.infos],
                        [o for s in steps for o in s.final_obs],
                        [i for s in steps for i in s.final_info])

    def all_at_episode_start(self) -> bool:
        return all(p.all_at_episode_start() for p in self.pools)

    def noise_state(self) -> Any:
        return [p.noise_state() for p in self.pools]

    def set_noise_state(self, state: Any) -> None:
        if not isinstance(state, list) or len(state) != len(self.pools):
            raise ValueError(f"noise state: expected a list of {len(self.pools)} pool states")
        for p, s in zip(self.pools, state, strict=True):
            if s is not None:
                p.set_noise_state(s)

    def close(self) -> None:
        for p in self.pools:
            p.close()


def _concat(parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    if len(parts) == 1:
        return dict(parts[0])
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
