"""`GraphSnapshot`: one observation of the service graph, as every source produces it.

Sources (Kiali, Prometheus, Kubernetes, the simulator) all return this shape; the Parquet
writer (`gnnrl.data.store`) turns it into rows of the versioned snapshot schema, and the
real-cluster env backend turns it into the padded observation.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

#: Node columns (besides ts/namespace added at write time). Units: replicas, replicas,
#: millicores (all pods of the service), MiB (all pods), kbit/s in, kbit/s out, req/s in.
NODE_COLUMNS: tuple[str, ...] = (
    "service", "replicas", "ready_replicas", "cpu_m", "mem_mi", "rx_kbps", "tx_kbps", "rps_in",
)
#: Edge columns. Units: req/s, ms, fraction 0..1, fraction 0..1.
EDGE_COLUMNS: tuple[str, ...] = (
    "source", "target", "protocol", "qps", "p95_ms", "err_rate", "mtls",
)


def empty_nodes() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="string" if c == "service" else "float64")
                         for c in NODE_COLUMNS})


def empty_edges() -> pd.DataFrame:
    dtypes = {"source": "string", "target": "string", "protocol": "string"}
    return pd.DataFrame({c: pd.Series(dtype=dtypes.get(c, "float64")) for c in EDGE_COLUMNS})


@dataclasses.dataclass
class GraphSnapshot:
    """One snapshot of a namespace's service graph.

    Attributes:
        ts: UTC timestamp the snapshot describes (end of the query window).
        namespace: Kubernetes namespace.
        nodes: one row per service, columns `NODE_COLUMNS`; NaN where the source does not
            know a value (e.g. Kiali knows no CPU; Kubernetes knows no traffic).
        edges: one row per caller->callee pair, columns `EDGE_COLUMNS`, endpoints are
            workload/service *names* (never source-specific node ids). A caller outside
            the application (the ingress gateway, traffic without telemetry, a load
            generator) can be a source that is not a node: its calls into the entry carry
            the end-to-end numbers.
        skipped: nodes kept out of the service mapping, by reason
            (e.g. {"unknown": 1, "outside": 2, "dead": 1}).
    """

    ts: pd.Timestamp
    namespace: str
    nodes: pd.DataFrame = dataclasses.field(default_factory=empty_nodes)
    edges: pd.DataFrame = dataclasses.field(default_factory=empty_edges)
    skipped: dict[str, int] = dataclasses.field(default_factory=dict)

    @property
    def services(self) -> list[str]:
        return [str(s) for s in self.nodes["service"]]

    def merged(self, other: GraphSnapshot) -> GraphSnapshot:
        """Combine two sources' views of the same moment: non-NaN values of `other`
        fill NaNs of `self` (node-wise by service); edges are the union (self first)."""
        left = self.nodes.set_index("service")
        right = other.nodes.set_index("service")
        nodes = left.combine_first(right).reset_index()
        nodes = nodes[list(NODE_COLUMNS)]
        edges = pd.concat([self.edges, other.edges], ignore_index=True)
        edges = edges.drop_duplicates(subset=["source", "target", "protocol"], keep="first")
        skipped = dict(self.skipped)
        for k, v in other.skipped.items():
            skipped[k] = skipped.get(k, 0) + v
        return GraphSnapshot(self.ts, self.namespace, nodes, edges.reset_index(drop=True), skipped)

    def is_finite(self) -> bool:
        num = self.nodes.drop(columns=["service"]).to_numpy(dtype=float, na_value=np.nan)
        return bool(np.isfinite(num[~np.isnan(num)]).all())
