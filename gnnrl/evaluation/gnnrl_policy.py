"""The GNN policy (`PPO_GNN`) behind the `Policy` protocol, for evaluation.

Imported lazily (torch and PyTorch Geometric load only when a ``gnnrl`` row is asked
for). Acts deterministically (the most likely valid move per service) and keeps the
temporal memory across the steps of an episode, remapping it when services come or go.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from gnnrl.config import ConfigError

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def default_model_dir() -> Path:
    """The shipped default model: the directory under ``gnnrl/assets`` holding a
    ``config.json`` of format ``gnnrl-ppo-gnn``.

    Raises:
        ConfigError: no model is shipped (give ``gnnrl:PATH``).
    """
    for cfg in sorted(ASSETS.glob("**/config.json")):
        try:
            if json.loads(cfg.read_text()).get("format") == "gnnrl-ppo-gnn":
                return cfg.parent
        except (OSError, ValueError):
            continue
    raise ConfigError(f"policies: no default GNNRL model under {ASSETS}; use gnnrl:PATH")


class GNNRLPolicy:
    """`PPO_GNN` as a `Policy`.

    Args:
        model: a loaded `PPO_GNN`.
        deterministic: pick the most likely move (True) or sample.
    """

    supports_topology_change = True
    use_graph = True

    def __init__(self, model: Any, deterministic: bool = True, name: str = "gnnrl") -> None:
        self.model = model
        self.deterministic = deterministic
        self.name = name
        self._names: list[str | None] | None = None

    @classmethod
    def load(cls, path: str | Path | None = None, name: str = "gnnrl") -> GNNRLPolicy:
        """Load a saved model directory (``PPO_GNN.save``); None = the shipped default."""
        from gnnrl.core.agents.ppo_gnn import PPO_GNN

        model_dir = Path(path) if path else default_model_dir()
        return cls(PPO_GNN.load(model_dir), name=name)

    def reset(self, env: Any) -> None:
        self.model.reset_memory()
        self._names = None

    def act(self, obs: dict, info: dict) -> np.ndarray:
        """Shapes: returns (max_nodes,) int64 in 0..14."""
        names = list(info["slot_names"])
        if names != self._names:
            self.model.update_node_mapping(names)
            self._names = names
        return np.asarray(self.model.act(obs, deterministic=self.deterministic), dtype=np.int64)
