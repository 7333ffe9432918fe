"""`GNNRLPolicy`: the trained `PPO_GNN` behind the evaluation/scaler `Policy` protocol.

``act(obs, info)`` first remaps the temporal memory to the env's current slot layout
(``info["slot_names"]``) so that a service keeps its memory when slots are reassigned and
a new service in a reused slot starts from zero, writes the operator's dial into a copy of
the observation (`gnnrl.core.agents.dial.with_dial`), then picks moves (deterministic by
default: the arg-max move of every service, for serving).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import numpy as np

from gnnrl.contracts.observation import DEFAULT_DIAL, check_dial
from gnnrl.core.agents.dial import with_dial
from gnnrl.core.agents.ppo_gnn import PPO_GNN

#: the model shipped with the package (see docs/policy.md for how it was trained)
DEFAULT_MODEL_DIR = Path(__file__).resolve().parents[2] / "assets" / "models" / "default"


class GNNRLPolicy:
    """Adapter implementing ``name``, ``reset(env)`` and ``act(obs, info)``; it follows
    services that appear and disappear (the temporal memory is remapped by name).

    Args:
        model: the trained model (put in eval mode).
        deterministic: arg-max moves (serving) rather than sampled ones.
        name: the row label.
        dial: the operator's cost/SLO preference in [0, 1] (0 = cheapest, 1 = safest),
            written into every observation before inference (default `DEFAULT_DIAL`).

    Raises:
        ValueError: ``dial`` outside [0, 1].
    """

    supports_topology_change = True
    use_graph = True

    def __init__(self, model: PPO_GNN, deterministic: bool = True, name: str = "gnnrl",
                 dial: float = DEFAULT_DIAL):
        self.model = model.eval()
        self.deterministic = deterministic
        self.name = name
        self.dial = check_dial(dial)

    @classmethod
    def load(cls, path: str | Path | None = None, deterministic: bool = True,
             name: str = "gnnrl", dial: float = DEFAULT_DIAL) -> Self:
        """Load a saved model folder (default: the shipped model, `DEFAULT_MODEL_DIR`).

        See `PPO_GNN.load` for the errors raised.
        """
        return cls(PPO_GNN.load(path or DEFAULT_MODEL_DIR), deterministic=deterministic,
                   name=name, dial=dial)

    def reset(self, env: Any = None) -> None:
        """Start of an episode: forget the temporal memory."""
        self.model.reset_memory()

    def act(self, obs: dict, info: dict | None = None) -> np.ndarray:
        """Moves for every slot, at this policy's dial (``obs`` itself is not changed).

        Shapes: returns ``(max_nodes,)`` int64 in 0..14.
        """
        names = (info or {}).get("slot_names")
        if names is not None:
            self.model.update_node_mapping(list(names))
        return self.model.act(with_dial(obs, self.dial), deterministic=self.deterministic)
