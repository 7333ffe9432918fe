"""Environments: the dynamic graph space, the observation builder and `OnlineBoutique`."""

import gymnasium as gym

from gnnrl.core.envs.dynamic_graph_space import (
    DynamicGraphConfig,
    DynamicGraphSpace,
    TooManyServicesError,
)
from gnnrl.core.envs.moves import NUM_MOVES, moves_to_replicas, replicas_to_moves
from gnnrl.core.envs.online_boutique import OnlineBoutique
from gnnrl.core.envs.reward import RewardConfig

ENV_ID = "gnnrl/OnlineBoutique-v0"
if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="gnnrl.core.envs.online_boutique:OnlineBoutique")

__all__ = [
    "ENV_ID", "NUM_MOVES", "DynamicGraphConfig", "DynamicGraphSpace", "OnlineBoutique",
    "RewardConfig", "TooManyServicesError", "moves_to_replicas", "replicas_to_moves",
]
