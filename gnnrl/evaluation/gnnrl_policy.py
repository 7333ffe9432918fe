"""The GNN policy (`PPO_GNN`) behind the `Policy` protocol, for evaluation.

Imported lazily (torch and PyTorch Geometric load only when a ``gnnrl`` row is asked
for). The adapter is the policy package's `GNNRLPolicy` (re-exported here; ``load()``
without a path loads the shipped model); `default_model_dir` finds the shipped model.
"""

from __future__ import annotations

import json
from pathlib import Path

from gnnrl.config import ConfigError
from gnnrl.core.agents.gnnrl_policy import GNNRLPolicy

__all__ = ["GNNRLPolicy", "default_model_dir"]

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
