"""The GNN policy (`PPO_GNN`) behind the `Policy` protocol, for evaluation.

Imported lazily (torch and PyTorch Geometric load only when a ``gnnrl`` row is asked
for). The adapter itself is the policy package's (`gnnrl.core.agents.gnnrl_policy`); this
module adds the shipped default model, so ``gnnrl`` without a path works.
"""

from __future__ import annotations

import json
from pathlib import Path

from gnnrl.config import ConfigError
from gnnrl.core.agents.gnnrl_policy import GNNRLPolicy as CoreGNNRLPolicy

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


class GNNRLPolicy(CoreGNNRLPolicy):
    """`gnnrl.core.agents.gnnrl_policy.GNNRLPolicy` (remaps the temporal memory to the
    slot layout every step, deterministic arg-max moves), loadable without a path."""

    supports_topology_change = True
    use_graph = True

    @classmethod
    def load(cls, path: str | Path | None = None, deterministic: bool = True,
             name: str = "gnnrl") -> GNNRLPolicy:
        """Load a saved model directory (``PPO_GNN.save``); None = the shipped default.

        Raises:
            ConfigError: no path and no shipped default model.
            gnnrl.core.agents.ppo_gnn.ModelLoadError: missing, corrupt or mismatched files.
        """
        return super().load(Path(path) if path else default_model_dir(),
                            deterministic=deterministic, name=name)
