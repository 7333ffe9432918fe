"""A random policy that only picks valid moves: the floor any learned policy must beat."""

from __future__ import annotations

from typing import Any

import numpy as np

from gnnrl.baselines.base import unwrapped
from gnnrl.contracts.moves import NUM_MOVES


class RandomMaskedPolicy:
    """Each service's move drawn uniformly from its valid moves (``env.action_masks()``).

    Args:
        seed: at every `reset` the generator is re-seeded from this seed and the
            environment's episode seed, so a (policy seed, episode seed) pair always
            gives the same moves and different evaluation seeds give different ones.
        p_noop: probability of choosing "nothing" (0 = uniform over valid moves, the
            textbook random baseline; the default 0.5 keeps episodes from thrashing).
    """

    def __init__(self, seed: int = 0, p_noop: float = 0.5, name: str = "random") -> None:
        if not (0.0 <= p_noop <= 1.0):
            from gnnrl.config import ConfigError

            raise ConfigError(f"p_noop must be within 0..1, got {p_noop}")
        self.seed = seed
        self.p_noop = p_noop
        self.name = name
        self.rng = np.random.default_rng(seed)

    def reset(self, env: Any) -> None:
        self.env = env
        episode_seed = getattr(unwrapped(env), "np_random_seed", None)
        entropy = [self.seed] if episode_seed is None or episode_seed < 0 \
            else [self.seed, int(episode_seed)]
        self.rng = np.random.default_rng(entropy)

    def act(self, obs: dict, info: dict) -> np.ndarray:
        """Shapes: returns (max_nodes,) int64 in 0..14."""
        valid = np.asarray(unwrapped(self.env).action_masks(), dtype=bool)
        valid = valid.reshape(-1, NUM_MOVES)
        moves = np.zeros(valid.shape[0], dtype=np.int64)
        for i, row in enumerate(valid):
            choices = np.flatnonzero(row[1:]) + 1
            if len(choices) and self.rng.random() >= self.p_noop:
                moves[i] = int(self.rng.choice(choices))
        return moves
