"""Shared builders for the registry and pipeline tests: a small PPO_GNN, observations, summaries."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from gnnrl.contracts.observation import NODE_DIM_RAW
from gnnrl.core.agents.configs import PolicyConfig
from gnnrl.core.agents.ppo_gnn import PPO_GNN

NODES, EDGES = 6, 12


def make_model(tmp_path, seed: int = 0):
    torch.manual_seed(seed)
    policy = PPO_GNN(config=PolicyConfig(max_nodes=NODES, max_edges=EDGES, hidden_dim=16))
    return policy, policy.save(tmp_path / f"model-{seed}")


def observations(ticks: int, seed: int = 0) -> list[dict]:
    """A chain of 4 services on a 6-slot layout, with traffic drifting tick to tick."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(ticks):
        svc = np.zeros((NODES, NODE_DIM_RAW), np.float32)
        svc[:4] = rng.uniform(1, 50, size=(4, NODE_DIM_RAW))
        edges = np.zeros((EDGES, 7), np.float32)
        for i, (s, d) in enumerate([(0, 1), (1, 2), (2, 3)]):
            edges[i] = [s, d, 1.0, rng.uniform(1, 100), rng.uniform(5, 200), 0.0, 1.0]
        invalid = np.zeros(NODES * 15, np.int8)
        invalid[4 * 15 :] = 1
        invalid[4 * 15 : 5 * 15 : 15] = 0
        out.append({
            "svc_df": svc, "edge_df": edges,
            "global_feats": np.array([10, 20, 30, 40, 0.5, 0.5, 250, 15, 0, 1], np.float32),
            "node_mask": np.array([1, 1, 1, 1, 0, 0], np.int8),
            "edge_mask": np.array([1, 1, 1] + [0] * (EDGES - 3), np.int8),
            "num_nodes": 4, "invalid_action_mask": invalid,
        })
    return out


def summary(challenger: tuple[float, float], champion: tuple[float, float] | None = None):
    rows = [("cand", challenger), ("hpa", (0.05, 10.0))]
    if champion:
        rows.append(("champion", champion))
    return pd.DataFrame(
        [{"policy": p, "scenario": "diurnal", "seed": s, "slo_violation_rate": slo,
          "replica_hours": cost} for p, (slo, cost) in rows for s in (1, 2)]
    )
