"""`GraphSnapshot` and the snapshot columns, re-exported from their layer
(`gnnrl.contracts.snapshot`) for existing imports."""

from gnnrl.contracts.snapshot import (
    EDGE_COLUMNS,
    NODE_COLUMNS,
    GraphSnapshot,
    empty_edges,
    empty_nodes,
)

__all__ = ["EDGE_COLUMNS", "NODE_COLUMNS", "GraphSnapshot", "empty_edges", "empty_nodes"]
