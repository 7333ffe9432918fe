"""Build a contract-shaped observation dict from plain arrays (tests, benchmarks, tools).

The layout is the public observation contract (`gnnrl.contracts.observation`, schema v2):
``svc_df`` ``(max_nodes, 18)``, ``edge_df`` ``(max_edges, 7)``, ``global_feats`` ``(10,)``,
masks, and ``invalid_action_mask`` ``(max_nodes * 15,)`` service-major with 1 = invalid.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from gnnrl.contracts.moves import NUM_MOVES
from gnnrl.contracts.observation import (
    GLOBAL_DIM_RAW,
    NODE,
    NODE_DIM_RAW,
    V1_GLOBAL_DIM,
    V1_NODE_DIM,
)

#: the v2 node columns of a row given with the seed's 6 only: every pod ready, 10 s
#: start-up, 100 m request and 200 m limit, bounds 1..10, all served, 20 % of the SLO,
#: steady load
_V2_NODE_DEFAULTS = {"startup_s": 10.0, "cpu_request_m": 100.0, "cpu_limit_m": 200.0,
                     "min_replicas": 1.0, "max_replicas": 10.0, "unserved": 0.0,
                     "slo_share": 0.2, "trend_1": 1.0, "trend_4": 1.0, "trend_16": 1.0}


def make_observation(
    nodes: np.ndarray | Sequence[Sequence[float]],
    edges: Sequence[Sequence[float]] = (),
    *,
    slots: Sequence[int] | None = None,
    max_nodes: int = 20,
    max_edges: int = 400,
    invalid: np.ndarray | None = None,
    dial: float = 0.5,
    slo_ms: float = 250.0,
    slo_slack: float = 0.5,
) -> dict[str, np.ndarray | int]:
    """A padded observation.

    Args:
        nodes: ``(n, 18)`` rows in `NODE_COLUMNS` order, or ``(n, 6)`` rows [pods, desired,
            cpu_m, mem_mi, rx_rps, tx_rps] with the v2 columns at their defaults (every
            pod ready, `_V2_NODE_DEFAULTS`).
        edges: rows ``(src, dst, qps, p95_ms, err, mtls)`` with src/dst indices into
            ``nodes`` (not slots).
        slots: slot of each node (default ``0..n-1``).
        invalid: ``(n, 15)`` bool, True = invalid move, per node (default: all valid).
        dial, slo_ms, slo_slack: the globals of the same names (15 s interval, midnight).
    """
    nodes = np.asarray(nodes, dtype=np.float32)
    if nodes.ndim == 2 and nodes.shape[1] == V1_NODE_DIM:
        wide = np.zeros((nodes.shape[0], NODE_DIM_RAW), np.float32)
        wide[:, :V1_NODE_DIM] = nodes
        wide[:, NODE["ready"]] = nodes[:, 0]
        for name, value in _V2_NODE_DEFAULTS.items():
            wide[:, NODE[name]] = value
        nodes = wide
    nodes = nodes.reshape(-1, NODE_DIM_RAW)
    n = nodes.shape[0]
    slots = list(range(n)) if slots is None else list(slots)
    if len(slots) != n or len(set(slots)) != n or max(slots, default=0) >= max_nodes:
        raise ValueError(f"slots {slots} do not fit {n} nodes in {max_nodes} slots")
    if len(edges) > max_edges:
        raise ValueError(f"{len(edges)} edges exceed max_edges={max_edges}")
    svc = np.zeros((max_nodes, NODE_DIM_RAW), np.float32)
    node_mask = np.zeros(max_nodes, np.int8)
    svc[slots] = nodes
    node_mask[slots] = 1
    edge_df = np.zeros((max_edges, 7), np.float32)
    edge_mask = np.zeros(max_edges, np.int8)
    for k, (s, d, qps, p95, err, mtls) in enumerate(edges):
        edge_df[k] = [slots[int(s)], slots[int(d)], 1.0, qps, p95, err, mtls]
        edge_mask[k] = 1
    inv = np.zeros((max_nodes, NUM_MOVES), np.int8)
    inv[node_mask == 0, 1:] = 1
    if invalid is not None:
        inv[slots] = np.asarray(invalid, dtype=np.int8).reshape(n, NUM_MOVES)
    pods = float(nodes[:, 0].sum())
    glob = np.zeros(GLOBAL_DIM_RAW, np.float32)
    glob[:V1_GLOBAL_DIM] = [pods, nodes[:, 2].sum() / max(pods, 1.0),
                            nodes[:, 3].sum() / max(pods, 1.0), nodes[:, 4].max(initial=0.0)]
    glob[V1_GLOBAL_DIM:] = [slo_slack, dial, slo_ms, 15.0, 0.0, 1.0]
    return {
        "svc_df": svc,
        "edge_df": edge_df,
        "global_feats": glob,
        "node_mask": node_mask,
        "edge_mask": edge_mask,
        "num_nodes": n,
        "invalid_action_mask": inv.reshape(-1),
    }


def stack_observations(observations: Sequence[dict]) -> dict[str, np.ndarray]:
    """Stack single observations into a batched dict (leading axis B)."""
    return {k: np.stack([np.asarray(o[k]) for o in observations]) for k in observations[0]}
